import { createHash } from 'node:crypto';

// The one small Redis client adapter every sluice Redis backend uses: `sluice/rate/redis`
// (scripting: {@link RedisScripting}) and `sluice/events/redis` (scripting plus generic
// commands and a dedicated connection for blocking reads: {@link RedisClient}). Adapters for
// ioredis and node-redis normalise their differences here; the backends never inspect a client.
// Re-exported by both subpaths (the same bindings, so the root entry exports each name once).

/**
 * What `RedisStore` needs from a Redis client: run a script by SHA or by source, with its keys
 * and arguments apart (so a cluster client routes by the key). Adapters for ioredis
 * ({@link ioredisScripting}) and node-redis ({@link nodeRedisScripting}) are provided; any other
 * client needs these two methods. `RedisStore` never inspects the client itself.
 *
 * @example
 * ```ts
 * import type { RedisScripting } from 'sluice/rate/redis';
 * const scripting: RedisScripting = {
 *   evalsha: (sha, keys, args) => myClient.send('EVALSHA', sha, keys.length, ...keys, ...args),
 *   eval: (script, keys, args) => myClient.send('EVAL', script, keys.length, ...keys, ...args),
 * };
 * ```
 */
export interface RedisScripting {
  /** `EVALSHA sha numkeys ...keys ...args`; rejects with the server's error (e.g. `NOSCRIPT`). */
  evalsha(sha: string, keys: string[], args: string[]): Promise<unknown>;
  /** `EVAL script numkeys ...keys ...args`. */
  eval(script: string, keys: string[], args: string[]): Promise<unknown>;
  /** Closes the client. `RedisStore.close()` calls it only for a client the store created. */
  quit?(): Promise<void>;
}

