// MemoryStore bounds: a random-key flood never holds more than `maxKeys` states, expired state
// goes before live state, no timers (nothing keeps the process alive), O(1) work per new key.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore, RateLimiter } from '../../src/rate/index.js';
import { needsGc, settleHeap } from '../helpers/heap.js';

function fakeClock(start = 0) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

describe('MemoryStore', () => {
  it(
    'a flood of 300k random keys keeps at most maxKeys states and bounded memory',
    { skip: needsGc },
    async () => {
      const store = new MemoryStore({ maxKeys: 5_000 });
      const clock = fakeClock();
      const limiter = new RateLimiter({ limit: 10, window: '1m', store, clock });
      for (let i = 0; i < 10_000; i++) limiter.tryConsume(`warm-${i}`);
      const base = await settleHeap();
      for (let i = 0; i < 300_000; i++) {
        limiter.tryConsume(`${Math.random().toString(36).slice(2)}-${i}`);
        if (i % 1000 === 0) clock.t += 1;
      }
      assert.ok(store.stats.size <= 5_000, `size ${store.stats.size}`);
      const after = await settleHeap();
      assert.ok(after - base < 4 * 1024 * 1024, `heap grew ${((after - base) / 1024 / 1024).toFixed(1)} MiB`);
      assert.ok(store.stats.evicted > 0);
    },
  );

  it('reuses expired state before evicting a live key', () => {
    const store = new MemoryStore({ maxKeys: 100 });
    const clock = fakeClock();
    const limiter = new RateLimiter({ limit: 1, window: 1000, store, clock });
    for (let i = 0; i < 100; i++) assert.equal(limiter.tryConsume(`old-${i}`).allowed, true);
    clock.t += 1000; // every old key's state is now whole again
    for (let i = 0; i < 100; i++) assert.equal(limiter.tryConsume(`new-${i}`).allowed, true);
    assert.equal(store.stats.evicted, 0);
    assert.equal(store.stats.expired, 100);
    assert.equal(store.stats.size, 100);
    // The new keys are live: each is still limited.
    for (let i = 0; i < 100; i++) assert.equal(limiter.tryConsume(`new-${i}`).allowed, false);
  });

  it('at the bound with only live keys, evicts the longest-held key (which fails open) and counts it', () => {
    const store = new MemoryStore({ maxKeys: 3 });
    const limiter = new RateLimiter({ limit: 1, window: '1h', store, clock: fakeClock() });
    for (const k of ['a', 'b', 'c', 'd']) limiter.tryConsume(k);
    assert.equal(store.stats.size, 3);
    assert.equal(store.stats.evicted, 1);
    assert.equal(limiter.tryConsume('a').allowed, true, 'a was evicted and starts over');
    assert.equal(limiter.tryConsume('d').allowed, false);
  });

  it('sweeps expired keys a little at a time as new keys arrive, with no timer', () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const store = new MemoryStore({ maxKeys: 10_000 });
    const clock = fakeClock();
    const limiter = new RateLimiter({ limit: 5, window: 100, store, clock });
    for (let i = 0; i < 1000; i++) limiter.tryConsume(`k${i}`);
    clock.t += 100;
    for (let i = 0; i < 1000; i++) limiter.tryConsume(`n${i}`);
    assert.ok(store.stats.size < 2000, `expired keys were swept: size ${store.stats.size}`);
    assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, before);
  });

  it('reset forgets a key; clear and close forget every key', async () => {
    const store = new MemoryStore();
    const limiter = new RateLimiter({ limit: 1, window: '1m', store, clock: fakeClock() });
    limiter.tryConsume('x');
    assert.equal(limiter.tryConsume('x').allowed, false);
    await limiter.reset('x');
    assert.equal(limiter.tryConsume('x').allowed, true);
    store.clear();
    assert.equal(store.stats.size, 0);
    assert.equal(limiter.tryConsume('x').allowed, true);
    await store.close();
    assert.equal(store.stats.size, 0);
  });

  it('keys that look like array indices or collide in name stay apart per limiter', () => {
    const store = new MemoryStore();
    const clock = fakeClock();
    const a = new RateLimiter({ limit: 1, window: '1m', store, clock, name: 'a' });
    const b = new RateLimiter({ limit: 1, window: '1m', store, clock, name: 'b' });
    assert.equal(a.tryConsume('12').allowed, true);
    assert.equal(b.tryConsume('12').allowed, true);
    assert.equal(a.tryConsume('12').allowed, false);
    assert.equal(store.stats.size, 2);
  });

  it('consume and peek reject (never throw) on a clock reading that is not finite', async () => {
    const store = new MemoryStore();
    const policy = new RateLimiter({ limit: 1, window: 1000 }).policy;
    await assert.rejects(store.consume('k', policy, 1, NaN), { code: 'SLUICE_INVALID_INPUT' });
    await assert.rejects(store.peek('k', policy, Infinity), { code: 'SLUICE_INVALID_INPUT' });
  });

  it('validates maxKeys', () => {
    assert.throws(() => new MemoryStore({ maxKeys: 0 }), {
      name: 'RangeError',
      message: 'Expected `maxKeys` to be a positive integer or Infinity, got `0` (number)',
    });
    assert.throws(() => new MemoryStore({ maxKeys: '5' as unknown as number }), TypeError);
  });
});
