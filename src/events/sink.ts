import { ClosedError, QueueFullError } from '../errors.js';
import type { Clock } from '../internal/clock.js';
import type { AsyncResource } from 'node:async_hooks';
import { Deque } from '../internal/deque.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import { EventRecord } from './event.js';
import { Ring } from './ring.js';

/** What a full subscriber buffer does with one more event. */
export type Overflow = 'wait' | 'drop-oldest' | 'drop-newest' | 'error';

/** Counters of one subscriber: `Subscription.stats`. */
export interface SubscriberStats {
  /** Events handed to the handler (or iterator, or `once`). */
  readonly delivered: number;
  /** Events this subscriber lost to its overflow policy or to being disposed with a full buffer. */
  readonly dropped: number;
  /** Events waiting in its buffer. */
  readonly buffered: number;
  /** Emits waiting for room in its buffer (`overflow: 'wait'`). */
  readonly waiting: number;
  /** Handler calls running now. */
  readonly running: number;
  /** Handler calls that threw or rejected. */
  readonly failures: number;
  /** Longest time, in ms, between an event's emit and the start of its handler. */
  readonly maxLagMs: number;
}

/** A live subscription: dispose it (or abort its signal) to stop receiving events. */
export interface Subscription extends Disposable {
  /** The subscriber's counters. */
  readonly stats: SubscriberStats;
  /** True once disposed (by `unsubscribe`, `[Symbol.dispose]`, its signal, or the bus closing). */
  readonly disposed: boolean;
  /**
   * Stops delivery: buffered events are dropped (counted in `dropped`), emits waiting for this
   * subscriber stop waiting for it, running handlers finish. Idempotent.
   */
  unsubscribe(): void;
}

/** State every subscriber of one bus shares: the handler bound, counters and error reporting. */
export class Core {
  /** Handler calls running. */
  running = 0;
  /** Bus slots promised to parked subscribers that were woken but have not run yet. */
  reserved = 0;
  /** Subscribers waiting for a bus slot, oldest first (one disposed meanwhile is a tombstone). */
  readonly parked = new Deque<HandlerSink, undefined>((sink) => sink.disposed);
  /** Events buffered in handler subscribers (what `close()` waits for, with `running`). */
  work = 0;
  pendingEmits = 0;
  delivered = 0;
  dropped = 0;
  failures = 0;
  buffered = 0;
  maxLagMs = 0;
  onIdle: (() => void) | undefined = undefined;

  constructor(
    readonly maxRunning: number,
    readonly clock: Clock,
    readonly report: (error: unknown, record: EventRecord, sink: Sink) => void,
  ) {}

  /** True when no handler runs or has an event waiting, and no emit waits. */
  get idle(): boolean {
    return this.running === 0 && this.work === 0 && this.pendingEmits === 0;
  }

  checkIdle(): void {
    if (this.onIdle !== undefined && this.idle) this.onIdle();
  }

  /** Subscribers with events to start, run together from one microtask. */
  readonly #ready: HandlerSink[] = [];
  #flushing = false;
  readonly #flush = (): void => {
    const ready = this.#ready;
    // A handler may emit and so make more subscribers ready: they run in this same loop, still
    // after the emit that woke them has returned.
    for (let i = 0; i < ready.length; i++) ready[i]!.scheduled();
    ready.length = 0;
    this.#flushing = false;
  };

  /** Starts `sink` from a microtask: one microtask per emit, however many subscribers it woke. */
  schedule(sink: HandlerSink): void {
    this.#ready.push(sink);
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(this.#flush);
    }
  }

  /** Hands a free bus slot to the oldest parked subscriber (in a microtask: no recursion). */
  release(): void {
    if (this.parked.size > 0 && this.running + this.reserved < this.maxRunning) {
      this.reserved++;
      const sink = this.parked.shift()!;
      sink.queued = false;
      queueMicrotask(sink.unpark);
    }
  }
}

/**
 * An emit that waits for room in one or more subscribers (`overflow: 'wait'`). It sits in the
 * `blocked` queue of each such subscriber and settles when the last of them takes it in.
 */
export class PendingEmit {
  remaining = 0;
  settled = false;
  readonly holders = new Set<Sink>();
  onAbort: (() => void) | undefined = undefined;
  readonly promise: Promise<void>;
  #resolve!: () => void;
  #reject!: (error: unknown) => void;

