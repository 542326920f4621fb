import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CircuitBreaker,
  hedge,
  Hedger,
  pipe,
  retry,
  RetryBudget,
  type Policy,
} from '../../src/resilience/index.js';
import { captureReports } from '../helpers/async.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('resilience guest callbacks (review)', () => {
  it('an async onRetry that rejects is reported, not an unhandled rejection', async () => {
    const { reports, stop } = captureReports('sluice:resilience:error');
    try {
      const failure = new Error('onRetry rejected');
      await assert.rejects(
        retry(
          () => {
            throw new Error('attempt');
          },
          {
            attempts: 2,
            backoff: 0,
            // eslint-disable-next-line @typescript-eslint/no-misused-promises -- what plain TS and JS callers can pass
            onRetry: async () => {
              await Promise.resolve();
              throw failure;
            },
          },
        ),
        /attempt/,
      );
      await tick();
      assert.deepEqual(
        reports.map((r) => [r.error, r.where]),
        [[failure, 'onRetry']],
      );
    } finally {
      stop();
    }
  });

  it('an async onStateChange that rejects is reported and counted, not an unhandled rejection', async () => {
    const { reports, stop } = captureReports('sluice:resilience:error');
    try {
      const failure = new Error('onStateChange rejected');
      const breaker = new CircuitBreaker({
        minimumRequests: 1,
        // eslint-disable-next-line @typescript-eslint/no-misused-promises -- what plain TS and JS callers can pass
        onStateChange: async () => {
          await Promise.resolve();
          throw failure;
        },
      });
      await assert.rejects(
        breaker.run(() => Promise.reject(new Error('down'))),
        /down/,
      );
      assert.equal(breaker.state, 'open');
      await tick();
      assert.deepEqual(
        reports.map((r) => [r.error, r.where]),
        [[failure, 'onStateChange']],
      );
      assert.equal(breaker.stats.callbackErrors, 1);
    } finally {
      stop();
    }
  });

  it('a hedged fn that aborts the caller synchronously leaves no hedge timer behind', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const controller = new AbortController();
    const stop = new Error('stop');
    await assert.rejects(
      hedge(
        () => {
          controller.abort(stop);
          return new Promise<never>(() => {});
        },
        { delayMs: 5_000, signal: controller.signal },
      ),
      (error) => error === stop,
    );
    assert.equal(timers(), before, "a ref'd timer would keep the process alive for the whole delay");
  });

  describe('an injected clock that throws or reads NaN', () => {
    /** A clock that reads `t` and throws (or returns NaN) while `broken` is set. */
    function brokenClock(mode: 'throw' | 'nan') {
      const clock = {
        t: 0,
        broken: false,
        now(): number {
          if (!clock.broken) return clock.t;
          if (mode === 'nan') return NaN;
          throw new Error('clock');
        },
      };
      return clock;
    }

    it('Hedger: the call still settles (no unhandled rejection, no hang)', async () => {
      const { reports, stop } = captureReports('sluice:resilience:error');
      try {
        const clock = brokenClock('throw');
        clock.broken = true;
        const hedger = new Hedger({ delayMs: 'p95', clock });
        assert.equal(await hedger.run(() => 'value'), 'value');
        assert.ok(reports.some((r) => r.where.includes('clock')));
      } finally {
        stop();
      }
    });

    it('CircuitBreaker: run never throws; the outcome reaches the caller', async () => {
      const clock = brokenClock('throw');
      clock.broken = true;
      const breaker = new CircuitBreaker({ clock });
      let result: Promise<string> | undefined;
      assert.doesNotThrow(() => {
        result = breaker.run(() => 'value');
      });
      assert.equal(await result, 'value');
      await assert.rejects(
        breaker.run(() => Promise.reject(new Error('down'))),
        /down/,
      );
      assert.equal(breaker.stats.calls, 2);
    });

    it('CircuitBreaker: a NaN reading does not freeze its sliding window', async () => {
      const clock = brokenClock('nan');
      const breaker = new CircuitBreaker({ clock, windowMs: 1000 });
      clock.broken = true;
      await breaker.run(() => 'ok');
      clock.broken = false;
      for (let i = 0; i < 3; i++) await breaker.run(() => 'ok');
      assert.equal(breaker.stats.windowCalls, 4);
      clock.t = 100_000;
      assert.equal(breaker.stats.windowCalls, 0, 'the window slides with the clock');
    });

    it('RetryBudget: a success is not turned into a rejection by the clock', async () => {
      const clock = brokenClock('throw');
      const budget = new RetryBudget({ clock });
      clock.broken = true;
      assert.equal(await retry(() => 'value', { budget }), 'value');
      assert.equal(budget.stats.deposits, 1);
      let attempts = 0;
      await assert.rejects(
        retry(
          () => {
            attempts++;
            throw new Error('fail');
          },
          { budget, attempts: 2, backoff: 0 },
        ),
        /fail/,
      );
      assert.equal(attempts, 2, 'the budget still grants retries');
    });
  });

  it('pipe: an outermost custom policy that throws or returns a plain value still gives a promise', async () => {
    const thrower = {
      run: () => {
        throw new Error('custom run threw');
      },
    } as unknown as Policy;
    let result: Promise<unknown> | undefined;
    assert.doesNotThrow(() => {
      result = pipe(thrower).run(() => 'x');
    });
    await assert.rejects(result as Promise<unknown>, /custom run threw/);
    const plain = {
      run: (fn: (signal: AbortSignal) => unknown) => fn(new AbortController().signal),
    } as Policy;
    const out = pipe(plain, retry({ attempts: 1 })).run(() => 'value');
    assert.ok(out instanceof Promise);
    assert.equal(await out, 'value');
  });
});
