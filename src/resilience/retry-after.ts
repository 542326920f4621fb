import { CircuitOpenError, RateLimitedError } from '../errors.js';
import { rateLimitedPause } from '../rate/retry-after.js';

/**
 * The built-in `retryAfter` of {@link retry}: how long an error asks its caller to wait before
 * trying again, in ms, or `undefined` when it does not say.
 *
 * - a `RateLimitedError` or `CircuitOpenError`: its `retryAfterMs`;
 * - a fetch `Response` (or look-alike) thrown as is, or carried as the error's `response`
 *   property (as HTTP clients' errors do): `Retry-After`, then the IETF `RateLimit` headers of a
 *   429 or 503, read by `rateLimitedPause` from `sluice/rate`;
 * - anything else: `undefined`.
 *
 * @example
 * ```ts
 * import { retryAfterOf } from 'sluice/resilience';
 * const res = new Response(null, { status: 429, headers: { 'retry-after': '2' } });
 * retryAfterOf(Object.assign(new Error('429'), { response: res })); // 2000
 * ```
 */
export function retryAfterOf(error: unknown): number | undefined {
  if (error instanceof RateLimitedError || error instanceof CircuitOpenError) return error.retryAfterMs;
  if (typeof error !== 'object' || error === null) return undefined;
  try {
    return rateLimitedPause(error) ?? rateLimitedPause((error as { response?: unknown }).response);
  } catch {
    // A getter that throws (a hostile or half-built error object) says nothing.
    return undefined;
  }
}