  constructor(
    readonly core: Core,
    readonly record: EventRecord,
    readonly context: AsyncResource | undefined,
    readonly signal: AbortSignal | undefined,
  ) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    core.pendingEmits++;
    if (signal !== undefined) this.onAbort = linkSignal(signal, () => this.withdraw(signal.reason));
  }

  /** `sink` took the event in (or left). */
  accepted(sink: Sink): void {
    this.holders.delete(sink);
    if (--this.remaining === 0) this.#settle(undefined, false);
  }

  /** Takes the event back from every subscriber still waiting to take it; rejects with `error`. */
  withdraw(error: unknown): void {
    if (this.settled) return;
    const tracker = EventRecord.trackerOf(this.record);
    for (const sink of this.holders) {
      sink.waiting--;
      sink.blocked?.markDead();
      if (tracker !== undefined && sink.tracks) tracker.left();
    }
    this.holders.clear();
    this.#settle(error, true);
  }

  #settle(error: unknown, failed: boolean): void {
    if (this.settled) return;
    this.settled = true;
    unlinkSignal(this.signal, this.onAbort);
    this.core.pendingEmits--;
    if (failed) this.#reject(error);
    else this.#resolve();
    this.core.checkIdle();
  }
}

const isSettled = (p: PendingEmit): boolean => p.settled;
const never = (): boolean => false;

/**
 * The emit being fanned out: one per bus, reused (no user code runs during a fan-out, so there
 * is no re-entrancy). `pending` is created by the first subscriber that makes the emit wait.
 */
export class FanOut {
  record!: EventRecord;
  context: AsyncResource | undefined = undefined;
  signal: AbortSignal | undefined = undefined;
  pending: PendingEmit | undefined = undefined;

  constructor(readonly core: Core) {}

  wait(): PendingEmit {
    return (this.pending ??= new PendingEmit(this.core, this.record, this.context, this.signal));
  }
}

/** Outcome of offering an event to a subscriber. */
export const enum Offer {
  Accepted,
  Blocked,
  Dropped,
  Refused,
}

/**
 * One subscriber: a bounded FIFO of events plus, under `overflow: 'wait'`, a FIFO of emits
 * waiting for room. Subclasses decide how events leave the buffer (a handler pump, an async
 * iterator, a one-shot promise).
 */
export abstract class Sink implements Subscription {
  /** Neighbours in the bus's list of subscribers of `type` (kept on removal for iterators). */
  before: Sink | undefined = undefined;
  after: Sink | undefined = undefined;
  readonly buffer = new Ring<EventRecord, AsyncResource>();
  blocked: Deque<PendingEmit, undefined> | undefined = undefined;
  waiting = 0;
  running = 0;
  delivered = 0;
  dropped = 0;
  failures = 0;
  maxLagMs = 0;
  /** True once disposed (a field, not a getter: the emit path reads it per subscriber). */
  disposed = false;
  #onAbort: (() => void) | undefined = undefined;
  /** Whether `emitAndWait` waits for this subscriber (handlers do; iterators and `once` do not). */
  abstract readonly tracks: boolean;

  constructor(
    readonly core: Core,
    /** Event name, or `undefined` for `onAny`. */
    readonly type: string | undefined,
    readonly capacity: number,
    readonly overflow: Overflow,
    readonly signal: AbortSignal | undefined,
    readonly unlink: (sink: Sink) => void,
  ) {}

  /** Starts listening to the signal; call once the sink is in the bus's list. */
  listen(): void {
    if (this.signal !== undefined) this.#onAbort = linkSignal(this.signal, () => this.unsubscribe());
  }

  get stats(): SubscriberStats {
    return {
      delivered: this.delivered,
      dropped: this.dropped,
      buffered: this.buffer.size,
      waiting: this.waiting,
      running: this.running,
      failures: this.failures,
      maxLagMs: this.maxLagMs,
    };
  }

