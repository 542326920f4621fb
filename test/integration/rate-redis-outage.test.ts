/**
 * Redis goes away mid-run (kill -9 of a private redis-server) and comes back on the same port:
 * decisions follow `onStoreError` within a bounded time, nothing crashes or rejects unhandled
 * (the runner uses --unhandled-rejections=strict), and decisions come from Redis again after the
 * restart. Also: close() while calls are in flight, and close() during an outage.
 */
import assert from 'node:assert/strict';
import { setImmediate as yieldLoop, setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { MemoryStore, RateLimiter, type RateDecision } from '../../src/rate/index.js';
import { RedisStore } from '../../src/rate/redis/index.js';
import { RedisServer, redisServerBinary } from '../helpers/redis-server.js';

const servers: RedisServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function waitFor(what: string, ms: number, check: () => Promise<boolean>): Promise<number> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
  return performance.now() - start;
}

describe('RedisStore outage', { concurrency: true }, () => {
  for (const driver of ['ioredis', 'redis'] as const) {
    test(`${driver}: kill -9 → onStoreError decides within 2 s; restart → Redis decides again`, async (t) => {
      if (!redisServerBinary(t)) return;
      const server = await RedisServer.start();
      servers.push(server);
      const store = await RedisStore.connect(server.url, { driver, timeout: 300 });
      const open = new RateLimiter({ policy: '1000/1m', store, name: 'open' });
      const fallback = new RateLimiter({
        policy: '3/1m',
        store,
        name: 'fallback',
        onStoreError: { fallback: new MemoryStore() },
      });

      // 20 callers deciding continuously.
      let running = true;
      let killedAt = Infinity;
      let firstFailOpenAt = Infinity;
      let decisions = 0;
      const callers = Array.from({ length: 20 }, async (_, i) => {
        while (running) {
          const d = await open.consume(`caller ${i}`);
          decisions++;
          assert.equal(d.allowed, true);
          if (d.storeError !== undefined && firstFailOpenAt === Infinity && performance.now() >= killedAt) {
            firstFailOpenAt = performance.now();
          }
          await yieldLoop();
        }
      });

      await waitFor('first decisions', 2000, () => Promise.resolve(decisions > 100));
      killedAt = performance.now();
      await server.kill('SIGKILL');
      await waitFor('fail-open after kill -9', 2000, () => Promise.resolve(firstFailOpenAt < Infinity));
      const failOpenMs = firstFailOpenAt - killedAt;
      t.diagnostic(`${driver}: first fail-open decision ${failOpenMs.toFixed(1)} ms after kill -9`);
      assert.ok(failOpenMs < 2000);

      // During the outage: the fallback limits per process, and says why.
      const during: RateDecision[] = [];
      for (let i = 0; i < 5; i++) during.push(await fallback.consume('ip'));
      assert.deepEqual(
        during.map((d) => d.allowed),
        [true, true, true, false, false],
      );
      assert.ok(during.every((d) => d.storeError !== undefined));
      const outageStart = performance.now();
      const peekDuring = await open.peek('x');
      assert.ok(peekDuring.storeError !== undefined);
      assert.ok(performance.now() - outageStart < 400, 'a call during the outage waits at most the timeout');

      await server.restart();
      const backMs = await waitFor('Redis decides again', 5000, async () => {
        const d = await fallback.consume('after');
        return d.storeError === undefined;
      });
      t.diagnostic(`${driver}: decisions from Redis again ${backMs.toFixed(0)} ms after the restart`);
      // The fresh server has its own state: 'ip' starts over with a whole quota there.
      const fromRedis = await fallback.consume('ip');
      assert.equal(fromRedis.storeError, undefined);
      assert.equal(fromRedis.remaining, 2);

      running = false;
      await Promise.all(callers);
      assert.ok(open.stats.storeErrors > 0);
      assert.equal(store.stats.inFlight, 0);

      // close() during an outage: nothing to wait for, the client is dropped at once.
      await server.kill('SIGKILL');
      const closing = performance.now();
      await store.close();
      assert.ok(performance.now() - closing < 1000, 'close during an outage is quick');
      const closed = await open.consume('x');
      assert.equal(closed.allowed, true);
      assert.equal((closed.storeError as Error).name, 'ClosedError');
    });

    test(`${driver}: a server that stops answering (SIGSTOP) → TimeoutError after \`timeout\`; late replies are dropped`, async (t) => {
      if (!redisServerBinary(t)) return;
      const server = await RedisServer.start();
      servers.push(server);
      const store = await RedisStore.connect(server.url, { driver, timeout: 200 });
      const limiter = new RateLimiter({ policy: '100/1m', store, name: 'frozen' });
      try {
        // Warm up (the first call loads the script; the machine is busy with the other tests).
        await waitFor(
          'a first decision',
          3000,
          async () => (await limiter.consume('k')).storeError === undefined,
        );
        const timeoutsBefore = store.stats.timeouts;
        server.signal('SIGSTOP');
        const start = performance.now();
        const frozen = await Promise.all(Array.from({ length: 20 }, () => limiter.consume('k')));
        const waited = performance.now() - start;
        t.diagnostic(
          `${driver}: 20 calls to a frozen server decided (fail-open) after ${waited.toFixed(0)} ms`,
        );
        assert.ok(frozen.every((d) => d.allowed && (d.storeError as Error).name === 'TimeoutError'));
        assert.ok(waited >= 190 && waited < 1000);
        assert.equal(store.stats.timeouts - timeoutsBefore, 20);
        server.signal('SIGCONT');
        // The 20 abandoned commands are answered now and dropped; Redis decides again.
        await waitFor(
          'Redis decides again',
          3000,
          async () => (await limiter.consume('k')).storeError === undefined,
        );
        assert.equal(store.stats.inFlight, 0);
      } finally {
        server.signal('SIGCONT');
        await store.close();
      }
    });

    test(`${driver}: close() while calls are in flight settles every call, then quits`, async (t) => {
      if (!redisServerBinary(t)) return;
      const server = await RedisServer.start();
      servers.push(server);
      // A generous timeout: this test is about close(), not about slow replies.
      const store = await RedisStore.connect(server.url, { driver, timeout: 5000 });
      const limiter = new RateLimiter({ policy: '100/1m', store, name: 'closing' });
      const pending = Array.from({ length: 200 }, (_, i) => limiter.consume(`k${i % 7}`));
      const abort = new AbortController();
      const aborted = limiter.consume('aborted', { signal: abort.signal });
      abort.abort(new Error('client went away'));
      await assert.rejects(aborted, /client went away/);
      assert.ok(store.stats.inFlight > 0);
      await store.close();
      assert.equal(store.stats.inFlight, 0);
      const settled = await Promise.all(pending);
      assert.equal(settled.length, 200);
      assert.ok(
        settled.every((d) => d.storeError === undefined),
        'calls already sent complete',
      );
      await assert.rejects(store.consume('late', limiter.policy, 1, 0), { code: 'SLUICE_CLOSED' });
    });
  }
});
