import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitOpenError, QueueFullError, TimeoutError } from '../../src/errors.js';
import { Limiter } from '../../src/limit/index.js';
import {
  bulkhead,
  CircuitBreaker,
  pipe,
  retry,
  RetryBudget,
  timeout,
  type Policy,
} from '../../src/resilience/index.js';

describe('pipe', () => {
  it('runs outermost first; each policy hands the next its signal', async () => {
    const order: string[] = [];
    const tag = (name: string): Policy => ({
      run: (fn, options) => {
        order.push(`${name}:${options?.signal === undefined ? 'none' : 'signal'}`);
        return Promise.resolve(fn(options?.signal ?? new AbortController().signal));
      },
    });
    assert.equal(await pipe(tag('a'), tag('b'), tag('c')).run(() => 'done'), 'done');
    assert.deepEqual(order, ['a:none', 'b:signal', 'c:signal']);
    assert.equal(await pipe().run(() => 'bare'), 'bare');
    assert.throws(() => pipe({} as Policy), TypeError);
  });

  it('timeout inside retry bounds each attempt and the timeout is retried; outside it bounds the whole', async () => {
    let attempts = 0;
    const slowOnce = (signal: AbortSignal) =>
      ++attempts === 1
        ? new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)))
        : Promise.resolve('second try');
    assert.equal(await pipe(retry({ attempts: 2, backoff: 0 }), timeout(20)).run(slowOnce), 'second try');
    attempts = 0;
    await assert.rejects(pipe(timeout(20), retry({ attempts: 2, backoff: 0 })).run(slowOnce), TimeoutError);
  });

  it('an open breaker inside retry stops the retries; the budget is shared', async () => {
    const breaker = new CircuitBreaker({ minimumRequests: 2, halfOpenAfterMs: 60_000 });
    const budget = new RetryBudget();
    let calls = 0;
    const down = async () => {
      calls++;
      throw new Error('down');
    };
    await assert.rejects(
      pipe(retry({ attempts: 5, backoff: 0, budget }), breaker).run(down),
      CircuitOpenError,
    );
    assert.equal(
      calls,
      2,
      'two failures opened it; the retry then met CircuitOpenError (retryAfter > maxDelayMs)',
    );
    assert.equal(breaker.stats.rejected, 1);
  });

  it('bulkhead is the Limiter: bounded concurrency and queue, cancellation through it', async () => {
    const limiter = new Limiter({ concurrency: 1, maxQueue: 1 });
    const policy = pipe(bulkhead(limiter), timeout(1000));
    let release!: () => void;
    const first = policy.run(() => new Promise<void>((r) => (release = r)));
    const controller = new AbortController();
    const second = policy.run(() => 'second', { signal: controller.signal });
    await assert.rejects(
      policy.run(() => 'third'),
      QueueFullError,
    );
    controller.abort(new Error('never mind'));
    await assert.rejects(second, /never mind/);
    await new Promise((r) => setImmediate(r));
    release();
    await first;
    assert.equal(limiter.stats.aborted, 1);
    assert.throws(() => bulkhead({} as Limiter), TypeError);
  });
});
