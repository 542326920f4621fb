import { AsyncResource } from 'node:async_hooks';
import { ClosedError, QueueFullError } from '../errors.js';
import { channels } from '../internal/channels.js';
import { monotonicClock, type Clock } from '../internal/clock.js';
import { Deque } from '../internal/deque.js';
import { reportError } from '../internal/report.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import { Timer } from '../internal/timer.js';
import * as v from '../internal/validate.js';
import type { RatePolicySpec } from './policy.js';
import { RateLimiter } from './rate-limiter.js';
import { rateLimitedPause } from './retry-after.js';
import type { RateDecision, RateStore } from './store.js';

/** Options of {@link Throttle}: a policy (`policy`, or `limit` + `window`) and how to wait. */
export interface ThrottleOptions {
  /** Calls started per `window`: a positive integer. Or give `policy`. */
  readonly limit?: number | undefined;
  /** The window in ms or as a string (`'1s'`, `'1m'`). */
  readonly window?: number | string | undefined;
  /**
   * How many calls beyond the first may start together after an idle period; `0` spaces every
   * call `window / limit` apart. In any window of length `window` at most `limit + burst` start.
   * @default limit - 1
   */
  readonly burst?: number | undefined;
  /** The policy as a string (`'10/1s'`) or object, instead of `limit` / `window` / `burst`. */
  readonly policy?: RatePolicySpec | undefined;
  /**
   * Where the quota lives. The default in-process `MemoryStore` decides synchronously (no
   * promise per decision). A shared store (`RedisStore`) makes several processes share one
   * quota: give them the same `name` and `key`. With an asynchronous store, decisions are
   * made one at a time (one round trip per started call).
   * @default a MemoryStore owned by the throttle
   */
  readonly store?: RateStore | undefined;
  /** The key in the store that this throttle spends. @default 'default' */
  readonly key?: string | undefined;
  /** Time source, in ms. @default monotonic `performance.now()` */
  readonly clock?: Clock | undefined;
  /**
   * How many calls may wait. Beyond it `run` rejects at once with `QueueFullError`.
   * `Infinity` must be explicit. Cost: one small record per waiting call.
   * @default 10_000
   */
  readonly maxQueue?: number | undefined;
  /** Names the throttle in errors, stats, channel payloads and the store key space. */
  readonly name?: string | undefined;
  /**
   * Reads each call's outcome (its value, or what it threw) and returns how long every caller
   * should pause, in ms, or `undefined` when the server is not limiting. Non-numbers, `NaN`
   * and negative values are ignored; values above `maxPauseMs` are clamped. A throwing
   * detector is reported on `sluice:rate:error` and treated as "not limited".
   * @default {@link rateLimitedPause}: a fetch `Response` with status 429 / 503 and
   *   `Retry-After` or `RateLimit`
   */
  readonly isRateLimited?: ((outcome: unknown) => number | undefined) | undefined;
  /**
   * The longest pause one limited answer can impose, in ms (`Retry-After: 99999999` is a bug
   * or an attack, not a plan). `Infinity` must be explicit.
   * @default 300_000 (5 minutes)
   */
  readonly maxPauseMs?: number | undefined;
  /**
   * {@link Throttle.fetch} only: how many times a rate-limited response is retried (after the
   * pause) before it is returned to the caller. Only requests whose body can be sent again are
   * retried (no body, a string, bytes, `URLSearchParams`, `Blob`, `FormData`).
   * @default 2
   */
  readonly retries?: number | undefined;
}

/** Per-call options of {@link Throttle.run}. */
export interface ThrottleRunOptions {
  /**
   * Aborting stops waiting: the call rejects with `signal.reason`, leaves the queue in O(1) and
   * spends no quota. Once the call has started, the signal is its business.
   */
  readonly signal?: AbortSignal | undefined;
}

/** Counters and gauges of a {@link Throttle}; reading them is free. */
export interface ThrottleStats {
  /** The throttle's name. */
  readonly name: string;
  /** Calls started and not yet settled. */
  readonly running: number;
  /** Calls waiting for quota or for a pause to end. */
  readonly queued: number;
  /** Clock reading the current pause ends at; `0` when not paused. */
  readonly pausedUntil: number;
  /** Milliseconds left of the current pause; `0` when not paused. */
  readonly pauseRemainingMs: number;
  /** Every call to `run` (and every attempt of `fetch`). */
  readonly calls: number;
  /** Calls that started. */
  readonly started: number;
  /** Outcomes the detector called rate limited. */
  readonly limited: number;
  /** Times a limited outcome started or extended the pause. */
  readonly pauses: number;
  /** `fetch` attempts retried after a limited response. */
  readonly retried: number;
  /** Refused: `QueueFullError`, `ClosedError`, invalid input. */
  readonly rejected: number;
  /** Left the queue because their signal aborted. */
  readonly aborted: number;
}

