import { AsyncResource } from 'node:async_hooks';
import { ClosedError, QueueFullError } from '../errors.js';
import { channels } from '../internal/channels.js';
import type { Clock } from '../internal/clock.js';
import { Deque } from '../internal/deque.js';
import { reportError, watchResult } from '../internal/report.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import { schedule, type Timer } from '../internal/timer.js';
import { Backoff, orDefault, type BackoffOptions } from '../internal/backoff.js';
import * as v from '../internal/validate.js';
import { Limiter } from '../limit/limiter.js';

/** What a {@link WorkQueue} handler receives besides the op. */
export interface WorkContext {
  /**
   * The signal passed to `add` / `addAndWait` for this op (a signal that never aborts when none
   * was). Once the handler has started, honouring it is the handler's business.
   */
  readonly signal: AbortSignal;
  /** 1 for the first try, 2 for the first retry, and so on. */
  readonly attempt: number;
}

/**
 * Handles one op. A throw or a rejection fails the try (and may retry it). It may be
 * synchronous, may mutate `op` (a retry and `onError` get the same object) and may call `add`
 * on its own queue (see {@link WorkQueue.add} for what happens when the queue is full).
 */
export type WorkHandler<T, R = unknown> = (op: T, context: WorkContext) => R | PromiseLike<R>;

/** Retry policy of a {@link WorkQueue}: exponential backoff, optionally jittered. */
export interface WorkRetryOptions extends BackoffOptions {
  /**
   * Whether an error is worth retrying; `false` reports the op failed at once. Runs in the
   * op's async context; a throw counts as `false` and is reported on `sluice:tasks:error`.
   * @default every error is retried
   */
  readonly retryIf?: ((error: unknown, op: unknown) => boolean) | undefined;
}

/** Options of {@link WorkQueue}. */
export interface WorkQueueOptions<T> {
  /**
   * Ops handled at once, across keys: a positive integer or `Infinity`. Ops waiting behind
   * their key hold no slot.
   */
  readonly concurrency: number;
  /**
   * Accepted ops not yet finished (waiting, running or waiting to retry). At the bound, `add`
   * waits (backpressure) instead of growing memory. Cost: one small record per op (the op,
   * its async context, its signal link if it has a signal).
   * @default 10_000
   */
  readonly maxPending?: number | undefined;
  /**
   * The ordering key of an op: ops with the same key (SameValueZero, as a `Map` compares)
   * run one at a time in acceptance order; different keys run in parallel. Called once, in
   * `add`; a throw rejects that `add` (nothing is accepted). Without it: plain bounded
   * concurrency, ops start in acceptance order.
   * @default no ordering
   */
  readonly orderBy?: ((op: T) => unknown) | undefined;
  /**
   * Retry policy for failed ops; `false` or omitted: no retry. A retrying op keeps its key:
   * the next op of that key waits for its retries. Between tries it holds no slot.
   * @default no retry
   */
  readonly retry?: WorkRetryOptions | false | undefined;
  /**
   * Receives each op that failed its last try, with the last error, in the async context of
   * its `add`. Without it, failures are still counted in `stats.failed`, kept in `lastError`,
   * published on `sluice:tasks:failed` and rejected to `addAndWait` callers. A throw (or
   * rejection) from it is counted in `stats.callbackFailures`, published on
   * `sluice:tasks:error`, and never breaks the queue.
   * @default none
   */
  readonly onError?: ((op: T, error: unknown) => unknown) | undefined;
  /**
   * Time source of the underlying limiter's `queueWaitMs` / `runMs` statistics, in ms.
   * Retry delays are `setTimeout`s (fake them with `node:test`'s `mock.timers`).
   * @default monotonic `performance.now()`
   */
  readonly clock?: Clock | undefined;
  /**
   * Names this queue in errors, `stats` and channel payloads.
   * @default 'WorkQueue'
   */
  readonly name?: string | undefined;
}

/** Per-call options of {@link WorkQueue.add} and {@link WorkQueue.addAndWait}. */
export interface AddOptions {
  /**
   * Cancels the op. Aborted while `add` waits for room: `add` rejects with `signal.reason` and
   * nothing is accepted. Aborted after acceptance but before the op starts (behind its key, in
   * the slot queue, or between retries): the op is removed in O(1), never runs (again), and is
   * counted in `stats.cancelled`. Once started, the handler gets the signal; a failure after
   * the abort is not retried and counts as cancelled, not failed.
   */
  readonly signal?: AbortSignal | undefined;
}

