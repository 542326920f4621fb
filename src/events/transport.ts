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
  /**
   * Set when the stored entry could not be decoded (another writer's format, a codec change):
   * `payload` is then `undefined` and `type` is what was stored (`''` if nothing). The entry is
   * still returned, so a cursor moves past it and a group can ack it; the caller reports it.
   */
  readonly error?: Error | undefined;
}

/** Options of a read from the log. */
export interface TransportReadOptions {
  /** At most this many entries per read. */
  readonly count: number;
  /**
   * When no entry is there yet, wait up to this many ms for one (`XREAD BLOCK`); `0` returns at
   * once, `Infinity` waits until one comes (or the read is aborted, or the transport closed).
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
 * A bounded, ordered, shared event log: the transport an `EventBus` uses to fan events out
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
 *   consumer (at-least-once). A pending entry trimmed from the log is dropped from the pending
 *   list (it cannot be claimed any more).
 * - Ids are `'<ms>-<seq>'`; a cursor may also be `'<ms>'` (`'0'` reads everything).
 * - A log that is not the one a cursor or group came from (lost in a restart without
 *   persistence, flushed, replaced by a failover) is reported, never silently waited on: `read`
 *   rejects with `TransportResetError` (carrying `lastId`) when `after` is above the log's
 *   newest id and nothing follows it; `readGroup` and `claim` reject with it (carrying
 *   `group`) when the group no longer exists (`ack` of a lost group resolves: nothing is
 *   pending there). The caller picks where to resume.
 * - An entry that cannot be decoded is returned with `error` set (see
 *   {@link TransportEntry.error}), never dropped and never fatal to the read.
 * - Errors of the backing store (Redis unreachable) reject the call; the caller retries with
 *   backoff. Aborts reject with `signal.reason`. After `close()`, pending and new calls reject
 *   with `ClosedError`.
 */
export interface EventTransport {
  /** Appends entries in order; resolves with their ids (same order). */
  append(entries: readonly { readonly type: string; readonly payload: unknown }[]): Promise<string[]>;
  /** Entries after `after`, oldest first; waits up to `blockMs` when there are none. */
  read(after: string, options: TransportReadOptions): Promise<TransportEntry[]>;
  /**
   * The id of the newest entry ever appended (kept when that entry was trimmed or deleted), or
   * `'0-0'` when nothing was.
   */
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
  /**
   * Interrupts pending reads (they reject with `ClosedError`, as later calls do) and releases
   * what the transport owns.
   */
  close(): Promise<void>;
}
