import { ClosedError, InvalidInputError, QueueFullError, type TransportResetError } from '../errors.js';
import { coarseClock } from '../cache/coarse-clock.js';
import { channels } from '../internal/channels.js';
import type { Clock } from '../internal/clock.js';
import { AsyncResource } from 'node:async_hooks';
import { hostname } from 'node:os';
import { reportError, watchResult } from '../internal/report.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import * as v from '../internal/validate.js';
import { DedupTable, defaultDedupKey } from './dedup.js';
import {
  EventRecord,
  Tracker,
  type AnyBusEvent,
  type BusEvent,
  type EventMap,
  type EventName,
} from './event.js';
import { History } from './history.js';
import { TransportLink } from './link.js';
import { compareStreamIds, parseStreamId, type StreamId } from './stream-id.js';
import type { EventTransport, GroupEntry, TransportEntry } from './transport.js';
import {
  Core,
  FanOut,
  HandlerSink,
  type PendingEmit,
  IteratorSink,
  Offer,
  OnceSink,
  type Overflow,
  type Sink,
  type Subscription,
} from './sink.js';

const channel = channels('events', ['error', 'transport', 'dead-letter']);
const RESOLVED: Promise<void> = Promise.resolve();
const noop = (): void => undefined;
const OVERFLOWS: readonly Overflow[] = ['wait', 'drop-oldest', 'drop-newest', 'error'];

/** Options of {@link EventBus}. */
export interface EventBusOptions<Events extends EventMap> {
  /**
   * Handler calls running at once across the whole bus; further handlers wait for a slot (each
   * subscriber keeps its order). `Infinity` must be spelled. Each subscriber also has its own
   * bound, `concurrency` in `on()`, which is 1 by default: one handler alone runs up to 100 calls
   * at once only with `concurrency: 100`.
   * @default 100
   */
  readonly maxConcurrentHandlers?: number | undefined;
  /**
   * Events each subscriber may hold before its overflow policy applies (per subscriber,
   * overridable in `on` / `subscribe`). `Infinity` must be spelled.
   * @default 1024
   */
  readonly buffer?: number | undefined;
  /**
   * What a full subscriber does with one more event: `'wait'` makes `emit` wait for room
   * (backpressure); `'drop-oldest'` drops its oldest buffered event; `'drop-newest'` drops the
   * new one; `'error'` drops the new one and `emit` rejects with `QueueFullError` (subscribers
   * with room still get it). Drops are counted in `stats.dropped`.
   * @default 'wait'
   */
  readonly overflow?: Overflow | undefined;
  /**
   * Emits that may wait at once (for room under `overflow: 'wait'`). One more rejects with
   * `QueueFullError` before reaching any subscriber: the bound on callers that do not await
   * `emit`. `Infinity` must be spelled.
   * @default 10_000
   */
  readonly maxPendingEmits?: number | undefined;
  /**
   * Identical events (same {@link EventBusOptions.dedupKey}) within this many ms of the first are
   * delivered once; later ones resolve at once and count in `stats.deduplicated`. `0`: off.
   * @default 0
   */
  readonly dedupWindowMs?: number | string | undefined;
  /**
   * The identity of an event for dedup. Costs one call per emit while dedup is on.
   * @default the type plus a canonical form of the payload (object keys sorted), hashed with
   *   SHA-256 when longer than 128 characters
   */
  readonly dedupKey?: ((type: EventName<Events>, payload: Events[EventName<Events>]) => string) | undefined;
  /**
   * Keys the dedup table holds; at the bound the oldest goes first, even inside its window.
   * @default 100_000
   */
  readonly dedupMaxKeys?: number | undefined;
  /**
   * Events kept for {@link EventBus.history} and `replay` (a ring: the oldest goes first). `0`:
   * none.
   * @default 1000
   */
  readonly history?: number | undefined;
  /**
   * Time source (ms) for dedup windows, event times, lag, and when a consumer group claims next.
   * @default a monotonic clock read at most once per ms of event-loop time
   */
  readonly clock?: Clock | undefined;
  /**
   * Told about every handler that throws or rejects, with the event and the subscription whose
   * handler failed (the bus also counts it and publishes it on `sluice:events:error`), and about
   * every consumer-group event given up after `maxDeliveries`. Whatever this does, other
   * subscribers go on; a throw from it is reported on the channel only.
   */
  readonly onError?:
    ((error: unknown, event: BusEvent<Events>, subscription: Subscription) => void) | undefined;
  /** Name used in messages and stats. @default 'EventBus' */
  readonly name?: string | undefined;
  /**
   * Fans events out across processes through a shared log (`MemoryTransport`,
   * `RedisStreamTransport` from `sluice/events/redis`). `emit` then appends to the log and
   * resolves once appended; every bus on the log delivers every event to its subscribers in the
   * log's one order, its own included. Dedup is decided by the log's time, so every process
   * drops the same duplicates. The bus does not close the transport.
   */
  readonly transport?: EventTransport | undefined;
  /**
   * Where this bus starts reading the transport's log: `'new'` (events appended from now on),
   * `'oldest'` (everything the log still holds: a late process replays), or an entry id to
   * resume after.
   * @default 'new'
   */
  readonly start?: 'new' | 'oldest' | (string & {}) | undefined;
  /**
   * This process's consumer name in consumer groups (`on(type, handler, { group })`).
   * @default `<hostname>:<pid>:<random>`
   */
  readonly consumer?: string | undefined;
  /**
   * A group event taken by a consumer and not acknowledged within this many ms (its handler
   * failed, or the process died) is claimed and delivered again. A bus takes group events only
   * as fast as its group handlers run (their `concurrency`, summed), so this bounds one
   * handler call: make it longer than your slowest, or a slow success in one process may be
   * handled again by another.
   * @default 30_000
   */
  readonly claimAfterMs?: number | string | undefined;
  /**
   * A group event delivered this many times without success is given up: reported on
   * `sluice:events:dead-letter` and to `onError`, counted in `stats.deadLettered`, acknowledged.
   * @default 10
   */
  readonly maxDeliveries?: number | undefined;
}

