import { ClosedError, InvalidInputError, TimeoutError, TransportResetError } from '../../errors.js';
import { connectRedis, luaScript, runScript, type RedisClient } from '../../internal/redis-client.js';
import { linkSignal, unlinkSignal } from '../../internal/signal.js';
import { Timer } from '../../internal/timer.js';
import * as v from '../../internal/validate.js';
import { compareStreamIds, parseStreamId } from '../stream-id.js';
import type { EventTransport, GroupEntry, TransportEntry, TransportReadOptions } from '../transport.js';
import {
  invalidEntries,
  invalidIds,
  invalidClaim,
  invalidName,
  invalidReadOptions,
} from '../transport-input.js';

/**
 * How payloads are stored in the stream's `d` field. The default, {@link jsonCodec}, is JSON.
 *
 * @example
 * ```ts
 * import type { EventCodec } from 'sluice/events/redis';
 * const base64Json: EventCodec = {
 *   encode: (payload) => Buffer.from(JSON.stringify(payload)).toString('base64'),
 *   decode: (data) => JSON.parse(Buffer.from(data, 'base64').toString()),
 * };
 * ```
 */
export interface EventCodec {
  /** Encodes a payload; throwing (or returning a non-string) rejects the `append`. */
  encode(payload: unknown): string;
  /** Decodes what `encode` wrote; throwing marks the entry malformed (`entry.error`). */
  decode(data: string): unknown;
}

/**
 * JSON, with `undefined` stored as the empty string (JSON has no `undefined`). Values JSON
 * cannot represent (a `BigInt`, a cycle, a function) make `append` reject.
 *
 * @example
 * ```ts
 * import { jsonCodec } from 'sluice/events/redis';
 * jsonCodec.decode(jsonCodec.encode({ id: 7 })); // { id: 7 }
 * ```
 */
export const jsonCodec: EventCodec = {
  encode: (payload) => (payload === undefined ? '' : JSON.stringify(payload)),
  decode: (data) => (data === '' ? undefined : (JSON.parse(data) as unknown)),
};

/** Options of {@link RedisStreamTransport}. */
export interface RedisStreamTransportOptions {
  /** The client for appends and every non-blocking command: {@link ioredisClient} or {@link nodeRedisClient}. */
  readonly client: RedisClient;
  /** The stream's key; processes that share it share the log (`'sluice:events:<name>'`). */
  readonly stream: string;
  /**
   * Entries the stream keeps: each `XADD` trims with `MAXLEN ~ maxLength`, so Redis keeps at
   * least this many and at most about one stream node (`stream-node-max-entries`, 100 by
   * default) more. `Infinity` (explicit) never trims.
   * @default 10_000
   */
  readonly maxLength?: number | undefined;
  /** How payloads are stored. @default jsonCodec */
  readonly codec?: EventCodec | undefined;
  /**
   * A connection of yours reserved for blocking reads (`XREAD BLOCK` holds its connection until
   * it returns). With it, blocking reads take turns on it and an aborted read keeps it busy
   * until its reply arrives (at most `blockMs`). Without it, the transport opens up to
   * `blockingConnections` duplicates of `client` as reads need them, and closes them itself.
   */
  readonly blockConnection?: RedisClient | undefined;
  /**
   * Most connections the transport opens for blocking reads at once (one per concurrent
   * blocking read: a bus's read loop plus one per consumer group loop); more reads wait for one.
   * @default 4
   */
  readonly blockingConnections?: number | undefined;
  /**
   * Extra time a blocking read waits beyond `blockMs` for Redis to answer before it rejects with
   * `TimeoutError` and its connection is dropped (a server that stopped answering); also the
   * longest wait for a new blocking connection to open.
   * @default 5000
   */
  readonly replyTimeout?: number | string | undefined;
}

/** Options of {@link RedisStreamTransport.connect}. */
export interface RedisStreamConnectOptions extends Omit<
  RedisStreamTransportOptions,
  'client' | 'blockConnection'
