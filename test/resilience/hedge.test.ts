import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { InvalidInputError } from '../../src/errors.js';
import { hedge, Hedger } from '../../src/resilience/index.js';
import { LEAK_BUDGET, needsGc, settleHeap } from '../helpers/heap.js';

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

/** Work whose attempts settle by hand: `attempts[i]` has the signal and resolvers of attempt i. */
function manual<T>() {
  const attempts: { signal: AbortSignal; resolve: (v: T) => void; reject: (e: unknown) => void }[] = [];
  const fn = (signal: AbortSignal) =>
    new Promise<T>((resolve, reject) => {
      attempts.push({ signal, resolve, reject });
    });
  return { fn, attempts };
}

describe('hedge', () => {
  it('starts a second attempt after the delay; the first success wins and the loser is aborted', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { fn, attempts } = manual<string>();
    const p = hedge(fn, { delayMs: 50 });
    await flush();
    assert.equal(attempts.length, 1);
    t.mock.timers.tick(49);
    await flush();
    assert.equal(attempts.length, 1);
    t.mock.timers.tick(1);
    await flush();
    assert.equal(attempts.length, 2);
    attempts[1]!.resolve('second');
    assert.equal(await p, 'second');
    assert.equal(attempts[0]!.signal.aborted, true, 'the loser is cancelled');
    assert.equal((attempts[0]!.signal.reason as DOMException).name, 'AbortError');
    assert.equal(attempts[1]!.signal.aborted, false);
  });

  it('a failure with nothing else in flight hedges at once; all failing rejects with the last error', async () => {
    const { fn, attempts } = manual<string>();
    const p = hedge(fn, { delayMs: 60_000, maxHedges: 2 });
    await flush();
    attempts[0]!.reject(new Error('first'));
    await flush();
    assert.equal(attempts.length, 2, 'no wait for the delay after a failure');
    attempts[1]!.reject(new Error('second'));
    await flush();
    attempts[2]!.reject(new Error('third'));
    await assert.rejects(p, /third/);
    assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, 0);
  });

  it("the caller's abort aborts every attempt and rejects with its reason, leaving no listener", async () => {
    const controller = new AbortController();
    const { fn, attempts } = manual<string>();
    const p = hedge(fn, { delayMs: 0, signal: controller.signal });
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(attempts.length, 2);
    const reason = { why: 'client left' };
    controller.abort(reason);
    await assert.rejects(p, (e) => e === reason);
    assert.ok(attempts.every((a) => a.signal.reason === reason));
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });

  it("'p95' learns the delay from recent successful latencies", async () => {
    let now = 0;
    const hedger = new Hedger({
      delayMs: 'p95',
      initialDelayMs: 70,
      minSamples: 20,
      sampleSize: 100,
      clock: { now: () => now },
    });
    assert.equal(hedger.delayMs, 70);
    for (let i = 1; i <= 100; i++) {
      await hedger.run(async () => {
        now += i; // latencies 1..100 ms
        return i;
      });
    }
    // The percentile is recomputed every sampleSize / 8 samples: at most that stale.
    assert.ok(hedger.delayMs >= 85 && hedger.delayMs <= 95, `p95 ≈ 95, got ${hedger.delayMs}`);
    assert.equal(hedger.stats.calls, 100);
    await assert.rejects(
      hedge(() => 1, { delayMs: 'p95' as never }),
      InvalidInputError,
    );
    assert.throws(() => new Hedger({ delayMs: -1 }), RangeError);
  });

  it('a fixed delay never reads the clock (only p95 keeps latencies)', async () => {
    let reads = 0;
    const hedger = new Hedger({ delayMs: 50, clock: { now: () => ++reads } });
    assert.equal(await hedger.run(() => 'ok'), 'ok');
    assert.equal(reads, 0);
  });

  it(
    '5e4 hedged calls on one long-lived signal (half hedged): heap, timers and listeners back to baseline',
    { skip: needsGc },
    async () => {
      const parent = new AbortController();
      const hedger = new Hedger({ delayMs: 0 });
      const baseline = await settleHeap();
      for (let round = 0; round < 5; round++) {
        const calls: Promise<unknown>[] = [];
        for (let i = 0; i < 10_000; i++) {
          // Even calls answer at once; odd ones only when aborted or on the hedge.
          let n = 0;
          calls.push(
            hedger.run(
              (signal) =>
                i % 2 === 0 || n++ > 0
                  ? Promise.resolve(i)
                  : new Promise((_, reject) =>
                      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
                    ),
              { signal: parent.signal },
            ),
          );
        }
        assert.ok(getEventListeners(parent.signal, 'abort').length <= 1);
        await Promise.all(calls);
      }
      assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
      assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, 0);
      assert.ok(hedger.stats.hedges >= 25_000);
      const grown = (await settleHeap()) - baseline;
      assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes`);
    },
  );
});
