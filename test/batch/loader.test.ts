import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { getEventListeners } from 'node:events';
import { describe, it, mock } from 'node:test';
import { BatchResultError, ClosedError, QueueFullError, SluiceError } from '../../src/errors.js';
import { Loader, type CacheLike, type LoaderEntry } from '../../src/batch/index.js';
import { Cache } from '../../src/cache/index.js';
import { deferred } from '../helpers/async.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A batch function that records every call and doubles numbers. */
function recorder() {
  const calls: number[][] = [];
  const fn = async (keys: readonly number[]) => {
    calls.push([...keys]);
    return keys.map((k) => k * 2);
  };
  return { calls, fn };
}

/** A tiny bounded test double of a cache, counting its operations. */
class CountingCache<K, V> implements CacheLike<K, V> {
  readonly map = new Map<K, V>();
  gets = 0;
  sets = 0;
  constructor(readonly max = Infinity) {}
  get(key: K) {
    this.gets++;
    return this.map.get(key);
  }
  set(key: K, value: V) {
    this.sets++;
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }
  delete(key: K) {
    return this.map.delete(key);
  }
  clear() {
    this.map.clear();
  }
}

describe('Loader batching', () => {
  it('coalesces loads of one tick into one call and gives each load its own value', async () => {
    const { calls, fn } = recorder();
    const loader = new Loader(fn);
    const values = await Promise.all([loader.load(1), loader.load(2), loader.load(3)]);
    assert.deepEqual(values, [2, 4, 6]);
    assert.deepEqual(calls, [[1, 2, 3]]);
  });

  it('batches loads issued across awaits of already-resolved promises (DataLoader timing)', async () => {
    const { calls, fn } = recorder();
    const loader = new Loader(fn);
    const chained = (async () => {
      await Promise.resolve();
      await Promise.resolve();
      return loader.load(2);
    })();
    const direct = loader.load(1);
    assert.deepEqual(await Promise.all([direct, chained]), [2, 4]);
    assert.deepEqual(calls, [[1, 2]]);
  });

  it('sends a duplicate key once, with or without a cache', async () => {
    for (const cache of [true, false]) {
      const { calls, fn } = recorder();
      const loader = new Loader(fn, { cache });
      const values = await Promise.all([loader.load(1), loader.load(2), loader.load(1), loader.load(1)]);
      assert.deepEqual(values, [2, 4, 2, 2]);
      assert.deepEqual(calls, [[1, 2]]);
      assert.equal(loader.stats.dedups, 2);
    }
  });

  it('a key already in flight is shared by a later tick, not sent again', async () => {
    const gate = deferred();
    const calls: number[][] = [];
    const loader = new Loader<number, number>(async (keys) => {
      calls.push([...keys]);
      await gate.promise;
      return keys.map((k) => k);
    });
    const first = loader.load(1);
    await tick();
    const second = loader.load(1);
    gate.resolve();
    assert.deepEqual(await Promise.all([first, second]), [1, 1]);
    assert.deepEqual(calls, [[1]]);
  });

  it('splits at maxBatch', async () => {
    const { calls, fn } = recorder();
    const loader = new Loader(fn, { maxBatch: 2 });
    await Promise.all([1, 2, 3, 4, 5].map((k) => loader.load(k)));
    assert.deepEqual(calls, [[1, 2], [3, 4], [5]]);
    assert.equal(loader.stats.meanBatchSize, 5 / 3);
  });

  it('accepts a Map result; a key missing from the Map rejects only that key', async () => {
    const loader = new Loader<number, string>(
      (keys) => new Map(keys.filter((k) => k !== 2).map((k) => [k, `v${k}`])),
    );
    const [a, b, c] = await loader.loadMany([1, 2, 3]);
    assert.deepEqual(a, { ok: true, value: 'v1' });
    assert.deepEqual(c, { ok: true, value: 'v3' });
    assert.equal(b?.ok, false);
    const error = (b as { error: unknown }).error;
    assert.ok(error instanceof BatchResultError);
    assert.equal(error.code, 'SLUICE_BATCH_RESULT');
    assert.match(error.message, /no entry for key `2` \(number\)/);
  });

  it('a Map may map a key to undefined on purpose', async () => {
    const loader = new Loader<number, string | undefined>((keys) => new Map(keys.map((k) => [k, undefined])));
    assert.equal(await loader.load(1), undefined);
  });

  it('an Error at a position rejects only that key, and is not cached', async () => {
    const calls: number[][] = [];
    let fail = true;
    const loader = new Loader<number, number>(async (keys) => {
      calls.push([...keys]);
      return keys.map((k) => (k === 2 && fail ? new Error('no 2') : k));
    });
    const outcomes = await loader.loadMany([1, 2, 3]);
    assert.deepEqual(outcomes[0], { ok: true, value: 1 });
    assert.equal((outcomes[1] as { error: Error }).error.message, 'no 2');
    assert.deepEqual(outcomes[2], { ok: true, value: 3 });
    fail = false;
    assert.equal(await loader.load(2), 2);
    assert.equal(await loader.load(1), 1); // cached
    assert.deepEqual(calls, [[1, 2, 3], [2]]);
  });

  it('a length mismatch rejects the whole batch with BatchResultError', async () => {
    const loader = new Loader<number, number>(async () => [1]);
    const outcomes = await loader.loadMany([1, 2]);
    for (const o of outcomes) {
      assert.equal(o.ok, false);
      const error = (o as { error: unknown }).error;
      assert.ok(error instanceof BatchResultError);
      assert.match((error as Error).message, /returned 1 values for 2 keys/);
    }
    assert.equal(loader.stats.failedBatches, 1);
  });

  it('a result that is neither array nor Map rejects the whole batch', async () => {
    const loader = new Loader<number, number>(async () => ({ 1: 1 }) as never);
    await assert.rejects(
      loader.load(1),
      /Expected the batch function to return an array aligned with the keys or a Map/,
    );
  });

  it('a throwing or rejecting batch function fails every key of the batch, and nothing is cached', async () => {
    let calls = 0;
    const boom = new Error('db down');
    const sync = new Loader<number, number>(() => {
      calls++;
      throw boom;
    });
    const outcomes = await sync.loadMany([1, 2]);
    assert.deepEqual(outcomes, [
      { ok: false, error: boom },
      { ok: false, error: boom },
    ]);
    await assert.rejects(sync.load(1), boom);
    assert.equal(calls, 2);
    const async = new Loader<number, number>(async () => Promise.reject(boom));
    await assert.rejects(async.load(1), boom);
  });

  it('a synchronous array result works', async () => {
    const loader = new Loader<number, number>((keys) => keys.map((k) => k + 1));
    assert.equal(await loader.load(1), 2);
  });
});

