import { ClosedError } from '../errors.js';
import { channels } from '../internal/channels.js';
import { monotonicClock, type Clock } from '../internal/clock.js';
import { reportError } from '../internal/report.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import * as v from '../internal/validate.js';
import { MemoryStore } from './memory-store.js';
import { parsePolicy, type RateAlgorithm, type RatePolicy, type RatePolicySpec } from './policy.js';
import type { RateDecision, RateStore, SyncRateStore } from './store.js';

/** What a limiter does when its store fails (Redis down, a command timed out). */
export type OnStoreError =
  | 'fail-open'
  | 'fail-closed'
  | {
      /** The store that decides while the configured one fails (a `MemoryStore`). */
      readonly fallback: RateStore;
    };

/** Options shared by {@link RateLimiter} and `Tiers`. */
export interface RateLimitSharedOptions {
  /**
   * Where the state lives. Limiters that share a store and a `name` share their quotas — across
   * processes with a `RedisStore`.
   * @default a MemoryStore owned (and closed) by the limiter
   */
  readonly store?: RateStore | undefined;
  /**
   * Time source for in-process stores, in ms. A `RedisStore` uses the Redis server's clock.
   * @default monotonic `performance.now()`
   */
  readonly clock?: Clock | undefined;
  /**
   * When the store fails: `'fail-open'` allows the request, `'fail-closed'` denies it with a
   * `retryAfterMs` of 1 s, `{ fallback }` decides with another store (a `MemoryStore`: per-process
   * limits while the shared store is away; if the fallback fails too, the request is allowed).
   * Every failure is counted in `stats.storeErrors` and published on `sluice:rate:error`; the
   * decision carries the error as `storeError`.
   * @default 'fail-open'
   */
  readonly onStoreError?: OnStoreError | undefined;
  /**
   * `'shadow'` decides and reports (stats, the `sluice:rate:limited` channel) exactly as
   * `'enforce'` would, but always allows: how a new limit is rolled out safely.
   * @default 'enforce'
   */
  readonly mode?: 'enforce' | 'shadow' | undefined;
  /**
   * The longest key accepted, in characters; a longer one is refused with `InvalidInputError`
   * (hash it first if your keys are long). `maxKeys` bounds how many keys a store holds, this
   * bounds each: 100 000 keys of a 16 KiB header would be 3 GiB. `Infinity` must be explicit.
   * @default 256
   */
  readonly maxKeyLength?: number | undefined;
}

/** Options of {@link RateLimiter}: a policy (`policy`, or `limit` + `window`) and shared options. */
export interface RateLimiterOptions extends RateLimitSharedOptions {
  /** The policy as a string (`'5/1m'`) or object; or give `limit` and `window` instead. */
  readonly policy?: RatePolicySpec | undefined;
  /** Requests per `window`: a positive integer. */
  readonly limit?: number | undefined;
  /** The window in ms or as a string (`'1m'`). */
  readonly window?: number | string | undefined;
  /** See {@link RatePolicyOptions.burst}. @default limit - 1 */
  readonly burst?: number | undefined;
  /** @default 'gcra' */
  readonly algorithm?: RateAlgorithm | undefined;
  /** Sliding window only. @default 10 */
  readonly segments?: number | undefined;
  /**
   * Names the limiter: its key space in the store (state is per name and key), the id in `RateLimit`
   * headers, its stats and channel payloads. Give limiters that share a store distinct names.
   * @default the policy as written, e.g. `'5/1m'` (`'5/1m;burst=0'`, `'5/1m:sliding-window'`: every
   *   field that changes a decision is in it)
   */
  readonly name?: string | undefined;
}

/** Per-call options of {@link RateLimiter.consume}. */
export interface ConsumeOptions {
  /** Cost units this request spends: an integer from 0 to the policy's capacity. @default 1 */
  readonly cost?: number | undefined;
  /** Aborting stops waiting for the store: the call rejects with `signal.reason`. */
  readonly signal?: AbortSignal | undefined;
}

/** Counters of a {@link RateLimiter}; reading them is free. */
export interface RateLimiterStats {
  /** The limiter's name. */
  readonly name: string;
  /** Requests allowed (in shadow mode, every request). */
  readonly allowed: number;
  /** Requests denied. */
  readonly denied: number;
  /** `mode: 'shadow'`: requests that would have been denied. */
  readonly shadowDenied: number;
  /** Store failures decided by `onStoreError`. */
  readonly storeErrors: number;
}