  /** Offers the event of `fan` to this subscriber. */
  offer(fan: FanOut): Offer {
    const record = fan.record;
    if (this.waiting === 0 && this.buffer.size < this.capacity) {
      this.push(record, fan.context);
      return Offer.Accepted;
    }
    switch (this.overflow) {
      case 'wait': {
        const p = fan.wait();
        p.remaining++;
        p.holders.add(this);
        (this.blocked ??= new Deque<PendingEmit, undefined>(isSettled)).push(p, undefined, 0);
        this.waiting++;
        const tracker = EventRecord.trackerOf(record);
        if (tracker !== undefined && this.tracks) tracker.remaining++;
        return Offer.Blocked;
      }
      case 'drop-oldest': {
        if (this.waiting === 0 && this.capacity > 0) {
          this.#discard(this.buffer.shift()!, 'dropped by overflow: drop-oldest');
          this.push(record, fan.context);
          return Offer.Dropped;
        }
        this.#refuse(record, 'refused by overflow: drop-oldest (buffer size 0)');
        return Offer.Dropped;
      }
      case 'drop-newest':
        this.#refuse(record, 'dropped by overflow: drop-newest');
        return Offer.Dropped;
      case 'error':
        this.#refuse(record, 'refused by overflow: error');
        return Offer.Refused;
    }
  }

  /** Whether an offer now would block (used to refuse an emit before delivering any of it). */
  wouldBlock(): boolean {
    return this.overflow === 'wait' && (this.waiting > 0 || this.buffer.size >= this.capacity);
  }

  /** Puts `record` in the buffer (room was checked) and lets the subclass take it. */
  push(record: EventRecord, context: AsyncResource | undefined): void {
    this.buffer.push(record, context);
    this.core.buffered++;
    if (this.tracks) {
      this.core.work++;
      const tracker = EventRecord.trackerOf(record);
      if (tracker !== undefined) tracker.remaining++;
    }
    this.wake();
  }

  /**
   * Takes the oldest buffered event (its context lands in `this.buffer.aux`) and moves the
   * oldest waiting emit into the room it leaves.
   */
  take(): EventRecord | undefined {
    const record = this.buffer.shift();
    if (record === undefined) return undefined;
    const context = this.buffer.aux;
    this.core.buffered--;
    if (this.tracks) this.core.work--;
    const blocked = this.blocked;
    if (blocked !== undefined && this.waiting > 0) {
      const p = blocked.shift();
      if (p !== undefined) {
        this.waiting--;
        // Push without counting the tracker again: it was counted when the emit blocked.
        this.buffer.push(p.record, p.context);
        this.core.buffered++;
        if (this.tracks) this.core.work++;
        p.accepted(this);
      }
    }
    this.buffer.aux = context;
    return record;
  }

  /** Lag bookkeeping at the moment `record` is handed over. */
  handOver(record: EventRecord): void {
    this.delivered++;
    this.core.delivered++;
    const lag = this.core.clock.now() - record.time;
    if (lag > this.maxLagMs) {
      this.maxLagMs = lag;
      if (lag > this.core.maxLagMs) this.core.maxLagMs = lag;
    }
  }

  unsubscribe(): void {
    if (this.disposed) return;
    this.disposed = true;
    unlinkSignal(this.signal, this.#onAbort);
    this.unlink(this);
    for (let r = this.buffer.shift(); r !== undefined; r = this.buffer.shift()) {
      this.core.buffered--;
      if (this.tracks) this.core.work--;
      this.#discard(r, undefined);
    }
    const blocked = this.blocked;
    if (blocked !== undefined) {
      for (let p = blocked.shift(); p !== undefined; p = blocked.shift()) {
        this.waiting--;
        const tracker = EventRecord.trackerOf(p.record);
        if (tracker !== undefined && this.tracks) tracker.left();
        p.accepted(this);
      }
    }
    this.ended();
    this.core.checkIdle();
  }

  [Symbol.dispose](): void {
    this.unsubscribe();
  }

  /** Called when new events are buffered. */
  protected abstract wake(): void;
  /** Called once when the subscriber is disposed. */
  protected abstract ended(): void;

  /** A buffered event leaves without being handled: counted, and its `emitAndWait` told. */
  #discard(record: EventRecord, reason: string | undefined): void {
    this.dropped++;
    this.core.dropped++;
    if (reason !== undefined) {
      this.core.buffered--;
      if (this.tracks) this.core.work--;
    }
    const tracker = EventRecord.trackerOf(record);
    if (tracker !== undefined && this.tracks) {
      if (reason === undefined) tracker.left();
      else tracker.done(new QueueFullError(`event '${record.type}' ${reason}`), true);
    }
  }

