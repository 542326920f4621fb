import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KeyedMutex, Mutex } from '../../src/limit/index.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Mutex', () => {
  it('admits one holder at a time, FIFO', async () => {
    const mutex = new Mutex();
    const order: number[] = [];
    let inside = 0;
    await Promise.all(
      [0, 1, 2, 3].map((i) =>
        mutex.run(async () => {
          inside++;
          assert.equal(inside, 1);
          assert.equal(mutex.locked, true);
          await tick();
          order.push(i);
          inside--;
        }),
      ),
    );
    assert.deepEqual(order, [0, 1, 2, 3]);
    assert.equal(mutex.locked, false);
  });

  it('acquire/using releases at block exit; an aborted waiter never holds the lock', async () => {
    const mutex = new Mutex();
    const controller = new AbortController();
    let waiter: Promise<unknown>;
    {
      using _lock = await mutex.acquire();
      waiter = mutex.run(() => 'x', { signal: controller.signal });
      controller.abort(new Error('cancelled'));
      await assert.rejects(waiter, /cancelled/);
    }
    assert.equal(mutex.locked, false);
    assert.equal(await mutex.run(() => 'free'), 'free');
    await mutex.close();
  });

  it('validates maxQueue', () => {
    assert.throws(
      () => new Mutex({ maxQueue: -1 }),
      /Expected `maxQueue` to be a non-negative integer or Infinity, got `-1` \(number\)/,
    );
  });
});

describe('KeyedMutex', () => {
  it('serialises per key, runs different keys in parallel, and deletes idle keys', async () => {
    const locks = new KeyedMutex<string>();
    const active = new Map<string, number>();
    let parallel = 0;
    let maxParallel = 0;
    const work = (key: string) =>
      locks.run(key, async () => {
        active.set(key, (active.get(key) ?? 0) + 1);
        assert.equal(active.get(key), 1, `two holders for ${key}`);
        parallel++;
        maxParallel = Math.max(maxParallel, parallel);
        await tick();
        parallel--;
        active.set(key, 0);
      });
    const all = Promise.all(['a', 'b', 'a', 'c', 'b', 'a'].map(work));
    assert.equal(locks.stats.keys, 3);
    assert.equal(locks.isLocked('a'), true);
    await all;
    assert.equal(maxParallel, 3);
    assert.deepEqual(locks.stats, { name: 'KeyedMutex', keys: 0, running: 0, queued: 0 });
  });

  it('prevents lost updates in a read-modify-write race', async () => {
    const store = new Map<string, number>();
    const locks = new KeyedMutex<string>();
    const increment = async (key: string) => {
      const current = store.get(key) ?? 0;
      await tick();
      store.set(key, current + 1);
    };
    // Without the lock, concurrent increments overwrite each other.
    await Promise.all(Array.from({ length: 50 }, () => increment('naive')));
    assert.ok((store.get('naive') ?? 0) < 50);
    await Promise.all(Array.from({ length: 50 }, () => locks.run('locked', () => increment('locked'))));
    assert.equal(store.get('locked'), 50);
  });

  it('property: random keys and aborts leave no key behind and no overlap per key', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ key: fc.integer({ min: 0, max: 3 }), abort: fc.boolean(), fail: fc.boolean() }),
          {
            maxLength: 40,
          },
        ),
        async (calls) => {
          const locks = new KeyedMutex<number>();
          const holders = new Map<number, number>();
          const promises = calls.map(({ key, abort, fail }) => {
            const controller = new AbortController();
            const p = locks.run(
              key,
              async () => {
                holders.set(key, (holders.get(key) ?? 0) + 1);
                assert.equal(holders.get(key), 1);
                await tick();
                holders.set(key, 0);
                if (fail) throw new Error('fail');
              },
              { signal: controller.signal },
            );
            if (abort) controller.abort(new Error('abort'));
            return p.then(
              () => 'ok',
              () => 'err',
            );
          });
          await Promise.all(promises);
          assert.equal(locks.stats.keys, 0);
        },
      ),
      { numRuns: 100 },
    );
  });
});
