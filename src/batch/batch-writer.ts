import { ClosedError } from '../errors.js';
import { channels } from '../internal/channels.js';
import { reportError, watchResult } from '../internal/report.js';
import { captureContext, type ContextRunner } from '../internal/context.js';
import { Deque } from '../internal/deque.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import { schedule, type Timer } from '../internal/timer.js';
import { Backoff, orDefault, type BackoffOptions } from '../internal/backoff.js';
import * as v from '../internal/validate.js';

/** Context passed to a flush function. */
export interface FlushContext {
  /** 1 for the first try of a batch, 2 for its first retry, and so on. */
  readonly attempt: number;
}

/**
 * Writes one batch; a throw or a rejection fails the batch (and may retry it). `items` is a
 * fresh array on every try, the writer's own: the function may sort, splice or empty it, and a
 * retry still gets every item of the batch. Every try runs in the async context
 * (`AsyncLocalStorage`) of the add that opened the batch.
 */
export type FlushFn<T> = (items: readonly T[], context: FlushContext) => unknown;

/** Retry policy of a {@link BatchWriter}: exponential backoff, optionally jittered. */
export interface BatchRetryOptions extends BackoffOptions {
  /**
   * Whether an error is worth retrying; `false` reports the batch failed at once.
   * @default every error is retried
   */
  readonly retryIf?: ((error: unknown) => boolean) | undefined;
}

/** Options of {@link BatchWriter}. */
export interface BatchWriterOptions<T> {
  /**
   * Names this writer in its errors' messages, its `stats` and its channel payloads (a service
   * has many).
   * @default 'BatchWriter'
   */
  readonly name?: string | undefined;
  /**
   * Items per batch: a batch is flushed as soon as it holds this many.
   * @default 100
   */
  readonly maxItems?: number | undefined;
  /**
   * Longest an accepted item waits for its batch to fill before the batch is flushed anyway,
   * in ms. Costs one timer per open batch, kept referenced (an unflushed write is pending
   * work). `Infinity`: flush only on size, `flush()` or `close()`.
   * @default 10
   */
  readonly maxWaitMs?: number | undefined;
  /**
   * Accepted items not yet written or reported failed (buffered, in flight or retrying). At the
   * bound, `add` waits (backpressure) instead of growing memory. Cost: the items themselves.
   * @default 10_000
   */
  readonly maxPending?: number | undefined;
  /**
   * Batches being flushed (or waiting to retry) at once. `1` keeps batches in add order.
   * @default 1
   */
  readonly concurrency?: number | undefined;
  /**
   * Retry policy for failed batches; `false` or omitted: no retry.
   * @default no retry
   */
  readonly retry?: BatchRetryOptions | false | undefined;
  /**
   * Receives each batch that failed its last try, with the last error. Without it, failures are
   * still counted in `stats.failedItems`, kept in `lastError`, published on
   * `sluice:batch:failed` and rejected to `addAndWait` callers. A throw (or rejection) from it
   * is counted in `stats.onErrorFailures`, and never breaks the writer. `items` is a copy.
   * @default none
   */
  readonly onError?: ((items: readonly T[], error: unknown) => unknown) | undefined;
}

/** Per-call options of {@link BatchWriter.add}, `addAndWait`, `flush` and `close`. */
export interface WriteOptions {
  /**
   * Aborting stops waiting and rejects with `signal.reason`. An add aborted while waiting for
   * room is never enqueued; once accepted, an item is written regardless (an `addAndWait`
   * caller just stops waiting for it).
   */
  readonly signal?: AbortSignal | undefined;
}

