import { AsyncResource } from 'node:async_hooks';
import { ClosedError, OverloadedError, QueueFullError, TimeoutError } from '../errors.js';
import { channels } from '../internal/channels.js';
import { monotonicClock, readClock, type Clock } from '../internal/clock.js';
import { Deque } from '../internal/deque.js';
import { IndexedHeap, type HeapNode } from '../internal/heap.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import { Timer } from '../internal/timer.js';
import * as v from '../internal/validate.js';
import { AdaptiveLimit } from '../resilience/adaptive-limit.js';

/** Options of {@link Limiter}. */
export interface LimiterOptions {
  /**
   * How many tasks (or permits) may run at once: a positive integer or `Infinity` (change it
   * later with {@link Limiter.resize}); or an {@link AdaptiveLimit} that sets it from the
   * latency and failures of the tasks this limiter runs, `'adaptive'` for one with the default
   * options (gradient, limits `[1, 1000]`, starting at 20). Only an adaptive limiter measures
   * task latency for that purpose.
   */
  readonly concurrency: number | 'adaptive' | AdaptiveLimit;
  /**
   * How many tasks may wait for a slot. When the queue is full, `run` / `acquire` reject at
   * once with `QueueFullError` (`SLUICE_QUEUE_FULL`). `Infinity` must be spelled explicitly.
   * Cost: a queued task holds one function and one resolver (~3 slots of a ring buffer); a
   * task with a `signal`, `timeout` or `priority` also holds a small waiter record.
   * @default 10_000
   */
  readonly maxQueue?: number | undefined;
  /**
   * Load shedding: a queued call that has waited this long (ms, or a string like `'100ms'`)
   * without getting a slot is rejected with `OverloadedError` (`SLUICE_OVERLOADED`) instead of
   * started, oldest first, whatever its priority: an overloaded limiter sheds the work its
   * callers have likely given up on instead of queueing it into their timeouts. Checked
   * whenever a slot frees, and by one timer armed for the oldest waiter (none per waiter), so
   * no call waits longer than this plus the timer's lateness. Cost when set: every queued
   * call holds a waiter record and one exact clock reading.
   * @default Infinity (no shedding)
   */
  readonly maxQueueWaitMs?: number | string | undefined;
  /**
   * Time source for the `queueWaitMs` / `runMs` statistics, `maxQueueWaitMs` and the samples of
   * an adaptive `concurrency`, in ms.
   * @default monotonic `performance.now()`
   */
  readonly clock?: Clock | undefined;
  /**
   * Names this limiter in its errors' messages, its `stats` and its channel payloads (a service
   * has many limiters).
   * @default 'Limiter'
   */
  readonly name?: string | undefined;
}

/** Per-call options of {@link Limiter.run} and {@link Limiter.acquire}. */
export interface RunOptions {
  /**
   * Aborting stops waiting: a queued task rejects with `signal.reason` and leaves the queue in
   * O(1) without taking a slot. An already-aborted signal rejects without queueing. Once a
   * task has started, the signal is the task's business.
   */
  readonly signal?: AbortSignal | undefined;
  /**
   * Higher runs first; FIFO within one priority. Any finite number.
   * @default 0
   */
  readonly priority?: number | undefined;
  /**
   * Bounds the time spent *waiting in the queue* (not running), in ms; when it passes the
   * call rejects with `TimeoutError` (`SLUICE_TIMEOUT`). Costs one unref'd timer per waiter.
   * @default no bound
   */
  readonly timeout?: number | undefined;
}

/** Counters and gauges of a {@link Limiter}; reading them is free. */
export interface LimiterStats {
  /** The `name` option. */
  readonly name: string;
  /** Current bound. */
  readonly concurrency: number;
  /** Tasks or permits holding a slot now. */
  readonly running: number;
  /** Tasks or permits waiting for a slot now. */
  readonly queued: number;
  /** Every call to `run` / `acquire`. */
  readonly submitted: number;
  /** Tasks that resolved, plus permits released. */
  readonly completed: number;
  /** Tasks that threw or rejected. */
  readonly failed: number;
  /** Refused at the door or on close: `QueueFullError`, `ClosedError`. */
  readonly rejected: number;
  /** Left the queue because their signal aborted (or was aborted on arrival). */
  readonly aborted: number;
  /** Left the queue because their `timeout` passed. */
  readonly timedOut: number;
  /** Left the queue because they waited `maxQueueWaitMs` or longer (`OverloadedError`). */
  readonly shed: number;
  /** Sum of the time started tasks spent queued, in ms. */
  readonly queueWaitMs: number;
  /** Sum of the run time (or permit hold time) of finished tasks, in ms. */
  readonly runMs: number;
}

