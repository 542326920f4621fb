import assert from 'node:assert/strict';
import { it } from 'node:test';
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