type Resolve = (value: unknown) => void;
type Reject = (reason: unknown) => void;

/** Receives whether an attempt's outcome was rate limited (used by `fetch`). */
interface Probe {
  limited: boolean;
}

/**
 * A waiting call, and — as an AsyncResource — the async context of its `run` call. Once
 * settled it drops what it referenced, so a tombstone left in the queue pins nothing.
 */
class Waiter extends AsyncResource {
  done = false;
  onAbort: (() => void) | undefined = undefined;
  constructor(
    public fn: (() => unknown) | undefined,
    public resolve: Resolve | undefined,
    public reject: Reject | undefined,
    public signal: AbortSignal | undefined,
    public probe: Probe | undefined,
  ) {
    super('sluice.Throttle');
  }
}

const isDead = (w: Waiter): boolean => w.done;
const OPEN: Promise<void> = Promise.resolve();
const channel = channels('rate', ['throttle-pause', 'error']);

/**
 * Client-side rate limiting: spaces calls to a remote service so they stay under its limit,
 * and when the service answers "too many requests" anyway, pauses **every** caller sharing the
 * throttle until the time it asked for, instead of letting each of them hammer it.
 *
 * - **Spacing**: GCRA (`limit` per `window`, `burst` at once after idle), in process or through
 *   a shared {@link RateStore}. Calls start in FIFO order.
 * - **Pause**: `isRateLimited(outcome)` → ms; queued calls wait, new calls queue, running calls
 *   finish. `run` returns the limited outcome to its caller (it cannot know whether `fn` is
 *   safe to repeat); {@link Throttle.fetch} retries it up to `retries` times.
 * - **Bound**: at most `maxQueue` waiting (`QueueFullError` beyond); pauses at most `maxPauseMs`.
 * - **Cancellation**: an aborted wait rejects with `signal.reason`, leaves in O(1), spends no
 *   quota. One timer serves the whole queue.
 * - **Shutdown**: `close()` rejects waiting calls with `ClosedError` and resolves once running
 *   calls have settled.
 *
 * @example
 * ```ts
 * import { Throttle } from 'sluice/rate';
 * const github = new Throttle({ limit: 10, window: '1s', name: 'github' });
 * const res = await github.fetch('https://api.github.com/rate_limit', { signal });
 * const data = await github.run(() => client.get('/repos'), { signal });
 * ```
 */
export class Throttle implements AsyncDisposable {
  readonly #limiter: RateLimiter;
  readonly #sync: boolean;
  readonly #key: string;
  readonly #clock: Clock;
  readonly #maxQueue: number;
  readonly #maxPauseMs: number;
  readonly #retries: number;
  readonly #name: string;
  readonly #isRateLimited: (outcome: unknown) => number | undefined;
  readonly #queue = new Deque<Waiter, undefined>(isDead);
  /** The one timer of the queue, and the clock reading it fires at. */
  #timer: Timer | undefined;
  #timerAt = 0;
  #pausedUntil = 0;
  #draining = false;
  /** Asynchronous store: a decision is in flight. */
  #deciding = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #onIdle: (() => void) | undefined;
  #lastNow = 0;

  #running = 0;
  #queued = 0;
  #calls = 0;
  #started = 0;
  #limited = 0;
  #pauses = 0;
  #retried = 0;
  #rejected = 0;
  #aborted = 0;