/** Counters and gauges of a {@link WorkQueue}; reading them is O(1). */
export interface WorkQueueStats {
  /** The `name` option. */
  readonly name: string;
  /** Accepted ops not finished now: queued, running or waiting to retry (≤ `maxPending`). */
  readonly pending: number;
  /** Handlers running now (≤ `concurrency`). */
  readonly running: number;
  /** Ordering keys with an op pending now (idle keys are freed). */
  readonly keys: number;
  /** `add` calls waiting for room now. */
  readonly waiting: number;
  /** Ops accepted so far. */
  readonly accepted: number;
  /** Ops whose handler succeeded. */
  readonly completed: number;
  /** Retries made. */
  readonly retried: number;
  /** Ops that failed their last try (reported to `onError`). */
  readonly failed: number;
  /** Accepted ops cancelled through their signal. */
  readonly cancelled: number;
  /** Adds whose signal aborted before they were accepted. */
  readonly aborted: number;
  /** Adds refused: `ClosedError`, `QueueFullError` (re-entrant, see `add`), bad input, `orderBy` throws. */
  readonly rejected: number;
  /** Throws or rejections of `onError`, `retry.retryIf` or `retry.random`. */
  readonly callbackFailures: number;
}

type Resolve = (value: unknown) => void;
type Reject = (reason: unknown) => void;

/** Entry states. */
const WAITING = 0; // an add waiting for room (not accepted)
const QUEUED = 1; // accepted, behind its key
const READY = 2; // in the limiter, waiting for a slot
const RUNNING = 3;
const BACKOFF = 4; // waiting to retry
const DONE = 5;
type State = typeof WAITING | typeof QUEUED | typeof READY | typeof RUNNING | typeof BACKOFF | typeof DONE;

/** The ops of one ordering key: the one at its head (`active`) and those behind it. */
interface Lane {
  readonly key: unknown;
  active: Entry | undefined;
  readonly queue: Deque<Entry, undefined>;
}

/**
 * One op from `add` to its end. As an AsyncResource it carries the async context of its `add`:
 * every try, `retryIf` and `onError` run in it, whichever op's end started it.
 */
class Entry extends AsyncResource {
  state: State = WAITING;
  attempt = 0;
  listener: (() => void) | undefined = undefined;
  timer: Timer | undefined = undefined;
  /** The lane of its key once accepted (with `orderBy`). */
  lane: Lane | undefined = undefined;
  /** `add`'s resolvers while it waits for room. */
  admit: Resolve | undefined = undefined;
  refuse: Reject | undefined = undefined;
  constructor(
    readonly op: unknown,
    /** `orderBy(op)`, taken once in `add`. */
    readonly key: unknown,
    public signal: AbortSignal | undefined,
    /** `addAndWait`'s resolvers; dropped once settled. */
    public done: Resolve | undefined,
    public fail: Reject | undefined,
  ) {
    super('sluice.WorkQueue');
  }
}

/** Why an add was refused (thrown by `tryAdd`, rejected by `add`). */
class Refused {
  constructor(readonly error: unknown) {}
}

const isDead = (entry: Entry): boolean => entry.state === DONE;
const RESOLVED: Promise<void> = Promise.resolve();
/** The handler's signal for ops added without one. */
const NEVER: AbortSignal = new AbortController().signal;
const channel = channels('tasks', ['start', 'end', 'retry', 'failed', 'cancelled', 'error']);

/**
 * An ordered, bounded queue of background operations: ops with the same `orderBy` key run one
 * at a time in acceptance order (a file's writes, a user's updates), different keys run in
 * parallel up to `concurrency`, failures retry with backoff and are reported, and `close()`
 * loses nothing.
 *
 * - **Order**: FIFO per key; a key's waiting ops hold no slot, so a busy key never blocks
 *   another; a key is forgotten as soon as it has nothing pending.
 * - **Bound**: at most `maxPending` accepted and unfinished ops; `add` then waits, FIFO.
 * - **Failures**: retried per `retry` (the key's next op waits), then `onError(op, error)` and
 *   `stats.failed`. Every accepted op is handled, reported failed, or cancelled — exactly once.
 * - **Cancellation**: see {@link AddOptions.signal}.
 * - **Shutdown**: `close()` refuses new adds with `ClosedError`, admits the adds already
 *   waiting, and resolves once every accepted op has finished (retries included).
 *
 * @example
 * ```ts
 * import { WorkQueue } from 'sluice/tasks';
 * const files = new WorkQueue((op: FileOp) => fs.writeFile(op.path, op.data), {
 *   concurrency: 4, maxPending: 1000, orderBy: (op) => op.path,
 *   retry: { attempts: 3 }, onError: (op, err) => log.error({ op, err }),
 * });
 * await files.add({ path: '/tmp/a', data: 'x' }); // accepted (handled later, in order per path)
 * await files.close(); // every accepted op handled or reported
 * ```
 */
