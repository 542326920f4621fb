/**
 * An EventBus on a Redis stream while Redis is killed (-9) and restarted with its AOF: the bus's
 * read loop reports the failures, backs off, and resumes from its cursor. Every event appended
 * before and after the outage reaches the subscriber exactly once, in order; emits during the
 * outage reject (nothing is silently dropped); a consumer group handles every event, and again
 * only when its acknowledgement was lost to the outage.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { EventBus } from '../../src/events/index.js';
import { RedisStreamTransport } from '../../src/events/redis/index.js';
import { captureReports, until } from '../helpers/async.js';
import { RedisServer, redisServerBinary } from '../helpers/redis-server.js';

const servers: RedisServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

test('EventBus over Redis Streams: kill -9 and restart mid-stream loses nothing and repeats only unacknowledged group events', async (t) => {
  if (!redisServerBinary(t)) return;
  const server = await RedisServer.start({ appendOnly: true });
  servers.push(server);
  const reports = captureReports('sluice:events:transport');
  const stream = 'sluice:events:bus-restart';
  const ta = await RedisStreamTransport.connect(server.url, { driver: 'ioredis', stream, replyTimeout: 500 });
  const tb = await RedisStreamTransport.connect(server.url, { driver: 'ioredis', stream, replyTimeout: 500 });
  const producer = new EventBus<{ n: number }>({ transport: ta, claimAfterMs: 200 });
  const consumer = new EventBus<{ n: number }>({ transport: tb, claimAfterMs: 200 });
  try {
    const seen: number[] = [];
    const grouped: number[] = [];
    consumer.on('n', (n) => void seen.push(n));
    consumer.on('n', (n) => void grouped.push(n), { group: 'g' });
    await producer.emit('n', 0);
    await until(() => seen.length === 1, 'the first event', 8000);
    for (let n = 1; n < 30; n++) await producer.emit('n', n);
    await until(() => seen.length === 30, '30 events', 8000);

    await server.kill('SIGKILL');
    await assert.rejects(producer.emit('n', -1), 'an emit during the outage rejects');
    await sleep(300);
    await server.restart();
    let sent = 30;
    const deadline = Date.now() + 8000;
    while (sent < 60) {
      try {
        await producer.emit('n', sent);
        sent++;
      } catch {
        if (Date.now() > deadline) throw new Error('appends did not come back');
        await sleep(20);
      }
    }
    await until(
      () => seen.length === 60 && new Set(grouped).size === 60,
      () => `all 60 events after the restart (seen ${seen.length}, grouped ${grouped.length})`,
      8000,
    );
    assert.deepEqual(
      seen,
      Array.from({ length: 60 }, (_, i) => i),
      'every event once, in order',
    );
    assert.deepEqual(
      [...new Set(grouped)].sort((x, y) => x - y),
      Array.from({ length: 60 }, (_, i) => i),
      'the group handled every event',
    );
    // At-least-once: an event is handled again only when its acknowledgement was lost to the
    // outage (the handler ran, the XACK failed, the entry was claimed later).
    const lostAcks = reports.reports.filter((r) => r.where.startsWith('ack')).length;
    assert.ok(grouped.length - 60 <= lostAcks, `${grouped.length - 60} repeats, ${lostAcks} lost acks`);
    assert.ok(consumer.stats.transportErrors > 0, 'the outage was counted');
    assert.ok(reports.reports.length > 0, 'and reported on sluice:events:transport');
    t.diagnostic(
      `${consumer.stats.transportErrors} transport errors on the consumer; ${producer.stats.appendFailures} failed appends`,
    );
  } finally {
    reports.stop();
    await Promise.all([
      producer.close({ signal: AbortSignal.timeout(3000) }),
      consumer.close({ signal: AbortSignal.timeout(3000) }),
    ]);
    await Promise.all([ta.close(), tb.close()]);
  }
});
