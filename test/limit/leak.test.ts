import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Limiter } from '../../src/limit/index.js';
import { needsGc, settleHeap } from '../helpers/heap.js';

it('100k aborted waits return the heap to baseline and never consume a slot', { skip: needsGc }, async () => {
  const limiter = new Limiter({ concurrency: 1, maxQueue: Infinity });
  const permit = await limiter.acquire();
  // One long-lived signal shared by every waiter: listeners must not pile up on it.
  const longLived = new AbortController();
  const baseline = await settleHeap();

  for (let round = 0; round < 10; round++) {
    const controllers: AbortController[] = [];
    const waits: Promise<unknown>[] = [];
    for (let i = 0; i < 10_000; i++) {
      const controller = new AbortController();
      controllers.push(controller);
      const signal = AbortSignal.any([controller.signal, longLived.signal]);
      waits.push(limiter.run(() => 'never', { signal }).catch(() => undefined));
    }
    assert.equal(limiter.stats.queued, 10_000);
    for (const c of controllers) c.abort(new Error('gone'));
    await Promise.all(waits);
    assert.equal(limiter.stats.queued, 0);
  }
  assert.equal(limiter.stats.aborted, 100_000);
  assert.equal(limiter.stats.running, 1, 'only the held permit runs');

  const after = await settleHeap();
  const grown = after - baseline;
  assert.ok(grown < 2 * 1024 * 1024, `heap grew by ${grown} bytes after 100k aborted waits`);

  permit.release();
  assert.equal(await limiter.run(() => 'free'), 'free');
  await limiter.close();
});
