/**
 * The RateStore contract on a real Redis Cluster (3 masters started here on loopback ports),
 * with an ioredis `Cluster` and a node-redis `createCluster` client: every decision touches one
 * key passed in KEYS, so each lands on the key's slot owner (MOVED is the client's business).
 */
import { after, test } from 'node:test';
import { Cluster } from 'ioredis';
import { createCluster } from 'redis';
import { spawnSync } from 'node:child_process';
import { ioredisScripting, nodeRedisScripting, RedisStore } from '../../src/rate/redis/index.js';
import { rateStoreContract, type StoreFixture } from '../contract/rate-store.suite.js';
import { startCluster, type RedisServer } from '../helpers/redis-server.js';

const binary = spawnSync('redis-server', ['--version']).error === undefined;

if (!binary) {
  test('RedisStore on a Redis Cluster', (t) => {
    if (process.env['SLUICE_REQUIRE_SERVICES'] === '1') {
      throw new Error('redis-server is not on PATH but SLUICE_REQUIRE_SERVICES=1 requires it');
    }
    t.skip('redis-server is not on PATH; install Redis (or run .ci/run) to run this test');
  });
} else {
  let cluster: Promise<RedisServer[]> | undefined;
  const nodes = (): Promise<RedisServer[]> => (cluster ??= startCluster());
  after(async () => {
    if (cluster !== undefined) await Promise.all((await cluster).map((n) => n.stop()));
  });

  const inspector = async (): Promise<Cluster> => {
    const [first] = await nodes();
    const inspect = new Cluster([{ host: '127.0.0.1', port: first!.port }]);
    await new Promise<void>((resolve, reject) => {
      inspect.once('ready', resolve);
      inspect.once('error', reject);
    });
    return inspect;
  };

  rateStoreContract('RedisStore (ioredis Cluster): RateStore contract', async (): Promise<StoreFixture> => {
    const inspect = await inspector();
    const store = new RedisStore(ioredisScripting(inspect), { prefix: 'c:' });
    return {
      store,
      ttlMs: (storeKey) => inspect.pttl(`c:${storeKey}`),
      close: async () => {
        await store.close();
        inspect.disconnect();
      },
    };
  });

  rateStoreContract(
    'RedisStore (node-redis cluster): RateStore contract',
    async (): Promise<StoreFixture> => {
      const [first] = await nodes();
      const client = createCluster({ rootNodes: [{ url: first!.url }] });
      client.on('error', () => {});
      await client.connect();
      const inspect = await inspector();
      const store = new RedisStore(nodeRedisScripting(client), { prefix: 'n:' });
      return {
        store,
        ttlMs: (storeKey) => inspect.pttl(`n:${storeKey}`),
        close: async () => {
          await store.close();
          await client.close();
          inspect.disconnect();
        },
      };
    },
  );
}
