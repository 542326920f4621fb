import { test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/rate/redis/index.js';
import { rateStoreContract, type StoreFixture } from '../contract/rate-store.suite.js';
import { serviceUrl } from '../helpers/services.js';

const url = process.env['REDIS_URL'];

/** A store on its own client and a unique prefix; closing deletes every key it wrote. */
async function redisFixture(redisUrl: string, driver: 'ioredis' | 'redis'): Promise<StoreFixture> {
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
