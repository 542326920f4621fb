/**
 * The event types a bus carries: a map from event name to payload type, written as an interface
 * or a type literal.
 *
 * @example
 * ```ts
 * interface Events {
 *   'agent.updated': { id: string; status: 'idle' | 'busy' };
 *   'job.done': { id: string };
 * }
 * const bus = new EventBus<Events>();
 * ```
 */
export type EventMap = object;

/** The names of `Events` (its string keys). */
export type EventName<Events extends EventMap> = keyof Events & string;

/**
 * One event as the bus recorded it: what {@link EventBus.history} returns and what a handler
 * receives as its second argument. Shared by every subscriber of the event: read-only.
 */
export interface BusEvent<Events extends EventMap, K extends EventName<Events> = EventName<Events>> {
  /** The event name. */
  readonly type: K;
  /** The payload given to `emit` (not copied: handlers share it). */
  readonly payload: Events[K];
  /** Position in this bus's emit order, from 1. */
  readonly seq: number;
  /** When the bus took the event in, by the bus's clock (ms). */
  readonly time: number;
  /** The id the transport gave the event (`'1700000000000-0'`), when the bus has a transport. */
  readonly id: string | undefined;
}

/** Any event of `Events`, discriminated by `type`: what an `onAny` handler receives. */
export type AnyBusEvent<Events extends EventMap> = {
  [K in EventName<Events>]: BusEvent<Events, K>;
}[EventName<Events>];

/** Tracks the handlers of one `emitAndWait` event: settles when each has finished. */
export class Tracker {
  remaining = 0;
  errors: unknown[] | undefined = undefined;
  #armed = false;
  readonly #resolve: () => void;
  readonly #reject: (error: unknown) => void;
  readonly #label: string;

  /**
   * `strict`: a subscriber that leaves without running the handler (unsubscribed, or the bus
   * gave up closing) counts as a failure — a consumer-group event must then stay unacknowledged.
   * Otherwise (`emitAndWait`) it only stops being waited for.
   */
  constructor(
    label: string,
    resolve: () => void,
    reject: (error: unknown) => void,
    readonly strict = false,
  ) {
    this.#label = label;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** A subscriber left with the event unhandled. */
  left(): void {
    if (this.strict) this.done(new Error(`${this.#label}: the subscriber left before handling it`), true);
    else this.done();
  }

  /** Called once every subscriber has been offered the event. */
  arm(): void {
    this.#armed = true;
    if (this.remaining === 0) this.#settle();
  }

  done(error?: unknown, failed = false): void {
    if (failed) (this.errors ??= []).push(error);
    if (--this.remaining === 0 && this.#armed) this.#settle();
  }

  /** Settles at once with `error` (the event will never be delivered). */
  fail(error: unknown): void {
    this.#reject(error);
  }

  #settle(): void {
    const errors = this.errors;
    if (errors === undefined) this.#resolve();
    else this.#reject(new AggregateError(errors, `${errors.length} handler(s) of ${this.#label} failed`));
  }
}

/**
 * The record behind {@link BusEvent}: one per accepted emit, shared by every subscriber. Its
 * fields are private with getters, so a handler cannot rewrite what other subscribers and
 * `history()` see.
 */
export class EventRecord {
  readonly #type: string;
  readonly #payload: unknown;
  readonly #seq: number;
  readonly #time: number;
  readonly #id: string | undefined;
  readonly #tracker: Tracker | undefined;

  constructor(
    type: string,
    payload: unknown,
    seq: number,
    time: number,
    id: string | undefined,
    tracker: Tracker | undefined,
  ) {
    this.#type = type;
    this.#payload = payload;
    this.#seq = seq;
    this.#time = time;
    this.#id = id;
    this.#tracker = tracker;
  }

  get type(): string {
    return this.#type;
  }
  get payload(): unknown {
    return this.#payload;
  }
  get seq(): number {
    return this.#seq;
  }
  get time(): number {
    return this.#time;
  }
  get id(): string | undefined {
    return this.#id;
  }

  /**
   * This record for a subscriber that was not there at the emit (replay): without the
   * `emitAndWait` tracker, so that call never waits for, or counts, a late subscriber.
   */
  untracked(): EventRecord {
    return this.#tracker === undefined
      ? this
      : new EventRecord(this.#type, this.#payload, this.#seq, this.#time, this.#id, undefined);
  }

  /** The `emitAndWait` tracker of `record`, if any (not reachable from a handler). */
  static trackerOf(record: EventRecord): Tracker | undefined {
    return record.#tracker;
  }

  /** A plain view for logs and `JSON.stringify`. */
  toJSON(): { type: string; payload: unknown; seq: number; time: number; id: string | undefined } {
    return { type: this.#type, payload: this.#payload, seq: this.#seq, time: this.#time, id: this.#id };
  }
}
