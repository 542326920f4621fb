import * as v from '../internal/validate.js';
import { NEVER_ABORTED, refusal, type Policy, type PolicyRunOptions, type Work } from './policy.js';

/**
 * Policies composed by {@link pipe}, outermost first; itself a {@link Policy}.
 *
 * @example
 * ```ts
 * import { CircuitBreaker, pipe, retry, timeout } from 'sluice/resilience';
 * const payments = pipe(retry({ attempts: 3 }), new CircuitBreaker(), timeout(500)); // a Pipeline
 * const quote = await payments.run((signal) => api.quote(item, { signal }));
 * ```
 */
export class Pipeline implements Policy {
  readonly #list: readonly Policy[];

  /** @param policies outermost first. */
  constructor(policies: readonly Policy[]) {
    for (const [i, p] of policies.entries()) {
      if (typeof p !== 'object' || p === null || typeof (p as Partial<Policy>).run !== 'function') {
        throw new TypeError(v.expectation(`policies[${i}]`, 'a Policy (an object with a run method)', p));
      }
    }
    this.#list = Object.freeze([...policies]);
  }

  /** The composed policies, outermost first (a frozen copy of those given). */
  get policies(): readonly Policy[] {
    return this.#list;
  }

  /**
   * Runs `fn` through every policy, the first outermost: the first policy's `run` receives a
   * function that runs the second, and so on; each hands the next the signal it gives its work.
   */
  run<T>(fn: Work<T>, options?: PolicyRunOptions): Promise<T> {
    const refused = refusal(fn, options);
    if (refused !== undefined) return Promise.reject(refused);
    // The outermost policy may be user code: a sync throw or a non-promise still gives a promise.
    try {
      return Promise.resolve(this.#step(0, fn, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #step<T>(i: number, fn: Work<T>, options: PolicyRunOptions | undefined): Promise<T> {
    const policy = this.#list[i];
    if (policy === undefined) return Promise.resolve().then(() => fn(options?.signal ?? NEVER_ABORTED));
    if (i === this.#list.length - 1) return policy.run(fn, options);
    return policy.run((signal) => this.#step(i + 1, fn, { signal }), options);
  }
}

/**
 * Composes policies into one, **outermost first**: `pipe(a, b, c).run(fn)` is
 * `a.run((s) => b.run((s2) => c.run(fn, { signal: s2 }), { signal: s }))`. The order is the
 * semantics:
 *
 * - `pipe(timeout(2000), retry(...))`: 2 s for the whole sequence, retries included;
 *   `pipe(retry(...), timeout(500))`: 500 ms per attempt, and a timed-out attempt is retried.
 * - `pipe(retry(...), breaker)`: each attempt asks the breaker, so an open breaker stops the
 *   retries (its `retryAfterMs` is honoured like `Retry-After`); `pipe(breaker, retry(...))`
 *   counts the whole sequence as one call.
 * - `pipe(..., bulkhead(limiter), timeout(...))`: the timeout runs inside the slot, so queueing
 *   time is not charged to the attempt.
 *
 * A typical stack: `pipe(retry({ attempts: 3, budget }), breaker, hedger, timeout(500))`.
 *
 * @example
 * ```ts
 * import { CircuitBreaker, pipe, retry, RetryBudget, timeout } from 'sluice/resilience';
 * const policy = pipe(retry({ attempts: 3, budget: new RetryBudget() }), new CircuitBreaker(), timeout(500));
 * const res = await policy.run((signal) => fetch(url, { signal }), { signal: req.signal });
 * ```
 */
export function pipe(...policies: Policy[]): Pipeline {
  return new Pipeline(policies);
}
