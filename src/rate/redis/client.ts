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
    quit: async () => {
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
    },
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
    quit: async () => {
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
    },
  };
}