/** Options of {@link EventBus.on} and {@link EventBus.onAny}. */
export interface OnOptions {
  /** Unsubscribes when aborted. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Handler calls of this subscriber running at once; events start in emit order. With `1`
   * they also finish in emit order.
   * @default 1
   */
  readonly concurrency?: number | undefined;
  /** This subscriber's buffer. @default the bus's `buffer` */
  readonly buffer?: number | undefined;
  /** This subscriber's overflow policy. @default the bus's `overflow` */
  readonly overflow?: Overflow | undefined;
  /**
   * Delivers up to this many of the latest matching events from the history first, then live
   * events, with no gap and no duplicate at the switch. At most `buffer`.
   * @default 0
   */
  readonly replay?: number | undefined;
  /**
   * A consumer group (needs a `transport`): each event of `type` is handled by one consumer of
   * the group across all processes instead of by every bus. At-least-once: the event is
   * acknowledged once every handler of the group in this bus succeeded; a failure leaves it
   * pending, to be delivered again after `claimAfterMs` (here or in another process). Every
   * process of a group should subscribe the same types: an event no handler here takes is
   * acknowledged without being handled (counted in `stats.dropped`).
   */
  readonly group?: string | undefined;
}

/** Options of {@link EventBus.subscribe} and {@link EventBus.subscribeAny}. */
export interface SubscribeOptions {
  /** Ends the iteration when aborted: the pending (or next) `next()` rejects with the reason. */
  readonly signal?: AbortSignal | undefined;
  /** Events buffered until the consumer pulls them. @default the bus's `buffer` */
  readonly buffer?: number | undefined;
  /** This subscriber's overflow policy. @default the bus's `overflow` */
  readonly overflow?: Overflow | undefined;
  /** As {@link OnOptions.replay}. @default 0 */
  readonly replay?: number | undefined;
}

/** Options of one emit. */
export interface EmitOptions {
  /**
   * Stops waiting for room: the emit rejects with `signal.reason`; subscribers that already took
   * the event keep it, the others never get it.
   */
  readonly signal?: AbortSignal | undefined;
}

/** Options of {@link EventBus.close}. */
export interface CloseOptions {
  /**
   * Stops waiting: `close` rejects with `signal.reason`, waiting emits reject with
   * `ClosedError`, buffered events are dropped (counted); running handlers finish on their own.
   */
  readonly signal?: AbortSignal | undefined;
}

/** Counters and gauges of a bus: {@link EventBus.stats}. */
export interface EventBusStats {
  /** Events accepted by `emit` (after dedup). */
  readonly emitted: number;
  /** Deliveries to subscribers (one event to three subscribers counts three). */
  readonly delivered: number;
  /** Emits suppressed as duplicates. */
  readonly deduplicated: number;
  /** Deliveries lost to overflow policies or unsubscribes. */
  readonly dropped: number;
  /** Events waiting in subscriber buffers now. */
  readonly buffered: number;
  /** Emits waiting for room now. */
  readonly waiting: number;
  /** Handler calls running now. */
  readonly running: number;
  /** Handler calls that threw or rejected. */
  readonly failures: number;
  /** Longest time, in ms, between an emit and the start of a handler for it. */
  readonly maxLagMs: number;
  /** Live subscriptions. */
  readonly subscribers: number;
  /** Entries in the dedup table. */
  readonly dedupKeys: number;
  /** Transport calls that failed (and were retried: reads, group reads, acks). */
  readonly transportErrors: number;
  /** Emits whose append to the transport failed (they rejected). */
  readonly appendFailures: number;
  /** Group events given up after `maxDeliveries`. */
  readonly deadLettered: number;
}

/** A list of the subscribers of one event type, in subscription order. */
class SinkList {
  head: Sink | undefined = undefined;
  tail: Sink | undefined = undefined;
  size = 0;
}

