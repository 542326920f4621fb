import { test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisStreamTransport } from '../../src/events/redis/index.js';
import { eventBusTransportContract } from '../contract/event-bus-transport.suite.js';
import { serviceUrl } from '../helpers/services.js';

const url = process.env['REDIS_URL'];
let streams = 0;

if (url === undefined || url === '') {
  test('EventBus over RedisStreamTransport against REDIS_URL', (t) => {
    serviceUrl(t, 'REDIS_URL');
  });
} else {
  for (const driver of ['ioredis', 'redis'] as const) {
    eventBusTransportContract(`EventBus over RedisStreamTransport (${driver})`, async () => {
      const stream = `sluice:test:bus:${process.pid}:${Date.now()}:${driver}:${++streams}`;
      // Two "processes": each its own transport and connections on one stream.
      const a = await RedisStreamTransport.connect(url, { driver, stream });
      const b = await RedisStreamTransport.connect(url, { driver, stream });
      return {
        a,
        b,
        close: async () => {
          await Promise.all([a.close(), b.close()]);
          const inspect = new Redis(url, { maxRetriesPerRequest: 1 });
          await inspect.del(stream);
          inspect.disconnect();
        },
      };
    });
  }
}
