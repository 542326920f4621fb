// One worker process of the `rate-shared` scenario: a loopback HTTP server whose POST /login is
// limited by a RateLimiter named `login`. Started by `fork()` with its store kind in argv:
// - `per-process`: a MemoryStore of its own (what report 001 shipped);
// - `ipc`: a store that forwards every decision to the parent process, which holds the one
//   MemoryStore both workers share (the embedded stand-in for Redis);
// - `redis`: a RedisStore at REDIS_URL.
// It tells the parent its port with `{ port }`, and exits when the parent disconnects.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  MemoryStore,
  RateLimiter,
  type RateDecision,
  type RatePolicy,
  type RateStore,
} from '../../src/rate/index.js';

interface Reply {
  readonly id: number;
  readonly decision?: Omit<RateDecision, 'policy'>;
  readonly error?: string;
}

/** A RateStore whose state lives in the parent process, reached over the fork IPC channel. */
class ParentStore implements RateStore {
  #next = 0;
  readonly #pending = new Map<
    number,
    { policy: RatePolicy; resolve: (d: RateDecision) => void; reject: (e: Error) => void }
  >();

  constructor() {
    process.on('message', (message: Reply) => {
      const waiter = this.#pending.get(message.id);
      if (waiter === undefined) return;
      this.#pending.delete(message.id);
      if (message.error !== undefined) waiter.reject(new Error(message.error));
      else waiter.resolve({ ...(message.decision as Omit<RateDecision, 'policy'>), policy: waiter.policy });
    });
  }

  #ask(
    op: 'consume' | 'peek' | 'reset',
    key: string,
    policy: RatePolicy,
    cost: number,
  ): Promise<RateDecision> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { policy, resolve, reject });
      process.send?.({
        id,
        op,
        key,
        cost,
        policy: { name: policy.name, limit: policy.limit, window: policy.windowMs },
      });
    });
  }

  consume(key: string, policy: RatePolicy, cost: number): Promise<RateDecision> {
    return this.#ask('consume', key, policy, cost);
  }

  peek(key: string, policy: RatePolicy): Promise<RateDecision> {
    return this.#ask('peek', key, policy, 1);
  }

  async reset(key: string, policy: RatePolicy): Promise<void> {
    await this.#ask('reset', key, policy, 0);
  }
}

async function storeFor(kind: string): Promise<RateStore> {
  if (kind === 'per-process') return new MemoryStore();
  if (kind === 'ipc') return new ParentStore();
  const url = process.env['REDIS_URL'];
  if (kind !== 'redis' || url === undefined) throw new Error(`unknown store kind ${kind}`);
  const redis = (await import('../../src/rate/redis/index.js')) as unknown as {
    RedisStore: { connect(url: string, options: object): Promise<RateStore> };
  };
  return redis.RedisStore.connect(url, {
    driver: 'ioredis',
    prefix: process.env['SLUICE_RATE_PREFIX'] ?? 'sluice:scenario:',
  });
}

const kind = process.argv[2] ?? 'per-process';
const limiter = new RateLimiter({
  policy: process.argv[3] ?? '5/1m',
  name: 'login',
  store: await storeFor(kind),
  onStoreError: 'fail-closed',
});

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const ip = req.socket.remoteAddress ?? 'unknown';
    limiter.consume(ip).then(
      (d) => {
        if (d.allowed) {
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ pid: process.pid }));
        } else {
          res.writeHead(429, { 'retry-after': String(Math.ceil(d.retryAfterMs / 1000)) }).end();
        }
      },
      () => res.writeHead(500).end(),
    );
  });
});
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on('disconnect', () => {
  server.close();
  void limiter.store.close?.();
  process.exit(0);
});
