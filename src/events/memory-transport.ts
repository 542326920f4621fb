import { ClosedError, InvalidInputError, TransportResetError } from '../errors.js';
import type { Clock } from '../internal/clock.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import { Timer } from '../internal/timer.js';
import * as v from '../internal/validate.js';
import { formatStreamId, parseStreamId, type StreamId } from './stream-id.js';
import {
  invalidEntries,
  invalidIds,
  invalidClaim,
  invalidName,
  invalidReadOptions,
} from './transport-input.js';
import type { EventTransport, GroupEntry, TransportEntry, TransportReadOptions } from './transport.js';

/** Options of {@link MemoryTransport}. */
export interface MemoryTransportOptions {
  /**
   * Entries kept: appending beyond it drops the oldest (exactly; Redis trims approximately).
   * Readers whose cursor fell behind continue from the oldest kept entry. `Infinity` must be
   * explicit.
   * @default 10_000
   */
  readonly maxLength?: number | undefined;
  /**
   * Wall-clock source of entry ids and times (`<ms>-<seq>`) and of how long a group's entry has
   * been pending (`claim`). Ids stay strictly increasing when it stalls or goes back.
   * @default { now: Date.now }
   */
  readonly clock?: Clock | undefined;
}

const wallClock: Clock = { now: Date.now };

/**
 * The in-process {@link EventTransport}: a bounded ring of entries in one global order, with
 * consumer groups, for an `EventBus` in one process (and the reference the Redis transport is
 * tested against: both pass one contract suite).
 *
 * - **Ids** are `<ms>-<seq>` from `clock`, strictly increasing even when the clock stalls or
 *   goes back (the sequence part counts up, as in Redis).
 * - **Reads** find their cursor by binary search (O(log n) plus the entries returned); a
 *   blocked read waits in a set (O(1) removal on abort or timeout, one timer per blocked read)
 *   and wakes on the next append.
 * - **Groups**: a last-delivered cursor, a pending list ordered by delivery time with O(1)
 *   ack (a map from id), delivery counts, and `claim` of the entries idle for `minIdleMs`
 *   from the front of that list (O(entries claimed)). A pending entry trimmed from the ring
 *   leaves the pending list.
 * - **Payloads are not copied**: every reader gets the object that was appended (as in-process
 *   listeners do). Don't mutate a payload after emitting it; entries themselves are frozen.
 * - **Lifecycle**: `close()` rejects blocked reads and later calls with `ClosedError`.
 *
 * @example
 * ```ts
 * import { MemoryTransport } from 'sluice/events';
 * const log = new MemoryTransport({ maxLength: 1000 });
 * const [id] = await log.append([{ type: 'user.created', payload: { id: 7 } }]);
 * const entries = await log.read('0-0', { count: 100, blockMs: 0 }); // [{ id, type, payload, time }]
 * await log.close();
 * ```
 */
export class MemoryTransport implements EventTransport, AsyncDisposable {
  /** The most entries kept. */
  readonly maxLength: number;
  readonly #clock: Clock;
  /** The ring: entries and their parsed ids, `#size` of them from `#head`. */
  #entries: (TransportEntry | undefined)[] = [];
  #ms: number[] = [];
  #seq: number[] = [];
  #head = 0;
  #size = 0;
  #capacity = 0;
  /** The last id ever generated (kept when its entry is trimmed). */
  #lastMs = 0;
  #lastSeq = 0;
  readonly #groups = new Map<string, Group>();
  /** Blocked reads, in arrival order (a Set: O(1) removal). */
  readonly #waiters = new Set<Waiter>();
  #closed = false;
  /** The last good clock reading (used when a later one throws or is not finite). */
  #now = 0;

  constructor(options?: MemoryTransportOptions) {
    v.options('options', options);
    this.maxLength = v.positiveInteger('maxLength', options?.maxLength ?? 10_000, true);
    this.#clock = v.clock('clock', options?.clock ?? wallClock);
  }

