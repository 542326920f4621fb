import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Router } from '../../src/route/index.js';
import { abortableWaits, needsGc, LEAK_BUDGET, settleHeap, signalAnyRetention } from '../helpers/heap.js';

it(
  '100k aborted acquire() waits return the heap to baseline and take no permit',
  { skip: needsGc },
  async () => {
    const router = new Router<string>([], { maxWaiting: Infinity });
    // One long-lived signal shared by every waiter: listeners must not pile up on it.
    const longLived = new AbortController();
    const platform = await signalAnyRetention(100_000);
    const baseline = await settleHeap();

    for (let round = 0; round < 10; round++) {
      const { controllers, settled } = abortableWaits(
        10_000,
        (signal) => router.acquire({ signal }).catch(() => undefined),
        longLived.signal,
      );
      assert.equal(router.stats.waiting, 10_000);
      for (const c of controllers) c.abort(new Error('gone'));
      await settled;
      assert.equal(router.stats.waiting, 0);
    }
    assert.equal(router.stats.aborted, 100_000);

    const after = await settleHeap();
    const grown = after - baseline - platform;
    assert.ok(
      grown < LEAK_BUDGET,
      `heap grew by ${grown} bytes after 100k aborted waits (beyond the ${platform} bytes Node itself retains)`,
    );

    router.add('a');
    assert.equal(router.stats.inFlight, 0, 'no aborted wait was served');
    using permit = await router.acquire({ signal: longLived.signal });
    assert.equal(permit.target, 'a');
  },
);
