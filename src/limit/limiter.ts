import { ClosedError, QueueFullError, TimeoutError } from '../errors.js';
import { channels } from '../internal/channels.js';
import { monotonicClock, type Clock } from '../internal/clock.js';
import { Deque } from '../internal/deque.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import * as v from '../internal/validate.js';

/** Options of {@link Limiter}. */
export interface LimiterOptions {
  /**
   * How many tasks (or permits) may run at once: a positive integer or `Infinity`.
   * Change it later with {@link Limiter.resize}.
   */
  readonly concurrency: number;
  /**
   * How many tasks may wait for a slot. When the queue is full, `run` / `acquire` reject at
   * once with `QueueFullError` (`SLUICE_QUEUE_FULL`). `Infinity` must be spelled explicitly.
   * Cost: a queued task holds one function and one resolver (~3 slots of a ring buffer); a
   * task with a `signal`, `timeout` or `priority` also holds a small waiter record.
   * @default 10_000
   */
  readonly maxQueue?: number;
  /**
   * Time source for the `queueWaitMs` / `runMs` statistics, in ms.
   * @default monotonic `performance.now()`
   */
  readonly clock?: Clock;
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
  /** Sum of the time started tasks spent queued, in ms. */
  readonly queueWaitMs: number;
  /** Sum of the run time (or permit hold time) of finished tasks, in ms. */
  readonly runMs: number;
}

type Task = () => unknown;
type Resolve = (value: unknown) => void;

/** A queued call with a signal, timeout or priority: the only queued calls that need a record. */
class Waiter {
  done = false;
  onAbort: (() => void) | undefined = undefined;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  constructor(
    readonly task: Task | undefined,
    readonly resolve: Resolve,
    readonly reject: (reason: unknown) => void,
    readonly signal: AbortSignal | undefined,
    readonly level: Level,
  ) {}
}

type Entry = Task | Waiter;

interface Level {
  readonly priority: number;
  readonly queue: Deque<Entry, Resolve>;
}

const isDead = (entry: Entry): boolean => entry instanceof Waiter && entry.done;
/** Marks a queued `acquire()` in place of a task. */
const ACQUIRE: Task = () => undefined;

// A shared executor captures the resolver without allocating a closure per promise.
let captured: Resolve | undefined;
let capturedReject: ((reason: unknown) => void) | undefined;
function capture(resolve: Resolve, reject: (reason: unknown) => void): void {
  captured = resolve;
  capturedReject = reject;
}