  constructor(options: ThrottleOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(v.expectation('options', 'an object', options));
    }
    this.#name = options.name === undefined ? 'Throttle' : v.string('name', options.name);
    this.#key = options.key === undefined ? 'default' : v.string('key', options.key);
    this.#clock = options.clock === undefined ? monotonicClock : v.clock('clock', options.clock);
    this.#maxQueue = v.nonNegativeInteger('maxQueue', options.maxQueue ?? 10_000, true);
    this.#maxPauseMs = v.nonNegativeNumber('maxPauseMs', options.maxPauseMs ?? 300_000, true);
    this.#retries = v.nonNegativeInteger('retries', options.retries ?? 2);
    v.optionalFunction('isRateLimited', options.isRateLimited);
    this.#isRateLimited = options.isRateLimited ?? ((outcome) => rateLimitedPause(outcome));
    if (options.policy !== undefined && options.burst !== undefined) {
      throw new TypeError(v.expectation('burst', 'undefined when `policy` is given', options.burst));
    }
    this.#limiter = new RateLimiter({
      policy: options.policy,
      limit: options.limit,
      window: options.window,
      burst: options.burst,
      store: options.store,
      clock: this.#clock,
      name: options.name,
    });
    this.#sync = this.#limiter.synchronous;
  }

  /** The `name` option. */
  get name(): string {
    return this.#name;
  }

  /** The limiter that decides the spacing (its policy, its store). */
  get limiter(): RateLimiter {
    return this.#limiter;
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** A snapshot of the counters and gauges. */
  get stats(): ThrottleStats {
    const now = this.#now();
    const paused = this.#pausedUntil > now;
    return {
      name: this.#name,
      running: this.#running,
      queued: this.#queued,
      pausedUntil: paused ? this.#pausedUntil : 0,
      pauseRemainingMs: paused ? this.#pausedUntil - now : 0,
      calls: this.#calls,
      started: this.#started,
      limited: this.#limited,
      pauses: this.#pauses,
      retried: this.#retried,
      rejected: this.#rejected,
      aborted: this.#aborted,
    };
  }

  /**
   * Runs `fn` once the rate allows and no pause is in force; resolves or rejects with its
   * outcome. Rejects without running it with `QueueFullError`, `ClosedError`, `signal.reason`,
   * or `InvalidInputError`; it never throws.
   *
   * `fn` always starts asynchronously (at the earliest one microtask after `run` returns), in
   * the async context (`AsyncLocalStorage`) of the `run` call. Its outcome goes through
   * `isRateLimited`; a limited outcome pauses the throttle and is still returned to the caller.
   */
  run<T>(fn: () => T | PromiseLike<T>, options?: ThrottleRunOptions): Promise<T> {
    if (typeof fn !== 'function') {
      this.#calls++;
      this.#rejected++;
      return Promise.reject(v.invalidInput('fn', 'a function', fn));
    }
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      const bad = v.invalidCallOptions(options);
      if (bad !== undefined) {
        this.#calls++;
        this.#rejected++;
        return Promise.reject(bad);
      }
      signal = options.signal;
    }
    return this.#submit(fn, signal, undefined) as Promise<T>;
  }

  /**
   * `fetch(input, init)` through the throttle (the global `fetch`). `init.signal` (or the
   * `Request`'s signal) aborts the wait as well as the request. A rate-limited response
   * pauses every caller; it is then retried, after the pause, up to `retries` times if its
   * body can be sent again — the limited response's body is cancelled first so its socket is
   * freed — and otherwise returned as is. A retry queues again at the tail (FIFO with every
   * other waiting call). Other responses are returned as they are.
   */
  async fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    if (signal !== undefined && signal !== null && !(signal instanceof AbortSignal)) {
      this.#calls++;
      this.#rejected++;
      throw v.invalidInput('init.signal', 'an AbortSignal, null or undefined', signal);
    }
    const replayable = isReplayable(input, init);
    const send = (): Promise<Response> => fetch(input, init);
    for (let attempt = 0; ; attempt++) {
      const probe: Probe = { limited: false };
      const response = (await this.#submit(send, signal ?? undefined, probe)) as Response;
      if (!probe.limited || attempt >= this.#retries || !replayable) return response;
      this.#retried++;
      try {
        await response.body?.cancel();
      } catch {
        // A body that cannot be cancelled was already consumed or errored: nothing to free.
      }
    }
  }

  /**
   * Pauses every caller for `ms` (clamped to `maxPauseMs`), as a limited outcome would: for a
   * rate limit learned out of band (a websocket message, a quota e-mail).
   */
  pause(ms: number): void {
    v.nonNegativeNumber('ms', ms, true);
    this.#pause(ms);
  }

  /**
   * Stops intake: waiting calls reject with `ClosedError`, later calls too. Resolves once
   * running calls have settled; closes the store if the throttle created it. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    const error = new ClosedError(`${this.#name} closed while the call was waiting`);
    this.#queue.drain((w) => {
      this.#queued--;
      this.#rejected++;
      const reject = w.reject as Reject;
      this.#settle(w);
      reject(error);
    });
    this.#closing = (async () => {
      if (this.#running > 0 || this.#deciding) {
        await new Promise<void>((resolve) => (this.#onIdle = resolve));
      }
      await this.#limiter.close();
    })();
    return this.#closing;
  }

  /** Same as {@link Throttle.close}: `await using throttle = new Throttle(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #submit(fn: () => unknown, signal: AbortSignal | undefined, probe: Probe | undefined): Promise<unknown> {
    this.#calls++;
    if (this.#closed) {
      this.#rejected++;
      return Promise.reject(new ClosedError(`${this.#name} is closed`));
    }
    if (signal?.aborted === true) {
      this.#aborted++;
      return Promise.reject(signal.reason as Error);
    }
    // Fast path: nobody ahead, no pause, quota now. Synchronous stores only.
    if (this.#sync && this.#queued === 0) {
      const now = this.#now();
      if (now >= this.#pausedUntil) {
        const decision = this.#trySpend();
        if (decision.allowed) return this.#execute(fn, probe);
        const promise = this.#enqueue(fn, signal, probe);
        if (this.#queued > 0) this.#arm(now + decision.retryAfterMs);
        return promise;
      }
    }
    const promise = this.#enqueue(fn, signal, probe);
    if (this.#queued === 1) this.#kick();
    return promise;
  }

  /** Queues a call (or refuses it with `QueueFullError`). */
  #enqueue(fn: () => unknown, signal: AbortSignal | undefined, probe: Probe | undefined): Promise<unknown> {
    if (this.#queued >= this.#maxQueue) {
      this.#rejected++;
      return Promise.reject(new QueueFullError(`${this.#name} queue is full (maxQueue: ${this.#maxQueue})`));
    }
    let resolve!: Resolve;
    let reject!: Reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const waiter = new Waiter(fn, resolve, reject, signal, probe);
    if (signal !== undefined) waiter.onAbort = linkSignal(signal, () => this.#abandon(waiter, signal.reason));
    this.#queue.push(waiter, undefined, 0);
    this.#queued++;
    return promise;
  }

  /** An aborted wait: out of the queue in O(1) (a tombstone), no quota spent. */
  #abandon(waiter: Waiter, reason: unknown): void {
    if (waiter.done) return;
    const reject = waiter.reject as Reject;
    this.#settle(waiter);
    this.#queued--;
    this.#aborted++;
    this.#queue.markDead();
    if (this.#queued === 0) {
      this.#timer?.cancel();
      this.#timer = undefined;
    }
    reject(reason);
  }

  #settle(waiter: Waiter): void {
    waiter.done = true;
    unlinkSignal(waiter.signal, waiter.onAbort);
    waiter.onAbort = undefined;
    waiter.signal = undefined;
    waiter.fn = undefined;
    waiter.resolve = undefined;
    waiter.reject = undefined;
    waiter.probe = undefined;
  }

  /** Starts the queue moving: a synchronous drain, or an asynchronous decision. */
  #kick(): void {
    if (this.#sync) this.#drain();
    else this.#decide();
  }

  /**
   * Starts waiting calls while the quota allows and no pause is in force, in one loop (never
   * one call per released waiter); then arms the queue's one timer for the next decision.
   * User code never runs inside it: every start waits a microtask first.
   */
  #drain(): void {
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    try {
      while (this.#queued > 0) {
        const now = this.#now();
        if (now < this.#pausedUntil) {
          this.#arm(this.#pausedUntil);
          return;
        }
        const decision = this.#trySpend();
        if (!decision.allowed) {
          this.#arm(now + decision.retryAfterMs);
          return;
        }
        this.#startNext();
      }
    } finally {
      this.#draining = false;
    }
  }

  /** Asynchronous store: one decision at a time for the head of the queue. */
  #decide(): void {
    if (this.#deciding || this.#closed || this.#queued === 0) return;
    const now = this.#now();
    if (now < this.#pausedUntil) {
      this.#arm(this.#pausedUntil);
      return;
    }
    this.#deciding = true;
    this.#limiter.consume(this.#key).then(
      (decision) => this.#decided(decision),
      (error: unknown) => {
        // consume settles store failures itself (onStoreError); what is left is misuse or
        // a closed limiter. Report it and let the head go rather than stall the queue.
        reportError(channel.error, error, this, `${this.#name}: store`);
        this.#decided(undefined);
      },
    );
  }

  #decided(decision: RateDecision | undefined): void {
    this.#deciding = false;
    if (this.#closed) {
      if (this.#running === 0) this.#idle();
      return;
    }
    // The quota was spent for the queue, not for one waiter: if the head left meanwhile, the
    // next one takes it (it is lost only when nobody is waiting any more).
    if (decision === undefined || decision.allowed) {
      if (this.#queued > 0) this.#startNext();
      this.#decide();
    } else if (this.#queued > 0) {
      // Only while someone waits: a referenced timer with an empty queue would hold the process.
      this.#arm(this.#now() + decision.retryAfterMs);
    }
  }

  /** Takes the head of the queue and starts it in its own async context. */
  #startNext(): void {
    const waiter = this.#queue.shift() as Waiter;
    this.#queued--;
    const fn = waiter.fn as () => unknown;
    const resolve = waiter.resolve as Resolve;
    const probe = waiter.probe;
    this.#settle(waiter);
    void waiter.runInAsyncScope(this.#executeQueued, this, fn, resolve, probe);
  }

  /** Spends one unit from the synchronous store; a store that throws fails open (reported). */
  #trySpend(): RateDecision | { readonly allowed: true; readonly retryAfterMs: 0 } {
    try {
      return this.#limiter.tryConsume(this.#key);
    } catch (error) {
      reportError(channel.error, error, this, `${this.#name}: store`);
      return { allowed: true, retryAfterMs: 0 };
    }
  }

  /** Arms the queue's one timer for clock reading `at`, unless it already fires earlier. */
  #arm(at: number): void {
    if (this.#timer?.pending === true && this.#timerAt <= at) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    const delay = at - this.#now();
    // Fires at least 1 ms later: a rounding of the clock never spins the loop. Ref'd: it only
    // exists while calls wait, and a process must not exit with their promises pending.
    this.#timer = new Timer(() => this.#fire(), delay > 1 ? delay : 1, true);
  }

  #fire(): void {
    this.#timer = undefined;
    this.#kick();
  }

  async #execute(fn: () => unknown, probe: Probe | undefined): Promise<unknown> {
    this.#running++;
    this.#started++;
    await OPEN;
    try {
      const value = await fn();
      this.#inspect(value, probe);
      return value;
    } catch (error) {
      this.#inspect(error, probe);
      throw error;
    } finally {
      this.#finish();
    }
  }

  async #executeQueued(fn: () => unknown, resolve: Resolve, probe: Probe | undefined): Promise<void> {
    this.#running++;
    this.#started++;
    await OPEN;
    try {
      const value = await fn();
      this.#inspect(value, probe);
      resolve(value);
    } catch (error) {
      this.#inspect(error, probe);
      resolve(Promise.reject(error));
    } finally {
      this.#finish();
    }
  }

  #finish(): void {
    this.#running--;
    if (this.#running === 0 && !this.#deciding) this.#idle();
  }

  #idle(): void {
    const onIdle = this.#onIdle;
    this.#onIdle = undefined;
    onIdle?.();
  }

  /** Asks `isRateLimited` about an outcome; a limited one pauses everyone. */
  #inspect(outcome: unknown, probe: Probe | undefined): void {
    let ms: unknown;
    try {
      ms = this.#isRateLimited(outcome);
    } catch (error) {
      reportError(channel.error, error, this, `${this.#name}: isRateLimited`);
      return;
    }
    if (typeof ms !== 'number' || !(ms >= 0)) return;
    this.#limited++;
    if (probe !== undefined) probe.limited = true;
    this.#pause(ms);
  }

  #pause(ms: number): void {
    const pauseMs = ms < this.#maxPauseMs ? ms : this.#maxPauseMs;
    const now = this.#now();
    const until = now + pauseMs;
    if (until <= this.#pausedUntil || pauseMs === 0) return;
    this.#pausedUntil = until;
    this.#pauses++;
    if (channel['throttle-pause'].hasSubscribers) {
      channel['throttle-pause'].publish({ throttle: this, name: this.#name, ms: pauseMs, until });
    }
    if (this.#queued > 0 && !this.#closed) this.#arm(until);
  }

  /** A clock reading; a throwing clock is reported and the previous reading used. */
  #now(): number {
    try {
      return (this.#lastNow = this.#clock.now());
    } catch (error) {
      reportError(channel.error, error, this, `${this.#name}: clock.now`);
      return this.#lastNow;
    }
  }
}

/** Whether a request can be sent again: no body, or a body that is not a one-shot stream. */
function isReplayable(input: string | URL | Request, init: RequestInit | undefined): boolean {
  const body = init?.body;
  if (body === undefined || body === null) return !(input instanceof Request) || input.body === null;
  return (
    typeof body === 'string' ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof URLSearchParams ||
    body instanceof Blob ||
    body instanceof FormData
  );
}
