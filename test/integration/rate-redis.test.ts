import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { Tiers } from '../../src/rate/index.js';
import { RedisStore } from '../../src/rate/redis/index.js';
import { rateStoreContract, type StoreFixture } from '../contract/rate-store.suite.js';
import { serviceUrl } from '../helpers/services.js';

const url = process.env['REDIS_URL'];

/** A store on its own client and a unique prefix; closing deletes every key it wrote. */
async function redisFixture(
  redisUrl: string,
  driver: 'ioredis' | 'redis',
): Promise<StoreFixture & { ttlMs: (storeKey: string) => Promise<number> }> {
  const prefix = `sluice:test:${process.pid}:${Date.now()}:${driver}:`;
  const store = await RedisStore.connect(redisUrl, { driver, prefix });
  const inspect = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await inspect.connect();
  return {
    store,
    ttlMs: (storeKey) => inspect.pttl(prefix + storeKey),
    close: async () => {
      await store.close();
      const keys = await inspect.keys(`${prefix}*`);
      if (keys.length > 0) await inspect.del(...keys);
      inspect.disconnect();
    },
  };
}

if (url === undefined || url === '') {
  test('RedisStore: RateStore contract against REDIS_URL', (t) => {
    serviceUrl(t, 'REDIS_URL');
  });
} else {
  rateStoreContract('RedisStore (ioredis): RateStore contract', () => redisFixture(url, 'ioredis'));
  rateStoreContract('RedisStore (node-redis): RateStore contract', () => redisFixture(url, 'redis'));
}

test('RedisStore: a name with `:` cannot collide with another name and key', async (t) => {
  const redisUrl = serviceUrl(t, 'REDIS_URL');
  if (redisUrl === undefined) return;
  const fixture = await redisFixture(redisUrl, 'ioredis');
  try {
    const tiers = new Tiers({ api: '2/1m', 'api:admin': '2/1m' }, { store: fixture.store });
    assert.equal((await tiers.consume('api', 'admin:bob')).allowed, true);
    assert.equal((await tiers.consume('api', 'admin:bob')).allowed, true);
    assert.equal((await tiers.consume('api:admin', 'bob')).allowed, true, 'another tier’s quota');
    assert.ok((await fixture.ttlMs('api\\:admin:bob')) > 0, 'the name is escaped in the Redis key');
  } finally {
    await fixture.close();
  }
});
