import assert from 'node:assert/strict';
import { it } from 'node:test';
import { WorkQueue } from '../../src/tasks/index.js';
import { deferred } from '../helpers/async.js';
import { abortableWaits, needsGc, LEAK_BUDGET, settleHeap } from '../helpers/heap.js';

it(
  '100k aborted waits (for room, and behind a busy key) return the heap to baseline',
  { skip: needsGc },
  async () => {
    const gate = deferred();
    const queue = new WorkQueue(() => gate.promise, {
      concurrency: 1,
      maxPending: 5_001,
      orderBy: (op: number) => (op < 0 ? 'busy' : op % 2 === 0 ? 'busy' : 'other'),
    });
    await queue.add(-1); // holds the only slot and the 'busy' key
    // Own signals, not joined to a long-lived one: AbortSignal.any is slow to create and to
    // collect here, and the limit leak test covers listeners piling up on a shared signal.
    const baseline = await settleHeap();

    for (let round = 0; round < 10; round++) {
      // 5000 accepted behind keys (cancelled), 5000 waiting for room (aborted).
      const { controllers, settled } = abortableWaits(10_000, (signal, i) =>
        queue.add(i, { signal }).catch(() => undefined),
      );
      assert.equal(queue.stats.pending, 5_001);
      assert.equal(queue.stats.waiting, 5_000);
      // Waiting adds first: aborting an accepted op first would admit a waiting one.
      for (const c of controllers.reverse()) c.abort(new Error('gone'));
      await settled;
      assert.equal(queue.stats.pending, 1);
      assert.equal(queue.stats.waiting, 0);
    }
    assert.equal(queue.stats.cancelled, 50_000);
    assert.equal(queue.stats.aborted, 50_000);
    assert.equal(queue.stats.keys, 1, "only the running op's key is held");

    const after = await settleHeap();
    const grown = after - baseline;
    assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 100k aborted waits`);
    gate.resolve();
    await queue.close();
    assert.equal(queue.stats.completed, 1);
    assert.equal(queue.stats.keys, 0);
  },
);