describe('Loader concurrency bound', () => {
  it('keeps at most maxConcurrentBatches in flight; the rest wait FIFO', async () => {
    const gates: ReturnType<typeof deferred<void>>[] = [];
    let inFlight = 0;
    let max = 0;
    const order: number[][] = [];
    const loader = new Loader<number, number>(
      async (keys) => {
        order.push([...keys]);
        inFlight++;
        max = Math.max(max, inFlight);
        const gate = deferred();
        gates.push(gate);
        await gate.promise;
        inFlight--;
        return [...keys];
      },
      { maxBatch: 1, maxConcurrentBatches: 2 },
    );
    const loads = [1, 2, 3, 4, 5].map((k) => loader.load(k));
    await tick();
    assert.equal(loader.stats.inFlight, 2);
    assert.equal(loader.stats.queued, 3);
    while (gates.length > 0 || loader.stats.inFlight > 0) {
      gates.shift()?.resolve();
      await tick();
    }
    assert.deepEqual(await Promise.all(loads), [1, 2, 3, 4, 5]);
    assert.equal(max, 2);
    assert.deepEqual(order, [[1], [2], [3], [4], [5]]);
  });

  it('rejects with QueueFullError beyond maxQueue waiting keys', async () => {
    const gate = deferred();
    const loader = new Loader<number, number>(
      async (keys) => {
        await gate.promise;
        return [...keys];
      },
      { maxBatch: 2, maxConcurrentBatches: 1, maxQueue: 3 },
    );
    const loads = [1, 2, 3].map((k) => loader.load(k));
    const refused = loader.load(4);
    await assert.rejects(
      refused,
      (err: unknown) => err instanceof QueueFullError && /maxQueue: 3/.test(String(err)),
    );
    assert.equal(loader.stats.rejected, 1);
    const dedup = loader.load(1); // joins a pending key: no room needed
    gate.resolve();
    assert.deepEqual(await Promise.all([...loads, dedup]), [1, 2, 3, 1]);
  });
});