  append(entries: readonly { readonly type: string; readonly payload: unknown }[]): Promise<string[]> {
    if (this.#closed) return Promise.reject(new ClosedError('MemoryTransport is closed'));
    const invalid = invalidEntries(entries);
    if (invalid !== undefined) return Promise.reject(invalid);
    let now: number;
    try {
      now = Math.floor(this.#clock.now());
    } catch (error) {
      return Promise.reject(error);
    }
    if (!Number.isSafeInteger(now) || now < 0) {
      return Promise.reject(v.invalidInput('clock.now()', 'a time in ms since the Unix epoch', now));
    }
    const ids: string[] = [];
    for (const { type, payload } of entries) {
      if (now > this.#lastMs) {
        this.#lastMs = now;
        this.#lastSeq = 0;
      } else {
        this.#lastSeq++;
      }
      const id = `${this.#lastMs}-${this.#lastSeq}`;
      ids.push(id);
      this.#push(Object.freeze({ id, type, payload, time: this.#lastMs }));
    }
    if (this.#waiters.size > 0 && entries.length > 0) this.#wake();
    return Promise.resolve(ids);
  }

  read(after: string, options: TransportReadOptions): Promise<TransportEntry[]> {
    if (this.#closed) return Promise.reject(new ClosedError('MemoryTransport is closed'));
    const cursor = parseStreamId('after', after);
    if (cursor instanceof InvalidInputError) return Promise.reject(cursor);
    const invalid = invalidReadOptions(options);
    if (invalid !== undefined) return Promise.reject(invalid);
    const signal = options.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    const found = this.#after(cursor.ms, cursor.seq, options.count);
    if (found.length > 0) return Promise.resolve(found);
    if (cursor.ms > this.#lastMs || (cursor.ms === this.#lastMs && cursor.seq > this.#lastSeq)) {
      const lastId = `${this.#lastMs}-${this.#lastSeq}`;
      return Promise.reject(
        new TransportResetError(
          `MemoryTransport: cursor ${formatStreamId(cursor)} is above the log's newest id ${lastId}`,
          { lastId },
        ),
      );
    }
    if (options.blockMs === 0) return Promise.resolve(found);
    return this.#wait({ group: undefined, consumer: '', ms: cursor.ms, seq: cursor.seq }, options);
  }

  lastId(): Promise<string> {
    if (this.#closed) return Promise.reject(new ClosedError('MemoryTransport is closed'));
    return Promise.resolve(`${this.#lastMs}-${this.#lastSeq}`);
  }

  createGroup(group: string, startId: string): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('MemoryTransport is closed'));
    const invalid = invalidName('group', group);
    if (invalid !== undefined) return Promise.reject(invalid);
    let start: StreamId;
    if (startId === '$') start = { ms: this.#lastMs, seq: this.#lastSeq };
    else {
      const parsed = parseStreamId('startId', startId);
      if (parsed instanceof InvalidInputError) return Promise.reject(parsed);
      start = parsed;
    }
    if (!this.#groups.has(group)) this.#groups.set(group, new Group(start.ms, start.seq));
    return Promise.resolve();
  }

  readGroup(group: string, consumer: string, options: TransportReadOptions): Promise<GroupEntry[]> {
    if (this.#closed) return Promise.reject(new ClosedError('MemoryTransport is closed'));
    const invalid =
      invalidName('group', group) ?? invalidName('consumer', consumer) ?? invalidReadOptions(options);
    if (invalid !== undefined) return Promise.reject(invalid);
    const signal = options.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    const state = this.#groups.get(group);
    if (state === undefined) return Promise.reject(noGroup(group));
    const found = this.#deliver(state, consumer, options.count);
    if (found.length > 0 || options.blockMs === 0) return Promise.resolve(found);
    return this.#wait({ group, consumer, ms: 0, seq: 0 }, options) as Promise<GroupEntry[]>;
  }

  ack(group: string, ids: readonly string[]): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('MemoryTransport is closed'));
    const invalid = invalidName('group', group) ?? invalidIds(ids);
    if (invalid !== undefined) return Promise.reject(invalid);
    const state = this.#groups.get(group);
    if (state !== undefined) {
      for (const id of ids) {
        const node = state.pending.get(id) ?? state.pending.get(canonical(id));
        if (node !== undefined) state.remove(node);
      }
    }
    return Promise.resolve();
  }

  claim(group: string, consumer: string, minIdleMs: number, count: number): Promise<GroupEntry[]> {
    if (this.#closed) return Promise.reject(new ClosedError('MemoryTransport is closed'));
    const invalid = invalidClaim(group, consumer, minIdleMs, count);
    if (invalid !== undefined) return Promise.reject(invalid);
    const state = this.#groups.get(group);
    if (state === undefined) return Promise.reject(noGroup(group));
    const now = this.#time();
    // The front of the list has waited longest: take the idle ones, then move them to the back.
    const taken: Pending[] = [];
    for (let node = state.first; node !== undefined && taken.length < count; node = node.next) {
      if (!(now - node.deliveredAt >= minIdleMs)) break;
      taken.push(node);
    }
    const claimed: GroupEntry[] = [];
    for (const node of taken) {
      state.remove(node);
      node.consumer = consumer;
      node.deliveredAt = now;
      node.deliveries++;
      state.add(node);
      claimed.push(groupEntry(node.entry, node.deliveries));
    }
    return Promise.resolve(claimed);
  }

  /** Rejects blocked reads and every later call with `ClosedError`. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    const waiters = Array.from(this.#waiters);
    this.#waiters.clear();
    for (const waiter of waiters) {
      this.#unlink(waiter);
      waiter.reject(new ClosedError('MemoryTransport closed during a read'));
    }
    return Promise.resolve();
  }

  /** Same as {@link MemoryTransport.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The clock for pending times: a reading that throws or is not finite repeats the last one. */
  #time(): number {
    try {
      const now = this.#clock.now();
      if (Number.isFinite(now)) this.#now = now;
    } catch {
      // Pending times only order claims: the previous reading is a safe stand-in.
    }
    return this.#now;
  }

  /** Adds an entry at the end of the ring, dropping the oldest at `maxLength`. */
  #push(entry: TransportEntry): void {
    if (this.#size === this.#capacity) {
      if (this.#capacity < this.maxLength) this.#grow();
      else {
        const head = this.#head;
        const dropped = this.#entries[head] as TransportEntry;
        this.#head = (head + 1) % this.#capacity;
        this.#size--;
        for (const group of this.#groups.values()) {
          if (group.pending.size === 0) continue;
          const node = group.pending.get(dropped.id);
          if (node !== undefined) group.remove(node);
        }
      }
    }
    const i = (this.#head + this.#size) % this.#capacity;
    this.#entries[i] = entry;
    this.#ms[i] = this.#lastMs;
    this.#seq[i] = this.#lastSeq;
    this.#size++;
  }

  #grow(): void {
    const capacity = Math.min(Math.max(16, this.#capacity * 2), this.maxLength);
    const entries = new Array<TransportEntry | undefined>(capacity);
    const ms = new Array<number>(capacity).fill(0);
    const seq = new Array<number>(capacity).fill(0);
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) % this.#capacity;
      entries[k] = this.#entries[i];
      ms[k] = this.#ms[i] as number;
      seq[k] = this.#seq[i] as number;
    }
    this.#entries = entries;
    this.#ms = ms;
    this.#seq = seq;
    this.#head = 0;
    this.#capacity = capacity;
  }

  /** The position (0…size) of the first entry after `<ms>-<seq>`: binary search. */
  #firstAfter(ms: number, seq: number): number {
    const size = this.#size;
    if (size === 0) return 0;
    const last = (this.#head + size - 1) % this.#capacity;
    const lastMs = this.#ms[last] as number;
    if (ms > lastMs || (ms === lastMs && seq >= (this.#seq[last] as number))) return size; // at the head
    let lo = 0;
    let hi = size - 1; // the last entry is after the cursor
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const i = (this.#head + mid) % this.#capacity;
      const m = this.#ms[i] as number;
      if (m > ms || (m === ms && (this.#seq[i] as number) > seq)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  #after(ms: number, seq: number, count: number): TransportEntry[] {
    const from = this.#firstAfter(ms, seq);
    const n = Math.min(count, this.#size - from);
    if (n <= 0) return [];
    const out = new Array<TransportEntry>(n);
    for (let k = 0; k < n; k++)
      out[k] = this.#entries[(this.#head + from + k) % this.#capacity] as TransportEntry;
    return out;
  }

  /** New entries for `consumer` of `group`: they become pending, delivered once. */
  #deliver(group: Group, consumer: string, count: number): GroupEntry[] {
    const from = this.#firstAfter(group.lastMs, group.lastSeq);
    const n = Math.min(count, this.#size - from);
    if (n <= 0) return [];
    const now = this.#time();
    const out = new Array<GroupEntry>(n);
    for (let k = 0; k < n; k++) {
      const i = (this.#head + from + k) % this.#capacity;
      const entry = this.#entries[i] as TransportEntry;
      group.add(new Pending(entry, consumer, now));
      out[k] = groupEntry(entry, 1);
      if (k === n - 1) {
        group.lastMs = this.#ms[i] as number;
        group.lastSeq = this.#seq[i] as number;
      }
    }
    return out;
  }

  #wait(
    waiter: Omit<Waiter, 'resolve' | 'reject' | 'timer' | 'signal' | 'onAbort' | 'count'>,
    options: TransportReadOptions,
  ): Promise<TransportEntry[]> {
    return new Promise<TransportEntry[]>((resolve, reject) => {
      const w: Waiter = {
        ...waiter,
        count: options.count,
        resolve,
        reject,
        timer: undefined,
        signal: options.signal,
        onAbort: undefined,
      };
      this.#waiters.add(w);
      if (options.blockMs !== Infinity) {
        w.timer = new Timer(() => {
          w.timer = undefined;
          if (!this.#waiters.delete(w)) return;
          this.#unlink(w);
          resolve([]);
        }, options.blockMs);
      }
      if (w.signal !== undefined) {
        const signal = w.signal;
        w.onAbort = linkSignal(signal, () => {
          if (!this.#waiters.delete(w)) return;
          this.#unlink(w);
          reject(signal.reason as Error);
        });
      }
    });
  }

  #unlink(w: Waiter): void {
    w.timer?.cancel();
    w.timer = undefined;
    unlinkSignal(w.signal, w.onAbort);
    w.signal = w.onAbort = undefined;
  }

  /** After an append: every blocked read that now has entries gets them, oldest waiter first. */
  #wake(): void {
    for (const w of Array.from(this.#waiters)) {
      let found: TransportEntry[];
      if (w.group === undefined) found = this.#after(w.ms, w.seq, w.count);
      else {
        const group = this.#groups.get(w.group);
        if (group === undefined) continue;
        found = this.#deliver(group, w.consumer, w.count);
      }
      if (found.length === 0) continue; // another consumer of the group took them
      this.#waiters.delete(w);
      this.#unlink(w);
      w.resolve(found);
    }
  }
}

/** A blocked read: a plain read (`group` undefined, cursor `ms`/`seq`) or a group read. */
interface Waiter {
  readonly group: string | undefined;
  readonly consumer: string;
  readonly ms: number;
  readonly seq: number;
  readonly count: number;
  readonly resolve: (entries: TransportEntry[]) => void;
  readonly reject: (error: Error) => void;
  timer: Timer | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** A pending entry of a group: a node of its list ordered by delivery time. */
class Pending {
  prev: Pending | undefined = undefined;
  next: Pending | undefined = undefined;
  deliveries = 1;
  constructor(
    readonly entry: TransportEntry,
    public consumer: string,
    public deliveredAt: number,
  ) {}
}

/** A consumer group: last-delivered cursor and pending entries (list by delivery time + map). */
class Group {
  readonly pending = new Map<string, Pending>();
  first: Pending | undefined = undefined;
  last: Pending | undefined = undefined;
  constructor(
    public lastMs: number,
    public lastSeq: number,
  ) {}

  add(node: Pending): void {
    node.prev = this.last;
    node.next = undefined;
    if (this.last === undefined) this.first = node;
    else this.last.next = node;
    this.last = node;
    this.pending.set(node.entry.id, node);
  }

  remove(node: Pending): void {
    if (node.prev === undefined) this.first = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.last = node.prev;
    else node.next.prev = node.prev;
    node.prev = node.next = undefined;
    this.pending.delete(node.entry.id);
  }
}

function groupEntry(entry: TransportEntry, deliveries: number): GroupEntry {
  return { id: entry.id, type: entry.type, payload: entry.payload, time: entry.time, deliveries };
}

function canonical(id: string): string {
  const parsed = parseStreamId('id', id);
  return parsed instanceof InvalidInputError ? id : formatStreamId(parsed);
}

function noGroup(group: string): TransportResetError {
  return new TransportResetError(`MemoryTransport: no consumer group ${JSON.stringify(group)}`, { group });
}
