/**
 * Blocking reads during a Redis outage: each one needs a connection of its own, and opening it
 * fails while the server is down. A failed opening must not leave a client behind that keeps
 * reconnecting (and connects for good once the server is back): the connections the transport
 * holds stay bounded by `blockingConnections` however many reads failed.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisStreamTransport } from '../../src/events/redis/index.js';
import { RedisServer, redisServerBinary } from '../helpers/redis-server.js';

const servers: RedisServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

describe('RedisStreamTransport: blocking reads during an outage', { concurrency: true }, () => {
  for (const driver of ['ioredis', 'redis'] as const) {
    test(`${driver}: every read rejects in bounded time, and failed connection openings leave no client behind`, async (t) => {
      if (!redisServerBinary(t)) return;
      const server = await RedisServer.start();
      servers.push(server);
      const transport = await RedisStreamTransport.connect(server.url, {
        driver,
        stream: 'sluice:events:churn',
        replyTimeout: 150,
      });
      try {
        await server.kill();
        let failed = 0;
        for (let i = 0; i < 8; i++) {
          // Each read rejects within blockMs + replyTimeout, also once every connection slot
          // is taken by an opening that has not settled (node-redis retries it in the background).
          const read = transport.read('0-0', { count: 1, blockMs: 50 });
          await Promise.race([
            read.catch(() => failed++),
            sleep(2000).then(() => assert.fail(`read ${i} neither resolved nor rejected`)),
          ]);
          await sleep(10);
        }
        assert.equal(failed, 8);
        await server.restart();
        const watcher = new Redis(server.url);
        try {
          // Every client still trying to reconnect gets there within its retry delay (≤ 1 s).
          await sleep(1500);
          const clients = String(await watcher.call('CLIENT', 'LIST'))
            .trim()
            .split('\n');
          // The transport's client and at most `blockingConnections` (4), plus the watcher.
          assert.ok(clients.length <= 6, `${clients.length} connections after 8 failed reads`);
        } finally {
          watcher.disconnect();
        }
      } finally {
        await transport.close();
      }
    });
  }
});
