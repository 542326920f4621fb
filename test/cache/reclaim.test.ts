import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { Cache } from '../../src/cache/index.js';

const COHORT = 200_000;

it('after a cohort of 200k entries expires, no single set, get or timer tick reclaims more than a small slice; all are reclaimed', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const clock = {
    t: 0,
    now() {
      return this.t;
    },
  };
  let evicted = 0;
  const cache = new Cache<number, number>({
    maxSize: 2 * COHORT,
    ttl: 1000,
    clock,
    onEvict: () => void evicted++,
  });
  for (let i = 0; i < COHORT; i++) cache.set(i, i);
  clock.t = 5000;

  let maxPerCall = 0;
  let maxMs = 0;
  const measure = (fn: () => void) => {
    const before = evicted;
    const start = performance.now();
    fn();
    maxMs = Math.max(maxMs, performance.now() - start);
    maxPerCall = Math.max(maxPerCall, evicted - before);
  };
  for (let i = 0; i < 100; i++) {
    measure(() => cache.set(COHORT + i, i));
    measure(() => assert.equal(cache.get(i * 7), undefined, 'never an expired value'));
  }
  assert.ok(maxPerCall <= 64, `a write or read reclaimed ${maxPerCall} entries`);
  assert.ok(cache.size > COHORT / 2, 'writes alone did not reclaim the cohort');

  let ticks = 0;
  let maxPerTick = 0;
  while (cache.size > 100 && ticks < 10_000) {
    const before = evicted;
    t.mock.timers.tick(1);
    ticks++;
    maxPerTick = Math.max(maxPerTick, evicted - before);
  }
  assert.ok(maxPerTick <= 4096, `one timer tick reclaimed ${maxPerTick} entries`);
  assert.ok(ticks > 1, 'the cohort took more than one tick');
  assert.equal(cache.size, 100, 'every expired entry reclaimed, the 100 fresh ones kept');
  assert.equal(cache.stats.expirations, COHORT);
  for (let i = 0; i < 100; i++) assert.equal(cache.get(COHORT + i), i);
  assert.ok(maxMs < 50, `one call took ${maxMs.toFixed(1)} ms`);
});

it('property: with sweeps cut into slices, no entry is reclaimed early and prune reclaims them all', () => {
  type Op =
    | { kind: 'set'; key: number; ttl: number }
    | { kind: 'delete'; key: number }
    | { kind: 'tick'; ms: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant('set' as const),
        key: fc.nat({ max: 300 }),
        ttl: fc.integer({ min: 1, max: 40_000 }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat({ max: 300 }) }) },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 30_000 }) }),
    },
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
      const clock = { t: 0, now: () => clock.t };
      const removed = new Map<number, number>();
      const cache = new Cache<number, number>({
        maxSize: 1000,
        clock,
        onEvict: (key, _v, reason) => {
          if (reason === 'expired') removed.set(key, (removed.get(key) ?? 0) + 1);
        },
      });
      const model = new Map<number, number>(); // key -> deadline
      for (const o of ops) {
        if (o.kind === 'set') {
          cache.set(o.key, o.key, { ttl: o.ttl });
          model.set(o.key, clock.t + o.ttl);
        } else if (o.kind === 'delete') {
          cache.delete(o.key);
          model.delete(o.key);
        } else {
          clock.t += o.ms;
          for (const [key, at] of model) if (at <= clock.t) model.delete(key);
        }
        for (const [key] of removed)
          assert.ok(!model.has(key) || cache.has(key), `key ${key} reclaimed early`);
        for (const [key, at] of model) assert.equal(cache.peek(key), at > clock.t ? key : undefined);
        removed.clear();
      }
      clock.t += 100_000;
      cache.prune();
      assert.equal(cache.size, 0);
    }),
    { numRuns: 200 },
  );
});