> {
  /** Which installed driver to create the clients with (an optional peer dependency). */
  readonly driver: 'ioredis' | 'redis';
  /**
   * Longest wait for the first connection, in ms; a failed first connection rejects (later
   * outages reconnect in the background while calls fail fast).
   * @default 5000
   */
  readonly connectTimeout?: number | string | undefined;
}

/** Marks clients created by `connect()`: the transport owns (and closes) them. */
const owning = new WeakSet<RedisClient>();

/**
 * Appends a batch in one script: one round trip, ids contiguous (no other writer's entry lands
 * between them), all or nothing. ARGV: maxLength ('' = no trim), then type, data pairs.
 */
const APPEND = luaScript(`local ids = {}
local m = ARGV[1]
for i = 2, #ARGV, 2 do
  if m == '' then
    ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 't', ARGV[i], 'd', ARGV[i + 1])
  else
    ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', m, '*', 't', ARGV[i], 'd', ARGV[i + 1])
  end
end
return ids`);

/**
 * XAUTOCLAIM plus each claimed entry's delivery count (XPENDING), in one round trip.
 * ARGV: group, consumer, minIdleMs, cursor, count. Reply: { next cursor, entries, counts }.
 */
const CLAIM =
  luaScript(`local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local entries = {}
local counts = {}
for _, e in ipairs(r[2]) do
  if type(e[2]) == 'table' then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
    entries[#entries + 1] = e
    counts[#counts + 1] = p[1] and p[1][4] or 1
  end
end
return { r[1], entries, counts }`);

/**
 * An {@link EventTransport} on a Redis stream: every process that uses the same `stream` key
 * sees every entry in one global order, resumes from its cursor after an outage (within the
 * stream's bound), and replays from `'0-0'`. Consumer groups are Redis consumer groups.
 *
 * - **Round trips**: `append` is one `EVALSHA` (a script of `XADD … MAXLEN ~`) per batch — one
 *   `XADD` for a single entry; `read` is one `XREAD COUNT n [BLOCK ms]` (plus one `XINFO
 *   STREAM` when it returns nothing, to tell an idle log from a lost one); `readGroup` one
 *   `XREADGROUP … >`; `ack` one `XACK`; `claim` one `EVALSHA` (`XAUTOCLAIM`, with each entry's
 *   delivery count from `XPENDING`, the scan cursor kept per group).
 * - **Blocking reads** run on their own connections (`blockConnection`, or up to
 *   `blockingConnections` duplicates of `client`), never two at once on one connection.
 *   Reads with `blockMs: 0` use `client`.
 * - **Cancellation**: an aborted read rejects at once; a blocked connection cannot be
 *   interrupted, so an owned one is disconnected (and reopened when needed) and a
 *   `blockConnection` of yours is released when its reply arrives.
 * - **Failure**: commands that fail (Redis down) reject; the caller retries with backoff. A
 *   blocking read also rejects with `TimeoutError` when no reply comes `replyTimeout` after
 *   `blockMs`. A lost log is reported with `TransportResetError` (see {@link EventTransport}).
 * - **Entries** have fields `t` (type) and `d` (the payload, encoded by `codec`); an entry that
 *   cannot be decoded is returned with `error` set. Time is the id's ms part.
 * - **Redis Cluster**: a stream is one key, so one slot; every command and script names it.
 *   Use an ioredis `Cluster` (node-redis clusters send commands another way).
 * - **Lifecycle**: `close()` rejects pending reads with `ClosedError`, disconnects the blocking
 *   connections it opened and quits `client` if {@link RedisStreamTransport.connect} created
 *   it (after the replies to commands already sent).
 *
 * @example
 * ```ts
 * import { RedisStreamTransport } from 'sluice/events/redis';
 * const transport = await RedisStreamTransport.connect(process.env.REDIS_URL!, {
 *   driver: 'ioredis',
 *   stream: 'sluice:events:app',
 * });
 * await transport.append([{ type: 'user.created', payload: { id: 7 } }]);
 * const entries = await transport.read('0-0', { count: 100, blockMs: 1000 });
 * await transport.close();
 * ```
 */