/**
 * A typed in-process event bus that a service can leave running: every subscriber has its own
 * bounded buffer and its own order, handlers run under one bus-wide concurrency bound, and
 * nothing it holds grows without a bound.
 *
 * - **Order**: a subscriber receives events in emit order; with `concurrency: 1` (the default)
 *   its handler runs them one at a time in that order.
 * - **Bound**: each subscriber buffers at most `buffer` events; past it the overflow policy
 *   applies (`'wait'` by default: `emit` waits — backpressure). History and dedup tables are
 *   rings and bounded maps.
 * - **Isolation**: a slow subscriber never delays a fast one beyond its own buffer. A handler
 *   that throws or rejects is counted, reported to `onError` and `sluice:events:error`, and
 *   never becomes an unhandled rejection.
 * - **Async start**: handlers never run inside `emit`; each runs in the async context of the
 *   `emit` that produced its event (a replayed event: of the `on` call that asked for it; an
 *   event read from a transport: of the bus's creation).
 * - **Shutdown**: `close()` refuses new emits, then resolves once every handler has run the
 *   events already accepted.
 *
 * @example
 * ```ts
 * import { EventBus } from 'sluice/events';
 * const bus = new EventBus<{ 'job.done': { id: string } }>({ dedupWindowMs: 1000 });
 * using sub = bus.on('job.done', async ({ id }) => { await index(id); });
 * await bus.emit('job.done', { id: '42' });
 * await bus.close();
 * ```
 */
export class EventBus<Events extends EventMap = Record<string, unknown>> implements AsyncDisposable {
  readonly #name: string;
  readonly #core: Core;
  readonly #fan: FanOut;
  readonly #capacity: number;
  readonly #overflow: Overflow;
  readonly #maxPendingEmits: number;
  readonly #lists = new Map<string, SinkList>();
  readonly #any = new SinkList();
  readonly #history: History;
  readonly #dedup: DedupTable | undefined;
  readonly #dedupWindowMs: number;
  readonly #dedupKey: ((type: string, payload: unknown) => string) | undefined;
  readonly #onError:
    ((error: unknown, event: BusEvent<Events>, subscription: Subscription) => void) | undefined;
  #seq = 0;
  #emitted = 0;
  #deduplicated = 0;
  #subscribers = 0;
  #closed = false;
  #closing: Promise<void> | undefined = undefined;
  readonly #link: TransportLink | undefined;
  /** Group name → event type → handlers. */
  readonly #groups = new Map<string, Map<string, SinkList>>();
  /** `emitAndWait` over a transport: appended id → its tracker, until the entry is read. */
  readonly #awaiting = new Map<string, Tracker>();
  /** `close({ signal })` gave up: the link reads nothing more, so nothing is awaited any more. */
  #abandoned = false;
  /** Async context of events read from the transport: the bus's creator's. */
  readonly #linkContext = new AsyncResource('sluice.events');
  readonly #maxDeliveries: number;
  #deadLettered = 0;

