/**
 * One entry of an event log: what {@link EventTransport.read} returns. Ids are assigned by the
 * transport in append order and compare as Redis stream ids do (`<ms>-<seq>`, numerically by
 * `ms`, then by `seq`).
 */
export interface TransportEntry {
  /** The entry's id in the log (`'1700000000000-0'`). */
  readonly id: string;
  /** The event type. */
  readonly type: string;
  /** The decoded payload. */
  readonly payload: unknown;
  /** When the entry was appended, in ms since the Unix epoch (the id's time part). */
  readonly time: number;
}

/** Options of a read from the log. */
export interface TransportReadOptions {
  /** At most this many entries per read. */
  readonly count: number;
  /**
   * When no entry is there yet, wait up to this many ms for one (`XREAD BLOCK`); `0` returns at
   * once.
   */
  readonly blockMs: number;
  /** Abandons the wait: the read rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

/** What a consumer-group read returns: entries plus how often each was delivered before. */
export interface GroupEntry extends TransportEntry {
  /** How many times this entry has been delivered to the group, this delivery included (≥ 1). */
  readonly deliveries: number;
}

/**
 * A bounded, ordered, shared event log: the transport an {@link EventBus} uses to fan events out
 * across processes. `MemoryTransport` is the in-process implementation; `RedisStreamTransport`
 * (`sluice/events/redis`) keeps the log in a Redis stream. Both pass one contract suite.
 *
 * The contract:
 * - `append` gives every entry an id greater than every id before it (one global order).
 * - `read(after)` returns entries with ids greater than `after`, oldest first; `'0-0'` reads from
 *   the oldest retained entry. The log keeps about `maxLength` entries (Redis trims
 *   approximately); a reader whose cursor fell behind the retained range continues from the
 *   oldest retained entry.
 * - Consumer groups: each entry is delivered to one consumer of the group; it stays pending
 *   until `ack`ed, and `claim` hands entries pending longer than `minIdleMs` to another
 *   consumer (at-least-once).
 */
export interface EventTransport {
  /** Appends entries in order; resolves with their ids (same order). */
  append(entries: readonly { readonly type: string; readonly payload: unknown }[]): Promise<string[]>;
  /** Entries after `after`, oldest first; waits up to `blockMs` when there are none. */
  read(after: string, options: TransportReadOptions): Promise<TransportEntry[]>;
  /** The id of the newest entry, or `'0-0'` when the log is empty. */
  lastId(): Promise<string>;
  /**
   * Creates consumer group `group` reading entries after `startId` (`'$'`: only entries appended
   * from now on). Resolves without change when the group exists.
   */
  createGroup(group: string, startId: string): Promise<void>;
  /** New entries for `consumer` of `group` (`XREADGROUP … >`); they stay pending until acked. */
  readGroup(group: string, consumer: string, options: TransportReadOptions): Promise<GroupEntry[]>;
  /** Acknowledges entries of `group`: they are no longer pending. */
  ack(group: string, ids: readonly string[]): Promise<void>;
  /**
   * Moves up to `count` entries of `group` that have been pending longer than `minIdleMs` to
   * `consumer` and returns them (`XAUTOCLAIM`); each claim counts as a delivery.
   */
  claim(group: string, consumer: string, minIdleMs: number, count: number): Promise<GroupEntry[]>;
  /** Interrupts pending reads and releases what the transport owns. */
  close(): Promise<void>;
}