/** Counters and gauges of a {@link BatchWriter}; reading them is free. */
export interface BatchWriterStats {
  /** The `name` option. */
  readonly name: string;
  /** Items accepted. */
  readonly items: number;
  /** Items written successfully. */
  readonly written: number;
  /** Batches written successfully. */
  readonly batches: number;
  /** Items of batches that failed their last try (reported to `onError`). */
  readonly failedItems: number;
  /** Batches that failed their last try. */
  readonly failedBatches: number;
  /** Retries made. */
  readonly retries: number;
  /** Accepted items not yet written or failed now (≤ `maxPending`). */
  readonly pending: number;
  /** Items in the batch being filled now. */
  readonly buffered: number;
  /** Batches being flushed or waiting to retry now. */
  readonly inFlight: number;
  /** `add` calls waiting for room now. */
  readonly waiting: number;
  /** Adds refused with `ClosedError` or `InvalidInputError` (bad per-call options). */
  readonly rejected: number;
  /** Adds whose signal aborted before they were accepted. */
  readonly aborted: number;
  /** Calls of `onError` that threw or rejected. */
  readonly onErrorFailures: number;
  /**
   * Calls of `retry.retryIf` or `retry.random` that threw. A throwing `retryIf` counts as "do
   * not retry" (the batch is reported failed); a throwing `random` as 0.5. Each such throw, and
   * each `onError` failure, is published on `sluice:batch:error` as `{ error, source, where }`.
   */
  readonly callbackFailures: number;
}

type Resolve = (value: unknown) => void;
type Reject = (reason: unknown) => void;

interface WriteBatch<T> {
  /** Never handed to user code (it gets a copy per try), so its length is the batch's size. */
  readonly items: T[];
  /** Completion callbacks of `addAndWait` items, aligned with `items`; absent when none. */
  readonly dones: (Resolve | undefined)[] | undefined;
  /** Sequence number of the first item: batches are contiguous ranges in acceptance order. */
  readonly firstSeq: number;
  /** The async context of the add that opened the batch: every try runs in it. */
  readonly context: ContextRunner;
  attempt: number;
}

/** An `add` waiting for room. */
class AddWaiter<T> {
  dead = false;
  listener: (() => void) | undefined = undefined;
  constructor(
    readonly item: T,
    readonly resolve: Resolve,
    readonly reject: Reject,
    readonly done: Resolve | undefined,
    readonly signal: AbortSignal | undefined,
    /** The add's async context: it is admitted later, from another batch's completion. */
    readonly context: ContextRunner,
  ) {}
}

const RESOLVED: Promise<void> = Promise.resolve();
const isDead = (w: AddWaiter<unknown>): boolean => w.dead;
const channel = channels('batch', ['flush', 'retry', 'failed', 'error']);

/**
 * Buffers items and writes them in batches of `maxItems` (or every `maxWaitMs`), with bounded
 * memory, retries and a shutdown that loses nothing.
 *
 * - **Batching**: a batch is flushed when it holds `maxItems`, when its oldest item has waited
 *   `maxWaitMs`, or on `flush()` / `close()`; at most `concurrency` batches are in flight.
 * - **Backpressure**: at most `maxPending` items are accepted and unwritten; `add` then waits,
 *   FIFO, until a batch completes.
 * - **Failures**: a failed batch retries per `retry`, then goes to `onError(items, error)` and
 *   `stats.failedItems`; every accepted item is written exactly once or reported failed.
 * - **Cancellation**: an add aborted while waiting is never enqueued and rejects with
 *   `signal.reason`.
 * - **Shutdown**: `close()` refuses new adds with `ClosedError`, admits the adds already
 *   waiting, flushes everything and resolves only when every item is written or reported.
 *
 * @example
 * ```ts
 * import { BatchWriter } from 'sluice/batch';
 * const events = new BatchWriter<Event>((rows) => db.insertMany('events', rows), {
 *   maxItems: 20, maxWaitMs: 50, retry: { attempts: 3 }, onError: (rows, err) => log(err, rows),
 * });
 * await events.add(event); // waits only when 10 000 items are unwritten
 * await events.close();    // everything written or reported
 * ```
 */
export class BatchWriter<T> implements AsyncDisposable {
  readonly #flushFn: FlushFn<T>;
  readonly #name: string;
  readonly #maxItems: number;
  readonly #maxWaitMs: number;
  readonly #maxPending: number;
  readonly #concurrency: number;
  readonly #backoff: Backoff;
  readonly #retryIf: ((error: unknown) => boolean) | undefined;
  readonly #onError: ((items: readonly T[], error: unknown) => unknown) | undefined;