  constructor(options?: EventBusOptions<Events>) {
    v.options('options', options);
    const o = options ?? {};
    const maxRunning = v.positiveInteger('maxConcurrentHandlers', o.maxConcurrentHandlers ?? 100, true);
    this.#capacity = v.positiveInteger('buffer', o.buffer ?? 1024, true);
    this.#overflow = v.oneOf('overflow', o.overflow ?? 'wait', OVERFLOWS);
    this.#maxPendingEmits = v.positiveInteger('maxPendingEmits', o.maxPendingEmits ?? 10_000, true);
    this.#dedupWindowMs = v.duration('dedupWindowMs', o.dedupWindowMs ?? 0, true);
    v.optionalFunction('dedupKey', o.dedupKey);
    this.#dedupKey = o.dedupKey as ((type: string, payload: unknown) => string) | undefined;
    const dedupMaxKeys = v.positiveInteger('dedupMaxKeys', o.dedupMaxKeys ?? 100_000, true);
    this.#history = new History(v.nonNegativeInteger('history', o.history ?? 1000));
    const clock = o.clock === undefined ? coarseClock : v.clock('clock', o.clock);
    v.optionalFunction('onError', o.onError);
    this.#onError = o.onError;
    this.#name = o.name === undefined ? 'EventBus' : v.string('name', o.name);
    this.#dedup = this.#dedupWindowMs > 0 ? new DedupTable(this.#dedupWindowMs, dedupMaxKeys) : undefined;
    this.#core = new Core(maxRunning, clock, (error, record, sink) => this.#report(error, record, sink));
    this.#fan = new FanOut(this.#core);
    this.#maxDeliveries = v.positiveInteger('maxDeliveries', o.maxDeliveries ?? 10, true);
    const claimAfterMs = v.positiveDuration('claimAfterMs', o.claimAfterMs ?? 30_000);
    const start = o.start ?? 'new';
    if (start !== 'new' && start !== 'oldest' && parseStreamId('start', start) instanceof Error) {
      throw new TypeError(v.expectation('start', "'new', 'oldest' or a stream id ('<ms>-<seq>')", start));
    }
    const consumer =
      o.consumer === undefined
        ? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`
        : v.string('consumer', o.consumer);
    if (o.transport === undefined) this.#link = undefined;
    else {
      const t = o.transport as unknown;
      if (typeof t !== 'object' || t === null || typeof (t as EventTransport).read !== 'function') {
        throw new TypeError(v.expectation('transport', 'an EventTransport or undefined', t));
      }
      this.#link = new TransportLink(
        o.transport,
        {
          deliver: (entry) => this.#deliver(entry),
          deliverGroup: (group, entry, settle) => this.#deliverGroup(group, entry, settle),
          lost: (newest, error) => this.#lost(newest, error),
          report: (error, where) => reportError(channel.transport, error, this, where),
          groupCapacity: (group) => this.#groupCapacity(group),
        },
        { start, consumer, claimAfterMs, clock: this.#core.clock },
      );
    }
  }

  /** The bus's name. */
  get name(): string {
    return this.#name;
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Counters and gauges, read synchronously. */
  get stats(): EventBusStats {
    const core = this.#core;
    return {
      emitted: this.#emitted,
      delivered: core.delivered,
      deduplicated: this.#deduplicated,
      dropped: core.dropped,
      buffered: core.buffered,
      waiting: core.pendingEmits,
      running: core.running,
      failures: core.failures,
      maxLagMs: core.maxLagMs,
      subscribers: this.#subscribers,
      dedupKeys: this.#dedup?.size ?? 0,
      transportErrors: this.#link?.transportErrors ?? 0,
      appendFailures: this.#link?.appendFailures ?? 0,
      deadLettered: this.#deadLettered,
    };
  }

  /**
   * Calls `handler(payload, event)` for each `type` event, in emit order, starting
   * asynchronously. Returns the subscription (a `Disposable`: `using sub = bus.on(...)`).
   *
   * @example
   * ```ts
   * const ac = new AbortController();
   * bus.on('job.done', ({ id }) => log(id), { signal: ac.signal, concurrency: 4 });
   * ```
   */
  on<K extends EventName<Events>>(
    type: K,
    handler: (payload: Events[K], event: BusEvent<Events, K>) => unknown,
    options?: OnOptions,
  ): Subscription {
    v.string('type', type);
    return this.#addHandler(
      type,
      handler as unknown as (payload: unknown, event: EventRecord) => unknown,
      options,
      false,
    );
  }

  /**
   * Calls `handler(event)` for every event of every type, in emit order.
   *
   * @example
   * ```ts
   * bus.onAny((event) => audit(event.type, event.payload));
   * ```
   */
  onAny(handler: (event: AnyBusEvent<Events>) => unknown, options?: OnOptions): Subscription {
    return this.#addHandler(
      undefined,
      handler as (payload: unknown, event: EventRecord) => unknown,
      options,
      true,
    );
  }

  /**
   * Resolves with the payload of the next `type` event. Rejects with `signal.reason` when
   * aborted first, with `ClosedError` when the bus closes first.
   *
   * @example
   * ```ts
   * const { id } = await bus.once('job.done', { signal: AbortSignal.timeout(5000) });
   * ```
   */
  once<K extends EventName<Events>>(
    type: K,
    options?: { readonly signal?: AbortSignal | undefined },
  ): Promise<Events[K]> {
    const invalid = v.invalidCallOptions(options ?? {}) ?? v.checkInput(() => v.string('type', type));
    if (invalid !== undefined) return Promise.reject(invalid);
    const signal = options?.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    if (this.#closed) return Promise.reject(new ClosedError(`${this.#name} is closed`));
    return new Promise<Events[K]>((resolve, reject) => {
      const sink = new OnceSink(
        this.#core,
        type,
        signal,
        (s) => this.#remove(s),
        resolve as (payload: unknown) => void,
        reject,
      );
      this.#insert(sink);
    });
  }

  /**
   * An async iterator over `type` events with its own bounded buffer; `for await` pulls them in
   * emit order. Breaking out of the loop (or disposing it) unsubscribes.
   *
   * @example
   * ```ts
   * for await (const { id } of bus.subscribe('job.done', { signal })) await index(id);
   * ```
   */
  subscribe<K extends EventName<Events>>(
    type: K,
    options?: SubscribeOptions,
  ): AsyncIterableIterator<Events[K]> & Subscription {
    v.string('type', type);
    return this.#addIterator(type, options, false) as unknown as AsyncIterableIterator<Events[K]> &
      Subscription;
  }

  /**
   * An async iterator over every event, as {@link EventBus.subscribe}.
   *
   * @example
   * ```ts
   * for await (const event of bus.subscribeAny()) console.log(event.type);
   * ```
   */
  subscribeAny(options?: SubscribeOptions): AsyncIterableIterator<AnyBusEvent<Events>> & Subscription {
    return this.#addIterator(undefined, options, true) as unknown as AsyncIterableIterator<
      AnyBusEvent<Events>
    > &
      Subscription;
  }

  /**
   * Publishes one event. Resolves once every subscriber has taken it into its buffer (at once
   * unless one is full under `overflow: 'wait'`); handlers run later. Rejects with
   * `ClosedError` after `close()`, `QueueFullError` under `overflow: 'error'` or past
   * `maxPendingEmits`.
   *
   * @example
   * ```ts
   * await bus.emit('job.done', { id: '42' });
   * ```
   */
  emit<K extends EventName<Events>>(type: K, payload: Events[K], options?: EmitOptions): Promise<void> {
    const signal = options === undefined ? undefined : options.signal;
    const refused = this.#refuse(type, options, signal);
    if (refused !== undefined) return refused;
    return this.#publish(type, payload, signal, undefined);
  }

  /**
   * Publishes several events of one type in order; resolves when every subscriber has taken all
   * of them. The array is read once, before this returns.
   *
   * @example
   * ```ts
   * await bus.emitBatch('job.done', [{ id: '1' }, { id: '2' }]);
   * ```
   */
  emitBatch<K extends EventName<Events>>(
    type: K,
    payloads: readonly Events[K][],
    options?: EmitOptions,
  ): Promise<void> {
    const signal = options === undefined ? undefined : options.signal;
    const refused = this.#refuse(type, options, signal);
    if (refused !== undefined) return refused;
    if (!Array.isArray(payloads)) return Promise.reject(v.invalidInput('payloads', 'an array', payloads));
    const copy = Array.from(payloads);
    // One call, one async context for all of its events.
    const context = new AsyncResource('sluice.events');
    let waits: Promise<void>[] | undefined;
    for (const payload of copy) {
      const p = this.#publish(type, payload, signal, undefined, context);
      if (p !== RESOLVED) (waits ??= []).push(p);
    }
    return waits === undefined ? RESOLVED : Promise.all(waits).then(() => undefined);
  }

  /**
   * Publishes one event and resolves when every handler subscribed to it has finished with it;
   * rejects with an `AggregateError` of every handler failure (and of deliveries lost to an
   * overflow policy), not just the first.
   *
   * @example
   * ```ts
   * try { await bus.emitAndWait('job.done', { id }); }
   * catch (err) { if (err instanceof AggregateError) for (const e of err.errors) log(e); }
   * ```
   */
  emitAndWait<K extends EventName<Events>>(
    type: K,
    payload: Events[K],
    options?: EmitOptions,
  ): Promise<void> {
    const signal = options === undefined ? undefined : options.signal;
    const refused = this.#refuse(type, options, signal);
    if (refused !== undefined) return refused;
    return new Promise<void>((resolve, reject) => {
      const tracker = new Tracker(`'${type}'`, resolve, reject);
      const accepted = this.#publish(type, payload, signal, tracker);
      // Over a transport the tracker is armed when the read loop delivers the entry.
      if (this.#link !== undefined) accepted.catch(reject);
      else if (accepted === RESOLVED) tracker.arm();
      else accepted.then(() => tracker.arm(), reject);
    });
  }

  /**
   * The latest events, oldest first (at most `history` of them), all or only those of `type`. A
   * new array each call.
   *
   * @example
   * ```ts
   * const recent = bus.history('job.done').map((e) => e.payload.id);
   * ```
   */
  history<K extends EventName<Events>>(type?: K): BusEvent<Events, K>[] {
    return this.#history.list(type, Infinity) as unknown as BusEvent<Events, K>[];
  }

  /**
   * Stops intake (new emits reject with `ClosedError`), lets waiting emits and buffered events
   * run through their handlers, ends iterators once they are read, and resolves when no handler
   * runs. With `signal`, see {@link CloseOptions.signal}.
   *
   * @example
   * ```ts
   * await bus.close({ signal: AbortSignal.timeout(10_000) });
   * ```
   */
  close(options?: CloseOptions): Promise<void> {
    const invalid = v.invalidCallOptions(options ?? {});
    if (invalid !== undefined) return Promise.reject(invalid);
    if (!this.#closed) {
      this.#closed = true;
      const idle = (): Promise<void> =>
        new Promise<void>((resolve) => {
          this.#core.onIdle = () => {
            this.#core.onIdle = undefined;
            resolve();
          };
          this.#core.checkIdle();
        });
      const link = this.#link;
      // Over a transport: appends finish, the read loop delivers up to this bus's own last
      // event, then the loops stop; handlers then run what was delivered.
      this.#closing = (link === undefined ? idle() : link.close().then(idle)).then(() => {
        // Nothing is left to run: handler subscriptions end (disposed, unlinked).
        this.#each((sink) => {
          if (sink instanceof HandlerSink) sink.unsubscribe();
        });
      });
      const end = (): void =>
        this.#each((sink) => {
          if (sink instanceof IteratorSink) sink.finish();
          else if (sink instanceof OnceSink) sink.unsubscribe();
        });
      if (link === undefined) end();
      else void this.#closing.then(end);
    }
    const closing = this.#closing!;
    const signal = options?.signal;
    if (signal === undefined) return closing;
    if (signal.aborted) {
      this.#abandon();
      return Promise.reject(signal.reason as Error);
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = linkSignal(signal, () => {
        this.#abandon();
        reject(signal.reason as Error);
      });
      void closing.then(() => {
        unlinkSignal(signal, onAbort);
        resolve();
      });
    });
  }

  /** `close()`, for `await using bus = new EventBus()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Returns a rejected promise when an emit must not proceed. */
  #refuse(
    type: unknown,
    options: EmitOptions | undefined,
    signal: AbortSignal | undefined,
  ): Promise<never> | undefined {
    if (this.#closed) return Promise.reject(new ClosedError(`${this.#name} is closed`));
    if (typeof type !== 'string') return Promise.reject(v.invalidInput('type', 'a string', type));
    if (options !== undefined) {
      const invalid = v.invalidCallOptions(options);
      if (invalid !== undefined) return Promise.reject(invalid);
      if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    }
    return undefined;
  }

  #publish(
    type: string,
    payload: unknown,
    signal: AbortSignal | undefined,
    tracker: Tracker | undefined,
    context?: AsyncResource,
  ): Promise<void> {
    const link = this.#link;
    if (link !== undefined) {
      if (link.outgoing >= this.#maxPendingEmits) {
        return Promise.reject(
          new QueueFullError(
            `${this.#name}: ${link.outgoing} emits wait to be appended (maxPendingEmits: ${this.#maxPendingEmits})`,
          ),
        );
      }
      const awaiting = this.#awaiting;
      const appended = link.append(
        type,
        payload,
        tracker === undefined
          ? undefined
          : (id) => {
              // Appended after close gave up: the entry will never be read here.
              if (this.#abandoned)
                tracker.fail(new ClosedError(`${this.#name} closed before the event was read back`));
              else awaiting.set(id, tracker);
            },
      );
      return appended.then(noop);
    }
    const now = this.#core.clock.now();
    return this.#dispatch(type, payload, now, now, undefined, tracker, context, signal);
  }

  /** Dedup, history and fan-out of one event to the local subscribers. */
  #dispatch(
    type: string,
    payload: unknown,
    now: number,
    dedupTime: number,
    id: string | undefined,
    tracker: Tracker | undefined,
    context: AsyncResource | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const core = this.#core;
    // Refused before dedup records the key: a retry of a refused emit is not a duplicate. An
    // entry read from a transport (`id`) is never refused: the read loop waits for room itself.
    if (
      id === undefined &&
      core.pendingEmits >= this.#maxPendingEmits &&
      (this.#blocks(this.#lists.get(type)) || this.#blocks(this.#any))
    ) {
      return Promise.reject(
        new QueueFullError(
          `${this.#name}: ${core.pendingEmits} emits are waiting (maxPendingEmits: ${this.#maxPendingEmits})`,
        ),
      );
    }
    if (this.#dedup !== undefined) {
      let key: string;
      try {
        key = this.#dedupKey === undefined ? defaultDedupKey(type, payload) : this.#dedupKey(type, payload);
        if (typeof key !== 'string') throw v.invalidInput('dedupKey()', 'to return a string', key);
      } catch (error) {
        return Promise.reject(
          error instanceof InvalidInputError
            ? error
            : new InvalidInputError(`dedup key of '${type}' failed`, { cause: error }),
        );
      }
      if (this.#dedup.seen(key, dedupTime)) {
        this.#deduplicated++;
        return RESOLVED;
      }
    }
    const typed = this.#lists.get(type); // after dedupKey, which may have (un)subscribed
    const record = new EventRecord(type, payload, ++this.#seq, now, id, tracker);
    this.#emitted++;
    this.#history.push(record);
    if ((typed === undefined || typed.size === 0) && this.#any.size === 0) return RESOLVED;
    return this.#fanOut(record, typed, this.#any, context ?? new AsyncResource('sluice.events'), signal);
  }

  /** Offers `record` to every live subscriber of `typed` and `any`. */
  #fanOut(
    record: EventRecord,
    typed: SinkList | undefined,
    any: SinkList | undefined,
    context: AsyncResource,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const fan = this.#fan;
    fan.record = record;
    fan.context = context;
    fan.signal = signal;
    fan.pending = undefined;
    let refused = 0;
    let untracked = 0;
    for (let s = typed?.head; s !== undefined; s = s.after) {
      if (!s.disposed && s.offer(fan) === Offer.Refused) {
        refused++;
        if (!s.tracks) untracked++;
      }
    }
    for (let s = any?.head; s !== undefined; s = s.after) {
      if (!s.disposed && s.offer(fan) === Offer.Refused) {
        refused++;
        if (!s.tracks) untracked++;
      }
    }
    const pending = fan.pending as PendingEmit | undefined;
    fan.pending = undefined;
    fan.context = undefined;
    fan.signal = undefined;
    if (refused > 0) {
      const tracker = EventRecord.trackerOf(record);
      const error = new QueueFullError(
        `${this.#name}: ${refused} subscriber(s) of '${record.type}' refused the event (overflow: 'error')`,
      );
      if (tracker !== undefined) {
        // emitAndWait: a refusal is one of its failures, and it still waits for the handlers that
        // took the event (handler refusals are already in the tracker; add the iterators').
        if (untracked > 0) {
          tracker.remaining++;
          tracker.done(error, true);
        }
      } else if (pending === undefined) return Promise.reject(error);
      else return pending.promise.then(() => Promise.reject(error));
    }
    return pending === undefined ? RESOLVED : pending.promise;
  }

  /** Group entries this bus takes at once: the group handlers' concurrency, summed. */
  #groupCapacity(group: string): number {
    let capacity = 0;
    for (const list of this.#groups.get(group)?.values() ?? []) {
      for (let s = list.head; s !== undefined; s = s.after) {
        if (s instanceof HandlerSink && !s.disposed) capacity += s.concurrency;
      }
    }
    return capacity;
  }

  /** An entry read from the transport's log: delivered to the local subscribers. */
  #deliver(entry: TransportEntry): Promise<void> {
    let tracker: Tracker | undefined;
    if (this.#awaiting.size > 0) {
      tracker = this.#awaiting.get(entry.id);
      if (tracker !== undefined) this.#awaiting.delete(entry.id);
      this.#skipAwaited(entry.id);
    }
    if (entry.error !== undefined) {
      reportError(channel.transport, entry.error, this, `entry ${entry.id}`);
      tracker?.fail(entry.error);
      return RESOLVED;
    }
    const now = this.#core.clock.now();
    let accepted = this.#dispatch(
      entry.type,
      entry.payload,
      now,
      entry.time,
      entry.id,
      tracker,
      this.#linkContext,
      undefined,
    );
    if (tracker !== undefined) {
      if (accepted === RESOLVED) tracker.arm();
      else accepted = accepted.then(() => tracker.arm());
    }
    // The read loop waits for room (backpressure) but never fails on a subscriber's refusal.
    return accepted === RESOLVED ? RESOLVED : accepted.then(noop, noop);
  }

  /**
   * The read loop is at `id`: awaited entries before it (in append order, the map's) were
   * trimmed from the log before this bus read them, and never will be.
   */
  #skipAwaited(id: string): void {
    const at = parseStreamId('id', id);
    if (at instanceof Error) return;
    for (const [key, tracker] of this.#awaiting) {
      const awaited = parseStreamId('id', key);
      if (!(awaited instanceof Error) && compareStreamIds(awaited, at) >= 0) break;
      this.#awaiting.delete(key);
      tracker.fail(
        new QueueFullError(`${this.#name}: event ${key} was trimmed from the log before this bus read it`),
      );
    }
  }

  /** The log was lost: emitAndWait of events above its successor's `newest` id reject. */
  #lost(newest: StreamId, error: TransportResetError): void {
    for (const [key, tracker] of this.#awaiting) {
      const id = parseStreamId('id', key);
      if (id instanceof Error || compareStreamIds(id, newest) > 0) {
        this.#awaiting.delete(key);
        tracker.fail(error);
      }
    }
  }

  /** An entry of consumer group `group`: delivered to the group's handlers here. */
  #deliverGroup(group: string, entry: GroupEntry, settle: (ack: boolean) => void): Promise<void> {
    if (entry.error !== undefined) {
      // An entry no process can decode never will: acknowledged, after reporting it.
      reportError(channel.transport, entry.error, this, `entry ${entry.id} of group ${group}`);
      settle(true);
      return RESOLVED;
    }
    const typed = this.#groups.get(group)?.get(entry.type);
    if (typed === undefined || typed.size === 0) {
      // No handler of this group here any more (all unsubscribed): left pending, for the
      // group's other consumers. A type this bus's group never handles: acknowledged, counted.
      if (this.#groupCapacity(group) === 0) settle(false);
      else {
        this.#core.dropped++;
        settle(true);
      }
      return RESOLVED;
    }
    const now = this.#core.clock.now();
    if (entry.deliveries > this.#maxDeliveries) {
      this.#deadLettered++;
      if (channel['dead-letter'].hasSubscribers) channel['dead-letter'].publish({ bus: this, group, entry });
      const error = new QueueFullError(
        `${this.#name}: event ${entry.id} of group ${group} failed ${entry.deliveries - 1} deliveries (maxDeliveries: ${this.#maxDeliveries})`,
      );
      const record = new EventRecord(entry.type, entry.payload, ++this.#seq, now, entry.id, undefined);
      this.#core.report(error, record, typed.head!);
      settle(true);
      return RESOLVED;
    }
    const tracker = new Tracker(
      `'${entry.type}' (${entry.id})`,
      () => settle(true),
      () => settle(false),
      true,
    );
    const record = new EventRecord(entry.type, entry.payload, ++this.#seq, now, entry.id, tracker);
    const accepted = this.#fanOut(record, typed, undefined, this.#linkContext, undefined);
    if (accepted === RESOLVED) {
      tracker.arm();
      return RESOLVED;
    }
    return accepted.then(
      () => tracker.arm(),
      () => tracker.arm(),
    );
  }

  #blocks(list: SinkList | undefined): boolean {
    for (let s = list?.head; s !== undefined; s = s.after) if (!s.disposed && s.wouldBlock()) return true;
    return false;
  }

  #addHandler(
    type: string | undefined,
    handler: (payload: unknown, event: EventRecord) => unknown,
    options: OnOptions | undefined,
    any: boolean,
  ): Subscription {
    v.isFunction('handler', handler);
    v.options('options', options);
    const o = options ?? {};
    v.abortSignal('signal', o.signal);
    const concurrency = v.positiveInteger('concurrency', o.concurrency ?? 1, true);
    const [capacity, overflow, replay] = this.#sinkOptions(o);
    const group = o.group === undefined ? undefined : v.string('group', o.group);
    if (group !== undefined) {
      if (this.#link === undefined) throw new TypeError('`group` needs the bus to have a `transport`');
      if (type === undefined) throw new TypeError('`group` applies to on(type, …), not to onAny');
      if (replay > 0) throw new TypeError('`replay` does not apply to a consumer group (the log replays)');
      let lists = this.#groups.get(group);
      if (lists === undefined) this.#groups.set(group, (lists = new Map<string, SinkList>()));
      const groupLists = lists;
      const sink = new HandlerSink(
        this.#core,
        type,
        capacity,
        overflow,
        o.signal,
        (s) => this.#remove(s, groupLists),
        concurrency,
        handler,
        false,
      );
      if (sink.signal?.aborted === true) {
        sink.unsubscribe();
        return sink;
      }
      this.#insert(sink, groupLists);
      this.#link.joinGroup(group);
      return sink;
    }
    const sink = new HandlerSink(
      this.#core,
      type,
      capacity,
      overflow,
      o.signal,
      (s) => this.#remove(s),
      concurrency,
      handler,
      any,
    );
    return this.#attach(sink, replay);
  }

  #addIterator(type: string | undefined, options: SubscribeOptions | undefined, any: boolean): IteratorSink {
    v.options('options', options);
    const o = options ?? {};
    v.abortSignal('signal', o.signal);
    const [capacity, overflow, replay] = this.#sinkOptions(o);
    const sink = new IteratorSink(
      this.#core,
      type,
      capacity,
      overflow,
      o.signal,
      (s) => this.#remove(s),
      any,
    );
    this.#attach(sink, replay);
    if (this.#closed) sink.finish();
    return sink;
  }

  #sinkOptions(o: {
    buffer?: number | undefined;
    overflow?: Overflow | undefined;
    replay?: number | undefined;
  }): [number, Overflow, number] {
    const capacity = o.buffer === undefined ? this.#capacity : v.positiveInteger('buffer', o.buffer, true);
    const overflow = o.overflow === undefined ? this.#overflow : v.oneOf('overflow', o.overflow, OVERFLOWS);
    const replay = v.nonNegativeInteger('replay', o.replay ?? 0);
    if (replay > capacity) {
      throw new RangeError(v.expectation('replay', `at most the subscriber's buffer (${capacity})`, replay));
    }
    return [capacity, overflow, replay];
  }

  #attach(sink: Sink, replay: number): Sink {
    if (sink.signal?.aborted === true) {
      sink.unsubscribe();
      return sink;
    }
    if (replay > 0) {
      const context = new AsyncResource('sluice.events');
      for (const record of this.#history.list(sink.type, replay)) sink.push(record.untracked(), context);
    }
    this.#insert(sink);
    return sink;
  }

  /** Appends `sink` to its list: `lists` (the bus's, or a group's) by type, or `onAny`'s. */
  #insert(sink: Sink, lists = this.#lists): void {
    let list: SinkList;
    if (sink.type === undefined) list = this.#any;
    else {
      let typed = lists.get(sink.type);
      if (typed === undefined) lists.set(sink.type, (typed = new SinkList()));
      list = typed;
    }
    sink.before = list.tail;
    if (list.tail === undefined) list.head = sink;
    else list.tail.after = sink;
    list.tail = sink;
    list.size++;
    this.#subscribers++;
    sink.listen();
  }

  /** Unlinks in O(1); `sink.after` is kept so an emit walking the list can step past it. */
  #remove(sink: Sink, lists = this.#lists): void {
    const list = sink.type === undefined ? this.#any : lists.get(sink.type);
    if (list === undefined) return;
    const { before: prev, after: next } = sink;
    if (prev === undefined) {
      if (list.head !== sink) return; // never linked (aborted before attach)
      list.head = next;
    } else prev.after = next;
    if (next === undefined) list.tail = prev;
    else next.before = prev;
    sink.before = undefined;
    list.size--;
    this.#subscribers--;
    if (list.size === 0 && list !== this.#any) lists.delete(sink.type!);
  }

  #each(fn: (sink: Sink) => void): void {
    const lists = [...this.#lists.values(), this.#any];
    for (const groupLists of this.#groups.values()) lists.push(...groupLists.values());
    for (const list of lists) {
      for (let s = list.head; s !== undefined; s = s.after) fn(s);
    }
  }

  /** `close({ signal })` gave up: refuse what waits, drop what is buffered. */
  #abandon(): void {
    this.#abandoned = true;
    this.#link?.abort();
    for (const tracker of this.#awaiting.values()) {
      tracker.fail(new ClosedError(`${this.#name} closed before the event was read back`));
    }
    this.#awaiting.clear();
    this.#each((sink) => {
      const blocked = sink.blocked;
      if (blocked !== undefined) {
        for (let p = blocked.peek(); p !== undefined; p = blocked.peek()) {
          p.withdraw(new ClosedError(`${this.#name} closed before the event was taken`));
        }
      }
      if (sink instanceof HandlerSink) sink.unsubscribe();
    });
  }

  #report(error: unknown, record: EventRecord, sink: Sink): void {
    reportError(channel.error, error, this, `handler of '${record.type}'`);
    const onError = this.#onError;
    if (onError === undefined) return;
    try {
      watchResult(
        onError(error, record as unknown as BusEvent<Events>, sink),
        channel.error,
        this,
        'onError',
      );
    } catch (thrown) {
      reportError(channel.error, thrown, this, 'onError');
    }
  }
}
