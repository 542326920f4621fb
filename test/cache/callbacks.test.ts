import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { Cache } from '../../src/cache/index.js';

function fakeClock(start = 0) {
  return {
    t: start,
    now() {
      return this.t;
    },
  };
}

/** Collects what is published on `sluice:cache:error` while `fn` runs. */
async function errorsPublished(fn: () => unknown): Promise<{ error: unknown; where: string }[]> {
  const got: { error: unknown; where: string }[] = [];
  const listener = (message: unknown) => void got.push(message as (typeof got)[number]);
  subscribe('sluice:cache:error', listener);
  try {
    await fn();
  } finally {
    unsubscribe('sluice:cache:error', listener);
  }
  return got;
}

describe('Cache: user callbacks that throw', () => {
  it('an onEvict that throws while the background sweep expires entries is counted and published, never thrown from the timer', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const clock = fakeClock();
    const boom = new Error('onEvict failed');
    let calls = 0;
    const cache = new Cache<string, number>({
      maxSize: 100,
      ttl: 1000,
      clock,
      onEvict: () => {
        calls++;
        throw boom;
      },
    });
    for (let i = 0; i < 5; i++) cache.set(`k${i}`, i);
    const published = await errorsPublished(() => {
      clock.t = 2000;
      t.mock.timers.tick(2000);
    });
    assert.equal(calls, 5, 'every expiry reached onEvict despite the earlier throws');
    assert.equal(cache.size, 0);
    assert.equal(cache.stats.expirations, 5);
    assert.equal(cache.stats.callbackErrors, 5);
    assert.equal(published.length, 5);
    assert.equal(published[0]!.error, boom);
    assert.equal(published[0]!.where, 'onEvict');
  });

  it('an onEvict that throws on set / delete / clear / eviction never fails the operation and leaves the cache consistent', async () => {
    const seen: string[] = [];
    const cache = new Cache<string, number>({
      maxSize: 3,
      onEvict: (key, _value, reason) => {
        seen.push(`${key}:${reason}`);
        throw new Error(reason);
      },
    });
    const published = await errorsPublished(() => {
      cache.set('a', 1).set('b', 2).set('c', 3);
      cache.set('a', 10); // replaced
      cache.set('d', 4); // evicts one
      assert.equal(cache.size, 3);
      assert.equal(cache.get('d'), 4);
      assert.equal(cache.delete('d'), true); // deleted
      assert.equal(cache.get('d'), undefined);
      cache.clear(); // cleared, two left
      assert.equal(cache.size, 0);
      cache.set('e', 5);
      assert.equal(cache.get('e'), 5);
    });
    assert.equal(seen.length, 5);
    assert.equal(cache.stats.callbackErrors, 5);
    assert.equal(published.length, 5);
  });

  it('an async onEvict that rejects is counted and published, not an unhandled rejection', async () => {
    const cache = new Cache<string, number>({
      maxSize: 1,
      // Typed as returning void; an async one is still a mistake users make.
      // eslint-disable-next-line @typescript-eslint/no-misused-promises -- the mistake under test
      onEvict: () => Promise.reject(new Error('later')),
    });
    const published = await errorsPublished(async () => {
      cache.set('a', 1).set('b', 2);
      await new Promise((resolve) => setImmediate(resolve));
    });
    assert.equal(cache.stats.callbackErrors, 1);
    assert.equal(published.length, 1);
  });

  it('a weigh that throws: set does not throw, the value is not stored, the old value is gone', async () => {
    const boom = new Error('weigh failed');
    const cache = new Cache<string, number>({
      maxSize: 10,
      weigh: (_k, v) => {
        if (v < 0) throw boom;
        return v;
      },
    });
    cache.set('a', 1);
    const published = await errorsPublished(() => {
      assert.equal(cache.set('a', -1), cache);
    });
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.size, 0);
    assert.equal(cache.stats.weight, 0);
    assert.equal(cache.stats.callbackErrors, 1);
    assert.deepEqual(
      published.map((p) => [p.error, p.where]),
      [[boom, 'weigh']],
    );
  });

  it('a weigh that throws on a loaded value: callers still get the value; it is not cached', async () => {
    const cache = new Cache<string, number>({
      maxSize: 10,
      weigh: () => {
        throw new Error('weigh failed');
      },
    });
    assert.equal(await cache.getOrLoad('a', async () => 7), 7);
    assert.equal(cache.has('a'), false);
    assert.equal(cache.stats.callbackErrors, 1);
  });

  it('a failing stale-while-revalidate refresh is published on sluice:cache:error', async () => {
    const clock = fakeClock(1000);
    const cache = new Cache<string, number>({ maxSize: 10, ttl: 1000, staleWhileRevalidate: 5000, clock });
    cache.set('k', 1);
    clock.t += 1500;
    const boom = new Error('refresh failed');
    const published = await errorsPublished(async () => {
      assert.equal(
        await cache.getOrLoad('k', () => {
          throw boom;
        }),
        1,
      );
      await new Promise((resolve) => setImmediate(resolve));
    });
    assert.deepEqual(
      published.map((p) => [p.error, p.where]),
      [[boom, 'refresh']],
    );
    assert.equal(cache.stats.loadFailures, 1);
  });

  it('a clock that throws inside the sweep timer is counted and published, never thrown from the timer', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let broken = false;
    let now = 0;
    const clock = {
      now() {
        if (broken) throw new Error('clock failed');
        return now;
      },
    };
    const cache = new Cache<string, number>({ maxSize: 10, ttl: 1000, clock });
    cache.set('a', 1);
    const published = await errorsPublished(() => {
      broken = true;
      now = 2000;
      t.mock.timers.tick(2000);
    });
    assert.equal(published.length, 1);
    assert.equal(published[0]!.where, 'sweep');
    assert.equal(cache.stats.callbackErrors, 1);
  });
});