const channel = channels('rate', ['limited', 'error']);
const FAIL_CLOSED_RETRY_MS = 1000;

/**
 * Decides whether a request under `key` may proceed, by a {@link RatePolicy} (GCRA by default),
 * with its state in a {@link RateStore}: in process ({@link MemoryStore}, the default) or shared
 * across processes (`RedisStore` from `sluice/rate/redis`).
 *
 * - **Decisions**: `{ allowed, limit, remaining, resetMs, retryAfterMs, policy }`; a denied
 *   request spends nothing, and retrying after `retryAfterMs` succeeds unless another request
 *   spent the quota meanwhile. Times round up, never early.
 * - **Bound**: the memory store holds at most `maxKeys` keys (see {@link MemoryStore}).
 * - **Cancellation**: `signal` abandons the wait for a remote store.
 * - **Store failure**: `onStoreError` decides; nothing throws into the request path.
 *
 * @example
 * ```ts
 * import { RateLimiter } from 'sluice/rate';
 * const logins = new RateLimiter({ policy: '5/1m', name: 'login' });
 * const d = await logins.consume(ip);
 * if (!d.allowed) reply.status(429).header('retry-after', Math.ceil(d.retryAfterMs / 1000));
 * ```
 */
export class RateLimiter implements AsyncDisposable {
  /** The validated policy. */
  readonly policy: RatePolicy;
  /** The store this limiter decides with. */
  readonly store: RateStore;
  readonly #sync: SyncRateStore | undefined;
  readonly #owned: boolean;
  readonly #clock: Clock;
  readonly #onStoreError: OnStoreError;
  readonly #shadow: boolean;
  readonly #maxKeyLength: number;
  #closed = false;
  #allowed = 0;
  #denied = 0;
  #shadowDenied = 0;
  #storeErrors = 0;

