import { Limiter } from '../limit/limiter.js';
import * as v from '../internal/validate.js';
import { NEVER_ABORTED, refusal, type Policy, type PolicyRunOptions, type Work } from './policy.js';

/**
 * A {@link Limiter} as a {@link Policy}: at most `concurrency` calls run at once, the rest wait
 * in its bounded queue (`QueueFullError` beyond `maxQueue`). The bulkhead *is* the limiter —
 * its queue, stats, `close()` and cancellation (an aborted wait leaves the queue in O(1)).
 * Build one with {@link bulkhead}.
 *
 * @example
 * ```ts
 * import { Limiter } from 'sluice/limit';
 * import { bulkhead } from 'sluice/resilience';
 * const db = bulkhead(new Limiter({ concurrency: 16, maxQueue: 1000 })); // a Bulkhead
 * const rows = await db.run((signal) => pool.query(sql, { signal }));
 * ```
 */
export class Bulkhead implements Policy {
  /** The limiter every call goes through. */
  readonly limiter: Limiter;

  /** @param limiter the Limiter to adapt. */
  constructor(limiter: Limiter) {
    if (!(limiter instanceof Limiter)) throw new TypeError(v.expectation('limiter', 'a Limiter', limiter));
    this.limiter = limiter;
  }

  /**
   * Runs `fn` when the limiter has a slot; `fn` receives the caller's signal (or one that never
   * aborts). Rejects like `Limiter.run`: `QueueFullError`, `ClosedError`, `signal.reason`.
   */
  run<T>(fn: Work<T>, options?: PolicyRunOptions): Promise<T> {
    const refused = refusal(fn, options);
    if (refused !== undefined) return Promise.reject(refused);
    const signal = options?.signal;
    if (signal === undefined) return this.limiter.run(() => fn(NEVER_ABORTED));
    return this.limiter.run(() => fn(signal), { signal });
  }
}

/**
 * Adapts an existing {@link Limiter} into a bulkhead {@link Policy} for {@link pipe}: the
 * dependency gets at most `concurrency` calls at once from this process, however many retries
 * and hedges the policies outside it start.
 *
 * @example
 * ```ts
 * import { Limiter } from 'sluice/limit';
 * import { bulkhead, pipe, retry, timeout } from 'sluice/resilience';
 * const policy = pipe(retry({ attempts: 3 }), bulkhead(new Limiter({ concurrency: 8 })), timeout(500));
 * ```
 */
export function bulkhead(limiter: Limiter): Bulkhead {
  return new Bulkhead(limiter);
}