export class RedisStreamTransport implements EventTransport, AsyncDisposable {
  /** The stream's key. */
  readonly stream: string;
  /** Entries the stream keeps (approximately, at least this many). */
  readonly maxLength: number;
  readonly #client: RedisClient;
  readonly #owned: boolean;
  readonly #codec: EventCodec;
  readonly #maxLength: string;
  readonly #replyTimeout: number;
  readonly #maxBlocking: number;
  /** Whether the blocking connections are the transport's (it disconnects them). */
  readonly #ownsBlocking: boolean;
  readonly #idle: RedisClient[] = [];
  /** Blocking connections open or opening. */
  #blocking = 0;
  /** Blocking reads waiting for a connection, oldest first (a Set: O(1) removal). */
  readonly #queue = new Set<BlockingCall>();
  /** Every blocking read not yet settled. */
  readonly #calls = new Set<BlockingCall>();
  /** XAUTOCLAIM cursors by group. */
  readonly #claimCursors = new Map<string, string>();
  #closed = false;

  /**
   * Wraps a client you own (adapt it with {@link ioredisClient} or {@link nodeRedisClient});
   * `close()` leaves it open.
   */
  constructor(options: RedisStreamTransportOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(v.expectation('options', 'an object with client and stream', options));
    }
    const { client, blockConnection } = options;
    if (!isClient(client)) {
      throw new TypeError(
        v.expectation('client', 'a RedisClient (see ioredisClient and nodeRedisClient)', client),
      );
    }
    if (blockConnection !== undefined && !isClient(blockConnection)) {
      throw new TypeError(v.expectation('blockConnection', 'a RedisClient or undefined', blockConnection));
    }
    this.stream = v.string('stream', options.stream);
    if (this.stream === '') throw new RangeError(v.expectation('stream', 'a non-empty key', this.stream));
    this.maxLength = v.positiveInteger('maxLength', options.maxLength ?? 10_000, true);
    this.#maxLength = this.maxLength === Infinity ? '' : String(this.maxLength);
    const codec = options.codec ?? jsonCodec;
    if (
      typeof codec !== 'object' ||
      codec === null ||
      typeof codec.encode !== 'function' ||
      typeof codec.decode !== 'function'
    ) {
      throw new TypeError(v.expectation('codec', 'an object with encode and decode methods', codec));
    }
    this.#codec = codec;
    this.#replyTimeout = v.positiveDuration('replyTimeout', options.replyTimeout ?? 5000);
    this.#maxBlocking = v.positiveInteger('blockingConnections', options.blockingConnections ?? 4);
    this.#client = client;
    this.#owned = owning.has(client);
    if (blockConnection !== undefined) {
      this.#ownsBlocking = false;
      this.#maxBlocking = 1;
      this.#blocking = 1;
      this.#idle.push(blockConnection);
    } else {
      this.#ownsBlocking = true;
    }
  }

  /**
   * Creates a client with the installed `driver` (imported only now), configured to fail fast
   * during an outage (no offline queue, no command retries; it reconnects in the background),
   * connects it, and returns a transport that owns it (and its blocking duplicates): `close()`
   * quits them.
   *
   * @example
   * ```ts
   * import { RedisStreamTransport } from 'sluice/events/redis';
   * const transport = await RedisStreamTransport.connect('redis://127.0.0.1:6379', {
   *   driver: 'redis',
   *   stream: 'sluice:events:orders',
   *   maxLength: 100_000,
   * });
   * ```
   */
  static async connect(url: string, options: RedisStreamConnectOptions): Promise<RedisStreamTransport> {
    v.string('url', url);
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(
        v.expectation('options', "an object with a driver ('ioredis' or 'redis') and a stream", options),
      );
    }
    const driver = v.oneOf('driver', options.driver, ['ioredis', 'redis']);
    const connectTimeout = v.positiveDuration('connectTimeout', options.connectTimeout ?? 5000);
    const { driver: _driver, connectTimeout: _connectTimeout, ...rest } = options;
    // Validate the transport's options before opening a connection.
    void new RedisStreamTransport({ ...rest, client: placeholder });
    const client = await connectRedis(url, driver, connectTimeout);
    owning.add(client);
    return new RedisStreamTransport({ ...rest, client });
  }

  append(entries: readonly { readonly type: string; readonly payload: unknown }[]): Promise<string[]> {
    if (this.#closed) return Promise.reject(closed());
    const invalid = invalidEntries(entries);
    if (invalid !== undefined) return Promise.reject(invalid);
    if (entries.length === 0) return Promise.resolve([]);
    const args: string[] = [this.#maxLength];
    for (const { type, payload } of entries) {
      let data: unknown;
      try {
        data = this.#codec.encode(payload);
      } catch (error) {
        return Promise.reject(error);
      }
      if (typeof data !== 'string') {
        return Promise.reject(v.invalidInput('codec.encode(payload)', 'a string', data));
      }
      args.push(type, data);
    }
    if (entries.length === 1) {
      const trim = this.#maxLength === '' ? [] : ['MAXLEN', '~', this.#maxLength];
      return this.#send([
        'XADD',
        this.stream,
        ...trim,
        '*',
        't',
        args[1] as string,
        'd',
        args[2] as string,
      ]).then((id) => [asId(id)]);
    }
    return runScript(this.#client, APPEND, [this.stream], args).then((reply) => {
      if (!Array.isArray(reply) || reply.length !== entries.length) throw badReply('append', reply);
      return reply.map(asId);
    });
  }

  read(after: string, options: TransportReadOptions): Promise<TransportEntry[]> {
    if (this.#closed) return Promise.reject(closed());
    const cursor = parseStreamId('after', after);
    if (cursor instanceof InvalidInputError) return Promise.reject(cursor);
    const invalid = invalidReadOptions(options);
    if (invalid !== undefined) return Promise.reject(invalid);
    if (options.signal?.aborted === true) return Promise.reject(options.signal.reason as Error);
    const head = ['XREAD', 'COUNT', countArg(options.count)];
    const tail = ['STREAMS', this.stream, after];
    const sent =
      options.blockMs === 0
        ? this.#send([...head, ...tail])
        : this.#sendBlocking([...head, 'BLOCK', blockArg(options.blockMs), ...tail], options);
    return sent.then(async (reply) => {
      const entries = this.#entries(streamEntries(reply), 0);
      if (entries.length > 0) return entries;
      // Nothing after the cursor: an idle log, or one that is not the cursor's any more.
      const lastId = await this.lastId();
      const last = parseStreamId('lastId', lastId);
      if (!(last instanceof InvalidInputError) && compareStreamIds(cursor, last) > 0) {
        throw new TransportResetError(
          `RedisStreamTransport: cursor ${after} is above the newest id ${lastId} of stream ${this.stream} (lost or replaced)`,
          { lastId },
        );
      }
      return entries;
    });
  }

  async lastId(): Promise<string> {
    if (this.#closed) throw closed();
    let reply: unknown;
    try {
      reply = await this.#send(['XINFO', 'STREAM', this.stream]);
    } catch (error) {
      if (/no such key/i.test((error as Error).message)) return '0-0';
      throw error;
    }
    if (Array.isArray(reply)) {
      for (let i = 0; i + 1 < reply.length; i += 2) {
        if (reply[i] === 'last-generated-id') return asId(reply[i + 1]);
      }
    }
    throw badReply('XINFO STREAM', reply);
  }

  async createGroup(group: string, startId: string): Promise<void> {
    if (this.#closed) throw closed();
    const invalid = invalidName('group', group);
    if (invalid !== undefined) throw invalid;
    if (startId !== '$') {
      const parsed = parseStreamId('startId', startId);
      if (parsed instanceof InvalidInputError) throw parsed;
    }
    try {
      await this.#send(['XGROUP', 'CREATE', this.stream, group, startId, 'MKSTREAM']);
    } catch (error) {
      if (!(error as Error).message.includes('BUSYGROUP')) throw error;
    }
  }

  readGroup(group: string, consumer: string, options: TransportReadOptions): Promise<GroupEntry[]> {
    if (this.#closed) return Promise.reject(closed());
    const invalid =
      invalidName('group', group) ?? invalidName('consumer', consumer) ?? invalidReadOptions(options);
    if (invalid !== undefined) return Promise.reject(invalid);
    if (options.signal?.aborted === true) return Promise.reject(options.signal.reason as Error);
    const head = ['XREADGROUP', 'GROUP', group, consumer, 'COUNT', countArg(options.count)];
    const tail = ['STREAMS', this.stream, '>'];
    const sent =
      options.blockMs === 0
        ? this.#send([...head, ...tail])
        : this.#sendBlocking([...head, 'BLOCK', blockArg(options.blockMs), ...tail], options);
    return sent.then(
      (reply) => this.#entries(streamEntries(reply), 1) as GroupEntry[],
      (error: unknown) => {
        throw lostGroup(error, group);
      },
    );
  }

  async ack(group: string, ids: readonly string[]): Promise<void> {
    if (this.#closed) throw closed();
    const invalid = invalidName('group', group) ?? invalidIds(ids);
    if (invalid !== undefined) throw invalid;
    if (ids.length === 0) return;
    await this.#send(['XACK', this.stream, group, ...ids]);
  }

  async claim(group: string, consumer: string, minIdleMs: number, count: number): Promise<GroupEntry[]> {
    if (this.#closed) throw closed();
    const invalid = invalidClaim(group, consumer, minIdleMs, count);
    if (invalid !== undefined) throw invalid;
    const cursor = this.#claimCursors.get(group) ?? '0-0';
    let reply: unknown;
    try {
      reply = await runScript(
        this.#client,
        CLAIM,
        [this.stream],
        [group, consumer, String(Math.floor(Math.min(minIdleMs, MAX_MS))), cursor, countArg(count)],
      );
    } catch (error) {
      throw lostGroup(error, group);
    }
    if (!Array.isArray(reply) || reply.length !== 3 || !Array.isArray(reply[1]) || !Array.isArray(reply[2])) {
      throw badReply('XAUTOCLAIM', reply);
    }
    const next = asId(reply[0]);
    if (next === '0-0') this.#claimCursors.delete(group);
    else this.#claimCursors.set(group, next);
    const counts = reply[2] as unknown[];
    return this.#entries(reply[1] as unknown[], counts) as GroupEntry[];
  }

  /**
   * Rejects pending reads and later calls with `ClosedError`, disconnects the blocking
   * connections it opened, and quits `client` if {@link RedisStreamTransport.connect} created it.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.clear();
    for (const call of Array.from(this.#calls)) this.#abandon(call, closed());
    if (this.#ownsBlocking) for (const connection of this.#idle.splice(0)) connection.disconnect();
    if (this.#owned) await this.#client.quit();
  }

  /** Same as {@link RedisStreamTransport.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** One command on `client` (a synchronous throw becomes a rejection). */
  #send(args: string[]): Promise<unknown> {
    try {
      return Promise.resolve(this.#client.command(args));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** One blocking command on a connection of its own. */
  #sendBlocking(args: string[], options: TransportReadOptions): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const call: BlockingCall = {
        args,
        timeoutMs: options.blockMs + this.#replyTimeout,
        resolve,
        reject,
        settled: false,
        connection: undefined,
        timer: undefined,
        signal: options.signal,
        onAbort: undefined,
      };
      this.#calls.add(call);
      if (call.signal !== undefined) {
        const signal = call.signal;
        call.onAbort = linkSignal(signal, () => this.#abandon(call, signal.reason as Error));
      }
      this.#start(call);
    });
  }

  /** Runs `call` on an idle connection, opens one, or queues it. */
  #start(call: BlockingCall): void {
    const idle = this.#idle.pop();
    if (idle !== undefined) {
      this.#run(call, idle);
      return;
    }
    if (this.#blocking >= this.#maxBlocking) {
      // Every connection is busy (or still opening, Redis down): the wait for one is bounded too.
      this.#deadline(call, call.timeoutMs, 'no free connection to Redis');
      this.#queue.add(call);
      return;
    }
    this.#blocking++;
    // A connection that cannot be opened (Redis down, the driver retrying) must not hold the read.
    this.#deadline(call, this.#replyTimeout, 'no connection to Redis');
    let opening: Promise<RedisClient>;
    try {
      opening = Promise.resolve(this.#client.duplicate());
    } catch (error) {
      opening = Promise.reject(error);
    }
    opening.then(
      (connection) => {
        if (call.settled) this.#release(connection);
        else this.#run(call, connection);
      },
      (error: unknown) => {
        this.#blocking--;
        this.#settle(call)?.reject(error instanceof Error ? error : new Error(String(error)));
        this.#pump();
      },
    );
  }

  #run(call: BlockingCall, connection: RedisClient): void {
    if (this.#closed) {
      this.#release(connection);
      return;
    }
    call.connection = connection;
    this.#deadline(call, call.timeoutMs, 'no reply from Redis');
    let sent: Promise<unknown>;
    try {
      sent = Promise.resolve(connection.command(call.args));
    } catch (error) {
      sent = Promise.reject(error);
    }
    sent.then(
      (reply) => {
        if (call.connection === connection) this.#release(connection); // else: dropped
        this.#settle(call)?.resolve(reply);
      },
      (error: unknown) => {
        if (call.connection === connection) this.#release(connection);
        this.#settle(call)?.reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  /** (Re)arms the timer that rejects `call` with `TimeoutError` after `ms`. */
  #deadline(call: BlockingCall, ms: number, what: string): void {
    call.timer?.cancel();
    call.timer = undefined;
    if (ms === Infinity) return;
    call.timer = new Timer(() => {
      call.timer = undefined;
      this.#abandon(call, new TimeoutError(`RedisStreamTransport: ${what} within ${ms} ms`));
    }, ms);
  }

  /**
   * Settles `call` early (abort, timeout, close): a connection blocked for it is dropped if
   * the transport owns it (it cannot be interrupted), else released when its reply arrives.
   */
  #abandon(call: BlockingCall, error: Error): void {
    const settled = this.#settle(call);
    if (settled === undefined) return;
    this.#queue.delete(call);
    const connection = call.connection;
    if (connection !== undefined && this.#ownsBlocking) {
      call.connection = undefined; // its reply will not release it
      this.#blocking--;
      connection.disconnect();
      this.#pump();
    }
    settled.reject(error);
  }

  /** Marks `call` settled and unhooks it; `undefined` if it already was. */
  #settle(call: BlockingCall): BlockingCall | undefined {
    if (call.settled) return undefined;
    call.settled = true;
    this.#calls.delete(call);
    call.timer?.cancel();
    call.timer = undefined;
    unlinkSignal(call.signal, call.onAbort);
    call.signal = call.onAbort = undefined;
    return call;
  }

  /** A connection is free: the oldest queued read gets it, else it waits idle. */
  #release(connection: RedisClient): void {
    if (this.#closed) {
      if (this.#ownsBlocking) connection.disconnect();
      return;
    }
    const next = first(this.#queue);
    if (next !== undefined) {
      this.#queue.delete(next);
      this.#run(next, connection);
    } else {
      this.#idle.push(connection);
    }
  }

  /** Starts queued reads while connections can be opened. */
  #pump(): void {
    while (!this.#closed && this.#blocking < this.#maxBlocking) {
      const next = first(this.#queue);
      if (next === undefined) return;
      this.#queue.delete(next);
      this.#start(next);
    }
  }

  /**
   * Entries from a reply list of `[id, [field, value, …]]`; `deliveries`: `0` for plain reads,
   * a number for every group entry, or the list of counts of a claim.
   */
  #entries(list: unknown[], deliveries: number | unknown[]): TransportEntry[] {
    const out: TransportEntry[] = [];
    for (let k = 0; k < list.length; k++) {
      const item = list[k];
      if (!Array.isArray(item) || typeof item[0] !== 'string') throw badReply('stream entry', item);
      const id = item[0];
      const fields: unknown = item[1];
      if (!Array.isArray(fields)) continue; // deleted while pending (history reads only)
      let type: unknown;
      let data: unknown;
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i] === 't') type = fields[i + 1];
        else if (fields[i] === 'd') data = fields[i + 1];
      }
      const time = Number(id.slice(0, id.indexOf('-')));
      let payload: unknown;
      let error: Error | undefined;
      if (typeof type !== 'string' || typeof data !== 'string') {
        error = v.invalidInput(`entry ${id} of ${this.stream}`, 'fields t and d (strings)', fields);
      } else {
        try {
          payload = this.#codec.decode(data);
        } catch (cause) {
          error = new InvalidInputError(
            v.expectation(`entry ${id} of ${this.stream}`, 'a payload the codec decodes', data),
            { cause },
          );
        }
      }
      const resolvedType = typeof type === 'string' ? type : '';
      if (deliveries === 0) {
        out.push(
          error === undefined
            ? { id, type: resolvedType, payload, time }
            : { id, type: resolvedType, payload, time, error },
        );
      } else {
        const count = typeof deliveries === 'number' ? deliveries : Number(deliveries[k] ?? 1);
        const entry: GroupEntry =
          error === undefined
            ? { id, type: resolvedType, payload, time, deliveries: count }
            : { id, type: resolvedType, payload, time, error, deliveries: count };
        out.push(entry);
      }
    }
    return out;
  }
}