  constructor(options: RateLimiterOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(v.expectation('options', 'an object', options));
    }
    let spec: RatePolicySpec;
    let written: string;
    if (options.policy !== undefined) {
      if (options.limit !== undefined || options.window !== undefined) {
        throw new TypeError(
          v.expectation('limit', 'undefined when `policy` is given', options.limit ?? options.window),
        );
      }
      spec = options.policy;
      written = typeof spec === 'string' ? spec.replace(/\s+/g, '') : describeWindow(spec.limit, spec.window);
    } else {
      spec = {
        limit: options.limit as number,
        window: options.window as number | string,
        burst: options.burst,
        algorithm: options.algorithm,
        segments: options.segments,
      };
      written = describeWindow(options.limit, options.window);
    }
    const name = options.name === undefined ? undefined : v.string('name', options.name);
    const probe = parsePolicy(spec, '', options.policy !== undefined ? 'policy' : 'options');
    // Every field that changes a decision is in the default name, so two unnamed limiters share
    // state only when they decide alike.
    let defaultName = probe.algorithm === 'gcra' ? written : `${written}:${probe.algorithm}`;
    const bucket = probe.algorithm === 'gcra' || probe.algorithm === 'token-bucket';
    if (bucket && probe.burst !== probe.limit - 1) defaultName += `;burst=${probe.burst}`;
    if (probe.algorithm === 'sliding-window' && probe.segments !== 10)
      defaultName += `;segments=${probe.segments}`;
    this.policy = Object.freeze({ ...probe, name: name ?? defaultName });
    const shared = sharedOptions(options);
    this.#clock = shared.clock;
    this.#onStoreError = shared.onStoreError;
    this.#shadow = shared.shadow;
    this.#maxKeyLength = shared.maxKeyLength;
    this.#owned = options.store === undefined;
    this.store = options.store ?? new MemoryStore();
    this.#sync = isSync(this.store) ? this.store : undefined;
  }

  /** Whether {@link RateLimiter.tryConsume} works: the store decides in process, synchronously. */
  get synchronous(): boolean {
    return this.#sync !== undefined;
  }

  /** Counters; reading them is free. */
  get stats(): RateLimiterStats {
    return {
      name: this.policy.name,
      allowed: this.#allowed,
      denied: this.#denied,
      shadowDenied: this.#shadowDenied,
      storeErrors: this.#storeErrors,
    };
  }

  /**
   * Decides a request under `key` and spends its `cost` if allowed. Never rejects for a denial
   * (read `allowed`); rejects with `InvalidInputError` for a bad key or cost, `ClosedError` after
   * `close()`, and `signal.reason` when aborted.
   */
  consume(key: string, options?: ConsumeOptions): Promise<RateDecision> {
    let cost = 1;
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      const bad = v.invalidCallOptions(options);
      if (bad !== undefined) return Promise.reject(bad);
      if (options.cost !== undefined) cost = options.cost;
      signal = options.signal;
      if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    }
    const error = this.#check(key, cost);
    if (error !== undefined) return Promise.reject(error);
    const sync = this.#sync;
    if (sync !== undefined) {
      try {
        return Promise.resolve(
          this.#settle(key, sync.consumeSync(key, this.policy, cost, this.#clock.now())),
        );
      } catch (err) {
        return this.#failed(key, err, cost, signal);
      }
    }
    return this.#remote(key, cost, signal);
  }

  /**
   * The synchronous fast path of an in-process store: the same decision as `consume`, without a
   * promise. Throws `TypeError` if the store is not synchronous (a `RedisStore`), and
   * `InvalidInputError` for a bad key or cost.
   */
  tryConsume(key: string, cost = 1): RateDecision {
    const sync = this.#sync;
    if (sync === undefined) {
      throw new TypeError(
        'tryConsume needs a synchronous store (MemoryStore); use consume() with this store',
      );
    }
    const error = this.#check(key, cost);
    if (error !== undefined) throw error;
    return this.#settle(key, sync.consumeSync(key, this.policy, cost, this.#clock.now()));
  }

  /** The decision a request of cost 1 would get now, spending nothing. */
  peek(key: string, options?: { readonly signal?: AbortSignal | undefined }): Promise<RateDecision> {
    const bad = options === undefined ? undefined : v.invalidCallOptions(options);
    if (bad !== undefined) return Promise.reject(bad);
    const signal = options?.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    const error = this.#check(key, 1);
    if (error !== undefined) return Promise.reject(error);
    return this.#remote(key, -1, signal);
  }

  /** Forgets `key`: its next request starts from a whole quota. Store errors reject. */
  reset(key: string, options?: { readonly signal?: AbortSignal | undefined }): Promise<void> {
    const error = this.#check(key, 0);
    if (error !== undefined) return Promise.reject(error);
    return raceSignal(() => this.store.reset(key, this.policy, options?.signal), options?.signal);
  }

  /** Refuses further calls (`ClosedError`) and closes the store if the limiter created it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) await this.store.close?.();
  }

  /** Same as {@link RateLimiter.close}: `await using limiter = new RateLimiter(…)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #check(key: unknown, cost: unknown): Error | undefined {
    if (this.#closed) return new ClosedError(`RateLimiter ${this.policy.name} is closed`);
    if (typeof key !== 'string') return v.invalidInput('key', 'a string', key);
    if (key.length > this.#maxKeyLength) {
      return v.invalidInput(
        'key',
        `a string of at most ${this.#maxKeyLength} characters (maxKeyLength)`,
        key,
      );
    }
    if (
      cost !== 1 &&
      (typeof cost !== 'number' || !Number.isInteger(cost) || cost < 0 || cost > this.policy.capacity)
    ) {
      return v.invalidInput(
        'cost',
        `an integer from 0 to the policy's capacity ${this.policy.capacity}`,
        cost,
      );
    }
    return undefined;
  }

  /** Asks the store; `cost` -1 is a peek. */
  #remote(key: string, cost: number, signal: AbortSignal | undefined): Promise<RateDecision> {
    let pending: Promise<RateDecision>;
    try {
      pending = this.#ask(this.store, key, cost, signal);
      if (signal !== undefined) pending = raceSignal(() => pending, signal);
    } catch (err) {
      return this.#failed(key, err, cost, signal);
    }
    return Promise.resolve(pending).then(
      (decision) => (cost < 0 ? decision : this.#settle(key, decision)),
      (err: unknown) => {
        if (signal?.aborted === true && err === signal.reason) throw err;
        return this.#failed(key, err, cost, signal);
      },
    );
  }

  /** One call to `store`: `consume`, or `peek` when `cost` is -1. */
  #ask(store: RateStore, key: string, cost: number, signal: AbortSignal | undefined): Promise<RateDecision> {
    const now = this.#clock.now();
    return cost < 0
      ? store.peek(key, this.policy, now, signal)
      : store.consume(key, this.policy, cost, now, signal);
  }

  /** Counts a store's decision and applies shadow mode. */
  #settle(key: string, decision: RateDecision): RateDecision {
    if (decision.allowed) {
      this.#allowed++;
      return decision;
    }
    if (this.#shadow) {
      this.#shadowDenied++;
      this.#allowed++;
      if (channel.limited.hasSubscribers)
        channel.limited.publish({ limiter: this, key, decision, shadow: true });
      return { ...decision, allowed: true, retryAfterMs: 0, shadowed: true };
    }
    this.#denied++;
    if (channel.limited.hasSubscribers)
      channel.limited.publish({ limiter: this, key, decision, shadow: false });
    return decision;
  }

  /** The store failed: count, report, and let `onStoreError` decide. `cost` -1 is a peek. */
  async #failed(
    key: string,
    error: unknown,
    cost: number,
    signal: AbortSignal | undefined,
  ): Promise<RateDecision> {
    this.#storeErrors++;
    reportError(channel.error, error, this, 'store');
    const policy = this.policy;
    const onError = this.#onStoreError;
    if (onError === 'fail-closed') {
      const closed: RateDecision = {
        allowed: false,
        limit: policy.limit,
        remaining: 0,
        resetMs: FAIL_CLOSED_RETRY_MS,
        retryAfterMs: FAIL_CLOSED_RETRY_MS,
        policy,
        storeError: error,
        unavailable: true,
      };
      return cost < 0 ? closed : this.#settle(key, closed);
    }
    if (onError !== 'fail-open') {
      try {
        const decision = await raceSignal(() => this.#ask(onError.fallback, key, cost, signal), signal);
        const marked = { ...decision, storeError: error };
        return cost < 0 ? marked : this.#settle(key, marked);
      } catch (fallbackError) {
        if (signal?.aborted === true && fallbackError === signal.reason) throw fallbackError;
        this.#storeErrors++;
        reportError(channel.error, fallbackError, this, 'fallback store');
      }
    }
    if (cost >= 0) this.#allowed++;
    return {
      allowed: true,
      limit: policy.limit,
      remaining: policy.limit,
      resetMs: 0,
      retryAfterMs: 0,
      policy,
      storeError: error,
    };
  }
}

