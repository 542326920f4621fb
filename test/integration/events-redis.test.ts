import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { RedisStreamTransport, ioredisClient, nodeRedisClient } from '../../src/events/redis/index.js';
import { eventTransportContract, type TransportFixture } from '../contract/event-transport.suite.js';
import { serviceUrl } from '../helpers/services.js';

const url = process.env['REDIS_URL'];
let streams = 0;
const uniqueStream = (driver: string): string =>
  `sluice:test:events:${process.pid}:${Date.now()}:${driver}:${++streams}`;

/** Two transports ("processes") on one fresh stream, each on its own connections. */
async function redisFixture(
  redisUrl: string,
  driver: 'ioredis' | 'redis',
  maxLength: number,
): Promise<TransportFixture> {
  const stream = uniqueStream(driver);
  const a = await RedisStreamTransport.connect(redisUrl, { driver, stream, maxLength });
  const b = await RedisStreamTransport.connect(redisUrl, { driver, stream, maxLength });
  return {
    a,
    b,
    close: async () => {
      await Promise.all([a.close(), b.close()]);
      const inspect = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
      await inspect.del(stream);
      inspect.disconnect();
    },
  };
}

if (url === undefined || url === '') {
  test('RedisStreamTransport: EventTransport contract against REDIS_URL', (t) => {
    serviceUrl(t, 'REDIS_URL');
  });
} else {
  // MAXLEN ~ trims whole stream nodes (stream-node-max-entries, 100 by default).
  for (const driver of ['ioredis', 'redis'] as const) {
    eventTransportContract(
      `RedisStreamTransport (${driver}): EventTransport contract`,
      ({ maxLength }) => redisFixture(url, driver, maxLength),
      { trimSlack: 100 },
    );
  }
}