  #buffer: T[] = [];
  #bufferDones: (Resolve | undefined)[] | undefined = undefined;
  #bufferFirstSeq = 0;
  #bufferContext: ContextRunner | undefined = undefined;
  #timer: Timer | undefined = undefined;
  #sealed: WriteBatch<T>[] = [];
  readonly #active = new Set<WriteBatch<T>>();
  readonly #waiters = new Deque<AddWaiter<T>, undefined>(isDead);
  /** `flush` calls waiting, by non-decreasing target; `close` calls with a signal (target ∞). */
  readonly #flushWaiters = new WaitList();
  readonly #closeWaiters = new WaitList();
  #seq = 0;
  #pending = 0;
  #closed = false;
  /** `#pump` is running (see there). */
  #pumping = false;
  #closing: Promise<void> | undefined = undefined;
  #closeResolve: (() => void) | undefined = undefined;
  #lastError: unknown = undefined;

  #written = 0;
  #batches = 0;
  #failedItems = 0;
  #failedBatches = 0;
  #retries = 0;
  #rejected = 0;
  #aborted = 0;
  #onErrorFailures = 0;
  #callbackFailures = 0;

  constructor(flushFn: FlushFn<T>, options: BatchWriterOptions<T> = {}) {
    v.isFunction('flushFn', flushFn);
    v.options('options', options);
    this.#flushFn = flushFn;
    this.#name = options.name === undefined ? 'BatchWriter' : v.string('name', options.name);
    // `=== undefined`, not `??`: an option given as null is a mistake, not the default.
    this.#maxItems = v.positiveInteger('maxItems', orDefault(options.maxItems, 100));
    this.#maxWaitMs = v.nonNegativeNumber('maxWaitMs', orDefault(options.maxWaitMs, 10), true);
    this.#maxPending = v.positiveInteger('maxPending', orDefault(options.maxPending, 10_000), true);
    this.#concurrency = v.positiveInteger('concurrency', orDefault(options.concurrency, 1), true);
    this.#backoff = new Backoff(options.retry);
    this.#retryIf =
      options.retry === undefined || options.retry === false ? undefined : options.retry.retryIf;
    v.optionalFunction('onError', options.onError);
    this.#onError = options.onError;
  }

  /** The `name` option. */
  get name(): string {
    return this.#name;
  }

  /** A snapshot of the counters and gauges; cheap, synchronous. */
  get stats(): BatchWriterStats {
    return {
      name: this.#name,
      items: this.#seq,
      written: this.#written,
      batches: this.#batches,
      failedItems: this.#failedItems,
      failedBatches: this.#failedBatches,
      retries: this.#retries,
      pending: this.#pending,
      buffered: this.#buffer.length,
      inFlight: this.#active.size,
      waiting: this.#waiters.size,
      rejected: this.#rejected,
      aborted: this.#aborted,
      onErrorFailures: this.#onErrorFailures,
      callbackFailures: this.#callbackFailures,
    };
  }

