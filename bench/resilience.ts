/**
 * `resilience` benches: the overhead a policy adds to a call that succeeds at once — the path
 * every healthy request takes. Each group runs 100k calls of the same trivial async task, 100 at
 * a time (`Promise.all` over batches), and checks that the task ran 100k times.
 *
 * - `resilience/timeout-100k`: `withTimeout(task, 1000)` (an AbortController for the task and a
 *   timer per call, both cleaned up) vs cockatiel's `timeout(1000, Aggressive)` (the same work:
 *   a signal and a timer per call) and opossum with its `timeout` (a p-timeout-style timer per
 *   call, no signal to cancel the work).
 * - `resilience/retry-100k`: success on the first try: `retry(task, { attempts: 3 })` (one-shot,
 *   options validated per call, as p-retry does), and a prebuilt `retry({ attempts: 3 })` policy;
 *   vs `p-retry` (`retries: 2`) and cockatiel's `retry(handleAll, { maxAttempts: 2 })`.
 * - `resilience/breaker-100k`: a closed breaker: `CircuitBreaker.run` vs opossum's `fire()` (its
 *   defaults, which arm a 10 s timeout per call, and with `timeout: false`) and cockatiel's
 *   `circuitBreaker(handleAll, { breaker: SamplingBreaker })`.
 */
import {
  circuitBreaker as cockatielBreaker,
  ExponentialBackoff,
  handleAll,
  retry as cockatielRetry,
  SamplingBreaker,
  timeout as cockatielTimeout,
  TimeoutStrategy,
} from 'cockatiel';
import OpossumBreaker from 'opossum';
import pRetry from 'p-retry';
import { CircuitBreaker, retry, withTimeout } from '../src/resilience/index.js';
import type { Case, Group } from './harness.js';

const CALLS = 100_000;
const BATCH = 100;

let ran = 0;
async function task(): Promise<number> {
  return ++ran;
}

function check(impl: string): void {
  if (ran !== CALLS) throw new Error(`${impl}: expected ${CALLS} runs, got ${ran}`);
}

/** A case that calls `call()` CALLS times, BATCH at a time. */
function batched(impl: string, build: () => () => Promise<unknown>): Case {
  let call!: () => Promise<unknown>;
  return {
    impl,
    setup: () => {
      ran = 0;
      call = build();
    },
    run: async () => {
      const batch = new Array<Promise<unknown>>(BATCH);
      for (let done = 0; done < CALLS; done += BATCH) {
        for (let i = 0; i < BATCH; i++) batch[i] = call();
        await Promise.all(batch);
      }
      check(impl);
    },
  };
}

const timeoutGroup: Group = {
  bench: 'resilience/timeout-100k',
  ops: CALLS,
  cases: [
    batched('sluice', () => () => withTimeout(task, 1000)),
    batched('cockatiel', () => {
      const policy = cockatielTimeout(1000, TimeoutStrategy.Aggressive);
      return () => policy.execute(task);
    }),
    batched('opossum (timeout)', () => {
      const breaker = new OpossumBreaker(task, { timeout: 1000, errorThresholdPercentage: 100 });
      return () => breaker.fire();
    }),
  ],
};

const retryGroup: Group = {
  bench: 'resilience/retry-100k',
  ops: CALLS,
  cases: [
    batched('sluice', () => () => retry(task, { attempts: 3 })),
    batched('sluice (policy)', () => {
      const policy = retry({ attempts: 3 });
      return () => policy.run(task);
    }),
    batched('p-retry', () => () => pRetry(task, { retries: 2 })),
    batched('cockatiel', () => {
      const policy = cockatielRetry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() });
      return () => policy.execute(task);
    }),
  ],
};

const breakerGroup: Group = {
  bench: 'resilience/breaker-100k',
  ops: CALLS,
  cases: [
    batched('sluice', () => {
      const breaker = new CircuitBreaker({ failureRate: 0.5, minimumRequests: 20, windowMs: 10_000 });
      return () => breaker.run(task);
    }),
    batched('opossum (defaults)', () => {
      const breaker = new OpossumBreaker(task);
      return () => breaker.fire();
    }),
    batched('opossum (timeout: false)', () => {
      const breaker = new OpossumBreaker(task, { timeout: false });
      return () => breaker.fire();
    }),
    batched('cockatiel', () => {
      const policy = cockatielBreaker(handleAll, {
        halfOpenAfter: 5_000,
        breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000 }),
      });
      return () => policy.execute(task);
    }),
  ],
};

export default [timeoutGroup, retryGroup, breakerGroup];