describe('Loader cache', () => {
  it('caches fulfilled results: a later load is answered without a batch', async () => {
    const { calls, fn } = recorder();
    const loader = new Loader(fn);
    assert.equal(await loader.load(1), 2);
    const again = loader.load(1);
    assert.equal(await again, 2);
    assert.equal(loader.stats.cacheHits, 1);
    assert.deepEqual(calls, [[1]]);
  });

  it('the default cache is bounded by cacheSize', async () => {
    const { calls, fn } = recorder();
    const loader = new Loader(fn, { cacheSize: 2 });
    await loader.loadMany([1, 2, 3]);
    await loader.loadMany([1, 2, 3]);
    assert.ok(calls.length >= 2, 'three keys cannot all stay in a cache of two');
    const heldFromSecondCall = 3 - (calls[1]?.length ?? 0);
    assert.ok(heldFromSecondCall <= 2, `${heldFromSecondCall} keys were served from a cache of 2`);
  });

  it('cache: false keeps nothing after a batch settles', async () => {
    const { calls, fn } = recorder();
    const loader = new Loader(fn, { cache: false });
    await loader.load(1);
    await loader.load(1);
    assert.deepEqual(calls, [[1], [1]]);
    loader.prime(1, 5); // no effect without a cache
    assert.equal(await loader.load(1), 2);
  });

  it('uses an injected CacheLike, keyed by cacheKey', async () => {
    const cache = new CountingCache<string, LoaderEntry<string>>();
    const calls: { id: number }[][] = [];
    const loader = new Loader<{ id: number }, string, string>(
      async (keys) => {
        calls.push([...keys]);
        return keys.map((k) => `user${k.id}`);
      },
      { cache, cacheKey: (k) => `u:${k.id}` },
    );
    const values = await Promise.all([
      loader.load({ id: 1 }),
      loader.load({ id: 1 }),
      loader.load({ id: 2 }),
    ]);
    assert.deepEqual(values, ['user1', 'user1', 'user2']);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.length, 2);
    assert.deepEqual([...cache.map.keys()], ['u:1', 'u:2']);
    assert.equal(await loader.load({ id: 2 }), 'user2');
    assert.equal(calls.length, 1);
  });

  it('prime sets a value unless one is cached; clear and clearAll forget', async () => {
    const { calls, fn } = recorder();
    const loader = new Loader(fn);
    loader.prime(1, 100).prime(1, 200);
    assert.equal(await loader.load(1), 100);
    assert.deepEqual(calls, []);
    loader.clear(1);
    assert.equal(await loader.load(1), 2);
    await loader.load(2);
    loader.clearAll();
    await loader.loadMany([1, 2]);
    assert.deepEqual(calls, [[1], [2], [1, 2]]);
  });

  it('clear during a batch in flight: its result is not cached and the next load fetches again', async () => {
    const gate = deferred();
    let version = 1;
    const calls: number[][] = [];
    const loader = new Loader<number, string>(async (keys) => {
      calls.push([...keys]);
      const v = version;
      await gate.promise;
      return keys.map((k) => `${k}@${v}`);
    });
    const stale = loader.load(1);
    await tick();
    version = 2;
    loader.clear(1);
    const fresh = loader.load(1);
    gate.resolve();
    assert.equal(await stale, '1@1');
    assert.equal(await fresh, '1@2');
    assert.equal(await loader.load(1), '1@2');
    assert.deepEqual(calls, [[1], [1]]);
  });
});

