/**
 * The Lua script against its reference: identical decisions to algorithms.ts (through
 * MemoryStore) for generated sequences, with `time: 'client'` so both see the same clock; and
 * exactly one round trip (one EVALSHA) per decision, counted by the server's INFO commandstats
 * on a private redis-server (a shared one counts other test files' commands too).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { MemoryStore, parsePolicy, RateLimiter, type RatePolicyOptions } from '../../src/rate/index.js';
import { RedisStore } from '../../src/rate/redis/index.js';
import { RedisServer, redisServerBinary } from '../helpers/redis-server.js';
import { serviceUrl } from '../helpers/services.js';

const policyArb = fc
  .record({
    algorithm: fc.constantFrom('gcra', 'token-bucket', 'fixed-window', 'sliding-window' as const),
    limit: fc.integer({ min: 1, max: 12 }),
    windowMs: fc.oneof(fc.integer({ min: 1, max: 5000 }), fc.constant(366 * 86_400_000)),
    burst: fc.integer({ min: 0, max: 20 }),
    segments: fc.integer({ min: 1, max: 12 }),
  })
  .map(({ algorithm, limit, windowMs, burst, segments }): RatePolicyOptions => {
    if (algorithm === 'sliding-window') return { algorithm, limit, window: windowMs, segments };
    if (algorithm === 'fixed-window') return { algorithm, limit, window: windowMs };
    return { algorithm, limit, window: windowMs, burst };
  });

/** A step: advance the clock by `dtUs` (negative: a clock stepping back), then consume or peek. */
const stepArb = fc.record({
  dtUs: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: 2000 }),
    fc.integer({ min: 1, max: 3_000_000 }),
    fc.integer({ min: -5000, max: -1 }),
  ),
  peek: fc.boolean(),
  costShare: fc.double({ min: 0, max: 1, noNaN: true }),
});

describe('RedisStore script ≡ algorithms.ts', () => {
  let redis: Redis | undefined;
  let url: string | undefined;
  before(() => {
    url = process.env['REDIS_URL'] || undefined;
  });
  after(() => redis?.disconnect());

  test('identical decisions for generated policies, clocks and costs (time: client)', async (t) => {
    const redisUrl = serviceUrl(t, 'REDIS_URL');
    if (redisUrl === undefined) return;
    const prefix = `sluice:test:diff:${process.pid}:${Date.now()}:`;
    const store = await RedisStore.connect(redisUrl, { driver: 'ioredis', prefix, time: 'client' });
    redis = new Redis(redisUrl);
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          policyArb,
          fc.integer({ min: 0, max: 4e15 }),
          fc.array(stepArb, { minLength: 1, maxLength: 25 }),
          async (spec, startUs, steps) => {
            const policy = parsePolicy(spec, 'p');
            const memory = new MemoryStore();
            const key = `k ${++run} ✓`;
            let us = startUs;
            for (const step of steps) {
              // The in-memory sliding window drops stale segments on a peek or a denial, the
              // script does not write then: equal for a clock that never runs backwards.
              us += policy.algorithm === 'sliding-window' ? Math.abs(step.dtUs) : step.dtUs;
              const nowMs = us / 1000;
              const cost = Math.round(step.costShare * policy.capacity);
              const [expected, actual] = step.peek
                ? [memory.peekSync(key, policy, nowMs), await store.peek(key, policy, nowMs)]
                : [
                    memory.consumeSync(key, policy, cost, nowMs),
                    await store.consume(key, policy, cost, nowMs),
                  ];
              assert.deepEqual(actual, expected, `${step.peek ? 'peek' : `cost ${cost}`} at ${us} µs`);
            }
          },
        ),
        { numRuns: 150 },
      );
    } finally {
      await store.close();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    }
  });

  test('client time: a clock reading beyond ±2^52 µs rejects, the policy bound is checked first', async (t) => {
    if (url === undefined) {
      serviceUrl(t, 'REDIS_URL');
      return;
    }
    const store = await RedisStore.connect(url, {
      driver: 'redis',
      time: 'client',
      prefix: 'sluice:test:x:',
    });
    try {
      const policy = parsePolicy('5/1s', 'p');
      await assert.rejects(store.consume('k', policy, 1, 2 ** 52), { code: 'SLUICE_INVALID_INPUT' });
      await assert.rejects(store.consume('k', policy, 1, NaN), { code: 'SLUICE_INVALID_INPUT' });
      // Policies are refused before they reach a store when a burst would leave exact integers.
      assert.throws(() => parsePolicy({ limit: 1, window: '366d', burst: 1e9 }, 'huge'), RangeError);
    } finally {
      await store.close();
    }
  });
});

describe('RedisStore round trips (private redis-server)', () => {
  let server: RedisServer | undefined;
  let admin: Redis | undefined;
  after(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  async function commandstats(): Promise<Map<string, { calls: number; failed: number }>> {
    const info = await admin!.info('commandstats');
    const stats = new Map<string, { calls: number; failed: number }>();
    for (const line of info.split('\n')) {
      const m = /^cmdstat_([^:]+):calls=(\d+),.*failed_calls=(\d+)/.exec(line.trim());
      if (m !== null) stats.set(m[1]!, { calls: Number(m[2]), failed: Number(m[3]) });
    }
    return stats;
  }

  for (const driver of ['ioredis', 'redis'] as const) {
    test(`${driver}: exactly one EVALSHA per decision; NOSCRIPT costs one EVAL once`, async (t) => {
      if (!redisServerBinary(t)) return;
      server ??= await RedisServer.start();
      admin ??= new Redis(server.url);
      const store = await RedisStore.connect(server.url, { driver });
      const limiter = new RateLimiter({ policy: '50/1m', store, name: driver });
      try {
        await admin.script('FLUSH');
        await admin.config('RESETSTAT');
        const first = await limiter.consume('warm');
        assert.equal(first.storeError, undefined);
        assert.equal(store.stats.scriptLoads, 1);
        let stats = await commandstats();
        assert.deepEqual(stats.get('evalsha'), { calls: 1, failed: 1 }, 'NOSCRIPT once');
        assert.deepEqual(stats.get('eval'), { calls: 1, failed: 0 });

        await admin.config('RESETSTAT');
        const N = 500;
        const decisions = await Promise.all(
          Array.from({ length: N }, (_, i) =>
            i % 5 === 4 ? limiter.peek(`key ${i % 40}`) : limiter.consume(`key ${i % 40}`),
          ),
        );
        assert.ok(decisions.every((d) => d.storeError === undefined));
        assert.ok(decisions.some((d) => !d.allowed) || N / 40 < 50);
        stats = await commandstats();
        assert.deepEqual(stats.get('evalsha'), { calls: N, failed: 0 });
        // INFO commandstats also counts the commands the script runs inside Redis (TIME, GET,
        // SET …): exactly one TIME per EVALSHA, and nothing a client could have sent besides.
        assert.equal(stats.get('time')?.calls, N, 'one TIME per script run');
        const inScript = ['time', 'get', 'set', 'del', 'hmget', 'hset', 'hgetall', 'hdel', 'pexpire'];
        const others = [...stats.keys()].filter(
          (c) => c !== 'evalsha' && c !== 'info' && c !== 'config|resetstat' && !inScript.includes(c),
        );
        assert.deepEqual(others, [], 'no other command was sent');
        t.diagnostic(`${N} decisions → ${stats.get('evalsha')!.calls} EVALSHA round trips, nothing else`);
      } finally {
        await limiter.close();
        await store.close();
      }
    });
  }
});