type Resolve = (value: unknown) => void;
type Reject = (reason: unknown) => void;
type Task = () => unknown;

/**
 * A queued task without options: the task, the caller's resolver, and — as an AsyncResource —
 * the async context of the `run` call, which the task runs in when it gets a slot, whichever
 * task's end freed that slot. One object per queued task.
 */
class Queued extends AsyncResource {
  constructor(
    readonly task: Task,
    readonly resolve: Resolve,
  ) {
    super('sluice.Limiter');
  }
}

/**
 * A queued call with a signal, timeout or priority. Once settled (started, aborted, timed out,
 * closed) it drops its task, resolvers and signal, so a tombstone left in a queue references
 * nothing.
 */
class Waiter extends AsyncResource {
  done = false;
  onAbort: (() => void) | undefined = undefined;
  timer: Timer | undefined = undefined;
  constructor(
    /** The task, or `undefined` for an `acquire()` (resolved with a Permit). */
    public task: Task | undefined,
    public resolve: Resolve | undefined,
    public reject: Reject | undefined,
    public signal: AbortSignal | undefined,
    readonly level: Level,
  ) {
    super('sluice.Limiter');
  }
}

/** A queued entry: an `acquire()`'s resolver (aux `ACQUIRE`), a plain task, or a Waiter. */
type Entry = Resolve | Queued | Waiter;

/** The queue of one priority; in the level heap while it holds a live entry. */
interface Level extends HeapNode {
  readonly priority: number;
  readonly queue: Deque<Entry, typeof ACQUIRE>;
}

const isDead = (entry: Entry): boolean => entry instanceof Waiter && entry.done;
/** Aux of a queued `acquire()` without options. */
const ACQUIRE = 1;
/** Awaited before every task starts: user code never runs inside a sluice call. */
const OPEN: Promise<void> = Promise.resolve();

// A shared executor captures the resolvers without allocating a closure per promise.
let captured: Resolve | undefined;
let capturedReject: Reject | undefined;
function capture(resolve: Resolve, reject: Reject): void {
  captured = resolve;
  capturedReject = reject;
}

const channel = channels('limit', ['enqueue', 'start', 'end', 'reject', 'error']);
/** Options of a call queued through the waiter path only because shedding needs a record. */
const NO_OPTIONS: RunOptions = Object.freeze({});

/**
 * A permit from {@link Limiter.acquire}: holds one slot until released. Releasing is
 * idempotent, so `using permit = await limiter.acquire()` and an explicit `release()` in a
 * `finally` are both safe.
 *
 * @example
 * ```ts
 * using permit = await limiter.acquire({ signal });
 * await writeFile(path, data); // the slot is released when the block exits
 * ```
 */
export class Permit implements Disposable {
  #limiter: Limiter | undefined;
  readonly #acquiredAt: number;

  /** @internal */
  constructor(limiter: Limiter, acquiredAt: number) {
    this.#limiter = limiter;
    this.#acquiredAt = acquiredAt;
  }

  /** Whether this permit has been released. */
  get released(): boolean {
    return this.#limiter === undefined;
  }

