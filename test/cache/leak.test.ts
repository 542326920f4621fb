import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { it } from 'node:test';
import { Cache } from '../../src/cache/index.js';
import { abortableWaits, needsGc, settleHeap } from '../helpers/heap.js';

const skip = needsGc;
/** A waiter that never settles fails the test instead of hanging the run. */
const timeout = 15_000;

it(
  'Cache: 100k aborted getOrLoad waits leave no flight, listener or heap behind',
  { skip, timeout },
  async () => {
    const cache = new Cache<string, number>({ maxSize: 100 });
    let started = 0;
    let loadsAborted = 0;
    // Loads that never finish on their own: only the waiters' aborts can end them.
    const loader = (_key: string, { signal }: { signal: AbortSignal }) =>
      new Promise<number>((_resolve, reject) => {
        started++;
        signal.addEventListener('abort', () => {
          loadsAborted++;
          reject(signal.reason as Error);
        });
      });
    const baseline = await settleHeap();
    for (let round = 0; round < 10; round++) {
      // Each waiter its own controller and reason; 100 keys per round, 100 waiters sharing each load.
      const { controllers, settled } = abortableWaits(10_000, (signal, i) =>
        cache.getOrLoad(`k${round}:${i % 100}`, loader, { signal }).then(
          () => assert.fail('an aborted wait resolved'),
          (error: unknown) => assert.equal(error, signal.reason),
        ),
      );
      assert.equal(cache.stats.inFlight, 100);
      // Loaders start a microtask after getOrLoad: even rounds abort once they run, odd rounds
      // before they start (then they never run).
      const startedBefore = started;
      if (round % 2 === 0) await Promise.resolve();
      assert.equal(started - startedBefore, round % 2 === 0 ? 100 : 0);
      for (const c of controllers) c.abort(new Error(`gone ${round}`));
      assert.ok(controllers.every((c) => getEventListeners(c.signal, 'abort').length === 0));
      await settled;
      assert.equal(cache.stats.inFlight, 0, 'every load is dropped once all its waiters left');
    }
    assert.equal(started, 500, 'one load per key, shared by its 100 waiters; none once abandoned');
    assert.equal(loadsAborted, 500, 'each running load aborted, once, when its last waiter aborted');
    assert.equal(cache.stats.loadsAborted, 1000, 'every load was abandoned, started or not');
    assert.equal(cache.size, 0, 'nothing stored from an aborted load');
    const grown = (await settleHeap()) - baseline;
    assert.ok(grown < 2 * 1024 * 1024, `heap grew by ${grown} bytes after 100k aborted waits`);
  },
);

it(
  'Cache: 100k waiters aborting around one pending load leave nothing; the load goes on',
  { skip, timeout },
  async () => {
    const cache = new Cache<string, number>({ maxSize: 100 });
    let finish!: (value: number) => void;
    let loadSignal: AbortSignal | undefined;
    let started = 0;
    // A load that does not resolve until the end of the test.
    const loader = (_key: string, { signal }: { signal: AbortSignal }) => {
      started++;
      loadSignal = signal;
      return new Promise<number>((resolve) => (finish = resolve));
    };
    // One caller stays: its wait keeps the load alive while 100k others come and go.
    const stay = new AbortController();
    const survivor = cache.getOrLoad('registry', loader, { signal: stay.signal });
    const baseline = await settleHeap();
    let rejected = 0;
    for (let round = 0; round < 10; round++) {
      // 100 requests' signals per round, each shared by 100 waiters (a request awaiting many reads).
      const controllers = Array.from({ length: 100 }, () => new AbortController());
      const waits: Promise<void>[] = [];
      for (let i = 0; i < 10_000; i++) {
        const { signal } = controllers[i % 100] as AbortController;
        waits.push(
          cache.getOrLoad('registry', loader, { signal }).then(
            () => assert.fail('an aborted wait resolved'),
            (error: unknown) => {
              assert.equal(error, signal.reason, 'rejects with its signal.reason');
              rejected++;
            },
          ),
        );
      }
      for (const c of controllers) c.abort(new Error('client went away'));
      assert.ok(controllers.every((c) => getEventListeners(c.signal, 'abort').length === 0));
      await Promise.all(waits);
      assert.equal(cache.stats.inFlight, 1);
    }
    assert.equal(rejected, 100_000);
    assert.equal(started, 1, 'every waiter joined the one load');
    assert.equal(loadSignal?.aborted, false, 'a remaining waiter keeps the load going');
    const grown = (await settleHeap()) - baseline;
    assert.ok(grown < 2 * 1024 * 1024, `heap grew by ${grown} bytes with 100k waiters gone, load pending`);

    finish(42);
    assert.equal(await survivor, 42);
    assert.equal(cache.get('registry'), 42, 'the load was stored');
    assert.equal(getEventListeners(stay.signal, 'abort').length, 0, 'the survivor left no listener');
    assert.equal(cache.stats.loads, 1);
    assert.equal(cache.stats.loadsAborted, 0);
    assert.equal(cache.stats.inFlight, 0);
  },
);