export class WorkQueue<T, R = unknown> implements AsyncDisposable {
  readonly #handler: WorkHandler<T, R>;
  readonly #name: string;
  readonly #maxPending: number;
  readonly #orderBy: ((op: T) => unknown) | undefined;
  readonly #backoff: Backoff;
  readonly #retryIf: ((error: unknown, op: unknown) => boolean) | undefined;
  readonly #onError: ((op: T, error: unknown) => unknown) | undefined;
  /** Global concurrency: the head op of each key (or every op, without `orderBy`) waits here. */
  readonly #limiter: Limiter;
  readonly #lanes = new Map<unknown, Lane>();
  readonly #waiters = new Deque<Entry, undefined>(isDead);
  #idle = new Set<() => void>();
  #pending = 0;
  /** Depth of synchronous handler calls in progress: an `add` inside one must not wait. */
  #inHandler = 0;
  #closed = false;
  #closing: Promise<void> | undefined = undefined;
  #lastError: unknown = undefined;

  #accepted = 0;
  #completed = 0;
  #retried = 0;
  #failed = 0;
  #cancelled = 0;
  #aborted = 0;
  #rejected = 0;
  #callbackFailures = 0;

  constructor(handler: WorkHandler<T, R>, options: WorkQueueOptions<T>) {
    v.isFunction('handler', handler);
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(v.expectation('options', 'an object', options));
    }
    this.#handler = handler;
    this.#name = options.name === undefined ? 'WorkQueue' : v.string('name', options.name);
    const concurrency = v.positiveInteger('concurrency', options.concurrency, true);
    this.#maxPending = v.positiveInteger('maxPending', orDefault(options.maxPending, 10_000), true);
    v.optionalFunction('orderBy', options.orderBy);
    this.#orderBy = options.orderBy;
    this.#backoff = new Backoff(options.retry);
    this.#retryIf =
      options.retry === undefined || options.retry === false ? undefined : options.retry.retryIf;
    v.optionalFunction('onError', options.onError);
    this.#onError = options.onError;
    // The limiter's queue holds at most the head op of each key: ≤ maxPending entries.
    this.#limiter = new Limiter({
      concurrency,
      maxQueue: Infinity,
      clock: options.clock,
      name: this.#name,
    });
  }

  /** The `name` option. */
  get name(): string {
    return this.#name;
  }

  /** Accepted ops not finished (same as `stats.pending`). */
  get pending(): number {
    return this.#pending;
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The error of the most recent op that failed its last try, if any. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /** A snapshot of the counters and gauges; O(1). */
  get stats(): WorkQueueStats {
    return {
      name: this.#name,
      pending: this.#pending,
      running: this.#limiter.running,
      keys: this.#lanes.size,
      waiting: this.#waiters.size,
      accepted: this.#accepted,
      completed: this.#completed,
      retried: this.#retried,
      failed: this.#failed,
      cancelled: this.#cancelled,
      aborted: this.#aborted,
      rejected: this.#rejected,
      callbackFailures: this.#callbackFailures,
    };
  }

  /**
   * Accepts `op` for handling and resolves once it is accepted — not handled: its outcome goes
   * to `stats` and `onError`. Resolves at once while fewer than `maxPending` ops are pending,
   * otherwise when room frees up (FIFO). Rejects with `ClosedError` after `close()`, with
   * `signal.reason` if the signal aborts first (nothing is accepted), with `orderBy`'s throw,
   * or with `InvalidInputError` for bad options; it never throws.
   *
   * Re-entrancy: an `add` made *synchronously inside a handler call* of this queue while the
   * queue is full rejects at once with `QueueFullError` instead of waiting, because waiting
   * there can deadlock (every slot held by a handler waiting for room). After an `await`, the
   * queue cannot tell a handler from any caller: a handler that adds to a full queue waits like
   * anyone, and if every running handler does so, nothing finishes. Handlers that produce ops
   * should use {@link WorkQueue.tryAdd} (never waits) or pass a signal that bounds the wait
   * (`AbortSignal.timeout(ms)`).
   */
  add(op: T, options?: AddOptions): Promise<void> {
    const entry = this.#entry(op, options, undefined, undefined);
    if (entry instanceof Refused) return Promise.reject(entry.error);
    if (this.#hasRoom()) {
      this.#accept(entry);
      return RESOLVED;
    }
    const full = this.#fullInHandler();
    if (full !== undefined) return Promise.reject(full.error);
    return new Promise<void>((resolve, reject) => {
      entry.admit = resolve as Resolve;
      entry.refuse = reject;
      this.#wait(entry);
    });
  }

  /**
   * Like {@link WorkQueue.add}, but resolves with the handler's result once the op succeeds,
   * and rejects with its last error if it failed (after `onError` was called too), or with
   * `signal.reason` when the signal aborts (at any point: a running handler keeps running,
   * and its outcome is still counted).
   */
  addAndWait(op: T, options?: AddOptions): Promise<Awaited<R>> {
    let done!: Resolve;
    let fail!: Reject;
    const result = new Promise<Awaited<R>>((resolve, reject) => {
      done = resolve as Resolve;
      fail = reject;
    });
    const entry = this.#entry(op, options, done, fail);
    if (entry instanceof Refused) return Promise.reject(entry.error);
    if (this.#hasRoom()) this.#accept(entry);
    else {
      const full = this.#fullInHandler();
      if (full !== undefined) return Promise.reject(full.error);
      // Rejected through `fail` if its signal aborts while it waits; nothing to resolve on admission.
      entry.refuse = fail;
      this.#wait(entry);
    }
    return result;
  }

  /**
   * Accepts `op` if there is room now and returns `true`; returns `false` (accepting nothing)
   * when `maxPending` ops are pending or adds are waiting. Throws `ClosedError` after
   * `close()`, `signal.reason` for an aborted signal, whatever `orderBy` throws, and
   * `InvalidInputError` for bad options. Meant for handlers that produce ops.
   */
  tryAdd(op: T, options?: AddOptions): boolean {
    if (!this.#hasRoom() && !this.#closed) return false;
    const entry = this.#entry(op, options, undefined, undefined);
    if (entry instanceof Refused) throw entry.error;
    this.#accept(entry);
    return true;
  }

  /** Resolves when nothing is pending or waiting for room. Takes `{ signal }` like every wait. */
  onIdle(options?: { readonly signal?: AbortSignal | undefined }): Promise<void> {
    const invalid = options === undefined ? undefined : v.invalidCallOptions(options);
    if (invalid !== undefined) return Promise.reject(invalid);
    if (this.#isIdle()) return RESOLVED;
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
   * Stops intake (later adds reject with `ClosedError`), admits the adds already waiting for
   * room, and resolves once every accepted op has finished: handled, failed and reported
   * (after its retries), or cancelled. Idempotent. A `signal` only stops this call's wait.
   */
  close(options?: { readonly signal?: AbortSignal | undefined }): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#closing = this.onIdle();
    }
    if (options === undefined) return this.#closing as Promise<void>;
    return this.onIdle(options);
  }

  /** Same as {@link WorkQueue.close}: `await using queue = new WorkQueue(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * The entry of a new op, or the rejected promise refusing it (closed, aborted signal, bad
   * options, `orderBy` threw). Calls `orderBy` once: the key is fixed at `add` time.
   */
  #entry(
    op: T,
    options: AddOptions | undefined,
    done: Resolve | undefined,
    fail: Reject | undefined,
  ): Entry | Refused {
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      const invalid = v.invalidCallOptions(options);
      if (invalid !== undefined) return this.#refuse(invalid);
      signal = options.signal;
    }
    if (signal?.aborted === true) {
      this.#aborted++;
      return new Refused(signal.reason);
    }
    if (this.#closed) return this.#refuse(new ClosedError(`${this.#name} is closed`));
    let key: unknown;
    if (this.#orderBy !== undefined) {
      try {
        key = this.#orderBy(op);
      } catch (error) {
        return this.#refuse(error);
      }
    }
    return new Entry(op, key, signal, done, fail);
  }

  #hasRoom(): boolean {
    return this.#pending < this.#maxPending && this.#waiters.size === 0;
  }

  /** The refusal of an add made synchronously inside a handler while the queue is full. */
  #fullInHandler(): Refused | undefined {
    if (this.#inHandler === 0) return undefined;
    return this.#refuse(
      new QueueFullError(
        `${this.#name} is full (maxPending: ${this.#maxPending}); an add made inside a handler does not wait`,
      ),
    );
  }

  /** Queues an add for room (FIFO); its signal can take it out in O(1). */
  #wait(entry: Entry): void {
    const signal = entry.signal;
    if (signal !== undefined) entry.listener = linkSignal(signal, () => this.#onAbort(entry));
    this.#waiters.push(entry, undefined, 0);
  }

  #refuse(error: unknown): Refused {
    this.#rejected++;
    return new Refused(error);
  }

  /** The lane of `key`, created on first use. */
  #lane(key: unknown): Lane {
    let lane = this.#lanes.get(key);
    if (lane === undefined) {
      // Most keys hold a few ops: start small.
      lane = { key, active: undefined, queue: new Deque<Entry, undefined>(isDead, 4) };
      this.#lanes.set(key, lane);
    }
    return lane;
  }

  /** Counts `entry` in and starts it if its key is free. */
  #accept(entry: Entry): void {
    this.#pending++;
    this.#accepted++;
    const signal = entry.signal;
    if (signal !== undefined && entry.listener === undefined)
      entry.listener = linkSignal(signal, () => this.#onAbort(entry));
    if (this.#orderBy === undefined) {
      this.#start(entry);
      return;
    }
    const lane = this.#lane(entry.key);
    entry.lane = lane;
    if (lane.active === undefined) {
      lane.active = entry;
      this.#start(entry);
      return;
    }
    entry.state = QUEUED;
    lane.queue.push(entry, undefined, 0);
  }

  /** Sends `entry` (its key's head) to the limiter for a slot, in the entry's async context. */
  #start(entry: Entry): void {
    entry.state = READY;
    entry.runInAsyncScope(this.#submit, this, entry);
  }

  #submit(entry: Entry): void {
    const signal = entry.signal;
    const task = (): unknown => this.#try(entry);
    void this.#limiter.run(task, signal === undefined ? undefined : { signal }).then(
      (value) => this.#succeeded(entry, value),
      (error: unknown) => this.#triedAndFailed(entry, error),
    );
  }

  /** One try: runs in the entry's context, inside a limiter slot, at least a microtask after `add`. */
  #try(entry: Entry): unknown {
    entry.state = RUNNING;
    const attempt = ++entry.attempt;
    if (channel.start.hasSubscribers)
      channel.start.publish({ queue: this, name: this.#name, op: entry.op, attempt });
    const handler = this.#handler;
    this.#inHandler++;
    try {
      return handler(entry.op as T, { signal: entry.signal ?? NEVER, attempt });
    } finally {
      this.#inHandler--;
    }
  }

  #succeeded(entry: Entry, value: unknown): void {
    this.#completed++;
    if (channel.end.hasSubscribers)
      channel.end.publish({ queue: this, name: this.#name, op: entry.op, ok: true, attempt: entry.attempt });
    const done = entry.done;
    this.#finish(entry);
    done?.(value);
  }

  #triedAndFailed(entry: Entry, error: unknown): void {
    if (entry.state !== RUNNING) {
      // The limiter gave up the wait for a slot: only its signal does that (it is never closed
      // and its queue is unbounded).
      this.#cancel(entry, error);
      return;
    }
    if (channel.end.hasSubscribers)
      channel.end.publish({
        queue: this,
        name: this.#name,
        op: entry.op,
        ok: false,
        attempt: entry.attempt,
        error,
      });
    if (entry.signal?.aborted === true) {
      this.#cancel(entry, error);
      return;
    }
    if (entry.attempt < this.#backoff.attempts && this.#shouldRetry(entry, error)) {
      this.#retried++;
      const delay = this.#delay(entry.attempt);
      if (channel.retry.hasSubscribers)
        channel.retry.publish({
          queue: this,
          name: this.#name,
          op: entry.op,
          attempt: entry.attempt,
          delay,
          error,
        });
      entry.state = BACKOFF;
      // Referenced: an op waiting to retry is pending work, as in BatchWriter.
      entry.timer = schedule(() => this.#retryNow(entry), delay, true);
      return;
    }
    this.#failed++;
    this.#lastError = error;
    if (channel.failed.hasSubscribers)
      channel.failed.publish({ queue: this, name: this.#name, op: entry.op, attempt: entry.attempt, error });
    const onError = this.#onError;
    if (onError !== undefined) {
      try {
        const out = entry.runInAsyncScope(onError, undefined, entry.op, error);
        watchResult(out, channel.error, this, 'onError', this.#callbackRejected);
      } catch (thrown) {
        this.#callbackFailed(thrown, 'onError');
      }
    }
    const fail = entry.fail;
    this.#finish(entry);
    fail?.(error);
  }

  #retryNow(entry: Entry): void {
    entry.timer = undefined;
    if (entry.state !== BACKOFF) return;
    this.#start(entry);
  }

  /** An abort of the op's signal; what it does depends on where the op is. */
  #onAbort(entry: Entry): void {
    const reason = entry.signal?.reason as unknown;
    switch (entry.state) {
      case WAITING: {
        // Never accepted: the add rejects, nothing is counted as pending.
        entry.state = DONE;
        this.#aborted++;
        this.#waiters.markDead();
        const refuse = entry.refuse;
        this.#release(entry);
        refuse?.(reason);
        this.#checkIdle();
        return;
      }
      case QUEUED:
        // Dead before the lane counts it: a compaction that markDead triggers must drop it.
        entry.state = DONE;
        (entry.lane as Lane).queue.markDead();
        this.#cancel(entry, reason, true);
        return;
      case BACKOFF:
        entry.timer?.cancel();
        entry.timer = undefined;
        this.#cancel(entry, reason);
        return;
      case READY:
      case RUNNING: {
        // Running: the handler has the signal. Waiting for a slot: the limiter takes the wait
        // out and rejects it (this op is then cancelled), unless it is starting right now.
        // Either way an addAndWait caller stops waiting now.
        const fail = entry.fail;
        entry.done = undefined;
        entry.fail = undefined;
        fail?.(reason);
        return;
      }
      default:
        return;
    }
  }

  #cancel(entry: Entry, reason: unknown, wasQueued = entry.state === QUEUED): void {
    this.#cancelled++;
    if (channel.cancelled.hasSubscribers)
      channel.cancelled.publish({
        queue: this,
        name: this.#name,
        op: entry.op,
        attempt: entry.attempt,
        reason,
      });
    const fail = entry.fail;
    this.#finish(entry, wasQueued);
    fail?.(reason);
  }

  /** Drops what a settled entry references. */
  #release(entry: Entry): void {
    unlinkSignal(entry.signal, entry.listener);
    entry.listener = undefined;
    entry.signal = undefined;
    entry.done = undefined;
    entry.fail = undefined;
    entry.admit = undefined;
    entry.refuse = undefined;
  }

  /** Ends an accepted op: frees its key for the next op, lets waiting adds in. */
  #finish(entry: Entry, wasQueued = entry.state === QUEUED): void {
    entry.state = DONE;
    this.#release(entry);
    this.#pending--;
    const lane = entry.lane;
    if (lane !== undefined && !wasQueued) {
      const next = lane.queue.shift();
      if (next === undefined) {
        lane.active = undefined;
        this.#lanes.delete(lane.key);
      } else {
        lane.active = next;
        this.#start(next);
      }
    }
    this.#admitWaiters();
    this.#checkIdle();
  }

  /** Lets waiting adds in, FIFO, while there is room. */
  #admitWaiters(): void {
    while (this.#pending < this.#maxPending && this.#waiters.size > 0) {
      const entry = this.#waiters.shift() as Entry;
      const admit = entry.admit;
      entry.admit = undefined;
      entry.refuse = undefined;
      this.#accept(entry);
      admit?.(undefined);
    }
  }

  #isIdle(): boolean {
    return this.#pending === 0 && this.#waiters.size === 0;
  }

  #checkIdle(): void {
    if (this.#idle.size === 0 || !this.#isIdle()) return;
    const idle = this.#idle;
    this.#idle = new Set();
    for (const resolve of idle) resolve();
  }

  #shouldRetry(entry: Entry, error: unknown): boolean {
    const retryIf = this.#retryIf;
    if (retryIf === undefined) return true;
    try {
      return entry.runInAsyncScope(retryIf, undefined, error, entry.op) === true;
    } catch (thrown) {
      this.#callbackFailed(thrown, 'retry.retryIf');
      return false;
    }
  }

  #delay(attempt: number): number {
    return this.#backoff.delay(attempt, (thrown) => this.#callbackFailed(thrown, 'retry.random'));
  }

  #callbackFailed(error: unknown, where: string): void {
    this.#callbackFailures++;
    reportError(channel.error, error, this, where);
  }

  readonly #callbackRejected = (): void => {
    this.#callbackFailures++;
  };
}

/** An option's value, or its default when omitted (`undefined`; a `null` stays, to be refused). */
