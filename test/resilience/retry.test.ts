import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { getEventListeners } from 'node:events';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { CircuitOpenError, InvalidInputError, RateLimitedError } from '../../src/errors.js';
import { retry, retryAfterOf, RetryBudget, type RetryEvent } from '../../src/resilience/index.js';
import { captureReports } from '../helpers/async.js';
import { LEAK_BUDGET, needsGc, settleHeap } from '../helpers/heap.js';

/** Mocked setTimeout; `run` drives a promise to completion by ticking the fake timers. */
function fakeTimers(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const flush = async () => {
    for (let i = 0; i < 10; i++) await Promise.resolve();
  };
  return {
    flush,
    async advance(ms: number) {
      t.mock.timers.tick(ms);
      await flush();
    },
  };
}

/** Fails `failures` times with `error(i)`, then returns `value`; records each call's attempt number. */
function flaky<T>(failures: number, value: T, error: (i: number) => unknown = (i) => new Error(`fail ${i}`)) {
  const calls: AbortSignal[] = [];
  const fn = async (signal: AbortSignal) => {
    calls.push(signal);
    if (calls.length <= failures) throw error(calls.length);
    return value;
  };
  return { fn, calls };
}

describe('retry', () => {
  it('retries until success, with the delays of the backoff', async (t) => {
    const time = fakeTimers(t);
    const { fn, calls } = flaky(2, 'ok');
    const events: RetryEvent[] = [];
    const p = retry(fn, {
      attempts: 3,
      backoff: 'exponential',
      delayMs: 100,
      onRetry: (e) => events.push(e),
    });
    await time.flush();
    assert.equal(calls.length, 1);
    await time.advance(99);
    assert.equal(calls.length, 1);
    await time.advance(1);
    assert.equal(calls.length, 2);
    await time.advance(200);
    assert.equal(calls.length, 3);
    assert.equal(await p, 'ok');
    assert.deepEqual(
      events.map((e) => [e.attempt, e.delayMs]),
      [
        [1, 100],
        [2, 200],
      ],
    );
  });

  it('gives up after attempts with the last error, unchanged', async () => {
    const { fn, calls } = flaky(5, 'never');
    await assert.rejects(retry(fn, { attempts: 3, backoff: 0 }), /fail 3/);
    assert.equal(calls.length, 3);
  });

  it('fixed and function backoffs; a backoff function returning garbage rejects with InvalidInputError', async () => {
    const seen: number[] = [];
    const { fn } = flaky(2, 'ok');
    assert.equal(
      await retry(fn, {
        backoff: (attempt) => {
          seen.push(attempt);
          return 0;
        },
      }),
      'ok',
    );
    assert.deepEqual(seen, [1, 2]);
    await assert.rejects(retry(flaky(1, 1).fn, { backoff: () => NaN }), InvalidInputError);
    await assert.rejects(retry(flaky(1, 1).fn, { backoff: 'linear' as never }), InvalidInputError);
    assert.throws(() => retry({ attempts: 0 }), RangeError);
  });

  it('retryIf decides; a throwing retryIf means no and is reported; InvalidInputError is never retried', async () => {
    const notFound = Object.assign(new Error('404'), { status: 404 });
    const { fn, calls } = flaky(3, 'ok', () => notFound);
    await assert.rejects(
      retry(fn, { backoff: 0, retryIf: (e) => (e as { status?: number }).status !== 404 }),
      (e) => e === notFound,
    );
    assert.equal(calls.length, 1);
    const reports = captureReports('sluice:resilience:error');
    const second = flaky(3, 'ok');
    await assert.rejects(
      retry(second.fn, {
        backoff: 0,
        retryIf: () => {
          throw new Error('bad predicate');
        },
      }),
      /fail 1/,
    );
    reports.stop();
    assert.deepEqual(
      reports.reports.map((r) => r.where),
      ['retryIf'],
    );
    const invalid = flaky(3, 'ok', () => new InvalidInputError('no'));
    await assert.rejects(retry(invalid.fn, { backoff: 0 }), InvalidInputError);
    assert.equal(invalid.calls.length, 1);
  });

  it('a throwing onRetry is reported and ignored', async () => {
    const reports = captureReports('sluice:resilience:error');
    const { fn } = flaky(1, 'ok');
    assert.equal(
      await retry(fn, {
        backoff: 0,
        onRetry: () => {
          throw new Error('observer bug');
        },
      }),
      'ok',
    );
    reports.stop();
    assert.equal(reports.reports[0]?.where, 'onRetry');
  });

  it('honours Retry-After: RateLimitedError, CircuitOpenError, a 429 Response; over maxDelayMs it gives up', async (t) => {
    const time = fakeTimers(t);
    const limited = new RateLimitedError('slow down', { retryAfterMs: 3000 });
    const { fn, calls } = flaky(1, 'ok', () => limited);
    const p = retry(fn, { backoff: 10, maxDelayMs: 5000 });
    await time.flush();
    await time.advance(2999);
    assert.equal(calls.length, 1, 'not retried before Retry-After');
    await time.advance(1);
    assert.equal(await p, 'ok');

    const tooLong = flaky(1, 'ok', () => new RateLimitedError('later', { retryAfterMs: 60_000 }));
    await assert.rejects(retry(tooLong.fn, { maxDelayMs: 5000 }), RateLimitedError);
    assert.equal(tooLong.calls.length, 1);

    const response = new Response(null, { status: 429, headers: { 'retry-after': '2' } });
    assert.equal(retryAfterOf(Object.assign(new Error('429'), { response })), 2000);
    assert.equal(retryAfterOf(response), 2000);
    assert.equal(retryAfterOf(new CircuitOpenError('open', { retryAfterMs: 250 })), 250);
    assert.equal(retryAfterOf(new Error('plain')), undefined);
    assert.equal(retryAfterOf('text'), undefined);
  });

  it('aborting during a wait rejects with the reason at once and leaves no timer or listener', async () => {
    const controller = new AbortController();
    const { fn, calls } = flaky(5, 'ok');
    const reason = new Error('caller gone');
    const p = retry(fn, { backoff: 60_000, signal: controller.signal, attempts: 5 });
    await new Promise((r) => setImmediate(r));
    assert.equal(calls.length, 1);
    assert.equal(calls[0], controller.signal, 'attempts receive the caller signal');
    controller.abort(reason);
    await assert.rejects(p, (e) => e === reason);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, 0);
  });

  it('a budget refusal rejects with the last error and counts the denial', async () => {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0.1, windowMs: 10_000 }); // floor: 1 retry
    const first = flaky(1, 'ok');
    assert.equal(await retry(first.fn, { backoff: 0, budget }), 'ok');
    const second = flaky(5, 'ok');
    await assert.rejects(retry(second.fn, { backoff: 0, budget, attempts: 5 }), /fail 1/);
    assert.equal(second.calls.length, 1);
    assert.deepEqual(
      { ...budget.stats, available: undefined },
      { deposits: 1, withdrawals: 1, denied: 1, available: undefined },
    );
  });

  it('starts asynchronously, in the caller async context, also after a wait', async () => {
    const als = new AsyncLocalStorage<string>();
    const stores: (string | undefined)[] = [];
    let started = false;
    const p = als.run('req-1', () =>
      retry(
        async () => {
          started = true;
          stores.push(als.getStore());
          if (stores.length < 2) throw new Error('again');
          return 'ok';
        },
        { backoff: 1 },
      ),
    );
    assert.equal(started, false);
    assert.equal(await p, 'ok');
    assert.deepEqual(stores, ['req-1', 'req-1']);
  });

  it('the policy form is reusable and takes the signal per run', async () => {
    const policy = retry({ attempts: 2, backoff: 0 });
    assert.equal(await policy.run(flaky(1, 'a').fn), 'a');
    await assert.rejects(policy.run(flaky(2, 'b').fn), /fail 2/);
    const reason = new Error('x');
    await assert.rejects(
      policy.run(flaky(0, 'c').fn, { signal: AbortSignal.abort(reason) }),
      (e) => e === reason,
    );
  });

  it('exponential-jitter delays stay within [0, min(maxDelayMs, delayMs·factor^(n−1))] (property)', async (t) => {
    const time = fakeTimers(t);
    const down = new Error('down');
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 5000 }),
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
          minLength: 1,
          maxLength: 4,
        }),
        async (delayMs, maxDelayMs, factor, draws) => {
          const delays: number[] = [];
          let k = 0;
          const p = retry(() => Promise.reject(down), {
            attempts: 5,
            delayMs,
            maxDelayMs,
            factor,
            random: () => draws[k++ % draws.length]!,
            onRetry: (e) => delays.push(e.delayMs),
          }).catch((e: unknown) => e);
          for (let i = 0; i < 5; i++) await time.advance(maxDelayMs + 1);
          assert.equal(await p, down);
          assert.equal(delays.length, 4);
          for (const [i, d] of delays.entries()) {
            const cap = Math.min(maxDelayMs, delayMs * factor ** i);
            assert.ok(d >= 0 && d <= cap, `delay ${d} outside [0, ${cap}] at retry ${i + 1}`);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it(
    '5e4 retry waits (half aborted, half run out on one long-lived signal): heap, timers and listeners back to baseline',
    { skip: needsGc },
    async () => {
      const longLived = new AbortController();
      const down = new Error('down');
      const gone = new Error('gone');
      const failing = () => Promise.reject(down);
      const baseline = await settleHeap();
      for (let round = 0; round < 10; round++) {
        const controllers: AbortController[] = [];
        const calls: Promise<unknown>[] = [];
        for (let i = 0; i < 2_500; i++) {
          const c = new AbortController();
          controllers.push(c);
          calls.push(retry(failing, { backoff: 60_000, signal: c.signal }).catch(() => undefined));
          let tries = 0;
          const second = () => (++tries === 1 ? Promise.reject(down) : Promise.resolve(i));
          calls.push(retry(second, { backoff: 0, signal: longLived.signal }));
        }
        // Every call is in its wait (its first attempt failed) when it is aborted.
        await new Promise((r) => setImmediate(r));
        assert.ok(getEventListeners(longLived.signal, 'abort').length <= 1);
        for (const c of controllers) c.abort(gone);
        await Promise.all(calls);
      }
      assert.equal(getEventListeners(longLived.signal, 'abort').length, 0);
      assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, 0);
      const grown = (await settleHeap()) - baseline;
      assert.ok(grown < LEAK_BUDGET, `heap grew by ${grown} bytes after 5e4 retry waits`);
    },
  );
});