  /** Accepted items not yet written or reported failed (same as `stats.pending`). */
  get pending(): number {
    return this.#pending;
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The error of the most recent batch that failed its last try, if any. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /**
   * Accepts an item for writing. Resolves at once while fewer than `maxPending` items are
   * unwritten, otherwise when room frees up (FIFO). Rejects with `ClosedError` after `close()`,
   * with `signal.reason` (the item is then never enqueued), or with `InvalidInputError` for bad
   * options; like every method that returns a promise, it never throws.
   */
  add(item: T, options?: WriteOptions): Promise<void> {
    if (options !== undefined) {
      const invalid = v.invalidCallOptions(options);
      if (invalid !== undefined) return this.#refuseInvalid(invalid);
    }
    const signal = options?.signal;
    const refused = this.#refusal(signal);
    if (refused !== undefined) return refused;
    if (this.#pending < this.#maxPending && this.#waiters.size === 0) {
      this.#accept(item, undefined, undefined);
      return RESOLVED;
    }
    return new Promise<void>((resolve, reject) =>
      this.#wait(item, resolve as Resolve, reject, undefined, signal),
    );
  }

  /**
   * Like {@link BatchWriter.add}, but resolves once the item's batch is written, and rejects
   * with the batch's last error if it failed (after it was also reported to `onError`).
   */
  addAndWait(item: T, options?: WriteOptions): Promise<void> {
    if (options !== undefined) {
      const invalid = v.invalidCallOptions(options);
      if (invalid !== undefined) return this.#refuseInvalid(invalid);
    }
    const signal = options?.signal;
    const refused = this.#refusal(signal);
    if (refused !== undefined) return refused;
    let done!: Resolve;
    let fail!: Reject;
    const written = new Promise<void>((resolve, reject) => {
      done = resolve as Resolve;
      fail = reject;
    });
    if (this.#pending < this.#maxPending && this.#waiters.size === 0) {
      this.#accept(item, done, undefined);
      return signal === undefined ? written : raceSignal(written, signal);
    }
    this.#wait(item, noop, fail, done, signal);
    return signal === undefined ? written : raceSignal(written, signal);
  }

  /**
   * Flushes the batch being filled now, and resolves once every item accepted before the call
   * is written or reported failed. Adds still waiting for room are not covered.
   */
  flush(options?: WriteOptions): Promise<void> {
    if (options !== undefined) {
      const invalid = v.invalidCallOptions(options);
      if (invalid !== undefined) return Promise.reject(invalid);
    }
    const signal = options?.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    this.#sealBuffer();
    const target = this.#seq;
    if (this.#lowWater() >= target) return RESOLVED;
    return this.#flushWaiters.wait(target, signal);
  }

  /**
   * Stops intake (later adds reject with `ClosedError`), admits the adds already waiting,
   * flushes everything and resolves only when every accepted item is written or reported
   * failed. Idempotent. A `signal` only stops this call's wait; the drain continues.
   */
  close(options?: WriteOptions): Promise<void> {
    if (options !== undefined) {
      const invalid = v.invalidCallOptions(options);
      if (invalid !== undefined) return Promise.reject(invalid);
    }
    const signal = options?.signal;
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = new Promise<void>((resolve) => (this.#closeResolve = resolve));
      this.#sealBuffer();
      this.#checkIdle();
    }
    if (signal === undefined || this.#closeResolve === undefined) return this.#closing;
    return this.#closeWaiters.wait(Infinity, signal);
  }

  /** Same as {@link BatchWriter.close}: `await using writer = new BatchWriter(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #refuseInvalid(error: Error): Promise<never> {
    this.#rejected++;
    return Promise.reject(error);
  }

  #refusal(signal: AbortSignal | undefined): Promise<never> | undefined {
    if (signal?.aborted === true) {
      this.#aborted++;
      return Promise.reject(signal.reason as Error);
    }
    if (this.#closed) {
      this.#rejected++;
      return Promise.reject(new ClosedError(`${this.#name} is closed`));
    }
    return undefined;
  }

  #wait(
    item: T,
    resolve: Resolve,
    reject: Reject,
    done: Resolve | undefined,
    signal: AbortSignal | undefined,
  ): void {
    const waiter = new AddWaiter(item, resolve, reject, done, signal, captureContext());
    if (signal !== undefined) {
      waiter.listener = linkSignal(signal, () => {
        if (waiter.dead) return;
        waiter.dead = true;
        this.#aborted++;
        this.#waiters.markDead();
        reject(signal.reason);
        this.#checkIdle();
      });
    }
    this.#waiters.push(waiter, undefined, 0);
  }

  /** `context`: the add's captured context when it is not the current one (an admitted waiter). */
  #accept(item: T, done: Resolve | undefined, context: ContextRunner | undefined): void {
    const buffer = this.#buffer;
    if (buffer.length === 0) {
      this.#bufferFirstSeq = this.#seq;
      this.#bufferContext = context ?? captureContext();
      if (this.#maxWaitMs !== Infinity && !this.#closed)
        this.#timer = schedule(this.#onMaxWait, this.#maxWaitMs, true);
    }
    buffer.push(item);
    if (done !== undefined) {
      this.#bufferDones ??= new Array<Resolve | undefined>(buffer.length - 1).fill(undefined);
      this.#bufferDones.push(done);
    } else if (this.#bufferDones !== undefined) {
      this.#bufferDones.push(undefined);
    }
    this.#seq++;
    this.#pending++;
    if (buffer.length >= this.#maxItems || this.#pending >= this.#maxPending) this.#sealBuffer();
  }

  readonly #onMaxWait = (): void => {
    this.#timer = undefined;
    this.#sealBuffer();
  };

  #sealBuffer(): void {
    if (this.#timer !== undefined) {
      this.#timer.cancel();
      this.#timer = undefined;
    }
    if (this.#buffer.length === 0) return;
    this.#sealed.push({
      items: this.#buffer,
      dones: this.#bufferDones,
      firstSeq: this.#bufferFirstSeq,
      context: this.#bufferContext as ContextRunner,
      attempt: 0,
    });
    this.#bufferContext = undefined;
    this.#buffer = [];
    this.#bufferDones = undefined;
    this.#pump();
  }

  /**
   * Starts sealed batches while there is room. Not re-entrant: a synchronous flush completes
   * inside `#try`, and its completion admits waiting adds and seals more batches; those are
   * picked up by this loop instead of a nested call per batch (which would grow the stack by
   * one frame chain per waiting add and overflow it).
   */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#active.size < this.#concurrency && this.#sealed.length > 0) {
        const batch = this.#sealed.shift() as WriteBatch<T>;
        this.#active.add(batch);
        // The flush function never runs inside the `add` (or `flush`) that sealed its batch.
        queueMicrotask(() => this.#try(batch));
      }
    } finally {
      this.#pumping = false;
    }
  }

