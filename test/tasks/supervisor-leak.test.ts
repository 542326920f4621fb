import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Supervisor } from '../../src/tasks/index.js';
import { abortableWaits, needsGc, LEAK_BUDGET, settleHeap, signalAnyRetention } from '../helpers/heap.js';

it(
  'Supervisor: 100k backgroundAsync calls aborted while waiting for room leave no trace',
  { skip: needsGc },
  async () => {
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => (release = resolve));
    const sup = new Supervisor({ maxBackground: 1, maxWaiting: Infinity });
    sup.background(() => stuck); // fills the supervisor: every later call waits
    let ran = 0;
    const longLived = new AbortController();
    const platform = await signalAnyRetention(100_000);
    const baseline = await settleHeap();
    for (let round = 0; round < 10; round++) {
      const { controllers, settled } = abortableWaits(
        10_000,
        (signal) => sup.backgroundAsync(() => void ran++, { signal }).catch(() => undefined),
        longLived.signal,
      );
      assert.equal(sup.stats.backgroundWaiting, 10_000);
      for (const c of controllers) c.abort(new Error('gone'));
      await settled;
      assert.equal(sup.stats.backgroundWaiting, 0);
    }
    const grown = (await settleHeap()) - baseline - platform;
    assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 100k aborted waits`);
    assert.equal(sup.stats.aborted, 100_000);
    release();
    const report = await sup.shutdown({ deadlineMs: 1000 });
    assert.equal(ran, 0, 'no aborted wait ran its task');
    assert.equal(report.timedOut, false);
  },
);
