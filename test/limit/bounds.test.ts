// Work bounds of the Limiter's queue: an aborted waiter is unreachable once settled; distinct
// priorities cost O(log n) each; aborted onIdle waits leave in O(1).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Limiter } from '../../src/limit/index.js';
import { needsGc, settleHeap } from '../helpers/heap.js';

it('an aborted waiter is unreachable once it has settled, idle or not', { skip: needsGc }, async () => {
  for (const liveBehind of [0, 10]) {
    const limiter = new Limiter({ concurrency: 1 });
    let release!: () => void;
    const holder = limiter.run(() => new Promise<void>((r) => (release = r)));
    await new Promise((resolve) => setImmediate(resolve));
    const refs: WeakRef<object>[] = [];
    const controller = new AbortController();
    const aborted: Promise<unknown>[] = [];
    for (let i = 0; i < 50; i++) {
      const payload = { big: new Uint8Array(1024) };
      refs.push(new WeakRef(payload));
      const options =
        i % 2 === 0 ? { signal: controller.signal } : { signal: controller.signal, priority: i };
      aborted.push(limiter.run(() => payload.big.length, options).catch(() => 'aborted'));
    }
    const live = Array.from({ length: liveBehind }, () => limiter.run(() => 'live'));
    controller.abort(new Error('gone'));
    assert.deepEqual(new Set(await Promise.all(aborted)), new Set(['aborted']));
    await settleHeap();
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    assert.equal(alive, 0, `${alive} aborted tasks still reachable with ${liveBehind} live waiters queued`);
    release();
    await Promise.all([holder, ...live]);
    await settleHeap();
    assert.equal(refs.filter((r) => r.deref() !== undefined).length, 0, 'reachable once idle');
  }
});

it('distinct priorities enqueue, start and abort in O(log n) each, in priority order', async () => {
  const n = 40_000;
  async function timeIt(priorityOf: (i: number) => number): Promise<{ ms: number; order: number[] }> {
    const limiter = new Limiter({ concurrency: 1, maxQueue: Infinity });
    let release!: () => void;
    const holder = limiter.run(() => new Promise<void>((r) => (release = r)));
    await new Promise((resolve) => setImmediate(resolve));
    const order: number[] = [];
    const controller = new AbortController();
    const t0 = performance.now();
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const priority = priorityOf(i);
      const signal = i % 4 === 3 ? controller.signal : undefined;
      calls.push(limiter.run(() => order.push(priority), { priority, signal }).catch(() => undefined));
    }
    controller.abort(new Error('gone'));
    // Enqueueing and aborting are what a level scan makes quadratic; running is the same work.
    const ms = performance.now() - t0;
    release();
    await Promise.all([holder, ...calls]);
    return { ms, order };
  }
  const same = await timeIt(() => 1);
  // Deadline-style priorities: every one distinct, each later arrival less urgent.
  const distinct = await timeIt((i) => -i);
  assert.equal(distinct.order.length, n - n / 4);
  for (let k = 1; k < distinct.order.length; k++) {
    assert.ok(distinct.order[k - 1]! >= distinct.order[k]!, 'started out of priority order');
  }
  assert.ok(
    distinct.ms < same.ms * 4 + 100,
    `40k distinct priorities took ${distinct.ms.toFixed(0)} ms vs ${same.ms.toFixed(0)} ms for one priority`,
  );
});

it('aborting 100k onIdle waits takes linear time in total', async () => {
  const n = 100_000;
  const reason = new Error('gone');
  // What aborting n signals with one listener each costs on this machine, without a limiter.
  const plain = Array.from({ length: n }, () => new AbortController());
  for (const c of plain) c.signal.addEventListener('abort', () => undefined, { once: true });
  let t0 = performance.now();
  for (let i = n - 1; i >= 0; i--) plain[i]!.abort(reason);
  const baselineMs = performance.now() - t0;

  const limiter = new Limiter({ concurrency: 1 });
  let release!: () => void;
  const holder = limiter.run(() => new Promise<void>((r) => (release = r)));
  await new Promise((resolve) => setImmediate(resolve));
  const controllers = Array.from({ length: n }, () => new AbortController());
  const waits = controllers.map((c) => limiter.onIdle({ signal: c.signal }).catch(() => 'aborted'));
  const kept = limiter.onIdle();
  t0 = performance.now();
  // Abort from the newest: the worst case for a list scanned from the front.
  for (let i = n - 1; i >= 0; i--) controllers[i]!.abort(reason);
  const ms = performance.now() - t0;
  assert.deepEqual(new Set(await Promise.all(waits)), new Set(['aborted']));
  assert.ok(
    ms < baselineMs * 4 + 100,
    `aborting ${n} onIdle waits took ${ms.toFixed(0)} ms; ${n} plain aborts took ${baselineMs.toFixed(0)} ms`,
  );
  release();
  await holder;
  await kept;
});