  #try(batch: WriteBatch<T>): void {
    const attempt = ++batch.attempt;
    if (channel.flush.hasSubscribers)
      channel.flush.publish({ writer: this, name: this.#name, size: batch.items.length, attempt });
    let result: unknown;
    try {
      const flushFn = this.#flushFn;
      const items = batch.items.slice();
      result = batch.context(() => flushFn(items, { attempt }));
    } catch (error) {
      this.#failed(batch, error);
      return;
    }
    if (typeof (result as { then?: unknown } | null)?.then === 'function') {
      void Promise.resolve(result).then(
        () => this.#complete(batch, undefined, true),
        (error: unknown) => this.#failed(batch, error),
      );
    } else {
      this.#complete(batch, undefined, true);
    }
  }

  #failed(batch: WriteBatch<T>, error: unknown): void {
    if (batch.attempt < this.#backoff.attempts && this.#shouldRetry(batch, error)) {
      this.#retries++;
      const delay = this.#delay(batch.attempt);
      if (channel.retry.hasSubscribers) {
        channel.retry.publish({
          writer: this,
          name: this.#name,
          size: batch.items.length,
          attempt: batch.attempt,
          delay,
          error,
        });
      }
      // Referenced, like the maxWaitMs timer: a batch waiting to retry is pending work.
      schedule(() => this.#try(batch), delay, true);
      return;
    }
    this.#failedBatches++;
    this.#failedItems += batch.items.length;
    this.#lastError = error;
    if (channel.failed.hasSubscribers)
      channel.failed.publish({ writer: this, name: this.#name, items: batch.items.slice(), error });
    const onError = this.#onError;
    if (onError !== undefined) {
      try {
        const items = batch.items.slice();
        const out = batch.context(() => onError(items, error));
        watchResult(out, channel.error, this, 'onError', this.#onErrorRejected);
      } catch (thrown) {
        this.#onErrorFailures++;
        reportError(channel.error, thrown, this, 'onError');
      }
    }
    this.#complete(batch, error, false);
  }

  readonly #onErrorRejected = (): void => {
    this.#onErrorFailures++;
  };

  #shouldRetry(batch: WriteBatch<T>, error: unknown): boolean {
    const retryIf = this.#retryIf;
    if (retryIf === undefined) return true;
    try {
      return batch.context(() => retryIf(error));
    } catch (thrown) {
      this.#callbackFailed(thrown, 'retry.retryIf');
      return false;
    }
  }

  #callbackFailed(error: unknown, where: string): void {
    this.#callbackFailures++;
    reportError(channel.error, error, this, where);
  }

  #delay(attempt: number): number {
    return this.#backoff.delay(attempt, (thrown) => this.#callbackFailed(thrown, 'retry.random'));
  }

