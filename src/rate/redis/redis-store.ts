import { ClosedError, InvalidInputError, TimeoutError } from '../../errors.js';
import { monotonicClock } from '../../internal/clock.js';
import { Deque } from '../../internal/deque.js';
import { connectRedis, type RedisScripting } from '../../internal/redis-client.js';
import { linkSignal, unlinkSignal } from '../../internal/signal.js';
import { Timer } from '../../internal/timer.js';
import * as v from '../../internal/validate.js';
import type { RatePolicy } from '../policy.js';
import { toMicros } from '../memory-store.js';
import { decide, type RateDecision, type RateStore } from '../store.js';
import { RATE_SCRIPTS, type RateScript } from './script.js';

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /**
   * Prepended to every key (`<prefix><limiter name>:<key>`, `:` and `\` in the name escaped
   * with `\`). On a Redis Cluster each decision
   * touches one key, so any key works; put a hash tag in the key (`user:{42}`) only if your own
   * scripts must touch several of them in one slot.
   * @default 'sluice:rate:'
   */
  readonly prefix?: string | undefined;
  /**
   * Longest wait for one decision's reply, in ms (or `'500ms'`). When it passes the call rejects
   * with `TimeoutError` and the limiter's `onStoreError` decides: a command queued behind a
   * dead connection never stalls a request. `Infinity` must be explicit.
   * @default 500
   */
  readonly timeout?: number | string | undefined;
  /**
   * Whose clock decides. `'server'`: Redis `TIME`, read inside the script — one clock for every
   * process, whatever their own clocks say. `'client'`: the `nowMs` the limiter passes (its
   * `clock`), as `MemoryStore` does — deterministic tests, or processes that share a wall
   * clock (`clock: { now: Date.now }`; the default `performance.now()` is per process, so never
   * share keys across processes with it). Redis still expires keys on its own clock, so in
   * `'client'` mode a key lives 1 s longer than its state needs, to absorb clock skew.
   * @default 'server'
   */
  readonly time?: 'server' | 'client' | undefined;
}

/** Options of {@link RedisStore.connect}. */
export interface RedisConnectOptions extends RedisStoreOptions {
  /** Which installed driver to create the client with (an optional peer dependency). */
  readonly driver: 'ioredis' | 'redis';
  /**
   * Longest wait for the first connection, in ms; a failed first connection rejects (later
   * outages reconnect in the background while decisions fail fast).
   * @default 5000
   */
  readonly connectTimeout?: number | string | undefined;
}

/** Counters and gauges of a {@link RedisStore}; reading them is free. */
export interface RedisStoreStats {
  /** Calls waiting for Redis now. */
  readonly inFlight: number;
  /** Calls sent (consume, peek and reset). */
  readonly calls: number;
  /** Calls that rejected with `TimeoutError`. */
  readonly timeouts: number;
  /** Calls that rejected with the client's error (outage, bad reply) or were aborted. */
  readonly errors: number;
  /** `NOSCRIPT` replies answered by sending the script (after a restart, failover, `SCRIPT FLUSH`). */
  readonly scriptLoads: number;
}

/** Every µs quantity the script computes stays below 2^53 when a policy's span stays below this. */
const MAX_SPAN_US = 2 ** 51;
/** |now| in µs a client clock may report (2^52 µs ≈ 142 years). */
const MAX_CLIENT_NOW_US = 2 ** 52;
/** ARGV[1] of a peek (a negative amount: cost 1, nothing written). */
const PEEK = '-1';
const NO_ARGS: string[] = [];
/** Marks stores built by `connect()`: they own (and close) their client. */
const owning = new WeakSet<RedisScripting>();