describe('Loader with an injected sluice Cache (one getOrSet per load)', () => {
  const values = async (keys: readonly string[]) => keys.map((k) => `v${k}`);

  it('an onEvict that loads re-entrantly gets its own entry: every key its own value', async () => {
    const ref: { loader?: Loader<string, string> } = {};
    let inner: Promise<string> | undefined;
    const cache = new Cache<string, LoaderEntry<string>>({
      maxSize: 2,
      onEvict: () => {
        inner ??= ref.loader?.load('c');
      },
    });
    const loader = (ref.loader = new Loader<string, string>(values, { cache }));
    const first = [loader.load('a'), loader.load('x'), loader.load('x')];
    assert.deepEqual(await Promise.all(first), ['va', 'vx', 'vx']);
    const b = loader.load('b'); // evicts: onEvict loads 'c' while 'b' is being stored
    assert.ok(inner !== undefined, 'onEvict ran');
    assert.deepEqual(await Promise.all([b, inner]), ['vb', 'vc']);
  });

  it('a load refused by maxQueue stores nothing and evicts no waiting key', async () => {
    const gate = deferred();
    const calls: string[][] = [];
    const cache = new Cache<string, LoaderEntry<string>>({ maxSize: 2 });
    const loader = new Loader<string, string>(
      async (keys) => {
        calls.push([...keys]);
        await gate.promise;
        return keys.map((k) => `v${k}`);
      },
      { cache, maxConcurrentBatches: 1, maxQueue: 1 },
    );
    const one = loader.load('1');
    await tick(); // '1' in flight
    const two = loader.load('2');
    await tick(); // '2' waits for a batch slot: the queue is full
    await assert.rejects(loader.load('3'), QueueFullError);
    assert.equal(cache.stats.evictions, 0, 'the refused key evicted nothing');
    assert.equal(cache.has('3'), false, 'the refused key is not cached');
    const twoAgain = loader.load('2'); // joins the waiting load instead of being refused
    gate.resolve();
    assert.deepEqual(await Promise.all([one, two, twoAgain]), ['v1', 'v2', 'v2']);
    assert.deepEqual(calls, [['1'], ['2']]);
  });

  it('an onEvict that throws is counted by the cache; the load still resolves and no unfilled entry is left', async () => {
    const clock = { t: 0, now: () => clock.t };
    let throwOnce = true;
    const cache = new Cache<string, LoaderEntry<number>>({
      maxSize: 10,
      ttl: 100,
      staleWhileRevalidate: 1000,
      clock,
      onEvict: (_key, _value, reason) => {
        if (reason === 'replaced' && throwOnce) {
          throwOnce = false;
          throw new Error('onEvict failed');
        }
      },
    });
    const { calls, fn } = recorder();
    const loader = new Loader<string, number>(async (keys) => fn(keys.map(Number)), { cache });
    assert.equal(await loader.load('7'), 14);
    clock.t = 150; // expired, within the stale window: the next load replaces the entry
    // A user callback that throws never fails an unrelated caller (DESIGN principle 8): the
    // cache catches it, counts it and publishes it on sluice:cache:error.
    assert.equal(await loader.load('7'), 14);
    assert.equal(cache.stats.callbackErrors, 1);
    assert.equal(await cache.peek('7')?.promise, 14, 'the refetched value is cached, not a placeholder');
    assert.equal(await loader.load('7'), 14, 'served from the cache');
    assert.equal(await loader.load('8'), 16);
    assert.deepEqual(calls, [[7], [7], [8]]);
  });
});