  /** An offered event is not taken: counted, and its `emitAndWait` told. */
  #refuse(record: EventRecord, reason: string): void {
    this.dropped++;
    this.core.dropped++;
    const tracker = EventRecord.trackerOf(record);
    if (tracker !== undefined && this.tracks) {
      tracker.remaining++;
      tracker.done(new QueueFullError(`event '${record.type}' ${reason}`), true);
    }
  }
}

/**
 * One handler call in flight: the event it runs and its settle callbacks, bound once per slot
 * (a sink has at most `concurrency` slots, reused), so a call allocates no closure.
 */
class Slot {
  record: EventRecord | undefined = undefined;
  readonly ok: () => void;
  readonly fail: (error: unknown) => void;

  constructor(sink: HandlerSink) {
    this.ok = () => sink.settled(this, undefined, false);
    this.fail = (error) => sink.settled(this, error, true);
  }
}

const isPromise = (value: unknown): value is Promise<unknown> => value instanceof Promise;

function isThenable(value: unknown): boolean {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  try {
    return typeof (value as { then?: unknown }).then === 'function';
  } catch {
    return false;
  }
}

/**
 * `on` / `onAny`: runs the handler on buffered events in order, at most `concurrency` at once
 * and within the bus-wide bound. One drain loop (never recursion per event): a handler that
 * returns synchronously lets the loop take the next event; a promise continues it from its
 * settle callback. The first call after idle starts in a microtask, never inside `emit`. When
 * the bus is at its bound the subscriber parks; each freed slot goes to the oldest parked
 * subscriber (round robin), never back to the one that freed it while others wait.
 */
export class HandlerSink extends Sink {
  readonly tracks = true;
  readonly #free: Slot[] = [];
  #scheduled = false;
  #draining = false;
  #parked = false;
  /** Whether this subscriber sits in `core.parked` (until `release` takes it out). */
  queued = false;
  readonly unpark = (): void => {
    this.#parked = false;
    this.#drain(true);
  };

  constructor(
    core: Core,
    type: string | undefined,
    capacity: number,
    overflow: Overflow,
    signal: AbortSignal | undefined,
    unlink: (sink: Sink) => void,
    readonly concurrency: number,
    readonly handler: (payload: unknown, event: EventRecord) => unknown,
    readonly any: boolean,
  ) {
    super(core, type, capacity, overflow, signal, unlink);
  }

  protected wake(): void {
    if (this.#scheduled || this.#draining || this.#parked || this.running >= this.concurrency) return;
    this.#scheduled = true;
    this.core.schedule(this);
  }

  /** Run by the bus's microtask after {@link Core.schedule}. */
  scheduled(): void {
    this.#scheduled = false;
    this.#drain(false);
  }

  protected ended(): void {
    // The drain loop sees the empty buffer and stops. A parked subscriber leaves the bus's queue
    // now (a tombstone), not only once a slot frees: else a saturated bus keeps every
    // subscriber disposed meanwhile.
    if (this.queued) {
      this.queued = false;
      this.core.parked.markDead();
    }
  }

  /** A handler call finished (from its promise's callbacks). */
  settled(slot: Slot, error: unknown, failed: boolean): void {
    const record = slot.record as EventRecord;
    slot.record = undefined;
    this.#free.push(slot);
    this.#finish(record, error, failed);
    this.#drain(false);
  }

  #drain(woken: boolean): void {
    if (this.#draining) return;
    this.#draining = true;
    const core = this.core;
    while (this.running < this.concurrency) {
      if (woken) {
        woken = false;
        core.reserved--;
      } else if (core.running + core.reserved >= core.maxRunning || core.parked.size > 0) {
        if (!this.#parked && this.buffer.size > 0) {
          this.#parked = true;
          this.queued = true;
          core.parked.push(this, undefined, 0);
        }
        break;
      }
      const record = this.take();
      if (record === undefined) {
        core.release();
        break;
      }
      const context = this.buffer.aux;
      this.handOver(record);
      core.running++;
      this.running++;
      let result: unknown;
      try {
        result =
          context === undefined ? this.#call(record) : context.runInAsyncScope(this.#call, this, record);
      } catch (error) {
        this.#finish(record, error, true);
        continue;
      }
      if (!isPromise(result)) {
        if (!isThenable(result)) {
          this.#finish(record, undefined, false);
          continue;
        }
        // A foreign thenable may settle twice or synchronously; a native promise settles once, later.
        result = Promise.resolve(result);
      }
      const slot = this.#free.pop() ?? new Slot(this);
      slot.record = record;
      (result as Promise<unknown>).then(slot.ok, slot.fail);
    }
    this.#draining = false;
    if (woken) {
      // Woken, but the loop never ran (concurrency reached): pass the reserved slot on.
      core.reserved--;
      core.release();
    }
    if (core.onIdle !== undefined) core.checkIdle();
  }

  #finish(record: EventRecord, error: unknown, failed: boolean): void {
    const core = this.core;
    core.running--;
    this.running--;
    if (failed) {
      this.failures++;
      core.failures++;
      core.report(error, record, this);
    }
    EventRecord.trackerOf(record)?.done(error, failed);
    core.release();
  }