/**
 * A {@link RateStore} in Redis: limits shared by every process that uses the same Redis and
 * key prefix. Each decision is one `EVALSHA` of one Lua script — one round trip, atomic per key,
 * the same integer-µs algorithms as `MemoryStore` (identical decisions for the same clock
 * readings), time from Redis `TIME` by default. Keys expire when their state equals a fresh
 * key's, so idle keys cost nothing. Each decision touches exactly one key, passed in `KEYS`:
 * it works on Redis Cluster as is.
 *
 * - **Failure**: every call is bounded by `timeout`; errors reject and the `RateLimiter`'s
 *   `onStoreError` decides (fail open by default). `NOSCRIPT` (restart, failover,
 *   `SCRIPT FLUSH`) is answered by one `EVAL`.
 * - **Cancellation**: the `signal` passed by the limiter rejects the call with `signal.reason`.
 * - **Lifecycle**: `close()` refuses new calls, waits for those in flight (each bounded by
 *   `timeout`) and quits the client only if `connect()` created it.
 *
 * @example
 * ```ts
 * import { RateLimiter } from 'sluice/rate';
 * import { RedisStore } from 'sluice/rate/redis';
 * const store = await RedisStore.connect(process.env.REDIS_URL!, { driver: 'ioredis' });
 * const limiter = new RateLimiter({ policy: '120/1m', name: 'api', store });
 * const d = await limiter.consume(userId); // one EVALSHA
 * await store.close();
 * ```
 */
export class RedisStore implements RateStore, AsyncDisposable {
  /** The key prefix. */
  readonly prefix: string;
  /** The per-call timeout in ms. */
  readonly timeout: number;
  /** Whose clock decides. */
  readonly time: 'server' | 'client';
  readonly #client: RedisScripting;
  readonly #owned: boolean;
  readonly #plans = new WeakMap<RatePolicy, Plan>();
  readonly #heads = new WeakMap<RatePolicy, string>();
  #closed = false;
  #inFlight = 0;
  #calls = 0;
  #timeouts = 0;
  #errors = 0;
  #scriptLoads = 0;
  #idle: (() => void) | undefined;
  /** Calls with a deadline (the stamp), oldest first; a settled call is a tombstone. */
  readonly #deadlines = new Deque<Pending, undefined>(isSettled);
  #timer: Timer | undefined;

  /**
   * Wraps a client you own (adapt it with {@link ioredisScripting} or
   * {@link nodeRedisScripting}); `close()` leaves it open.
   */
  constructor(client: RedisScripting, options?: RedisStoreOptions) {
    if (
      typeof client !== 'object' ||
      client === null ||
      typeof client.evalsha !== 'function' ||
      typeof client.eval !== 'function'
    ) {
      throw new TypeError(
        v.expectation('client', 'a RedisScripting (evalsha and eval methods; see ioredisScripting)', client),
      );
    }
    v.options('options', options);
    this.#client = client;
    this.#owned = owning.has(client);
    this.prefix = v.string('prefix', options?.prefix ?? 'sluice:rate:');
    this.timeout = v.positiveDuration('timeout', options?.timeout ?? 500);
    this.time = v.oneOf('time', options?.time ?? 'server', ['server', 'client']);
  }