/** The part of an ioredis `Redis` or `Cluster` the adapter uses (structural: no import). */
export interface IoredisLike {
  /** `EVALSHA sha numkeys key… arg…`. */
  evalsha(sha: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  /** `EVAL script numkeys key… arg…`. */
  eval(script: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  /** Closes the connection after pending replies. */
  quit(): Promise<unknown>;
  /** Closes the connection at once. */
  disconnect(): void;
  /** The connection state (`'ready'` when connected). */
  readonly status?: string;
}

/** The part of a node-redis (v5/v6) client or cluster the adapter uses (structural). */
export interface NodeRedisLike {
  /** `EVALSHA` with keys and arguments. */
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  /** `EVAL` with keys and arguments. */
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  /** Closes the client after pending replies (v5+). */
  close?(): Promise<unknown>;
  /** Closes the client at once (v5+). */
  destroy?(): unknown;
  /** Closes the client (v4). */
  quit?(): Promise<unknown>;
  /** Whether the client is connected. */
  readonly isReady?: boolean;
}

/**
 * Adapts an ioredis `Redis` or `Cluster` (ioredis routes `EVALSHA` by its first key). `quit()`
 * is only used when the store owns the client; pass your own client and close it yourself.
 *
 * @example
 * ```ts
 * import { Redis, Cluster } from 'ioredis';
 * import { RedisStore, ioredisScripting } from 'sluice/rate/redis';
 * const store = new RedisStore(ioredisScripting(new Redis(process.env.REDIS_URL!)));
 * const clustered = new RedisStore(ioredisScripting(new Cluster([{ host: '10.0.0.1', port: 7000 }])));
 * ```
 */
export function ioredisScripting(client: IoredisLike): RedisScripting {
  return {
    evalsha: (sha, keys, args) => client.evalsha(sha, keys.length, ...keys, ...args),
    eval: (script, keys, args) => client.eval(script, keys.length, ...keys, ...args),
    quit: quitIoredis(client),
  };
}

/**
 * Adapts a node-redis v5/v6 client (`createClient`) or cluster (`createCluster`), which route
 * `evalSha` by its first key. The client must be connected (`await client.connect()`).
 *
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * import { RedisStore, nodeRedisScripting } from 'sluice/rate/redis';
 * const client = await createClient({ url: process.env.REDIS_URL }).connect();
 * const store = new RedisStore(nodeRedisScripting(client));
 * ```
 */
export function nodeRedisScripting(client: NodeRedisLike): RedisScripting {
  return {
    evalsha: (sha, keys, args) => client.evalSha(sha, { keys, arguments: args }),
    eval: (script, keys, args) => client.eval(script, { keys, arguments: args }),
    quit: quitNodeRedis(client),
  };
}

/**
 * What `RedisStreamTransport` (`sluice/events/redis`) needs from a Redis client: scripting as
 * {@link RedisScripting}, any command, and a second connection for blocking reads. Replies are
 * normalised by the adapter: bulk strings as strings, integers as numbers, nil as `null`, arrays
 * as arrays, and RESP3 maps (node-redis v6 speaks RESP3) as flat `[key, value, …]` arrays, as
 * RESP2 sends them. Adapters: {@link ioredisClient}, {@link nodeRedisClient}.
 *
 * @example
 * ```ts
 * import type { RedisClient } from 'sluice/events/redis';
 * declare const client: RedisClient;
 * const id = await client.command(['XADD', 'sluice:events:app', '*', 't', 'hello', 'd', '{}']);
 * ```
 */
export interface RedisClient extends RedisScripting {
  /** Sends one command (`['XADD', key, …]`); resolves with the normalised reply. */
  command(args: readonly string[]): Promise<unknown>;
  /**
   * Opens a new connection to the same server with the same options (for blocking commands,
   * which hold their connection until they return). The caller owns it and closes it.
   */
  duplicate(): Promise<RedisClient>;
  /** Closes the connection after pending replies (at once when it is not connected). */
  quit(): Promise<void>;
  /** Closes the connection at once; pending commands reject. */
  disconnect(): void;
}

/** An ioredis `Redis` or `Cluster`, as {@link ioredisClient} uses it (structural: no import). */
export interface IoredisClientLike extends IoredisLike {
  /** Sends any command (`call('XADD', key, …)`). */
  call(command: string, ...args: string[]): Promise<unknown>;
  /** A new client with the same options. */
  duplicate(): IoredisClientLike;
  /** Connects a client created with `lazyConnect`. */
  connect(): Promise<unknown>;
  /** Adds an event listener (`'error'`). */
  on(event: 'error', listener: (error: unknown) => void): unknown;
}

/** A node-redis (v5/v6) client, as {@link nodeRedisClient} uses it (structural: no import). */
export interface NodeRedisClientLike extends NodeRedisLike {
  /** Sends any command (`sendCommand(['XADD', key, …])`). */
  sendCommand(args: string[]): Promise<unknown>;
  /** A new, not yet connected client with the same options. */
  duplicate(): NodeRedisClientLike;
  /** Connects the client. */
  connect(): Promise<unknown>;
  /** Adds an event listener (`'error'`). */
  on(event: 'error', listener: (error: unknown) => void): unknown;
}

/**
 * Adapts an ioredis `Redis` or `Cluster` for `sluice/events/redis` (and `sluice/rate/redis`:
 * it is a {@link RedisScripting} too). On a `Cluster`, commands are routed by their key; a
 * stream is one key, so one slot. A connection `duplicate()` opens inherits the client's
 * options; one created with `lazyConnect` is connected first.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { RedisStreamTransport, ioredisClient } from 'sluice/events/redis';
 * const transport = new RedisStreamTransport({
 *   client: ioredisClient(new Redis(process.env.REDIS_URL!)),
 *   stream: 'sluice:events:app',
 * });
 * ```
 */
export function ioredisClient(client: IoredisClientLike): RedisClient {
  return {
    ...ioredisScripting(client),
    command: (args) => {
      const [name, ...rest] = args;
      return client.call(name ?? '', ...rest);
    },
    duplicate: async () => {
      const copy = client.duplicate();
      copy.on('error', ignore);
      try {
        if (copy.status === 'wait') await copy.connect();
      } catch (error) {
        // Left alone, the copy would go on reconnecting (retryStrategy) and stay open for good.
        copy.disconnect();
        throw error;
      }
      return ioredisClient(copy);
    },
    quit: quitIoredis(client),
    disconnect: () => client.disconnect(),
  };
}

/**
 * Adapts a connected node-redis v5/v6 client (`createClient`) for `sluice/events/redis` (and
 * `sluice/rate/redis`). Replies in RESP3 (v6's default) are normalised to RESP2 shapes. A
 * node-redis cluster (`createCluster`) sends commands another way: use it with
 * {@link nodeRedisScripting} for `RedisStore`, and an ioredis `Cluster` for streams.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * import { RedisStreamTransport, nodeRedisClient } from 'sluice/events/redis';
 * const client = await createClient({ url: process.env.REDIS_URL }).connect();
 * const transport = new RedisStreamTransport({ client: nodeRedisClient(client), stream: 'sluice:events:app' });
 * ```
 */
export function nodeRedisClient(client: NodeRedisClientLike): RedisClient {
  return {
    ...nodeRedisScripting(client),
    command: (args) => client.sendCommand(args.slice()).then(normalise),
    duplicate: async () => {
      const copy = client.duplicate();
      copy.on('error', ignore);
      try {
        await copy.connect();
      } catch (error) {
        // Not left behind to reconnect on its own.
        copy.destroy?.();
        throw error;
      }
      return nodeRedisClient(copy);
    },
    quit: quitNodeRedis(client),
    disconnect: () => {
      if (client.destroy !== undefined) client.destroy();
      else void client.quit?.().catch(ignore);
    },
  };
}

/** RESP3 maps (plain objects or `Map`s) become flat `[key, value, …]` arrays, recursively. */
function normalise(reply: unknown): unknown {
  if (Array.isArray(reply)) {
    for (let i = 0; i < reply.length; i++) {
      const item: unknown = reply[i];
      if (typeof item === 'object' && item !== null) reply[i] = normalise(item);
    }
    return reply;
  }
  if (typeof reply !== 'object' || reply === null || ArrayBuffer.isView(reply)) return reply;
  const flat: unknown[] = [];
  const pairs = reply instanceof Map ? reply.entries() : Object.entries(reply);
  for (const [key, value] of pairs as Iterable<[unknown, unknown]>) flat.push(key, normalise(value));
  return flat;
}

/** A Lua script and its SHA-1, for `EVALSHA` (and `EVAL` after `NOSCRIPT`). */
export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

/** Prepares a script: its source and SHA-1. */
export function luaScript(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Whether a reply error is `NOSCRIPT` (the server does not have the script cached). */
export function isNoScript(error: unknown): boolean {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' && message.includes('NOSCRIPT');
}

/** `EVALSHA`, then `EVAL` once when the server answers `NOSCRIPT` (restart, failover, flush). */
export function runScript(
  client: RedisScripting,
  script: LuaScript,
  keys: string[],
  args: string[],
): Promise<unknown> {
  let sent: Promise<unknown>;
  try {
    sent = Promise.resolve(client.evalsha(script.sha, keys, args));
  } catch (error) {
    return Promise.reject(error);
  }
  return sent.catch((error: unknown) => {
    if (!isNoScript(error)) throw error;
    return client.eval(script.source, keys, args);
  });
}

/**
 * Creates a client with the installed `driver` (imported only now), configured to fail fast
 * during an outage (no offline queue, no command retries; it reconnects in the background), and
 * connects it. A failed first connection rejects.
 */
export async function connectRedis(
  url: string,
  driver: 'ioredis' | 'redis',
  connectTimeout: number,
): Promise<RedisClient> {
  return driver === 'ioredis' ? connectIoredis(url, connectTimeout) : connectNodeRedis(url, connectTimeout);
}

async function connectIoredis(url: string, connectTimeout: number): Promise<RedisClient> {
  const { Redis } = await import('ioredis');
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: Math.min(connectTimeout, 2 ** 31 - 1),
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
  });
  client.on('error', ignore);
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw error;
  }
  return ioredisClient(client);
}