  #call(record: EventRecord): unknown {
    return this.any ? this.handler(record, record) : this.handler(record.payload, record);
  }
}

/** `subscribe`: an async iterator that takes events from the buffer as the consumer pulls. */
export class IteratorSink extends Sink implements AsyncIterableIterator<unknown> {
  readonly tracks = false;
  readonly #waiters = new Deque<(result: IteratorResult<unknown>) => void, (error: unknown) => void>(never);
  #ended = false;
  #error: unknown = undefined;
  #failed = false;

  constructor(
    core: Core,
    type: string | undefined,
    capacity: number,
    overflow: Overflow,
    signal: AbortSignal | undefined,
    unlink: (sink: Sink) => void,
    readonly any: boolean,
  ) {
    super(core, type, capacity, overflow, signal, unlink);
  }

  next(): Promise<IteratorResult<unknown>> {
    const record = this.take();
    if (record !== undefined) return Promise.resolve(this.#result(record));
    if (this.#failed) {
      this.#failed = false;
      return Promise.reject(this.#error);
    }
    if (this.#ended) {
      // The bus closed and everything buffered was read: the subscription ends.
      if (!this.disposed) this.unsubscribe();
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.#waiters.push(resolve, reject, 0));
  }

  return(): Promise<IteratorResult<unknown>> {
    this.unsubscribe();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Ends iteration once the buffer is read (the bus closed). */
  finish(): void {
    this.#ended = true;
    if (this.buffer.size === 0) this.unsubscribe();
  }

  protected wake(): void {
    while (this.#waiters.size > 0) {
      const record = this.take();
      if (record === undefined) return;
      const resolve = this.#waiters.shift()!;
      resolve(this.#result(record));
    }
  }

  protected ended(): void {
    this.#ended = true;
    const signal = this.signal;
    if (signal?.aborted === true) {
      // The consumer's signal ended it: the pending (or next) pull rejects with the reason.
      this.#error = signal.reason;
      this.#failed = true;
    }
    this.#flushWaiters();
  }

  #flushWaiters(): void {
    for (let resolve = this.#waiters.shift(); resolve !== undefined; resolve = this.#waiters.shift()) {
      if (this.#failed) {
        this.#failed = false;
        this.#waiters.aux!(this.#error);
      } else resolve({ value: undefined, done: true });
    }
  }

  #result(record: EventRecord): IteratorResult<unknown> {
    this.handOver(record);
    return { value: this.any ? record : record.payload, done: false };
  }
}

/** `once`: resolves with the first event and leaves. */
export class OnceSink extends Sink {
  readonly tracks = false;

  constructor(
    core: Core,
    type: string,
    signal: AbortSignal | undefined,
    unlink: (sink: Sink) => void,
    readonly resolve: (payload: unknown) => void,
    readonly reject: (error: unknown) => void,
  ) {
    super(core, type, 1, 'drop-newest', signal, unlink);
  }

  protected wake(): void {
    const record = this.take();
    if (record === undefined) return;
    this.handOver(record);
    this.unsubscribe();
    // Resolving with a payload reads its `then` (user code, which may emit): never inside the
    // fan-out of the emit that delivered it.
    queueMicrotask(() => this.resolve(record.payload));
  }

  protected ended(): void {
    if (this.delivered > 0) return;
    const signal = this.signal;
    this.reject(
      signal?.aborted === true ? signal.reason : new ClosedError(`once('${this.type}'): the bus closed`),
    );
  }
}
