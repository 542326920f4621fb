import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Cache } from '../../src/cache/index.js';
import { ClosedError } from '../../src/errors.js';
import { deferred } from '../helpers/async.js';

describe('Cache.close', () => {
  it('waits for every started load, refreshes included, and then refuses getOrLoad', async () => {
    const clock = { t: 0, now: () => clock.t };
    const cache = new Cache<string, number>({ maxSize: 10, ttl: 100, staleWhileRevalidate: 1000, clock });
    cache.set('stale', 1);
    clock.t = 150; // 'stale' is past its TTL, inside the stale window
    const load = deferred<number>();
    const refresh = deferred<number>();
    const loading = cache.getOrLoad('fresh', () => load.promise);
    assert.equal(await cache.getOrLoad('stale', () => refresh.promise), 1, 'stale value served');
    await Promise.resolve(); // both loaders have started

    let closed = false;
    const closing = cache.close().then(() => (closed = true));
    assert.equal(cache.closed, true);
    assert.equal(cache.close(), cache.close(), 'idempotent');
    await assert.rejects(
      cache.getOrLoad('other', () => 3),
      (err: unknown) => {
        assert.ok(err instanceof ClosedError);
        assert.equal(err.message, 'Cache is closed');
        return true;
      },
    );

    load.resolve(2);
    assert.equal(await loading, 2, 'a load started before close still answers its callers');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closed, false, 'close resolved while a background refresh was still running');
    refresh.resolve(5);
    await closing;
    assert.equal(cache.get('stale'), 5, 'the refresh landed before close resolved');
    assert.equal(cache.stats.inFlight, 0);

    // Memory operations keep working; nothing is swept by a timer any more, reads still expire.
    cache.set('x', 9);
    assert.equal(cache.get('x'), 9);
    clock.t += 200;
    assert.equal(cache.get('x'), undefined);
  });

  it('resolves at once with nothing in flight, and when every caller of a load aborted before it started', async () => {
    const idle = new Cache<string, number>({ maxSize: 10 });
    await idle.close();

    const cache = new Cache<string, number>({ maxSize: 10 });
    let ran = 0;
    const controller = new AbortController();
    const waiting = cache.getOrLoad(
      'k',
      () => {
        ran++;
        return 1;
      },
      { signal: controller.signal },
    );
    controller.abort(new Error('gone'));
    await assert.rejects(waiting, /gone/);
    await cache.close();
    assert.equal(ran, 0);
  });

  it('is what `await using` calls', async () => {
    const load = deferred<number>();
    let pending: Promise<number> | undefined;
    {
      await using cache = new Cache<string, number>({ maxSize: 10 });
      pending = cache.getOrLoad('k', () => load.promise);
      await Promise.resolve();
      setTimeout(() => load.resolve(7), 5);
    }
    assert.equal(await pending, 7);
  });
});
