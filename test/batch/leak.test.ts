import assert from 'node:assert/strict';
import { it } from 'node:test';
import { BatchWriter, Loader } from '../../src/batch/index.js';
import { abortableWaits, needsGc, LEAK_BUDGET, settleHeap, signalAnyRetention } from '../helpers/heap.js';

const skip = needsGc;

it('BatchWriter: 100k adds aborted while waiting for room leave no trace', { skip }, async () => {
  let release!: () => void;
  const stuck = new Promise<void>((resolve) => (release = resolve));
  const writer = new BatchWriter<number>(() => stuck, { maxItems: 1, maxPending: 1 });
  await writer.add(0); // fills the writer: every later add waits
  const longLived = new AbortController();
  const platform = await signalAnyRetention(100_000);
  const baseline = await settleHeap();
  for (let round = 0; round < 10; round++) {
    const { controllers, settled } = abortableWaits(
      10_000,
      (signal, i) => writer.add(i, { signal }).catch(() => undefined),
      longLived.signal,
    );
    assert.equal(writer.stats.waiting, 10_000);
    for (const c of controllers) c.abort(new Error('gone'));
    await settled;
    assert.equal(writer.stats.waiting, 0);
  }
  // Less what Node itself keeps for AbortSignal.any dependants of the long-lived signal.
  const grown = (await settleHeap()) - baseline - platform;
  assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 100k aborted adds`);
  assert.equal(writer.stats.aborted, 100_000);
  assert.equal(writer.stats.items, 1, 'no aborted add was enqueued');
  release();
  await writer.close();
  assert.equal(writer.stats.written, 1);
});

it('Loader: 100k aborted loads leave no batch, cache entry or listener behind', { skip }, async () => {
  let calls = 0;
  const loader = new Loader<number, number>(async (keys) => {
    calls++;
    return [...keys];
  });
  const longLived = new AbortController();
  const platform = await signalAnyRetention(100_000);
  const baseline = await settleHeap();
  for (let round = 0; round < 10; round++) {
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, longLived.signal]);
    const loads: Promise<unknown>[] = [];
    for (let i = 0; i < 10_000; i++)
      loads.push(loader.load(round * 10_000 + i, { signal }).catch(() => undefined));
    controller.abort(new Error('gone'));
    await Promise.all(loads);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const grown = (await settleHeap()) - baseline - platform;
  assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 100k aborted loads`);
  assert.equal(calls, 0, 'no batch of aborted loads was sent');
  assert.equal(loader.stats.aborted, 100_000);
  assert.equal(loader.stats.queued, 0);
  assert.equal(await loader.load(5), 5, 'aborted keys are not stuck in the cache');
});

it('BatchWriter: 100k flush calls aborted while a flush is stuck leave no trace', { skip }, async () => {
  let release!: () => void;
  const stuck = new Promise<void>((resolve) => (release = resolve));
  const writer = new BatchWriter<number>(() => stuck, { maxItems: 1 });
  await writer.add(0); // in flight until released: every flush below waits
  const longLived = new AbortController();
  const platform = await signalAnyRetention(100_000);
  const baseline = await settleHeap();
  for (let round = 0; round < 10; round++) {
    const { controllers, settled } = abortableWaits(
      10_000,
      (signal) => writer.flush({ signal }).catch(() => undefined),
      longLived.signal,
    );
    for (const c of controllers) c.abort(new Error('gone'));
    await settled;
  }
  const grown = (await settleHeap()) - baseline - platform;
  assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 100k aborted flushes`);
  const flushed = writer.flush();
  release();
  await flushed;
  await writer.close();
  assert.equal(writer.stats.written, 1);
});
