import { ClosedError, TransportResetError } from '../errors.js';
import { Backoff } from '../internal/backoff.js';
import type { Clock } from '../internal/clock.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import { schedule } from '../internal/timer.js';
import { compareStreamIds, parseStreamId, type StreamId } from './stream-id.js';
import type { EventTransport, GroupEntry, TransportEntry } from './transport.js';

/** Entries per read, from the log and from a group. */
const READ_COUNT = 256;
/** How long one read waits for entries before it is issued again. */
const BLOCK_MS = 2000;

/** What the link needs from its bus. */
export interface LinkHost {
  /** Local fan-out of one log entry; resolves once every local subscriber took it. */
  deliver(entry: TransportEntry): Promise<void>;
  /**
   * Fan-out of one group entry to the group's handlers; resolves once they took it (never
   * rejects). `settle(true)` is called once every handler succeeded (or the entry is to be
   * dropped): the link acknowledges it; `settle(false)` leaves it pending, to be claimed again.
   */
  deliverGroup(group: string, entry: GroupEntry, settle: (ack: boolean) => void): Promise<void>;
  /**
   * The log was lost (`TransportResetError`); `newest` is the new log's newest id. Events this
   * bus appended above it were in the lost log: they will never be read back.
   */
  lost(newest: StreamId, error: TransportResetError): void;
  /** Reports a transport failure (counted, published). */
  report(error: unknown, where: string): void;
  /**
   * How many entries of `group` this bus may hold at once (delivered, not yet settled): the
   * group loop reads no more, so nothing waits here long enough to be claimed from under it.
   */
  groupCapacity(group: string): number;
}

/** Options of the link, validated by the bus. */
export interface LinkOptions {
  readonly start: string;
  readonly consumer: string;
  readonly claimAfterMs: number;
  /** The bus's clock (monotonic by default): when to claim next. */
  readonly clock: Clock;
}

interface Outgoing {
  readonly type: string;
  readonly payload: unknown;
  /** Told the entry's id as soon as it is known, before any read can deliver the entry. */
  readonly onAppended: ((id: string) => void) | undefined;
}

/** A batch of emits appended together: one promise for all of them. */
interface Batch {
  readonly entries: Outgoing[];
  readonly promise: Promise<string[]>;
  resolve(ids: string[]): void;
  reject(error: unknown): void;
}

function newBatch(): Batch {
  let resolve!: (ids: string[]) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<string[]>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { entries: [], promise, resolve, reject };
}

/**
 * Connects a bus to an {@link EventTransport}: emits are appended (those of one tick in one
 * append, one append in flight at a time, so this process's events keep their order), one read
 * loop feeds the log to the local subscribers in log order, and one loop per consumer group
 * feeds the group's handlers and acknowledges what they handled. Transport failures are
 * reported and retried with backoff from the same cursor: nothing read is skipped, nothing is
 * delivered twice by the read loop.
 */
export class TransportLink {
  readonly #transport: EventTransport;
  readonly #host: LinkHost;
  readonly #options: LinkOptions;
  readonly #stop = new AbortController();
  readonly #backoff = new Backoff({ attempts: Infinity, delayMs: 50, maxDelayMs: 5000 });
  #outbox: Batch | undefined = undefined;
  #appending: Promise<unknown> = Promise.resolve();
  /** The newest id this process appended: close() reads up to it before stopping. */
  #lastOwn: StreamId | undefined = undefined;
  #cursor: StreamId | undefined = undefined;
  #ready!: () => void;
  readonly #started: Promise<void>;
  readonly #loops: Promise<void>[] = [];
  readonly #groups = new Set<string>();
  /** Group loops waiting for room or for a handler, by group. */
  readonly #wakers = new Map<string, () => void>();
  #draining = false;
  #readStopped = false;
  #caughtUp: (() => void) | undefined = undefined;
  /** Appends that failed (their emits rejected). */
  appendFailures = 0;
  /** Read, group and ack calls that failed and were retried. */
  transportErrors = 0;

  constructor(transport: EventTransport, host: LinkHost, options: LinkOptions) {
    this.#transport = transport;
    this.#host = host;
    this.#options = options;
    this.#started = new Promise<void>((resolve) => (this.#ready = resolve));
    this.#loops.push(this.#readLoop());
  }

  /**
   * Queues one event for the next append; the promise resolves with its id once appended and
   * rejects with the transport's error when the append fails (nothing is retried behind the
   * caller's back: a failed emit is the caller's to retry).
   */
  append(type: string, payload: unknown, onAppended?: (id: string) => void): Promise<string> {
    let batch = this.#outbox;
    if (batch === undefined) {
      batch = this.#outbox = newBatch();
      const send = batch;
      // Appends run one after another; the first waits for the read loop's starting cursor, so
      // that a process always sees its own events.
      this.#appending = Promise.all([this.#appending, this.#started]).then(() => this.#send(send));
    }
    const index = batch.entries.push({ type, payload, onAppended }) - 1;
    return batch.promise.then((ids) => ids[index] as string);
  }