/** A blocking read in flight or waiting for a connection. */
interface BlockingCall {
  readonly args: string[];
  readonly timeoutMs: number;
  readonly resolve: (reply: unknown) => void;
  readonly reject: (error: Error) => void;
  settled: boolean;
  /** The connection it runs on; cleared when the connection is dropped. */
  connection: RedisClient | undefined;
  timer: Timer | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

function first<T>(set: Set<T>): T | undefined {
  for (const item of set) return item;
  return undefined;
}

function closed(): ClosedError {
  return new ClosedError('RedisStreamTransport is closed');
}

function isClient(value: unknown): value is RedisClient {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RedisClient).command === 'function' &&
    typeof (value as RedisClient).duplicate === 'function' &&
    typeof (value as RedisClient).evalsha === 'function'
  );
}

/**
 * Redis reads whole numbers (and refuses `1e+21`): counts past this are as good as unbounded
 * (XAUTOCLAIM refuses a COUNT above LONG_MAX / 10).
 */
const MAX_COUNT = 2 ** 31 - 1;
/** Durations past this (285 000 years) are as good as forever. */
const MAX_MS = Number.MAX_SAFE_INTEGER;

function countArg(count: number): string {
  return String(Math.min(count, MAX_COUNT));
}

/** `BLOCK` takes whole ms, `0` meaning forever. */
function blockArg(blockMs: number): string {
  return blockMs >= MAX_MS ? '0' : String(Math.max(1, Math.ceil(blockMs)));
}

