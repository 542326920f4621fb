import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MemoryTransport } from '../../src/events/memory-transport.js';
import { abortableWaits, LEAK_BUDGET, needsGc, settleHeap, signalAnyRetention } from '../helpers/heap.js';

it('100k aborted blocked reads return the heap to baseline', { skip: needsGc }, async () => {
  const log = new MemoryTransport();
  await log.createGroup('g', '$');
  const longLived = new AbortController();
  const platform = await signalAnyRetention(100_000);
  const baseline = await settleHeap();
  for (let round = 0; round < 10; round++) {
    const { controllers, settled } = abortableWaits(
      10_000,
      (signal, i) =>
        (i % 2 === 0
          ? log.read('0-0', { count: 1, blockMs: 60_000, signal })
          : log.readGroup('g', 'c', { count: 1, blockMs: 60_000, signal })
        ).catch(() => undefined),
      longLived.signal,
    );
    for (const c of controllers) c.abort(new Error('gone'));
    await settled;
  }
  const grown = (await settleHeap()) - baseline - platform;
  assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 100k aborted reads`);
  const [id] = await log.append([{ type: 't', payload: 1 }]);
  assert.deepEqual(
    (await log.read('0-0', { count: 1, blockMs: 0 })).map((e) => e.id),
    [id],
  );
  await log.close();
});
