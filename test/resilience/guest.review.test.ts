import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitBreaker, hedge, retry } from '../../src/resilience/index.js';
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
});