  /** Emits not yet appended. */
  get outgoing(): number {
    return this.#outbox?.entries.length ?? 0;
  }

  /** Waits until every append has settled. */
  async flushed(): Promise<void> {
    for (;;) {
      const appending = this.#appending;
      await appending.catch(() => undefined);
      if (appending === this.#appending) return;
    }
  }

  /** Starts a consumer-group loop (once per group). */
  joinGroup(group: string): void {
    if (this.#groups.has(group)) {
      // A new handler: the loop may be waiting for one (or for more room).
      this.#wakers.get(group)?.();
      return;
    }
    this.#groups.add(group);
    this.#loops.push(this.#groupLoop(group));
  }

  /**
   * Stops the loops once the read loop has delivered every event this process appended; resolves
   * when they have stopped. Group handlers running keep running (the bus waits for them).
   */
  async close(): Promise<void> {
    await this.flushed();
    this.#draining = true;
    if (!this.#behindOwn() || this.#readStopped || this.#stop.signal.aborted) this.#stop.abort();
    else {
      await new Promise<void>((resolve) => (this.#caughtUp = resolve));
      this.#stop.abort();
    }
    await Promise.all(this.#loops);
  }

  /** Stops the loops now (close gave up). */
  abort(): void {
    this.#stop.abort();
    // A close() waiting for the read loop to catch up stops waiting.
    this.#caughtUp?.();
  }

  #behindOwn(): boolean {
    const own = this.#lastOwn;
    const cursor = this.#cursor;
    return own !== undefined && (cursor === undefined || compareStreamIds(cursor, own) < 0);
  }

  async #send(batch: Batch): Promise<void> {
    if (this.#outbox === batch) this.#outbox = undefined;
    try {
      const entries = batch.entries;
      const ids = await this.#transport.append(entries.map(({ type, payload }) => ({ type, payload })));
      for (let i = 0; i < entries.length; i++) {
        const id = ids[i];
        if (id !== undefined) entries[i]!.onAppended?.(id);
      }
      const last = ids[ids.length - 1];
      if (last !== undefined) {
        const parsed = parseStreamId('id', last);
        if (!(parsed instanceof Error)) this.#lastOwn = parsed;
      }
      batch.resolve(ids);
    } catch (error) {
      this.appendFailures++;
      batch.reject(error);
    }
  }

  async #startCursor(): Promise<StreamId> {
    const start = this.#options.start;
    if (start === 'oldest') return { ms: 0, seq: 0 };
    if (start !== 'new') return parseStreamId('start', start) as StreamId;
    for (let attempt = 1; ; attempt++) {
      try {
        const last = parseStreamId('lastId()', await this.#transport.lastId());
        if (last instanceof Error) throw last;
        return last;
      } catch (error) {
        if (this.#stop.signal.aborted || error instanceof ClosedError) return { ms: 0, seq: 0 };
        this.#failed(error, 'lastId');
        await this.#pause(attempt);
      }
    }
  }

  async #readLoop(): Promise<void> {
    let cursor = await this.#startCursor();
    this.#cursor = cursor;
    this.#ready();
    const signal = this.#stop.signal;
    let attempt = 0;
    while (!signal.aborted) {
      let entries: TransportEntry[];
      try {
        entries = await this.#transport.read(`${cursor.ms}-${cursor.seq}`, {
          count: READ_COUNT,
          blockMs: BLOCK_MS,
          signal,
        });
        attempt = 0;
      } catch (error) {
        if (signal.aborted) break;
        if (error instanceof ClosedError) {
          // The transport was closed under the bus: it will never answer again.
          this.#failed(error, 'read');
          break;
        }
        if (error instanceof TransportResetError) {
          // The log this cursor belonged to is gone: what is in the new one is all new.
          this.#failed(error, 'read');
          const newest = parseStreamId('lastId', error.lastId ?? '0-0');
          const top = newest instanceof Error ? { ms: 0, seq: 0 } : newest;
          // Our own events above the new log's newest were in the lost one: close() must not
          // wait to read them back, nor emitAndWait for them.
          if (this.#lastOwn !== undefined && compareStreamIds(this.#lastOwn, top) > 0)
            this.#lastOwn = undefined;
          this.#host.lost(top, error);
          cursor = { ms: 0, seq: 0 };
          this.#cursor = cursor;
          if (this.#draining && !this.#behindOwn()) this.#caughtUp?.();
          continue;
        }
        this.#failed(error, 'read');
        await this.#pause(++attempt);
        continue;
      }
      // Our own appends must be known before their entries are delivered (emitAndWait).
      await this.#appending.catch(() => undefined);
      for (const entry of entries) {
        // Stopped (close gave up): the rest are not delivered.
        if (signal.aborted) break;
        const id = parseStreamId('entry.id', entry.id);
        // Malformed, repeated or out of order (a faulty transport): never delivered twice.
        if (id instanceof Error || compareStreamIds(id, cursor) <= 0) continue;
        cursor = id;
        this.#cursor = id;
        await this.#host.deliver(entry);
      }
      if (this.#draining && !this.#behindOwn() && this.#caughtUp !== undefined) this.#caughtUp();
    }
    // Stopped for good (closed transport, or stop): close() must not wait to catch up.
    this.#readStopped = true;
    this.#caughtUp?.();
  }

  async #groupLoop(group: string): Promise<void> {
    const transport = this.#transport;
    const { consumer, claimAfterMs, clock } = this.#options;
    const signal = this.#stop.signal;
    const startId = this.#options.start === 'oldest' ? '0' : '$';
    // Entries delivered here and not yet settled: never claimed back, and bounded.
    const held = new Set<string>();
    let room: (() => void) | undefined;
    const settled = (id: string, ack: boolean): void => {
      held.delete(id);
      if (ack) this.#ack(group, id);
      room?.();
    };
    let created = false;
    let attempt = 0;
    // claimAfterMs: Infinity never claims (a transport refuses an infinite idle time).
    let nextClaim = claimAfterMs === Infinity ? Infinity : 0;
    while (!signal.aborted) {
      // No group handler here (all unsubscribed): read nothing until one subscribes again,
      // rather than take events from the processes that do handle them.
      const capacity = Math.min(READ_COUNT, this.#host.groupCapacity(group));
      if (held.size >= capacity) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            unlinkSignal(signal, onAbort);
            room = undefined;
            this.#wakers.delete(group);
            resolve();
          };
          room = done;
          this.#wakers.set(group, done);
          const onAbort = linkSignal(signal, done);
        });
        continue;
      }
      const count = capacity - held.size;
      try {
        if (!created) {
          await transport.createGroup(group, startId);
          created = true;
        }
        let entries: GroupEntry[] = [];
        const now = clock.now();
        if (now >= nextClaim) {
          // Entries a consumer took and never acknowledged (it failed, or it died): ours now.
          // Those this bus still holds are still being handled here: left alone.
          nextClaim = now + Math.max(1, claimAfterMs / 2);
          const claimed = await transport.claim(group, consumer, claimAfterMs, count);
          entries = claimed.filter((entry) => !held.has(entry.id));
        }
        if (entries.length === 0) {
          entries = await transport.readGroup(group, consumer, {
            count,
            // A clock that read NaN must not turn into a NaN wait.
            blockMs: Math.max(1, Math.min(BLOCK_MS, nextClaim - clock.now())) || BLOCK_MS,
            signal,
          });
        }
        attempt = 0;
        for (const entry of entries) {
          // Stopped (close gave up): the rest stay pending, for this group's other consumers.
          if (signal.aborted) break;
          const id = entry.id;
          held.add(id);
          await this.#host.deliverGroup(group, entry, (ack) => settled(id, ack));
        }
      } catch (error) {
        if (signal.aborted) break;
        if (error instanceof ClosedError) {
          this.#failed(error, `group ${group}`);
          break;
        }
        if (error instanceof TransportResetError) created = false;
        this.#failed(error, `group ${group}`);
        await this.#pause(++attempt);
      }
    }
  }

  #ack(group: string, id: string): void {
    let acked: Promise<void>;
    try {
      acked = Promise.resolve(this.#transport.ack(group, [id]));
    } catch (error) {
      // A transport that throws instead of rejecting: the same failure.
      acked = Promise.reject(error);
    }
    acked.catch((error: unknown) => {
      // Unacknowledged, the entry is claimed again after claimAfterMs: at-least-once holds.
      this.#failed(error, `ack ${group}`);
    });
  }

  #failed(error: unknown, where: string): void {
    this.transportErrors++;
    this.#host.report(error, where);
  }

  /** Waits out the backoff delay of `attempt`, or until the link stops. */
  #pause(attempt: number): Promise<void> {
    const signal = this.#stop.signal;
    if (signal.aborted) return Promise.resolve();
    const ms = this.#backoff.delay(attempt, () => undefined);
    return new Promise<void>((resolve) => {
      const done = (): void => {
        unlinkSignal(signal, onAbort);
        timer?.cancel();
        resolve();
      };
      const timer = schedule(done, ms);
      const onAbort = linkSignal(signal, done);
    });
  }
}
