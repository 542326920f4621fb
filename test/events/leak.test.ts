// 100k waits and subscriptions that end early (aborted or unsubscribed) leave nothing behind:
// the heap returns to its baseline and a long-lived signal they all listened to ends with no
// listener.
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { it } from 'node:test';
import { EventBus } from '../../src/events/index.js';
import { deferred } from '../helpers/async.js';
import { abortableWaits, needsGc, LEAK_BUDGET, settleHeap, signalAnyRetention } from '../helpers/heap.js';

interface Events {
  tick: number;
  other: string;
}

const skip = needsGc;
const ROUNDS = 10;
const PER_ROUND = 10_000;
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const listeners = (signal: AbortSignal) => getEventListeners(signal, 'abort').length;

it('100k emits aborted while waiting for room leave no trace and are never delivered', { skip }, async () => {
  const bus = new EventBus<Events>({ buffer: 1, maxPendingEmits: Infinity });
  const gate = deferred();
  const got: number[] = [];
  const sub = bus.on('tick', async (n) => {
    got.push(n);
    await gate.promise;
  });
  await bus.emit('tick', -1);
  await tick(); // the handler holds -1
  await bus.emit('tick', -2); // buffered: every later emit waits
  const longLived = new AbortController();
  const platform = await signalAnyRetention(ROUNDS * PER_ROUND);
  const baseline = await settleHeap();
  for (let round = 0; round < ROUNDS; round++) {
    const { controllers, settled } = abortableWaits(
      PER_ROUND,
      (signal, i) => bus.emit('tick', i, { signal }).catch(() => undefined),
      longLived.signal,
    );
    assert.equal(bus.stats.waiting, PER_ROUND);
    assert.equal(sub.stats.waiting, PER_ROUND);
    for (const c of controllers) c.abort(new Error('gone'));
    await settled;
    assert.equal(bus.stats.waiting, 0);
    assert.equal(sub.stats.waiting, 0);
  }
  const grown = (await settleHeap()) - baseline - platform;
  assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 100k aborted emits`);
  assert.equal(listeners(longLived.signal), 0);
  gate.resolve();
  await bus.emit('tick', 1);
  await bus.close();
  assert.deepEqual(got, [-1, -2, 1], 'no aborted emit reached the handler');
});

// The next three give each wait its own signal (no AbortSignal.any: Node's own cost for 100k
// dependants of one signal is measured once, above), so what is left is sluice's retention only.

it('100k aborted once() calls leave no subscriber, list or listener', { skip }, async () => {
  const bus = new EventBus<Events>();
  const baseline = await settleHeap();
  for (let round = 0; round < ROUNDS; round++) {
    const { controllers, settled } = abortableWaits(PER_ROUND, (signal, i) =>
      bus.once(i % 2 === 0 ? 'tick' : 'other', { signal }).catch(() => undefined),
    );
    assert.equal(bus.stats.subscribers, PER_ROUND);
    for (const c of controllers) c.abort(new Error('gone'));
    await settled;
    assert.equal(bus.stats.subscribers, 0);
    assert.ok(controllers.every((c) => listeners(c.signal) === 0));
  }
  const grown = (await settleHeap()) - baseline;
  assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 100k aborted once() calls`);
  const next = bus.once('tick');
  await bus.emit('tick', 7);
  assert.equal(await next, 7);
  await bus.close();
});

it(
  '100k aborted subscribe() iterators, with a pending next() or buffered events, leave no trace',
  { skip },
  async () => {
    const bus = new EventBus<Events>({ history: 0 });
    const baseline = await settleHeap();
    for (let round = 0; round < ROUNDS; round++) {
      const { controllers, settled } = abortableWaits(PER_ROUND, (signal, i) => {
        const iterator = bus.subscribe(i % 2 === 0 ? 'tick' : 'other', { signal, buffer: 2 });
        return iterator.next().catch(() => undefined);
      });
      // The 'tick' half take the first event at once (their next() resolves), then buffer one.
      await bus.emit('tick', round);
      await bus.emit('tick', round);
      assert.equal(bus.stats.buffered, PER_ROUND / 2);
      for (const c of controllers) c.abort(new Error('gone'));
      await settled;
      assert.equal(bus.stats.subscribers, 0);
      assert.equal(bus.stats.buffered, 0);
      assert.ok(controllers.every((c) => listeners(c.signal) === 0));
    }
    const grown = (await settleHeap()) - baseline;
    assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 100k aborted iterators`);
    await bus.close();
  },
);

it(
  '100k handlers unsubscribed (half by abort, half by hand) with buffered events leave no trace',
  { skip },
  async () => {
    const bus = new EventBus<Events>({ maxConcurrentHandlers: 1, history: 0 });
    const gate = deferred();
    bus.on('other', () => gate.promise); // holds the only bus slot: every tick handler stays parked
    await bus.emit('other', 'hold');
    await tick();
    let ran = 0;
    const baseline = await settleHeap();
    for (let round = 0; round < ROUNDS; round++) {
      const subs: { unsubscribe(): void }[] = [];
      const { controllers } = abortableWaits(PER_ROUND, (signal) => {
        subs.push(bus.on('tick', () => void ran++, { signal, buffer: 2 }));
        return Promise.resolve();
      });
      await bus.emit('tick', round);
      await tick();
      assert.equal(bus.stats.buffered, PER_ROUND);
      subs.forEach((sub, i) => (i % 2 === 0 ? controllers[i]!.abort(new Error('gone')) : sub.unsubscribe()));
      assert.equal(bus.stats.subscribers, 1);
      assert.equal(bus.stats.buffered, 0);
      assert.ok(controllers.every((c) => listeners(c.signal) === 0));
      await tick();
    }
    const grown = (await settleHeap()) - baseline;
    assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 100k unsubscribed handlers`);
    assert.equal(ran, 0);
    assert.equal(bus.stats.dropped, ROUNDS * PER_ROUND);
    gate.resolve();
    await bus.close();
  },
);

it('waits that end without an abort remove their listener from a signal they share directly', async () => {
  const bus = new EventBus<Events>({ buffer: 1 });
  const longLived = new AbortController();
  const signal = longLived.signal;
  const gate = deferred();
  const gateSub = bus.on('other', () => gate.promise, { signal });
  const onces = Array.from({ length: 1000 }, () => bus.once('tick', { signal }));
  const iterators = Array.from({ length: 1000 }, () => bus.subscribe('tick', { signal, buffer: 1000 }));
  const handlers = Array.from({ length: 1000 }, () => bus.on('tick', () => {}, { signal }));
  await bus.emit('other', 'a');
  await tick();
  await bus.emit('other', 'b');
  const waiting = Array.from({ length: 1000 }, (_, i) => bus.emit('other', String(i), { signal }));
  assert.ok(listeners(signal) <= 1, 'one listener per signal however many waits share it');
  await bus.emit('tick', 1);
  assert.deepEqual(new Set(await Promise.all(onces)), new Set([1]));
  for (const iterator of iterators) await iterator.return!();
  for (const handler of handlers) handler.unsubscribe();
  gate.resolve();
  await Promise.all(waiting);
  assert.equal(bus.stats.subscribers, 1, 'the gate handler');
  assert.equal(listeners(signal), 1, 'the gate handler still listens');
  await bus.close();
  assert.equal(gateSub.disposed, true, 'close ends handler subscriptions');
  assert.equal(listeners(signal), 0);
});