  /** Gives the slot back. Only the first call has an effect. */
  release(): void {
    const limiter = this.#limiter;
    if (limiter === undefined) return;
    this.#limiter = undefined;
    finishPermit(limiter, this.#acquiredAt);
  }

  /** Same as {@link Permit.release}: `using permit = await limiter.acquire()`. */
  [Symbol.dispose](): void {
    this.release();
  }
}

let finishPermit: (limiter: Limiter, acquiredAt: number) => void;

/**
 * Runs at most `concurrency` tasks at once; the rest wait in a bounded queue, highest
 * `priority` first and FIFO within a priority.
 *
 * - **Bound**: at most `maxQueue` waiting; beyond it calls reject at once with `QueueFullError`.
 * - **Cancellation**: a waiting call whose signal aborts rejects with `signal.reason`, leaves the
 *   queue in O(1) and never takes a slot; `timeout` bounds the wait with `TimeoutError`.
 * - **Shutdown**: `close()` rejects every waiting call with `ClosedError`, refuses new ones and
 *   resolves once running tasks have finished.
 *
 * @example
 * ```ts
 * import { Limiter } from 'sluice/limit';
 * const limiter = new Limiter({ concurrency: 16 });
 * const user = await limiter.run(() => fetchUser(id), { signal, priority: 1 });
 * ```
 */
export class Limiter implements AsyncDisposable {
  #concurrency: number;
  readonly #maxQueue: number;
  readonly #clock: Clock;
  readonly #name: string;
  readonly #default: Level;
  /** Priorities other than 0, to their level. */
  readonly #byPriority = new Map<number, Level>();
  /** Non-empty levels, highest priority on top: O(log levels) to add or drop one. */
  readonly #levels = new IndexedHeap<Level>((a, b) => a.priority > b.priority);
  #running = 0;
  #queued = 0;
  #closed = false;
  /** `onIdle` resolvers; a Set so that an aborted `onIdle` leaves in O(1). */
  #idle = new Set<() => void>();
  #closing: Promise<void> | undefined;
  /** Latest clock reading; enqueue stamps reuse it for up to 64 calls (see `#stamp`). */
  #lastNow = 0;
  #stamps = 0;
  /** The AdaptiveLimit that sets `#concurrency`, if any. */
  readonly #adaptive: AdaptiveLimit | undefined;
  /** `maxQueueWaitMs`; with it, `#aged` holds every waiter in arrival order (oldest first). */
  readonly #maxWait: number;
  readonly #aged: Deque<Waiter, undefined> | undefined;
  /** The one shedding timer, armed for the oldest waiter's deadline. */
  #shedTimer: Timer | undefined;
  #shed = 0;

  #submitted = 0;
  #completed = 0;
  #failed = 0;
  #rejected = 0;
  #aborted = 0;
  #timedOut = 0;
  #queueWaitMs = 0;
  #runMs = 0;

