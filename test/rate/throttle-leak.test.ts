import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Throttle } from '../../src/rate/index.js';
import { abortableWaits, needsGc, LEAK_BUDGET, settleHeap, signalAnyRetention } from '../helpers/heap.js';

it(
  'Throttle: 100k aborted waits return the heap to baseline and spend no quota',
  { skip: needsGc },
  async () => {
    const clock = {
      t: 0,
      now() {
        return this.t;
      },
    };
    const throttle = new Throttle({ limit: 1, window: 60_000, burst: 0, clock, maxQueue: Infinity });
    await throttle.run(() => 0); // the quota is spent until t = 60 s: everything below waits
    const longLived = new AbortController();
    const platform = await signalAnyRetention(100_000);
    const baseline = await settleHeap();

    for (let round = 0; round < 10; round++) {
      const { controllers, settled } = abortableWaits(
        10_000,
        (signal) => throttle.run(() => 'never', { signal }).catch(() => undefined),
        longLived.signal,
      );
      assert.equal(throttle.stats.queued, 10_000);
      for (const c of controllers) c.abort(new Error('gone'));
      await settled;
      assert.equal(throttle.stats.queued, 0);
    }
    assert.equal(throttle.stats.aborted, 100_000);
    assert.equal(throttle.stats.started, 1);

    const grown = (await settleHeap()) - baseline - platform;
    assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 100k aborted waits`);

    clock.t = 60_000;
    assert.equal(await throttle.run(() => 'free'), 'free', 'the quota is whole again: nothing was spent');
    assert.equal(throttle.stats.started, 2);
    await throttle.close();
  },
);
