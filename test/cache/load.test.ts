import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { Cache, type CacheLoadContext } from '../../src/cache/index.js';

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));
/**
 * Lets the microtasks queued so far run: a loader starts one microtask after the `getOrLoad`
 * that started its load, so awaiting this after that call lets the loader start.
 */
const microtask = () => Promise.resolve();

function fakeClock(start = 1_000) {
  return {
    t: start,
    now() {
      return this.t;
    },
  };
}

/** A loader whose loads the test settles by hand. */
function manualLoader<V>() {
  const calls: {
    key: string;
    signal: AbortSignal;
    resolve: (value: V) => void;
    reject: (error: unknown) => void;
  }[] = [];
  const load = (key: string, { signal }: CacheLoadContext) =>
    new Promise<V>((resolve, reject) => calls.push({ key, signal, resolve, reject }));
  return { calls, load };
}

describe('Cache.getOrLoad: single flight', () => {
  it('100 concurrent misses of one key run one load and all get its value', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const { calls, load } = manualLoader<number>();
    const waits = Array.from({ length: 100 }, () => cache.getOrLoad('k', load));
    assert.equal(cache.stats.inFlight, 1);
    await microtask();
    assert.equal(calls.length, 1);
    calls[0]!.resolve(42);
    assert.deepEqual(await Promise.all(waits), Array(100).fill(42));
    assert.equal(cache.get('k'), 42);
    assert.equal(await cache.getOrLoad('k', load), 42);
    assert.equal(calls.length, 1);
    const stats = cache.stats;
    assert.equal(stats.loads, 1);
    assert.equal(stats.misses, 100);
    assert.equal(stats.hits, 2);
    assert.equal(stats.inFlight, 0);
  });

  it('a failed load rejects every waiter with its error and is not cached', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const { calls, load } = manualLoader<number>();
    const waits = [
      cache.getOrLoad('k', load),
      cache.getOrLoad('k', load, { signal: new AbortController().signal }),
    ];
    await microtask();
    assert.equal(calls.length, 1);
    const boom = new Error('boom');
    calls[0]!.reject(boom);
    for (const wait of waits) await assert.rejects(wait, (error) => error === boom);
    assert.equal(cache.has('k'), false);
    assert.equal(cache.stats.loadFailures, 1);
    const again = cache.getOrLoad('k', load);
    await microtask();
    assert.equal(calls.length, 2);
    calls[1]!.resolve(7);
    assert.equal(await again, 7);
  });

  it('a loader that throws synchronously rejects the waiters', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const boom = new Error('sync');
    await assert.rejects(
      cache.getOrLoad('k', () => {
        throw boom;
      }),
      (error) => error === boom,
    );
  });

  it('negativeTtl remembers a failure: callers within it get it without a load', async () => {
    const clock = fakeClock();
    const cache = new Cache<string, number>({ maxSize: 10, negativeTtl: 1000, clock });
    let loads = 0;
    const boom = new Error('down');
    const load = async () => {
      loads++;
      throw boom;
    };
    await assert.rejects(cache.getOrLoad('k', load), (e) => e === boom);
    await assert.rejects(cache.getOrLoad('k', load), (e) => e === boom);
    assert.equal(loads, 1);
    assert.equal(cache.get('k'), undefined);
    clock.t += 1000;
    await assert.rejects(cache.getOrLoad('k', load), (e) => e === boom);
    assert.equal(loads, 2);
    cache.delete('k'); // forgets the failure
    await assert.rejects(cache.getOrLoad('k', load), (e) => e === boom);
    assert.equal(loads, 3);
  });

  it('uses the constructor loader; a per-call loader overrides it; ttl applies to the value', async () => {
    const clock = fakeClock();
    const cache = new Cache<string, string>({ maxSize: 10, clock, loader: async (key) => `ctor:${key}` });
    assert.equal(await cache.getOrLoad('a'), 'ctor:a');
    assert.equal(await cache.getOrLoad('b', async (key) => `call:${key}`, { ttl: 100 }), 'call:b');
    assert.equal(await cache.getOrLoad('c', { ttl: 100 }), 'ctor:c');
    clock.t += 100;
    assert.equal(cache.get('b'), undefined);
    assert.equal(cache.get('c'), undefined);
    assert.equal(cache.get('a'), 'ctor:a');
  });

  it('a delete during a load wins: the result is not stored, the next call loads again', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const { calls, load } = manualLoader<number>();
    const first = cache.getOrLoad('k', load);
    await microtask(); // the first loader is running
    cache.delete('k');
    const second = cache.getOrLoad('k', load);
    await microtask();
    assert.equal(calls.length, 2);
    calls[0]!.resolve(1);
    assert.equal(await first, 1);
    assert.equal(cache.has('k'), false);
    calls[1]!.resolve(2);
    assert.equal(await second, 2);
    assert.equal(cache.get('k'), 2);
  });

  it('a set during a load wins over the load’s result', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const { calls, load } = manualLoader<number>();
    const wait = cache.getOrLoad('k', load);
    await microtask(); // the loader is running
    cache.set('k', 99);
    calls[0]!.resolve(1);
    assert.equal(await wait, 1);
    assert.equal(cache.get('k'), 99);
    cache.clear();
    const afterClear = cache.getOrLoad('k', load);
    await microtask();
    cache.clear();
    calls[1]!.resolve(5);
    assert.equal(await afterClear, 5);
    assert.equal(cache.has('k'), false);
  });
});

