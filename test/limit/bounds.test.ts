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

it('aborting an onIdle wait costs O(1), however many other onIdle waits there are', async () => {
  const reason = new Error('gone');
  async function abortAmong(crowd: number): Promise<number> {
    const limiter = new Limiter({ concurrency: 1 });
    let release!: () => void;
    const holder = limiter.run(() => new Promise<void>((r) => (release = r)));
    await new Promise((resolve) => setImmediate(resolve));
    const others = Array.from({ length: crowd }, () => limiter.onIdle());
    const controllers = Array.from({ length: 10_000 }, () => new AbortController());
    const waits = controllers.map((c) => limiter.onIdle({ signal: c.signal }).catch(() => 'aborted'));
    const t0 = performance.now();
    for (const c of controllers) c.abort(reason);
    const ms = performance.now() - t0;
    assert.deepEqual(new Set(await Promise.all(waits)), new Set(['aborted']));
    release();
    await holder;
    await Promise.all(others);
    return ms;
  }
  await abortAmong(0); // warm-up
  const alone = Math.min(await abortAmong(0), await abortAmong(0));
  const crowded = await abortAmong(300_000);
  assert.ok(
    crowded < alone * 5 + 100,
    `10k aborts among 300k other onIdle waits took ${crowded.toFixed(0)} ms, alone ${alone.toFixed(0)} ms`,
  );
});