function isSync(store: RateStore): store is SyncRateStore {
  return typeof (store as Partial<SyncRateStore>).consumeSync === 'function';
}

function describeWindow(limit: unknown, window: unknown): string {
  return `${String(limit)}/${typeof window === 'number' ? `${window}ms` : String(window).replace(/\s+/g, '')}`;
}

/** Validates the options every limiter and tier set shares. */
export function sharedOptions(options: RateLimitSharedOptions): {
  clock: Clock;
  onStoreError: OnStoreError;
  shadow: boolean;
  maxKeyLength: number;
} {
  const maxKeyLength = v.positiveInteger('maxKeyLength', options.maxKeyLength ?? 256, true);
  const clock = options.clock === undefined ? monotonicClock : v.clock('clock', options.clock);
  const store = options.store;
  if (store !== undefined && !isStore(store)) {
    throw new TypeError(v.expectation('store', 'a RateStore (consume, peek and reset methods)', store));
  }
  const onStoreError = options.onStoreError ?? 'fail-open';
  if (onStoreError !== 'fail-open' && onStoreError !== 'fail-closed') {
    if (typeof onStoreError !== 'object' || onStoreError === null || !isStore(onStoreError.fallback)) {
      throw new TypeError(
        v.expectation('onStoreError', "'fail-open', 'fail-closed' or { fallback: RateStore }", onStoreError),
      );
    }
  }
  const mode = v.oneOf('mode', options.mode ?? 'enforce', ['enforce', 'shadow']);
  return { clock, onStoreError, shadow: mode === 'shadow', maxKeyLength };
}

function isStore(value: unknown): value is RateStore {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Partial<RateStore>;
  return typeof s.consume === 'function' && typeof s.peek === 'function' && typeof s.reset === 'function';
}

/**
 * Calls `start` (a store call that may throw synchronously or ignore its signal) and settles
 * with its result, or with `signal.reason` as soon as the signal aborts.
 */
export function raceSignal<T>(start: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  let pending: Promise<T>;
  try {
    pending = Promise.resolve(start());
  } catch (error) {
    return Promise.reject(error);
  }
  if (signal === undefined) return pending;
  return new Promise<T>((resolve, reject) => {
    const onAbort = linkSignal(signal, () => reject(signal.reason as Error));
    pending.then(
      (value) => {
        unlinkSignal(signal, onAbort);
        resolve(value);
      },
      (error: unknown) => {
        unlinkSignal(signal, onAbort);
        reject(error);
      },
    );
  });
}