async function connectNodeRedis(url: string, connectTimeout: number): Promise<RedisClient> {
  const { createClient } = await import('redis');
  let connected = false;
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: Math.min(connectTimeout, 2 ** 31 - 1),
      // The first connection fails at once; later outages reconnect in the background.
      reconnectStrategy: (retries: number, cause: Error) =>
        connected ? Math.min(retries * 100, 1000) : cause,
    },
  });
  client.on('error', ignore);
  await client.connect();
  connected = true;
  return nodeRedisClient(client);
}

function quitIoredis(client: IoredisLike): () => Promise<void> {
  return async () => {
    // quit() waits for a reply a dead server never sends: disconnect unless connected.
    if (client.status !== undefined && client.status !== 'ready') {
      client.disconnect();
      return;
    }
    try {
      await client.quit();
    } catch {
      client.disconnect();
    }
  };
}

function quitNodeRedis(client: NodeRedisLike): () => Promise<void> {
  return async () => {
    // close() waits for pending replies: a client that is not ready is destroyed instead.
    if (client.isReady === false && client.destroy !== undefined) {
      client.destroy();
      return;
    }
    try {
      if (client.close !== undefined) await client.close();
      else if (client.quit !== undefined) await client.quit();
    } catch {
      client.destroy?.();
    }
  };
}

/**
 * Connection errors are emitted as events; an unheard `'error'` event would crash the process.
 * The commands that fail because of them reject on their own.
 */
function ignore(): void {}