const channel = channels('limit', ['enqueue', 'start', 'end', 'reject']);

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
  readonly #default: Level;
  /** Levels sorted by descending priority; the default level is always present. */
  #levels: Level[];
  #running = 0;
  #queued = 0;
  #closed = false;
  #idle: (() => void)[] = [];
  #closing: Promise<void> | undefined;
  /** Latest clock reading; enqueue stamps reuse it for up to 64 calls (see `#stamp`). */
  #lastNow = 0;
  #stamps = 0;

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
    this.#concurrency = v.positiveInteger('concurrency', o.concurrency, true);
    this.#maxQueue = v.nonNegativeInteger('maxQueue', o.maxQueue ?? 10_000, true);
    const clock: { readonly now?: unknown } | undefined = o.clock;
    if (clock !== undefined) v.isFunction('clock.now', clock.now);
    this.#clock = o.clock ?? monotonicClock;
    this.#default = { priority: 0, queue: new Deque<Entry, Resolve>(isDead) };
    this.#levels = [this.#default];
  }

  static {
    finishPermit = (limiter, acquiredAt) => {
      const now = limiter.#now();
      limiter.#runMs += now - acquiredAt;
      limiter.#completed++;
      limiter.#release(now);
    };
  }

  /** Current concurrency bound. */
  get concurrency(): number {
    return this.#concurrency;
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

  get stats(): LimiterStats {
    return {
      concurrency: this.#concurrency,
      running: this.#running,
      queued: this.#queued,
      submitted: this.#submitted,
      completed: this.#completed,
      failed: this.#failed,
      rejected: this.#rejected,
      aborted: this.#aborted,
      timedOut: this.#timedOut,
      queueWaitMs: this.#queueWaitMs,
      runMs: this.#runMs,
    };
  }

  /**
   * Runs `fn` when a slot is free and returns its result. Rejects with fn's error, or without
   * running it with `QueueFullError`, `ClosedError`, `TimeoutError` or `signal.reason`.
   */
  run<T>(fn: () => T | PromiseLike<T>, options?: RunOptions): Promise<T> {
    this.#submitted++;
    if (typeof fn !== 'function') {
      this.#rejected++;
      return Promise.reject(new TypeError(`Expected \`fn\` to be a function, got ${v.describe(fn)}`));
    }
    if (options !== undefined) return this.#enqueue(fn, options) as Promise<T>;
    if (this.#running < this.#concurrency && this.#queued === 0 && !this.#closed) {
      this.#running++;
      return this.#execute(fn, this.#now());
    }
    const refused = this.#refusal();
    if (refused !== undefined) return Promise.reject(refused);
    const promise = new Promise(capture) as Promise<T>;
    this.#default.queue.push(fn, captured, this.#stamp());
    this.#queued++;
    if (channel.enqueue.hasSubscribers) channel.enqueue.publish({ limiter: this, priority: 0 });
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
      this.#running++;
      return Promise.resolve(new Permit(this, this.#now()));
    }
    const refused = this.#refusal();
    if (refused !== undefined) return Promise.reject(refused);
    const promise = new Promise(capture) as Promise<Permit>;
    this.#default.queue.push(ACQUIRE, captured, this.#stamp());
    this.#queued++;
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
   */
  resize(concurrency: number): void {
    this.#concurrency = v.positiveInteger('concurrency', concurrency, true);
    if (this.#queued > 0) this.#drain(this.#now());
  }

  /** Resolves when nothing is running or queued. Takes `{ signal }` like every wait. */
  onIdle(options?: { readonly signal?: AbortSignal | undefined }): Promise<void> {
    if (this.#running === 0 && this.#queued === 0) return Promise.resolve();
    const signal = options?.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    return new Promise<void>((resolve, reject) => {
      if (signal === undefined) {
        this.#idle.push(resolve);
        return;
      }
      const done = (): void => {
        unlinkSignal(signal, listener);
        resolve();
      };
      const listener = linkSignal(signal, () => {
        const i = this.#idle.indexOf(done);
        if (i !== -1) this.#idle.splice(i, 1);
        reject(signal.reason as Error);
      });
      this.#idle.push(done);
    });
  }

  /**
   * Stops intake: every queued call rejects with `ClosedError`, later calls too. Resolves
   * once running tasks have finished and held permits are released. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    const error = new ClosedError('Limiter closed while the task was queued');
    for (const level of this.#levels) {
      level.queue.drain((entry, resolve) => {
        this.#queued--;
        this.#rejected++;
        if (entry instanceof Waiter) {
          this.#settleWaiter(entry);
          entry.reject(error);
        } else {
          (resolve as Resolve)(Promise.reject(error));
        }
      });
    }
    this.#levels = [this.#default];
    this.#closing = this.onIdle();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #refusal(): Error | undefined {
    if (this.#closed) {
      this.#rejected++;
      if (channel.reject.hasSubscribers) channel.reject.publish({ limiter: this, reason: 'closed' });
      return new ClosedError('Limiter is closed');
    }
    if (this.#queued >= this.#maxQueue) {
      this.#rejected++;
      if (channel.reject.hasSubscribers) channel.reject.publish({ limiter: this, reason: 'queue-full' });
      return new QueueFullError(`Limiter queue is full (maxQueue: ${this.#maxQueue})`);
    }
    return undefined;
  }

  #enqueue(task: Task | undefined, options: RunOptions): Promise<unknown> {
    v.options('options', options);
    const { signal, priority = 0, timeout } = options;
    if (signal !== undefined) v.abortSignal('signal', signal);
    v.finiteNumber('priority', priority);
    if (timeout !== undefined) v.nonNegativeNumber('timeout', timeout, true);
    if (signal?.aborted === true) {
      this.#aborted++;
      return Promise.reject(signal.reason as Error);
    }
    if (this.#running < this.#concurrency && this.#queued === 0 && !this.#closed) {
      this.#running++;
      return task === undefined
        ? Promise.resolve(new Permit(this, this.#now()))
        : this.#execute(task, this.#now());
    }
    const refused = this.#refusal();
    if (refused !== undefined) return Promise.reject(refused);

    const promise = new Promise(capture);
    const level = this.#level(priority);
    const waiter = new Waiter(task, captured as Resolve, capturedReject!, signal, level);
    if (signal !== undefined) {
      waiter.onAbort = linkSignal(signal, () => this.#abandon(waiter, signal.reason, false));
    }
    if (timeout !== undefined && timeout !== Infinity) {
      waiter.timer = setTimeout(() => {
        this.#abandon(waiter, new TimeoutError(`Waited more than ${timeout} ms for a slot`), true);
      }, timeout);
      waiter.timer.unref();
    }
    level.queue.push(waiter, undefined, this.#stamp());
    this.#queued++;
    if (channel.enqueue.hasSubscribers) channel.enqueue.publish({ limiter: this, priority });
    return promise;
  }

  #level(priority: number): Level {
    if (priority === 0) return this.#default;
    const levels = this.#levels;
    let i = 0;
    while (i < levels.length && (levels[i] as Level).priority > priority) i++;
    const found = levels[i];
    if (found !== undefined && found.priority === priority) return found;
    const level: Level = { priority, queue: new Deque<Entry, Resolve>(isDead) };
    levels.splice(i, 0, level);
    return level;
  }

  #abandon(waiter: Waiter, reason: unknown, timedOut: boolean): void {
    if (waiter.done) return;
    this.#settleWaiter(waiter);
    this.#queued--;
    if (timedOut) this.#timedOut++;
    else this.#aborted++;
    waiter.level.queue.markDead();
    if (waiter.level !== this.#default && waiter.level.queue.size === 0) this.#dropLevel(waiter.level);
    waiter.reject(reason);
    if (this.#running === 0 && this.#queued === 0) this.#notifyIdle();
  }

  #settleWaiter(waiter: Waiter): void {
    waiter.done = true;
    unlinkSignal(waiter.signal, waiter.onAbort);
    waiter.onAbort = undefined;
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
  }

  #dropLevel(level: Level): void {
    const i = this.#levels.indexOf(level);
    if (i !== -1) this.#levels.splice(i, 1);
  }

  /** A fresh clock reading, remembered for `#stamp`. */
  #now(): number {
    return (this.#lastNow = this.#clock.now());
  }

  /**
   * Enqueue time: the latest reading, refreshed at least every 64 enqueues and at every task
   * end, so a burst of enqueues in one synchronous loop costs one clock read per 64 calls and
   * each stamp is exact to within the time those calls take (microseconds).
   */
  #stamp(): number {
    return (this.#stamps++ & 63) === 0 ? this.#now() : this.#lastNow;
  }

  /** Runs a task that holds a slot since `start` (a clock reading). */
  async #execute<T>(task: () => T | PromiseLike<T>, start: number): Promise<T> {
    if (channel.start.hasSubscribers) channel.start.publish({ limiter: this });
    let ok = false;
    try {
      const value = await task();
      ok = true;
      return value;
    } finally {
      const now = this.#now();
      this.#runMs += now - start;
      if (ok) this.#completed++;
      else this.#failed++;
      if (channel.end.hasSubscribers) channel.end.publish({ limiter: this, ok });
      this.#release(now);
    }
  }

  /**
   * `#execute` for a queued task: settles the caller's promise directly instead of resolving
   * it with another promise, which would cost an extra promise adoption per task.
   */
  async #executeQueued(task: Task, resolve: Resolve, start: number): Promise<void> {
    if (channel.start.hasSubscribers) channel.start.publish({ limiter: this });
    let ok = false;
    try {
      const value = await task();
      ok = true;
      resolve(value);
    } catch (error) {
      resolve(Promise.reject(error));
    } finally {
      const now = this.#now();
      this.#runMs += now - start;
      if (ok) this.#completed++;
      else this.#failed++;
      if (channel.end.hasSubscribers) channel.end.publish({ limiter: this, ok });
      this.#release(now);
    }
  }

  /** Frees a slot at time `now` and hands it to the next waiter, which starts at `now`. */
  #release(now: number): void {
    this.#running--;
    if (this.#queued > 0) this.#drain(now);
    else if (this.#running === 0) this.#notifyIdle();
  }

  /** Starts queued entries while slots are free; they start at `now`. */
  #drain(now: number): void {
    while (this.#running < this.#concurrency && this.#queued > 0) {
      const level = this.#nextLevel();
      const entry = level.queue.shift() as Entry;
      this.#queueWaitMs += now - level.queue.stamp;
      this.#queued--;
      this.#running++;
      if (entry instanceof Waiter) {
        this.#settleWaiter(entry);
        if (level !== this.#default && level.queue.size === 0) this.#dropLevel(level);
        if (entry.task === undefined) entry.resolve(new Permit(this, now));
        else entry.resolve(this.#execute(entry.task, now));
      } else {
        const resolve = level.queue.aux as Resolve;
        if (entry === ACQUIRE) resolve(new Permit(this, now));
        else void this.#executeQueued(entry, resolve, now);
      }
    }
  }

  #nextLevel(): Level {
    const levels = this.#levels;
    if (levels.length === 1) return this.#default;
    for (const level of levels) if (level.queue.size > 0) return level;
    return this.#default;
  }

  #notifyIdle(): void {
    const idle = this.#idle;
    if (idle.length === 0) return;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }
}
