import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Limiter } from '../../src/limit/index.js';
import { abortableWaits, needsGc, LEAK_BUDGET, settleHeap, signalAnyRetention } from '../helpers/heap.js';

it(
  'with maxQueueWaitMs: 100k aborted waits leave both queues in O(1) and the heap at baseline',
  { skip: needsGc },
  async () => {
    // The shedding queue holds every waiter a second time, in arrival order: an aborted waiter
    // must leave it too (tombstone + compaction), or 1e5 aborted waits would pin 1e5 records.
    const limiter = new Limiter({ concurrency: 1, maxQueue: Infinity, maxQueueWaitMs: 3_600_000 });
    const permit = await limiter.acquire();
    const longLived = new AbortController();
    const platform = await signalAnyRetention(100_000);
    const baseline = await settleHeap();

    for (let round = 0; round < 10; round++) {
      const { controllers, settled } = abortableWaits(
        10_000,
        (signal) => limiter.run(() => 'never', { signal }).catch(() => undefined),
        longLived.signal,
      );
      assert.equal(limiter.stats.queued, 10_000);
      // Abort in a scattered order, so tombstones sit in the middle of the arrival queue too.
      for (let i = 0; i < controllers.length; i += 2) controllers[i]!.abort(new Error('gone'));
      for (let i = 1; i < controllers.length; i += 2) controllers[i]!.abort(new Error('gone'));
      await settled;
      assert.equal(limiter.stats.queued, 0);
    }
    assert.equal(limiter.stats.aborted, 100_000);
    assert.equal(limiter.stats.shed, 0);

    const after = await settleHeap();
    const grown = after - baseline - platform;
    assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 100k aborted waits`);

    permit.release();
    assert.equal(await limiter.run(() => 'free'), 'free');
    await limiter.close();
  },
);