describe('Cache.getOrLoad: the loader starts asynchronously', () => {
  it('getOrLoad and a stale refresh never run the loader inside the call', async () => {
    const clock = fakeClock();
    let loads = 0;
    const loader = async (key: string) => {
      loads++;
      return `${key}:${loads}`;
    };
    const cache = new Cache<string, string>({
      maxSize: 10,
      ttl: 1000,
      staleWhileRevalidate: 5000,
      clock,
      loader,
    });
    // A miss: the loader is not called inside getOrLoad, but one microtask later.
    const miss = cache.getOrLoad('k');
    assert.equal(loads, 0);
    await microtask();
    assert.equal(loads, 1);
    assert.equal(await miss, 'k:1');
    // A synchronous loader too starts only after the call returned.
    let syncLoads = 0;
    const syncMiss = cache.getOrLoad('s', () => `s:${++syncLoads}`);
    assert.equal(syncLoads, 0);
    await microtask();
    assert.equal(syncLoads, 1);
    assert.equal(await syncMiss, 's:1');
    clock.t += 1500; // 'k' is stale
    // A stale get returns nothing and starts no refresh.
    assert.equal(cache.get('k'), undefined);
    await microtask();
    assert.equal(loads, 1);
    // A stale getOrLoad returns the stale value and starts the refresh a microtask later.
    const stale = cache.getOrLoad('k');
    assert.equal(loads, 1);
    assert.equal(cache.stats.inFlight, 1);
    await microtask();
    assert.equal(loads, 2);
    assert.equal(await stale, 'k:1');
    await flush();
    assert.equal(cache.get('k'), 'k:2');
  });

  it('a load whose every caller aborts before the loader starts never runs it and leaves no flight', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const published: { key: string; aborted?: boolean; error?: unknown }[] = [];
    const listener = (message: unknown) => void published.push(message as (typeof published)[number]);
    subscribe('sluice:cache:load', listener);
    try {
      let loads = 0;
      const loader = () => ++loads;
      const a = new AbortController();
      const b = new AbortController();
      const waitA = cache.getOrLoad('k', loader, { signal: a.signal });
      const waitB = cache.getOrLoad('k', loader, { signal: b.signal });
      a.abort(new Error('a'));
      b.abort(new Error('b'));
      assert.equal(cache.stats.inFlight, 0);
      await assert.rejects(waitA, (error) => error === a.signal.reason);
      await assert.rejects(waitB, (error) => error === b.signal.reason);
      await flush();
      assert.equal(loads, 0, 'the abandoned loader never ran');
      assert.equal(cache.has('k'), false);
      assert.equal(cache.stats.loads, 1);
      assert.equal(cache.stats.loadsAborted, 1);
      assert.equal(cache.stats.loadFailures, 0);
      assert.deepEqual(
        published.map(({ key, aborted, error }) => ({ key, aborted, error })),
        [{ key: 'k', aborted: true, error: b.signal.reason }],
      );
      // The next call starts a new load, which runs.
      assert.equal(await cache.getOrLoad('k', loader), 1);
      assert.equal(loads, 1);
    } finally {
      unsubscribe('sluice:cache:load', listener);
    }
  });

  it('a caller that aborts before the loader starts does not stop it for a caller that remains', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const { calls, load } = manualLoader<number>();
    const c = new AbortController();
    const aborting = cache.getOrLoad('k', load, { signal: c.signal });
    const staying = cache.getOrLoad('k', load, { signal: new AbortController().signal });
    c.abort();
    await assert.rejects(aborting, (error) => error === c.signal.reason);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.signal.aborted, false);
    calls[0]!.resolve(4);
    assert.equal(await staying, 4);
    assert.equal(cache.get('k'), 4);
  });

  it('a delete before the loader starts: the load still runs for its caller, its result is not stored', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const { calls, load } = manualLoader<number>();
    const first = cache.getOrLoad('k', load);
    cache.delete('k');
    assert.equal(cache.stats.inFlight, 0);
    await microtask();
    assert.equal(calls.length, 1);
    calls[0]!.resolve(1);
    assert.equal(await first, 1);
    assert.equal(cache.has('k'), false);
  });
});