/** The entry list of an `XREAD`/`XREADGROUP` reply for one stream (RESP2 or flattened RESP3). */
function streamEntries(reply: unknown): unknown[] {
  if (reply === null || reply === undefined) return [];
  if (Array.isArray(reply)) {
    if (reply.length === 0) return [];
    const head: unknown = reply[0];
    const list: unknown = Array.isArray(head) ? head[1] : reply[1]; // [[key, list]] or [key, list]
    if (Array.isArray(list)) return list;
  }
  throw badReply('XREAD', reply);
}

function asId(value: unknown): string {
  if (typeof value === 'string' && /^\d+-\d+$/.test(value)) return value;
  throw badReply('stream id', value);
}

function badReply(what: string, reply: unknown): InvalidInputError {
  return new InvalidInputError(v.expectation('reply', `a ${what} reply`, reply));
}

/** `NOGROUP` (the group or the whole stream is gone) as a `TransportResetError`. */
function lostGroup(error: unknown, group: string): unknown {
  const message = (error as { message?: unknown } | null)?.message;
  if (typeof message !== 'string' || !message.includes('NOGROUP')) return error;
  return new TransportResetError(
    `RedisStreamTransport: consumer group ${JSON.stringify(group)} no longer exists`,
    {
      group,
      cause: error,
    },
  );
}

/** A client that refuses everything: validates options in `connect()` before connecting. */
const placeholder: RedisClient = {
  command: () => Promise.reject(closed()),
  duplicate: () => Promise.reject(closed()),
  evalsha: () => Promise.reject(closed()),
  eval: () => Promise.reject(closed()),
  quit: () => Promise.resolve(),
  disconnect: () => undefined,
};