  /**
   * Creates a client with the installed `driver` (imported only now), configured to fail fast
   * during an outage (no offline queue, no command retries; it reconnects in the background),
   * connects it, and returns a store that owns it: `close()` quits it.
   *
   * @example
   * ```ts
   * import { RedisStore } from 'sluice/rate/redis';
   * const store = await RedisStore.connect('redis://127.0.0.1:6379', { driver: 'redis', timeout: 250 });
   * ```
   */
  static async connect(url: string, options: RedisConnectOptions): Promise<RedisStore> {
    v.string('url', url);
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(
        v.expectation('options', "an object with a driver ('ioredis' or 'redis')", options),
      );
    }
    const driver = v.oneOf('driver', options.driver, ['ioredis', 'redis']);
    const connectTimeout = v.positiveDuration('connectTimeout', options.connectTimeout ?? 5000);
    const { driver: _driver, connectTimeout: _connectTimeout, ...storeOptions } = options;
    // Validate the store's options before opening a connection.
    void new RedisStore({ evalsha: rejectAll, eval: rejectAll }, storeOptions);
    const client = await connectRedis(url, driver, connectTimeout);
    owning.add(client);
    return new RedisStore(client, storeOptions);
  }

  /** Counters and gauges; reading them is free. */
  get stats(): RedisStoreStats {
    return {
      inFlight: this.#inFlight,
      calls: this.#calls,
      timeouts: this.#timeouts,
      errors: this.#errors,
      scriptLoads: this.#scriptLoads,
    };
  }

  consume(
    key: string,
    policy: RatePolicy,
    cost: number,
    nowMs: number,
    signal?: AbortSignal,
  ): Promise<RateDecision> {
    return this.#decide(key, policy, cost, false, nowMs, signal);
  }

  peek(key: string, policy: RatePolicy, nowMs: number, signal?: AbortSignal): Promise<RateDecision> {
    return this.#decide(key, policy, 1, true, nowMs, signal);
  }

  async reset(key: string, policy: RatePolicy, signal?: AbortSignal): Promise<void> {
    await this.#call(RATE_SCRIPTS.reset, this.#key(policy, key), NO_ARGS, signal);
  }

  /**
   * Refuses new calls (`ClosedError`), waits until every call in flight has settled (each is
   * bounded by `timeout`), then quits the client if {@link RedisStore.connect} created it.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
      if (this.#owned) await this.#client.quit?.();
    } else if (this.#inFlight > 0) {
      const previous = this.#idle;
      await new Promise<void>((resolve) => {
        this.#idle = () => {
          previous?.();
          resolve();
        };
      });
    }
  }

  /** Same as {@link RedisStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #decide(
    key: string,
    policy: RatePolicy,
    cost: number,
    peek: boolean,
    nowMs: number,
    signal: AbortSignal | undefined,
  ): Promise<RateDecision> {
    let plan = this.#plans.get(policy);
    if (plan === undefined) {
      try {
        plan = planFor(policy);
      } catch (error) {
        return Promise.reject(error);
      }
      this.#plans.set(policy, plan);
    }
    let args: string[];
    if (this.time === 'client') {
      const us = toMicros(nowMs);
      if (!(Math.abs(us) <= MAX_CLIENT_NOW_US)) {
        return Promise.reject(
          v.invalidInput('nowMs', `a clock reading within ±${MAX_CLIENT_NOW_US / 1000} ms`, nowMs),
        );
      }
      args = [peek ? PEEK : String(cost * plan.unit), ...plan.params, String(us)];
    } else if (peek) {
      args = plan.peek;
    } else if (cost === 1) {
      args = plan.one;
    } else {
      args = [String(cost * plan.unit), ...plan.params];
    }
    const decode = plan.decode;
    return this.#call(plan.script, this.#key(policy, key), args, signal).then((reply) =>
      decode(policy, reply, cost),
    );
  }

  /**
   * The Redis key of `key` under `policy`: `<prefix><policy name>:<key>`, with `\` and `:` in
   * the name escaped (`api:admin` → `api\:admin`), so no name + key pair can spell another's
   * (name `api` + key `admin:bob` ≠ name `api:admin` + key `bob`). Cached per policy.
   */
  #key(policy: RatePolicy, key: string): string {
    let head = this.#heads.get(policy);
    if (head === undefined) {
      head = `${this.prefix}${policy.name.replace(/[\\:]/g, '\\$&')}:`;
      this.#heads.set(policy, head);
    }
    return head + key;
  }

  /**
   * One script call: bounded by `timeout`, abandoned on abort, `NOSCRIPT` answered once. Every
   * call has the same timeout, so deadlines arrive in call order: the calls wait in one FIFO
   * and a single timer, armed for the oldest unsettled call, times them all out (a timer per
   * call cost a third of the client's time per decision).
   */
  #call(script: RateScript, key: string, args: string[], signal: AbortSignal | undefined): Promise<unknown> {
    if (this.#closed) return Promise.reject(new ClosedError('RedisStore is closed'));
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    this.#calls++;
    this.#inFlight++;
    return new Promise<unknown>((resolve, reject) => {
      const call: Pending = { settled: false, queued: false, reject, signal, onAbort: undefined };
      if (this.timeout !== Infinity) this.#track(call);
      if (signal !== undefined) {
        call.onAbort = linkSignal(signal, () => {
          if (!this.#finish(call)) return;
          this.#errors++;
          reject(signal.reason as Error);
        });
      }
      // A late reply or error of an abandoned call lands here and is dropped (never unhandled).
      this.#send(script, key, args).then(
        (reply) => {
          if (this.#finish(call)) resolve(reply);
        },
        (error: unknown) => {
          if (!this.#finish(call)) return;
          this.#errors++;
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  /** Marks a call settled; `false` if it already was (timed out, aborted or answered). */
  #finish(call: Pending): boolean {
    if (call.settled) return false;
    call.settled = true;
    if (call.queued) {
      call.queued = false;
      this.#deadlines.markDead(); // leaves the deadline queue in O(1)
    }
    unlinkSignal(call.signal, call.onAbort);
    call.signal = call.onAbort = undefined;
    if (--this.#inFlight === 0 && this.#idle !== undefined) {
      const idle = this.#idle;
      this.#idle = undefined;
      idle();
    }
    return true;
  }

  #track(call: Pending): void {
    call.queued = true;
    this.#deadlines.push(call, undefined, monotonicClock.now() + this.timeout);
    if (this.#timer === undefined) this.#timer = new Timer(this.#expire, this.timeout);
  }

  /** Times out every call past its deadline, then re-arms for the oldest one still waiting. */
  readonly #expire = (): void => {
    this.#timer = undefined;
    const queue = this.#deadlines;
    const now = monotonicClock.now();
    for (let call = queue.peek(); call !== undefined; call = queue.peek()) {
      if (queue.stamp > now) {
        this.#timer = new Timer(this.#expire, queue.stamp - now);
        return;
      }
      queue.shift();
      call.queued = false;
      this.#finish(call);
      this.#timeouts++;
      call.reject(new TimeoutError(`RedisStore: no reply from Redis within ${this.timeout} ms`));
    }
  };

  #send(script: RateScript, key: string, args: string[]): Promise<unknown> {
    const keys = [key];
    let sent: Promise<unknown>;
    try {
      sent = Promise.resolve(this.#client.evalsha(script.sha, keys, args));
    } catch (error) {
      return Promise.reject(error);
    }
    return sent.catch((error: unknown) => {
      if (!isNoScript(error)) throw error;
      this.#scriptLoads++;
      return this.#client.eval(script.source, keys, args);
    });
  }
}

/** A call in flight. */
interface Pending {
  settled: boolean;
  /** In the deadline queue (a timeout is set and it has not been taken out). */
  queued: boolean;
  readonly reject: (error: Error) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const isSettled = (call: Pending): boolean => call.settled;

function rejectAll(): Promise<unknown> {
  return Promise.reject(new ClosedError('RedisStore is not connected'));
}

/**
 * How `RedisStore` runs decisions under one policy: its algorithm's script, the ARGV after the
 * amount (precomputed), and how a reply becomes a decision.
 */
interface Plan {
  readonly script: RateScript;
  /** ARGV[1] of a consume is `cost × unit`. */
  readonly unit: number;
  /** ARGV[2…] (the policy's constants). */
  readonly params: readonly string[];
  /** Server-time ARGV of a peek and of a consume of cost 1 (shared, never changed). */
  readonly peek: string[];
  readonly one: string[];
  readonly decode: (policy: RatePolicy, reply: unknown, cost: number) => RateDecision;
}

function planFor(policy: RatePolicy): Plan {
  const span = policy.capacity * policy.intervalUs;
  if (!(span <= MAX_SPAN_US) || !((policy.segments + 1) * policy.segmentUs <= MAX_SPAN_US)) {
    throw v.invalidInput(
      'policy',
      `a policy whose burst spans at most 2^51 µs (about 71 years) for RedisStore (capacity × interval = ${span} µs)`,
      policy.name,
    );
  }
  let unit = 1;
  let params: string[];
  let decode: Plan['decode'];
  switch (policy.algorithm) {
    case 'gcra':
      unit = policy.intervalUs;
      params = [String(policy.burst * unit + unit)];
      decode = gcraDecision;
      break;
    case 'token-bucket':
      unit = policy.intervalUs;
      params = [String(span)];
      decode = tokenBucketDecision;
      break;
    case 'fixed-window':
      params = [String(policy.windowUs), String(policy.limit)];
      decode = fixedWindowDecision;
      break;
    case 'sliding-window':
      params = [String(policy.limit), String(policy.segmentUs), String(policy.segments + 1)];
      decode = slidingWindowDecision;
      break;
  }
  return {
    script: RATE_SCRIPTS[policy.algorithm],
    unit,
    params,
    peek: [PEEK, ...params],
    one: [String(unit), ...params],
    decode,
  };
}

function isNoScript(error: unknown): boolean {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' && message.includes('NOSCRIPT');
}

/** A reply integer (drivers answer numbers; RESP2-as-string or bigint clients are accepted too). */
function integer(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'string') {
    if (!/^-?\d{1,16}$/.test(value)) return undefined;
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  if (typeof value === 'bigint') {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

function badReply(reply: unknown, shape: string): InvalidInputError {
  return new InvalidInputError(v.expectation('reply', `the script reply ${shape}`, reply));
}

/** GCRA from `tat - now` (as algorithms.ts, with horizon - now = (burst + 1) × interval). */
function gcraDecision(policy: RatePolicy, reply: unknown, cost: number): RateDecision {
  const d = integer(reply);
  if (d === undefined) throw badReply(reply, 'tat - now as an integer');
  const interval = policy.intervalUs;
  const tolerance = policy.burst * interval + interval;
  const next = d + cost * interval;
  if (next <= tolerance) return decide(policy, true, Math.floor((tolerance - next) / interval), next, 0);
  return decide(policy, false, Math.floor((tolerance - d) / interval), d, next - tolerance);
}

/** Token bucket from the credit now (µs). */
function tokenBucketDecision(policy: RatePolicy, reply: unknown, cost: number): RateDecision {
  const credit = integer(reply);
  if (credit === undefined) throw badReply(reply, 'credit as an integer');
  const interval = policy.intervalUs;
  const full = policy.capacity * interval;
  const need = cost * interval;
  if (credit >= need) {
    const left = credit - need;
    return decide(policy, true, Math.floor(left / interval), full - left, 0);
  }
  return decide(policy, false, Math.floor(credit / interval), full - credit, need - credit);
}

/** Fixed window from `[count, windowEnd - now]`. */
function fixedWindowDecision(policy: RatePolicy, reply: unknown, cost: number): RateDecision {
  const count = Array.isArray(reply) && reply.length === 2 ? integer(reply[0]) : undefined;
  const end = count === undefined ? undefined : integer((reply as unknown[])[1]);
  if (count === undefined || end === undefined) throw badReply(reply, '[count, end] as integers');
  const limit = policy.limit;
  if (count + cost <= limit) return decide(policy, true, limit - count - cost, count + cost > 0 ? end : 0, 0);
  return decide(policy, false, limit - count, end, end);
}

/** Sliding window from `[sum, resetUs]` (fits) or `[sum, resetUs, retryUs]`. */
function slidingWindowDecision(policy: RatePolicy, reply: unknown, cost: number): RateDecision {
  const n = Array.isArray(reply) ? reply.length : 0;
  const total = n === 2 || n === 3 ? integer((reply as unknown[])[0]) : undefined;
  const reset = total === undefined ? undefined : integer((reply as unknown[])[1]);
  const retry = n === 3 ? integer((reply as unknown[])[2]) : 0;
  const fits = total !== undefined && total + cost <= policy.limit;
  if (total === undefined || reset === undefined || retry === undefined || fits !== (n === 2)) {
    throw badReply(reply, '[sum, reset] or [sum, reset, retry] as integers');
  }
  if (fits) return decide(policy, true, policy.limit - total - cost, reset, 0);
  return decide(policy, false, policy.limit - total, reset, retry);
}
