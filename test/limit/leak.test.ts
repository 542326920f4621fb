import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Limiter } from '../../src/limit/index.js';
import { abortableWaits, needsGc, LEAK_BUDGET, settleHeap, signalAnyRetention } from '../helpers/heap.js';

it('100k aborted waits return the heap to baseline and never consume a slot', { skip: needsGc }, async () => {
  const limiter = new Limiter({ concurrency: 1, maxQueue: Infinity });
  const permit = await limiter.acquire();
  // One long-lived signal shared by every waiter: listeners must not pile up on it.
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
    for (const c of controllers) c.abort(new Error('gone'));
    await settled;
    assert.equal(limiter.stats.queued, 0);
  }
  assert.equal(limiter.stats.aborted, 100_000);
  assert.equal(limiter.stats.running, 1, 'only the held permit runs');

  const after = await settleHeap();
  const grown = after - baseline - platform;
  assert.ok(
    grown < LEAK_BUDGET,
    `heap grew by ${grown} bytes after 100k aborted waits (beyond the ${platform} bytes Node itself retains)`,
  );

  permit.release();
  assert.equal(await limiter.run(() => 'free'), 'free');
  await limiter.close();
});
