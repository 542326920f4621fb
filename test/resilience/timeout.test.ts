import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { InvalidInputError, TimeoutError } from '../../src/errors.js';
import { timeout, withTimeout } from '../../src/resilience/index.js';
import { LEAK_BUDGET, needsGc, settleHeap } from '../helpers/heap.js';

const never = (signal: AbortSignal) =>
  new Promise<never>((_, reject) =>
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
  );

describe('withTimeout', () => {
  it('resolves with the value and rejects with the error of fn', async () => {
    assert.equal(await withTimeout(async () => 7, 1000), 7);
    assert.equal(await withTimeout(() => 8, 1000), 8);
    await assert.rejects(
      withTimeout(async () => Promise.reject(new Error('boom')), 1000),
      /boom/,
    );
  });

  it('at the deadline aborts the work (its signal) and rejects with TimeoutError', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let seen: AbortSignal | undefined;
    const p = withTimeout((signal) => {
      seen = signal;
      return never(signal);
    }, 50);
    await Promise.resolve();
    await Promise.resolve();
    assert.ok(seen && !seen.aborted);
    t.mock.timers.tick(49);
    assert.equal(seen.aborted, false);
    t.mock.timers.tick(1);
    await assert.rejects(p, (err) => err instanceof TimeoutError && err.code === 'SLUICE_TIMEOUT');
    assert.ok(seen.reason instanceof TimeoutError, 'the work saw the TimeoutError as its abort reason');
  });

  it("the caller's abort rejects with its reason unchanged and aborts the work", async () => {
    const controller = new AbortController();
    const reason = { mine: true };
    let seen: AbortSignal | undefined;
    const p = withTimeout(
      (signal) => {
        seen = signal;
        return never(signal);
      },
      10_000,
      { signal: controller.signal },
    );
    await new Promise((r) => setImmediate(r));
    controller.abort(reason);
    await assert.rejects(p, (err) => err === reason);
    assert.equal(seen?.reason, reason);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });

  it('an already-aborted signal rejects without calling fn', async () => {
    let called = false;
    const reason = new Error('gone');
    await assert.rejects(
      withTimeout(
        () => {
          called = true;
        },
        100,
        { signal: AbortSignal.abort(reason) },
      ),
      (err) => err === reason,
    );
    assert.equal(called, false);
  });

  it('a synchronous throw rejects; fn starts asynchronously, in the caller context', async () => {
    let started = false;
    const p = withTimeout(() => {
      started = true;
      throw new Error('sync');
    }, 100);
    assert.equal(started, false, 'fn must not run inside withTimeout');
    await assert.rejects(p, /sync/);
    const als = new AsyncLocalStorage<string>();
    const seen = await als.run('ctx', () => withTimeout(() => als.getStore(), 100));
    assert.equal(seen, 'ctx');
  });

  it('rejects bad input instead of throwing; Infinity and duration strings are accepted', async () => {
    await assert.rejects(withTimeout(42 as never, 10), InvalidInputError);
    await assert.rejects(
      withTimeout(() => 1, -1),
      InvalidInputError,
    );
    await assert.rejects(
      withTimeout(() => 1, 10, { signal: 'x' as never }),
      InvalidInputError,
    );
    assert.equal(await withTimeout(() => 1, Infinity), 1);
    assert.equal(await withTimeout(() => 2, '1s'), 2);
    assert.throws(() => timeout(-5), RangeError);
    assert.equal(await timeout(100).run(() => 3), 3);
  });

  it('leaves no timer behind once settled', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    await Promise.all(Array.from({ length: 100 }, (_, i) => withTimeout(async () => i, 60_000)));
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    assert.equal(after, before);
  });

  it(
    '1e5 calls on one long-lived parent signal: listeners and heap back to baseline',
    { skip: needsGc },
    async () => {
      const parent = new AbortController();
      // sluice's timers are unref'd: something must hold the loop while work that holds nothing waits.
      const keepAlive = setInterval(() => undefined, 1000);
      const baseline = await settleHeap();
      for (let round = 0; round < 10; round++) {
        const calls: Promise<unknown>[] = [];
        for (let i = 0; i < 10_000; i++) {
          // Half finish on their own, half time out at once (0 ms deadline, never-settling work).
          calls.push(
            i % 2 === 0
              ? withTimeout(async () => i, 60_000, { signal: parent.signal })
              : withTimeout(never, 0, { signal: parent.signal }).catch(() => undefined),
          );
        }
        assert.ok(getEventListeners(parent.signal, 'abort').length <= 1, 'one listener however many calls');
        await Promise.all(calls);
      }
      assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
      const grown = (await settleHeap()) - baseline;
      assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 1e5 timed calls`);
      clearInterval(keepAlive);
      assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, 0);
    },
  );
});