  constructor(options: LimiterOptions) {
    v.options('options', options);
    const o: Partial<LimiterOptions> = options ?? {};
    const concurrency = o.concurrency;
    const adaptive =
      concurrency === 'adaptive'
        ? new AdaptiveLimit({ clock: o.clock, name: o.name })
        : concurrency instanceof AdaptiveLimit
          ? concurrency
          : undefined;
    this.#concurrency =
      adaptive === undefined ? v.positiveInteger('concurrency', concurrency, true) : adaptive.limit;
    this.#maxWait =
      o.maxQueueWaitMs === undefined ? Infinity : v.positiveDuration('maxQueueWaitMs', o.maxQueueWaitMs);
    this.#aged = this.#maxWait === Infinity ? undefined : new Deque<Waiter, undefined>(isDead);
    this.#maxQueue = v.nonNegativeInteger('maxQueue', o.maxQueue === undefined ? 10_000 : o.maxQueue, true);
    this.#clock = o.clock === undefined ? monotonicClock : v.clock('clock', o.clock);
    this.#name = o.name === undefined ? 'Limiter' : v.string('name', o.name);
    this.#default = { priority: 0, queue: new Deque<Entry, typeof ACQUIRE>(isDead), heapIndex: -1 };
    // Last: an AdaptiveLimit is taken only by a limiter whose options are all valid.
    this.#adaptive = adaptive;
    adaptive?.attach((limit, now) => {
      this.#concurrency = limit;
      if (this.#queued > 0 && this.#running < limit) this.#drain(now);
    });
  }

  static {
    finishPermit = (limiter, acquiredAt) => {
      const now = limiter.#now();
      limiter.#runMs += now - acquiredAt;
      limiter.#completed++;
      if (limiter.#adaptive !== undefined)
        limiter.#adaptive.sample(now - acquiredAt, limiter.#running, false, now);
      limiter.#release(now);
    };
  }

  /** The `name` option. */
  get name(): string {
    return this.#name;
  }

  /** Current concurrency bound (an adaptive one's current limit). */
  get concurrency(): number {
    return this.#concurrency;
  }

  /** The {@link AdaptiveLimit} that sets `concurrency`, or `undefined` for a fixed one. */
  get adaptive(): AdaptiveLimit | undefined {
    return this.#adaptive;
  }

  /** Tasks or permits holding a slot now (same as `stats.running`, without the snapshot). */
  get running(): number {
    return this.#running;
  }

  /** Calls waiting for a slot now (same as `stats.queued`, without the snapshot). */
  get queued(): number {
    return this.#queued;
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** A snapshot of the counters and gauges; cheap, synchronous. */
  get stats(): LimiterStats {
    return {
      name: this.#name,
      concurrency: this.#concurrency,
      running: this.#running,
      queued: this.#queued,
      submitted: this.#submitted,
      completed: this.#completed,
      failed: this.#failed,
      rejected: this.#rejected,
      aborted: this.#aborted,
      timedOut: this.#timedOut,
      shed: this.#shed,
      queueWaitMs: this.#queueWaitMs,
      runMs: this.#runMs,
    };
  }

  /**
   * Runs `fn` when a slot is free and returns its result. Rejects with fn's error, or without
   * running it with `QueueFullError`, `ClosedError`, `TimeoutError`, `signal.reason`, or
   * `InvalidInputError` for a non-function `fn` or bad options; it never throws.
   *
   * `fn` always starts asynchronously — at the earliest one microtask after `run` returns, even
   * when a slot is free — and in the async context (`AsyncLocalStorage`) of the `run` call,
   * not of the task whose end freed its slot.
   */
  run<T>(fn: () => T | PromiseLike<T>, options?: RunOptions): Promise<T> {
    this.#submitted++;
    if (typeof fn !== 'function') {
      this.#rejected++;
      return Promise.reject(v.invalidInput('fn', 'a function', fn));
    }
    if (options !== undefined) return this.#enqueue(fn, options) as Promise<T>;
    if (this.#running < this.#concurrency && this.#queued === 0 && !this.#closed) {
      const start = this.#now();
      this.#running++;
      return this.#execute(fn, start);
    }
    if (this.#aged !== undefined) return this.#enqueue(fn, NO_OPTIONS) as Promise<T>;
    const refused = this.#refusal();
    if (refused !== undefined) return Promise.reject(refused);
    const promise = new Promise(capture) as Promise<T>;
    this.#push(this.#default, new Queued(fn, captured as Resolve), undefined);
    return promise;
  }

  /**
   * Waits for a slot and returns a {@link Permit} holding it until released or disposed.
   * Same rejections as {@link Limiter.run}.
   */
  acquire(options?: RunOptions): Promise<Permit> {
    this.#submitted++;
    if (options !== undefined) return this.#enqueue(undefined, options) as Promise<Permit>;
    if (this.#running < this.#concurrency && this.#queued === 0 && !this.#closed) {
      const start = this.#now();
      this.#running++;
      return Promise.resolve(new Permit(this, start));
    }
    if (this.#aged !== undefined) return this.#enqueue(undefined, NO_OPTIONS) as Promise<Permit>;
    const refused = this.#refusal();
    if (refused !== undefined) return Promise.reject(refused);
    const promise = new Promise(capture) as Promise<Permit>;
    this.#push(this.#default, captured as Resolve, ACQUIRE);
    return promise;
  }

  /** Wraps `fn` so that every call goes through {@link Limiter.run}. */
  limit<A extends unknown[], T>(fn: (...args: A) => T | PromiseLike<T>): (...args: A) => Promise<T> {
    v.isFunction('fn', fn);
    return (...args: A) => this.run(() => fn(...args));
  }

  /**
   * Changes the bound immediately: growing starts queued work at once, shrinking lets
   * running work finish and starts nothing new until `running` drops below the new bound.
   * Throws a `TypeError` on a limiter whose concurrency is adaptive (it sets its own).
   */
  resize(concurrency: number): void {
    if (this.#adaptive !== undefined) {
      throw new TypeError(`${this.#name} has an adaptive concurrency: its AdaptiveLimit sets it`);
    }
    this.#concurrency = v.positiveInteger('concurrency', concurrency, true);
    if (this.#queued > 0) this.#drain(this.#now());
  }

  /** Resolves when nothing is running or queued. Takes `{ signal }` like every wait. */
  onIdle(options?: { readonly signal?: AbortSignal | undefined }): Promise<void> {
    const invalid = options === undefined ? undefined : v.invalidCallOptions(options);
    if (invalid !== undefined) return Promise.reject(invalid);
    if (this.#running === 0 && this.#queued === 0) return Promise.resolve();
    const signal = options?.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    return new Promise<void>((resolve, reject) => {
      if (signal === undefined) {
        this.#idle.add(resolve);
        return;
      }
      const done = (): void => {
        unlinkSignal(signal, listener);
        resolve();
      };
      const listener = linkSignal(signal, () => {
        this.#idle.delete(done);
        reject(signal.reason as Error);
      });
      this.#idle.add(done);
    });
  }

  /**
   * Stops intake: every queued call rejects with `ClosedError`, later calls too. Resolves
   * once running tasks have finished and held permits are released. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    const error = new ClosedError(`${this.#name} closed while the task was queued`);
    const levels = [this.#default, ...this.#byPriority.values()];
    this.#levels.clear();
    this.#byPriority.clear();
    this.#shedTimer?.cancel();
    this.#shedTimer = undefined;
    for (const level of levels) {
      level.queue.drain((entry) => {
        this.#queued--;
        this.#rejected++;
        if (entry instanceof Waiter) {
          const reject = entry.reject as Reject;
          this.#settleWaiter(entry);
          reject(error);
        } else if (entry instanceof Queued) {
          entry.resolve(Promise.reject(error));
        } else {
          entry(Promise.reject(error));
        }
      });
    }
    // Every waiter in it was just settled through its level: drop the tombstones.
    this.#aged?.drain(() => undefined);
    this.#closing = this.onIdle();
    return this.#closing;
  }

  /** Same as {@link Limiter.close}: `await using limiter = new Limiter(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #refusal(): Error | undefined {
    if (this.#closed) {
      this.#rejected++;
      if (channel.reject.hasSubscribers)
        channel.reject.publish({ limiter: this, name: this.#name, reason: 'closed' });
      return new ClosedError(`${this.#name} is closed`);
    }
    if (this.#queued >= this.#maxQueue) {
      this.#rejected++;
      if (channel.reject.hasSubscribers)
        channel.reject.publish({ limiter: this, name: this.#name, reason: 'queue-full' });
      return new QueueFullError(`${this.#name} queue is full (maxQueue: ${this.#maxQueue})`);
    }
    return undefined;
  }

  /** Queues an entry on `level`, putting the level in the heap if it was empty. */
  #push(level: Level, entry: Entry, aux: typeof ACQUIRE | undefined): void {
    if (level.queue.size === 0) this.#levels.push(level);
    level.queue.push(entry, aux, this.#stamp());
    this.#queued++;
    if (channel.enqueue.hasSubscribers)
      channel.enqueue.publish({ limiter: this, name: this.#name, priority: level.priority });
  }

  #enqueue(task: (() => unknown) | undefined, options: RunOptions): Promise<unknown> {
    // No closure per call: this runs on every call with options.
    let invalid = v.invalidCallOptions(options);
    const { signal, priority = 0, timeout } = invalid === undefined ? options : {};
    if (invalid !== undefined) {
      // reported below
    } else if (typeof priority !== 'number' || !Number.isFinite(priority)) {
      invalid = v.invalidInput('priority', 'a finite number', priority);
    } else if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout >= 0))) {
      invalid = v.invalidInput('timeout', 'a non-negative number or Infinity', timeout);
    }
    if (invalid !== undefined) {
      this.#rejected++;
      return Promise.reject(invalid);
    }
    if (signal?.aborted === true) {
      this.#aborted++;
      return Promise.reject(signal.reason as Error);
    }
    if (this.#running < this.#concurrency && this.#queued === 0 && !this.#closed) {
      const start = this.#now();
      this.#running++;
      return task === undefined ? Promise.resolve(new Permit(this, start)) : this.#execute(task, start);
    }
    const refused = this.#refusal();
    if (refused !== undefined) return Promise.reject(refused);

    const promise = new Promise(capture);
    const level = this.#level(priority);
    const waiter = new Waiter(task, captured, capturedReject, signal, level);
    if (signal !== undefined) {
      const s = signal;
      waiter.onAbort = linkSignal(s, () => this.#abandon(waiter, s.reason, false));
    }
    if (timeout !== undefined && timeout !== Infinity) {
      const ms = timeout;
      waiter.timer = new Timer(() => {
        this.#abandon(
          waiter,
          new TimeoutError(`Waited more than ${ms} ms for a slot of ${this.#name}`),
          true,
        );
      }, ms);
    }
    if (this.#aged === undefined) this.#push(level, waiter, undefined);
    else this.#pushAged(level, waiter, this.#aged);
    return promise;
  }

  #level(priority: number): Level {
    if (priority === 0) return this.#default;
    let level = this.#byPriority.get(priority);
    if (level === undefined) {
      // Most priority levels hold a few entries: start small.
      level = { priority, queue: new Deque<Entry, typeof ACQUIRE>(isDead, 4), heapIndex: -1 };
      this.#byPriority.set(priority, level);
    }
    return level;
  }

  #abandon(waiter: Waiter, reason: unknown, timedOut: boolean): void {
    if (waiter.done) return;
    const reject = waiter.reject as Reject;
    this.#settleWaiter(waiter);
    this.#queued--;
    if (timedOut) this.#timedOut++;
    else this.#aborted++;
    const level = waiter.level;
    level.queue.markDead();
    if (level.queue.size === 0) this.#dropLevel(level);
    this.#aged?.markDead();
    reject(reason);
    if (this.#running === 0 && this.#queued === 0) this.#notifyIdle();
  }

  /** Marks a waiter settled and lets go of everything it referenced. */
  #settleWaiter(waiter: Waiter): void {
    waiter.done = true;
    unlinkSignal(waiter.signal, waiter.onAbort);
    waiter.onAbort = undefined;
    waiter.signal = undefined;
    waiter.task = undefined;
    waiter.resolve = undefined;
    waiter.reject = undefined;
    waiter.timer?.cancel();
    waiter.timer = undefined;
  }

  /** Takes an empty level out of the heap (and forgets it, unless it is the default one). */
  #dropLevel(level: Level): void {
    this.#levels.remove(level);
    if (level !== this.#default) this.#byPriority.delete(level.priority);
  }

  /**
   * A fresh clock reading, remembered for `#stamp`. An injected clock that throws must not
   * cost a slot or an unhandled rejection: the error is published on `sluice:limit:error`
   * and the previous reading is used.
   */
  #now(): number {
    // A throw or a NaN / Infinity reading counts as the last good one (as everywhere else).
    return (this.#lastNow = readClock(this.#clock, this.#lastNow, channel.error, this, 'clock.now'));
  }

  /**
   * Enqueue time: the latest reading, refreshed at least every 64 enqueues and at every task
   * end, so a burst of enqueues in one synchronous loop costs one clock read per 64 calls and
   * each stamp is exact to within the time those calls take (microseconds).
   */
  #stamp(): number {
    return (this.#stamps++ & 63) === 0 ? this.#now() : this.#lastNow;
  }

  /**
   * Runs a task that got its slot inside `run` (held since `start`): one microtask later, so
   * user code never starts inside the call that submitted it, and in that call's context.
   */
  async #execute<T>(task: () => T | PromiseLike<T>, start: number): Promise<T> {
    await OPEN;
    if (channel.start.hasSubscribers) channel.start.publish({ limiter: this, name: this.#name });
    let ok = false;
    try {
      const value = await task();
      ok = true;
      return value;
    } finally {
      this.#finish(start, ok);
    }
  }

  /**
   * Runs a queued task that got its slot at `start`. `#drain` calls it inside the task's
   * AsyncResource scope, so it runs in the context of its `run` call; it too waits one
   * microtask, so a task never starts inside another sluice call (a `release()`, a `resize()`)
   * and a run of synchronously failing tasks never nests one drain inside another. It settles
   * the caller's promise directly: no promise adoption per task.
   */
  async #executeQueued(task: Task, resolve: Resolve, start: number): Promise<void> {
    await OPEN;
    if (channel.start.hasSubscribers) channel.start.publish({ limiter: this, name: this.#name });
    let ok = false;
    try {
      const value = await task();
      ok = true;
      resolve(value);
    } catch (error) {
      resolve(Promise.reject(error));
    } finally {
      this.#finish(start, ok);
    }
  }

  /** Accounts for a finished task and frees its slot. */
  #finish(start: number, ok: boolean): void {
    const now = this.#now();
    this.#runMs += now - start;
    if (ok) this.#completed++;
    else this.#failed++;
    if (channel.end.hasSubscribers) channel.end.publish({ limiter: this, name: this.#name, ok });
    if (this.#adaptive !== undefined) this.#adaptive.sample(now - start, this.#running, !ok, now);
    this.#release(now);
  }

  /** Frees a slot at time `now` and hands it to the next waiter, which starts at `now`. */
  #release(now: number): void {
    this.#running--;
    if (this.#queued > 0) this.#drain(now);
    else if (this.#running === 0) this.#notifyIdle();
  }

  /**
   * Starts queued entries while slots are free; they start at `now`. With `maxQueueWaitMs`,
   * every waiter that has waited that long is shed first (each once: amortised O(1)).
   */
  #drain(now: number): void {
    const aged = this.#aged;
    while (this.#running < this.#concurrency && this.#queued > 0) {
      if (aged !== undefined) {
        this.#shedExpired(aged, now);
        if (this.#queued === 0) {
          if (this.#running === 0) this.#notifyIdle();
          return;
        }
      }
      const level = this.#levels.peek() as Level;
      const queue = level.queue;
      const entry = queue.shift() as Entry;
      this.#queueWaitMs += now - queue.stamp;
      this.#queued--;
      this.#running++;
      if (queue.size === 0) this.#dropLevel(level);
      if (entry instanceof Waiter) {
        const resolve = entry.resolve as Resolve;
        const task = entry.task;
        this.#settleWaiter(entry);
        aged?.markDead();
        if (task === undefined) resolve(new Permit(this, now));
        else void entry.runInAsyncScope(this.#executeQueued, this, task, resolve, now);
      } else if (entry instanceof Queued) {
        void entry.runInAsyncScope(this.#executeQueued, this, entry.task, entry.resolve, now);
      } else {
        entry(new Permit(this, now));
      }
    }
  }

  /** Queues a waiter on its level and in `aged`, stamped with an exact reading (shedding is timed from it). */
  #pushAged(level: Level, waiter: Waiter, aged: Deque<Waiter, undefined>): void {
    const now = this.#now();
    if (level.queue.size === 0) this.#levels.push(level);
    level.queue.push(waiter, undefined, now);
    aged.push(waiter, undefined, now);
    this.#queued++;
    if (channel.enqueue.hasSubscribers)
      channel.enqueue.publish({ limiter: this, name: this.#name, priority: level.priority });
    if (this.#shedTimer === undefined || !this.#shedTimer.pending) this.#armShed(aged, now);
  }

  /** Rejects, oldest first, every waiter that has waited `maxQueueWaitMs` or longer at `now`. */
  #shedExpired(aged: Deque<Waiter, undefined>, now: number): void {
    const maxWait = this.#maxWait;
    for (let waiter = aged.peek(); waiter !== undefined; waiter = aged.peek()) {
      const waited = now - aged.stamp;
      if (!(waited >= maxWait)) return;
      aged.shift();
      const reject = waiter.reject as Reject;
      this.#settleWaiter(waiter);
      this.#queued--;
      this.#shed++;
      const level = waiter.level;
      level.queue.markDead();
      if (level.queue.size === 0) this.#dropLevel(level);
      if (channel.reject.hasSubscribers)
        channel.reject.publish({ limiter: this, name: this.#name, reason: 'shed', waitedMs: waited });
      reject(
        new OverloadedError(
          `${this.#name} shed a call that waited ${Math.round(waited)} ms for a slot (maxQueueWaitMs: ${maxWait})`,
        ),
      );
    }
  }

  /** Arms the shedding timer for the oldest waiter's deadline, if anyone waits. */
  #armShed(aged: Deque<Waiter, undefined>, now: number): void {
    if (aged.peek() === undefined) return;
    const delay = Math.ceil(aged.stamp + this.#maxWait - now);
    this.#shedTimer = new Timer(this.#onShedTimer, delay > 1 ? delay : 1);
  }

  /** The shedding timer: sheds what has waited too long even when no slot frees, re-arms. */
  readonly #onShedTimer = (): void => {
    const aged = this.#aged;
    if (aged === undefined || this.#closed) return;
    const now = this.#now();
    this.#shedExpired(aged, now);
    if (this.#running === 0 && this.#queued === 0) this.#notifyIdle();
    this.#armShed(aged, now);
  };

  #notifyIdle(): void {
    const idle = this.#idle;
    if (idle.size === 0) return;
    this.#idle = new Set();
    for (const resolve of idle) resolve();
  }
}
