/**
 * Redis goes away mid-stream (kill -9 of a private redis-server) and comes back on the same port.
 * With persistence (AOF, fsync always) the stream survives: a reader loop that retries like the
 * bus does resumes from its cursor and sees every entry exactly once, and a consumer group's
 * pending entries survive too. Without persistence the stream is lost: a reader's cursor is now
 * above the log and its group is gone — both are reported (TransportResetError), not waited on.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { TransportResetError } from '../../src/errors.js';
import { RedisStreamTransport } from '../../src/events/redis/index.js';
import type { TransportEntry } from '../../src/events/transport.js';
import { RedisServer, redisServerBinary } from '../helpers/redis-server.js';

const servers: RedisServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

const STREAM = 'sluice:events:restart';

/** Retries `fn` every 20 ms until it resolves (the server is coming back); returns the ms taken. */
async function until<T>(what: string, ms: number, fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  for (;;) {
    try {
      return [await fn(), performance.now() - start];
    } catch (error) {
      if (performance.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`, { cause: error });
      await sleep(20);
    }
  }
}

describe('RedisStreamTransport across a Redis restart', { concurrency: true }, () => {
  for (const driver of ['ioredis', 'redis'] as const) {
    test(`${driver}: kill -9 with AOF → reads reject during the outage, then resume from the cursor: no loss, no duplicate`, async (t) => {
      if (!redisServerBinary(t)) return;
      const server = await RedisServer.start({ appendOnly: true });
      servers.push(server);
      const writer = await RedisStreamTransport.connect(server.url, { driver, stream: STREAM });
      const reader = await RedisStreamTransport.connect(server.url, { driver, stream: STREAM });
      try {
        await writer.createGroup('workers', '0');
        // A reader loop as the bus runs it: blocking reads from its cursor, retry on error.
        const seen: TransportEntry[] = [];
        const failures: unknown[] = [];
        let firstFailureAt = Infinity;
        let killedAt = Infinity;
        let running = true;
        const loop = (async () => {
          let cursor = '0-0';
          while (running) {
            try {
              const entries = await reader.read(cursor, { count: 7, blockMs: 200 });
              seen.push(...entries);
              if (entries.length > 0) cursor = (entries.at(-1) as TransportEntry).id;
            } catch (error) {
              failures.push(error);
              if (firstFailureAt === Infinity) firstFailureAt = performance.now();
              await sleep(50);
            }
          }
        })();

        for (let i = 0; i < 50; i += 5) {
          await writer.append([0, 1, 2, 3, 4].map((k) => ({ type: 'n', payload: i + k })));
        }
        await until('the reader catches up', 3000, async () => assert.equal(seen.length, 50));
        const pending = await writer.readGroup('workers', 'w1', { count: 3, blockMs: 0 });
        assert.equal(pending.length, 3);

        // A read blocked on the server when it dies rejects; so do calls during the outage.
        const blocked = reader.read(await reader.lastId(), { count: 1, blockMs: 10_000 });
        const blockedSettled = blocked.then(
          () => 'resolved',
          (error: Error) => error.message,
        );
        await sleep(30);
        killedAt = performance.now();
        await server.kill('SIGKILL');
        const blockedOutcome = await blockedSettled;
        const blockedRejectMs = performance.now() - killedAt;
        assert.notEqual(blockedOutcome, 'resolved');
        await assert.rejects(writer.append([{ type: 'n', payload: -1 }]));
        const outageStart = performance.now();
        await assert.rejects(reader.read('0-0', { count: 1, blockMs: 0 }));
        assert.ok(performance.now() - outageStart < 1000, 'a call during the outage fails fast');
        await sleep(300);

        await server.restart();
        const restartedAt = performance.now();
        const [, backMs] = await until('appends work again', 5000, () =>
          writer.append([{ type: 'n', payload: 50 }]),
        );
        for (let i = 51; i < 70; i++) await writer.append([{ type: 'n', payload: i }]);
        await until('the reader resumes', 5000, async () => assert.equal(seen.length, 70));
        const resumedMs = performance.now() - restartedAt;
        running = false;
        await loop;

        assert.deepEqual(
          seen.map((e) => e.payload),
          Array.from({ length: 70 }, (_, i) => i),
          'every entry once, in order',
        );
        assert.ok(failures.length > 0, 'reads rejected during the outage');
        // The group survived: its pending entries are claimable, deliveries counted.
        const claimed = await writer.claim('workers', 'w2', 0, 10);
        assert.deepEqual(
          claimed.map((e) => e.payload),
          [0, 1, 2],
        );
        assert.deepEqual(
          claimed.map((e) => e.deliveries),
          [2, 2, 2],
        );
        t.diagnostic(
          `${driver}: blocked read rejected ${blockedRejectMs.toFixed(0)} ms after kill -9 (${blockedOutcome}); ` +
            `first loop failure ${(firstFailureAt - killedAt).toFixed(0)} ms after; ${failures.length} failed reads; ` +
            `appends back ${backMs.toFixed(0)} ms after restart, reader caught up ${resumedMs.toFixed(0)} ms after restart`,
        );
      } finally {
        await Promise.all([writer.close(), reader.close()]);
      }
    });

    test(`${driver}: a restart that loses the stream is reported (cursor above the log, group gone)`, async (t) => {
      if (!redisServerBinary(t)) return;
      const server = await RedisServer.start();
      servers.push(server);
      const transport = await RedisStreamTransport.connect(server.url, { driver, stream: STREAM });
      try {
        await transport.createGroup('workers', '0');
        const ids = await transport.append([1, 2, 3].map((payload) => ({ type: 'n', payload })));
        const cursor = ids.at(-1) as string;
        await server.kill('SIGKILL');
        await server.restart();
        const [lastId] = await until('Redis answers again', 5000, () => transport.lastId());
        assert.equal(lastId, '0-0', 'the stream is gone');

        const started = performance.now();
        await assert.rejects(transport.read(cursor, { count: 10, blockMs: 0 }), (error) => {
          assert.ok(error instanceof TransportResetError);
          assert.equal(error.lastId, '0-0');
          return true;
        });
        await assert.rejects(transport.read(cursor, { count: 10, blockMs: 200 }), TransportResetError);
        const reportedMs = performance.now() - started;
        await assert.rejects(transport.readGroup('workers', 'w', { count: 10, blockMs: 0 }), (error) => {
          assert.ok(error instanceof TransportResetError);
          assert.equal(error.group, 'workers');
          return true;
        });
        await assert.rejects(transport.claim('workers', 'w', 0, 10), TransportResetError);

        // Recovery as the bus does it: recreate the group, read the new log from its start.
        await transport.createGroup('workers', '0');
        const [fresh] = await transport.append([{ type: 'n', payload: 4 }]);
        const entries = await transport.read('0-0', { count: 10, blockMs: 0 });
        assert.deepEqual(
          entries.map((e) => e.id),
          [fresh],
        );
        const delivered = await transport.readGroup('workers', 'w', { count: 10, blockMs: 0 });
        assert.deepEqual(
          delivered.map((e) => e.payload),
          [4],
        );
        t.diagnostic(`${driver}: reset reported on both reads within ${reportedMs.toFixed(0)} ms`);
      } finally {
        await transport.close();
      }
    });
  }
});