describe('Cache.getOrLoad: cancellation', () => {
  it('an aborting waiter rejects with signal.reason unchanged; the load goes on for the others', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const { calls, load } = manualLoader<number>();
    const a = new AbortController();
    const b = new AbortController();
    const waitA = cache.getOrLoad('k', load, { signal: a.signal });
    const waitB = cache.getOrLoad('k', load, { signal: b.signal });
    const reason = { why: 'not an Error, on purpose' };
    a.abort(reason);
    await assert.rejects(waitA, (error) => error === reason);
    assert.equal(calls[0]!.signal.aborted, false);
    calls[0]!.resolve(3);
    assert.equal(await waitB, 3);
    assert.equal(cache.get('k'), 3);
  });

  it('the load is aborted only when every waiter has aborted', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const { calls, load } = manualLoader<number>();
    const controllers = [new AbortController(), new AbortController(), new AbortController()];
    const waits = controllers.map((c) => cache.getOrLoad('k', load, { signal: c.signal }));
    await microtask(); // the loader is running
    controllers[0]!.abort(new Error('a'));
    controllers[1]!.abort(new Error('b'));
    assert.equal(calls[0]!.signal.aborted, false);
    const last = new Error('c');
    controllers[2]!.abort(last);
    assert.equal(calls[0]!.signal.aborted, true);
    assert.equal(calls[0]!.signal.reason, last);
    for (const [i, wait] of waits.entries()) {
      await assert.rejects(wait, (error) => error === controllers[i]!.signal.reason);
    }
    assert.equal(cache.stats.loadsAborted, 1);
    assert.equal(cache.stats.inFlight, 0);
    // The abandoned load's late result is ignored; a new call starts a new load.
    const next = cache.getOrLoad('k', load);
    await microtask();
    assert.equal(calls.length, 2);
    calls[0]!.resolve(1);
    calls[1]!.resolve(2);
    assert.equal(await next, 2);
    assert.equal(cache.get('k'), 2);
  });

  it('a waiter without a signal pins the load: others aborting never abort it', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const { calls, load } = manualLoader<number>();
    const c = new AbortController();
    const aborting = cache.getOrLoad('k', load, { signal: c.signal });
    const pinned = cache.getOrLoad('k', load);
    await microtask(); // the loader is running
    c.abort();
    await assert.rejects(aborting, (error) => error === c.signal.reason);
    assert.equal(calls[0]!.signal.aborted, false);
    calls[0]!.resolve(8);
    assert.equal(await pinned, 8);
  });

  it('an already-aborted signal rejects at once without loading', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    let loads = 0;
    const reason = new Error('gone');
    await assert.rejects(
      cache.getOrLoad('k', () => ++loads, { signal: AbortSignal.abort(reason) }),
      (error) => error === reason,
    );
    assert.equal(loads, 0);
  });

  it('leaves no abort listener behind on a long-lived signal', async () => {
    const cache = new Cache<number, number>({ maxSize: 1000 });
    const controller = new AbortController();
    const { calls, load } = manualLoader<number>();
    const waits = Array.from({ length: 50 }, (_, i) =>
      cache.getOrLoad(i, (k, ctx) => load(String(k), ctx), { signal: controller.signal }),
    );
    await microtask();
    assert.equal(calls.length, 50);
    for (const [i, call] of calls.entries()) call.resolve(i);
    await Promise.all(waits);
    controller.abort(); // would reject settled waiters twice if any listener were left
    await flush();
    assert.equal(cache.size, 50);
  });
});