describe('Loader cancellation', () => {
  it('an aborted load rejects with signal.reason; other loads of the key still get the value', async () => {
    const gate = deferred();
    const loader = new Loader<number, number>(async (keys) => {
      await gate.promise;
      return [...keys];
    });
    const controller = new AbortController();
    const aborted = loader.load(1, { signal: controller.signal });
    const plain = loader.load(1);
    const reason = new Error('client went away');
    controller.abort(reason);
    await assert.rejects(aborted, (err) => err === reason);
    gate.resolve();
    assert.equal(await plain, 1);
    assert.equal(loader.stats.aborted, 1);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });

  it('an already-aborted signal rejects at once, without a batch', async () => {
    const { calls, fn } = recorder();
    const loader = new Loader(fn);
    const reason = new Error('already');
    await assert.rejects(loader.load(1, { signal: AbortSignal.abort(reason) }), (err) => err === reason);
    await tick();
    assert.deepEqual(calls, []);
  });

  it('a batch whose every load aborted before dispatch is never sent', async () => {
    const { calls, fn } = recorder();
    const loader = new Loader(fn);
    const controller = new AbortController();
    const loads = [1, 2].map((k) => loader.load(k, { signal: controller.signal }));
    controller.abort(new Error('stop'));
    await Promise.allSettled(loads);
    await tick();
    assert.deepEqual(calls, []);
    assert.equal(loader.stats.abortedBatches, 1);
    assert.equal(loader.stats.queued, 0);
    assert.equal(await loader.load(1), 2, 'the key is not stuck');
  });

  it('a batch in flight whose every load aborted is aborted through its signal', async () => {
    let batchSignal: AbortSignal | undefined;
    const calls: number[][] = [];
    const loader = new Loader<number, number>((keys, { signal }) => {
      calls.push([...keys]);
      batchSignal ??= signal;
      return new Promise((resolve, reject) => {
        if (calls.length > 1) resolve(keys.map((k) => k));
        signal.addEventListener('abort', () => reject(signal.reason as Error));
      });
    });
    const a = new AbortController();
    const b = new AbortController();
    const loads = [loader.load(1, { signal: a.signal }), loader.load(2, { signal: b.signal })];
    await tick();
    assert.equal(batchSignal?.aborted, false);
    a.abort(new Error('a'));
    assert.equal(batchSignal?.aborted, false, 'one load still waits');
    const reason = new Error('b');
    b.abort(reason);
    assert.equal(batchSignal?.aborted, true);
    assert.equal(batchSignal?.reason, reason);
    await Promise.allSettled(loads);
    assert.equal(await loader.load(1), 1, 'a later load starts a fresh batch');
    assert.equal(loader.stats.abortedBatches, 1);
  });

  it('a load without a signal keeps the batch alive', async () => {
    let batchSignal: AbortSignal | undefined;
    const gate = deferred();
    const loader = new Loader<number, number>(async (keys, { signal }) => {
      batchSignal = signal;
      await gate.promise;
      return [...keys];
    });
    const controller = new AbortController();
    const aborted = loader.load(1, { signal: controller.signal });
    const kept = loader.load(1);
    await tick();
    controller.abort(new Error('x'));
    await assert.rejects(aborted);
    assert.equal(batchSignal?.aborted, false);
    gate.resolve();
    assert.equal(await kept, 1);
  });
});

describe('Loader schedule', () => {
  it('{ waitMs } collects loads for a window; a full batch does not wait', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const { calls, fn } = recorder();
      const loader = new Loader(fn, { schedule: { waitMs: 20 }, maxBatch: 3 });
      const first = loader.load(1);
      mock.timers.tick(10);
      await tick();
      const second = loader.load(2);
      assert.deepEqual(calls, []);
      mock.timers.tick(10);
      assert.deepEqual(await Promise.all([first, second]), [2, 4]);
      assert.deepEqual(calls, [[1, 2]]);
      const full = [3, 4, 5].map((k) => loader.load(k));
      assert.deepEqual(await Promise.all(full), [6, 8, 10], 'dispatched without advancing the timer');
      assert.deepEqual(calls, [
        [1, 2],
        [3, 4, 5],
      ]);
    } finally {
      mock.timers.reset();
    }
  });
});