  #complete(batch: WriteBatch<T>, error: unknown, ok: boolean): void {
    this.#active.delete(batch);
    const n = batch.items.length;
    this.#pending -= n;
    if (ok) {
      this.#written += n;
      this.#batches++;
    }
    const dones = batch.dones;
    if (dones !== undefined) {
      for (const done of dones) {
        if (done === undefined) continue;
        if (ok) done(undefined);
        else done(Promise.reject(error));
      }
    }
    this.#admit();
    this.#pump();
    this.#notifyFlushes();
    this.#checkIdle();
  }

  /** Lets waiting adds in, FIFO, while there is room. */
  #admit(): void {
    while (this.#pending < this.#maxPending && this.#waiters.size > 0) {
      const waiter = this.#waiters.shift() as AddWaiter<T>;
      waiter.dead = true;
      unlinkSignal(waiter.signal, waiter.listener);
      this.#accept(waiter.item, waiter.done, waiter.context);
      waiter.resolve(undefined);
    }
    if (this.#closed) this.#sealBuffer();
  }

  /** Lowest sequence number not yet written or failed. */
  #lowWater(): number {
    let low = this.#buffer.length > 0 ? this.#bufferFirstSeq : this.#seq;
    const head = this.#sealed[0];
    if (head !== undefined && head.firstSeq < low) low = head.firstSeq;
    for (const batch of this.#active) if (batch.firstSeq < low) low = batch.firstSeq;
    return low;
  }

  #notifyFlushes(): void {
    if (this.#flushWaiters.length === 0) return;
    this.#flushWaiters.release(this.#lowWater());
  }

  #checkIdle(): void {
    if (this.#closeResolve === undefined) return;
    if (this.#pending === 0 && this.#waiters.size === 0 && this.#active.size === 0) {
      const resolve = this.#closeResolve;
      this.#closeResolve = undefined;
      resolve();
      this.#closeWaiters.release(Infinity);
    }
  }
}

function noop(): void {}

/** A `flush` / `close` call waiting; `reject` and `listener` only when it has a signal. */
class Waiter {
  dead = false;
  listener: (() => void) | undefined = undefined;
  constructor(
    readonly target: number,
    readonly resolve: () => void,
    readonly reject: Reject | undefined,
    readonly signal: AbortSignal | undefined,
  ) {}
}

/**
 * Waiters in non-decreasing `target` order, released by prefix. An aborted waiter is marked dead
 * and rejects at once; dead ones are dropped when they reach the front or, once they are more
 * than 64 and outnumber the live ones, by one compaction (amortised O(1)), so a storm of aborted
 * `flush({ signal })` calls behind a stuck batch pins no memory.
 */
class WaitList {
  #items: Waiter[] = [];
  #dead = 0;

  get length(): number {
    return this.#items.length;
  }

  wait(target: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal === undefined) {
      return new Promise<void>((resolve) =>
        this.#items.push(new Waiter(target, resolve, undefined, undefined)),
      );
    }
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<void>((resolve, reject) => {
      const waiter = new Waiter(target, resolve, reject, signal);
      waiter.listener = linkSignal(signal, () => {
        if (waiter.dead) return;
        waiter.dead = true;
        reject(signal.reason as Error);
        if (++this.#dead > 64 && this.#dead * 2 > this.#items.length) {
          this.#items = this.#items.filter((w) => !w.dead);
          this.#dead = 0;
        }
      });
      this.#items.push(waiter);
    });
  }

  /** Resolves every waiter whose target is ≤ `low` (and drops dead ones ahead of them). */
  release(low: number): void {
    const items = this.#items;
    let i = 0;
    while (i < items.length && ((items[i] as Waiter).dead || (items[i] as Waiter).target <= low)) i++;
    if (i === 0) return;
    const ready = items.splice(0, i);
    for (const w of ready) {
      if (w.dead) {
        this.#dead--;
        continue;
      }
      w.dead = true;
      unlinkSignal(w.signal, w.listener);
      w.resolve();
    }
  }
}

/** Rejects with `signal.reason` when it aborts first; unlinks the listener when `promise` settles. */
function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const listener = linkSignal(signal, () => reject(signal.reason as Error));
    promise.then(
      (value) => {
        unlinkSignal(signal, listener);
        resolve(value);
      },
      (error: unknown) => {
        unlinkSignal(signal, listener);
        reject(error);
      },
    );
  });
}