describe('Cache.getOrLoad: stale-while-revalidate', () => {
  it('serves the stale value at once and refreshes it in the background, once', async () => {
    const clock = fakeClock();
    const cache = new Cache<string, number>({ maxSize: 10, ttl: 1000, staleWhileRevalidate: 500, clock });
    const { calls, load } = manualLoader<number>();
    cache.set('k', 1);
    clock.t += 1200; // expired, within the stale window
    assert.equal(cache.get('k'), undefined);
    assert.equal(cache.has('k'), false);
    assert.equal(await cache.getOrLoad('k', load), 1);
    assert.equal(await cache.getOrLoad('k', load), 1);
    assert.equal(calls.length, 1);
    assert.equal(cache.stats.staleHits, 2);
    calls[0]!.resolve(2);
    await flush();
    assert.equal(cache.get('k'), 2);
    assert.equal(await cache.getOrLoad('k', load), 2);
    clock.t += 1600; // past expiry and the stale window: a plain miss
    const wait = cache.getOrLoad('k', load);
    await microtask();
    assert.equal(calls.length, 2);
    calls[1]!.resolve(3);
    assert.equal(await wait, 3);
  });

  it('a failing background refresh is counted and published, never unhandled', async () => {
    const clock = fakeClock();
    const cache = new Cache<string, number>({ maxSize: 10, ttl: 1000, staleWhileRevalidate: 5000, clock });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const published: unknown[] = [];
    const listener = (message: unknown) => void published.push(message);
    subscribe('sluice:cache:load', listener);
    try {
      cache.set('k', 1);
      clock.t += 1500;
      const boom = new Error('refresh failed');
      assert.equal(
        await cache.getOrLoad('k', async () => {
          throw boom;
        }),
        1,
      );
      await flush();
      await flush();
      assert.equal(cache.stats.loadFailures, 1);
      assert.equal(published.length, 1);
      assert.equal((published[0] as { error: unknown }).error, boom);
      assert.equal((published[0] as { background: boolean }).background, true);
      assert.deepEqual(unhandled, []);
      // The stale value is still served, and the next call retries the refresh.
      assert.equal(await cache.getOrLoad('k', async () => 2), 1);
      await flush();
      assert.equal(cache.get('k'), 2);
    } finally {
      unsubscribe('sluice:cache:load', listener);
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('Cache.getOrLoad: aborts during a synchronous loader', () => {
  it('a caller whose signal aborts while the loader runs synchronously rejects with signal.reason; the load aborts', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const controller = new AbortController();
    const reason = new Error('aborted inside the loader');
    let loadSignal: AbortSignal | undefined;
    const wait = cache.getOrLoad(
      'k',
      (_key, { signal }) => {
        loadSignal = signal;
        controller.abort(reason);
        return new Promise<number>(() => {});
      },
      { signal: controller.signal },
    );
    await assert.rejects(wait, (error) => error === reason);
    assert.equal(loadSignal?.aborted, true);
    assert.equal(loadSignal?.reason, reason);
    assert.equal(cache.stats.inFlight, 0);
    assert.equal(cache.stats.loadsAborted, 1);
  });

  it('a synchronous loader that returns a value after its caller aborted: the caller still rejects', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const controller = new AbortController();
    const wait = cache.getOrLoad(
      'k',
      () => {
        controller.abort();
        return 5;
      },
      { signal: controller.signal },
    );
    await assert.rejects(wait, (error) => error === controller.signal.reason);
    // The abandoned load's value is not stored.
    assert.equal(cache.get('k'), undefined);
  });

  it('another caller without a signal keeps a load alive when the first aborts synchronously', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const controller = new AbortController();
    let resolveLoad!: (v: number) => void;
    let loadSignal: AbortSignal | undefined;
    const first = cache.getOrLoad(
      'k',
      (_key, { signal }) => {
        loadSignal = signal;
        queueMicrotask(() => controller.abort());
        return new Promise<number>((resolve) => (resolveLoad = resolve));
      },
      { signal: controller.signal },
    );
    const second = cache.getOrLoad('k', () => 0);
    await assert.rejects(first, (error) => error === controller.signal.reason);
    assert.equal(loadSignal?.aborted, false);
    resolveLoad(9);
    assert.equal(await second, 9);
  });
});

describe('Cache.getOrLoad: async context', () => {
  it('a load runs in the AsyncLocalStorage context of its first caller; a refresh in that of the call that triggered it', async () => {
    const { AsyncLocalStorage } = await import('node:async_hooks');
    const als = new AsyncLocalStorage<string>();
    const clock = fakeClock();
    const cache = new Cache<string, string>({ maxSize: 10, ttl: 1000, staleWhileRevalidate: 5000, clock });
    const seen: (string | undefined)[] = [];
    const loader = async (key: string) => {
      seen.push(als.getStore());
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(als.getStore());
      return key;
    };
    const first = als.run('first', () => cache.getOrLoad('k', loader));
    const second = als.run('second', () => cache.getOrLoad('k', loader));
    // The loader starts after both calls returned, outside both `als.run` scopes: it runs in
    // the first caller's context only because the load carried that context.
    assert.deepEqual(seen, []);
    assert.equal(als.getStore(), undefined);
    assert.deepEqual(await Promise.all([first, second]), ['k', 'k']);
    assert.deepEqual(seen, ['first', 'first']);
    clock.t += 1500; // stale: the next getOrLoad refreshes in the background
    seen.length = 0;
    const stale = als.run('refresher', () => cache.getOrLoad('k', loader));
    als.run('other', () => cache.get('k')); // a later read in another context changes nothing
    assert.deepEqual(seen, []);
    assert.equal(await stale, 'k');
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, ['refresher', 'refresher']);
  });
});