describe('Loader lifecycle and observability', () => {
  it('close dispatches what is collected, refuses new loads and waits for batches in flight', async () => {
    const gate = deferred();
    const loader = new Loader<number, number>(async (keys) => {
      await gate.promise;
      return [...keys];
    });
    const load = loader.load(1);
    let closed = false;
    const closing = loader.close().then(() => (closed = true));
    await assert.rejects(loader.load(2), ClosedError);
    await tick();
    assert.equal(closed, false);
    gate.resolve();
    await closing;
    assert.equal(await load, 1);
    await loader[Symbol.asyncDispose]();
    assert.equal(loader.closed, true);
  });

  it('publishes dispatch and settle on sluice:batch:* only to subscribers', async () => {
    const seen: string[] = [];
    const onDispatch = (m: unknown) => seen.push(`dispatch ${(m as { size: number }).size}`);
    const onSettle = (m: unknown) => seen.push(`settle ${(m as { ok: boolean }).ok}`);
    subscribe('sluice:batch:dispatch', onDispatch);
    subscribe('sluice:batch:settle', onSettle);
    try {
      const loader = new Loader<number, number>(async (keys) => [...keys]);
      await loader.loadMany([1, 2]);
      assert.deepEqual(seen, ['dispatch 2', 'settle true']);
    } finally {
      unsubscribe('sluice:batch:dispatch', onDispatch);
      unsubscribe('sluice:batch:settle', onSettle);
    }
  });

  it('stats count loads, batches, keys, hits and dedups; batchMs uses the injected clock', async () => {
    let now = 0;
    const loader = new Loader<number, number>(
      async (keys) => {
        now += 5;
        return [...keys];
      },
      { clock: { now: () => now } },
    );
    await Promise.all([loader.load(1), loader.load(2), loader.load(2)]);
    await loader.load(1);
    const s = loader.stats;
    assert.deepEqual(
      {
        loads: s.loads,
        batches: s.batches,
        keys: s.keys,
        dedups: s.dedups,
        cacheHits: s.cacheHits,
        batchMs: s.batchMs,
      },
      { loads: 4, batches: 1, keys: 2, dedups: 1, cacheHits: 1, batchMs: 5 },
    );
  });

  it('rejects bad options with the documented message shape', async () => {
    const fn = async (keys: readonly number[]) => [...keys];
    assert.throws(() => new Loader('nope' as never), {
      name: 'TypeError',
      message: 'Expected `batchFn` to be a function, got `"nope"` (string)',
    });
    assert.throws(() => new Loader(fn, { maxBatch: 0 }), {
      name: 'RangeError',
      message: 'Expected `maxBatch` to be a positive integer or Infinity, got `0` (number)',
    });
    assert.throws(() => new Loader(fn, { maxConcurrentBatches: 1.5 }), {
      name: 'RangeError',
      message: 'Expected `maxConcurrentBatches` to be a positive integer or Infinity, got `1.5` (number)',
    });
    assert.throws(() => new Loader(fn, { schedule: 'soon' as never }), {
      name: 'TypeError',
      message: 'Expected `schedule` to be \'microtask\' or { waitMs }, got `"soon"` (string)',
    });
    assert.throws(() => new Loader(fn, { schedule: { waitMs: -1 } }), {
      name: 'RangeError',
      message: 'Expected `schedule.waitMs` to be a non-negative finite number, got `-1` (number)',
    });
    assert.throws(() => new Loader(fn, { cache: { get() {} } as never }), {
      name: 'TypeError',
      message: /^Expected `cache` to be a boolean or an object with get, set, delete and clear, got/,
    });
    assert.throws(() => new Loader(fn, { cacheSize: -3 }), RangeError);
    assert.throws(() => new Loader(fn, { cacheKey: 3 as never }), {
      message: 'Expected `cacheKey` to be a function or undefined, got `3` (number)',
    });
    const loader = new Loader(fn);
    await assert.rejects(loader.load(1, { signal: 'x' as never }), {
      name: 'InvalidInputError',
      message: 'Expected `signal` to be an AbortSignal or undefined, got `"x"` (string)',
    });
  });

  it('errors are SluiceErrors with stable codes', async () => {
    const loader = new Loader<number, number>(async () => []);
    await assert.rejects(
      loader.load(1),
      (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_BATCH_RESULT',
    );
  });
});
