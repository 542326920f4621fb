import * as v from '../internal/validate.js';

/**
 * How a {@link RatePolicy} decides:
 * - `'gcra'` — generic cell rate algorithm: one number of state per key (the theoretical
 *   arrival time), exact, spaces requests `window / limit` apart once the burst is spent.
 * - `'token-bucket'` — a bucket of `burst + 1` tokens refilled at `limit` per `window`; the same
 *   decisions as GCRA with two numbers of state, for those who think in tokens.
 * - `'sliding-window'` — counts per segment (`window / segments`); never more than `limit` in any
 *   window of length `window`, at the price of up to one segment of extra wait.
 * - `'fixed-window'` — one counter per aligned window; cheapest, allows up to `2 × limit`
 *   across a window boundary.
 */
export type RateAlgorithm = 'gcra' | 'token-bucket' | 'sliding-window' | 'fixed-window';

const ALGORITHMS: readonly RateAlgorithm[] = ['gcra', 'token-bucket', 'sliding-window', 'fixed-window'];

/** A policy written out: `{ limit: 120, window: '1m' }`. */
export interface RatePolicyOptions {
  /** Requests (cost units) allowed per `window`: a positive integer. */
  readonly limit: number;
  /** The window in ms, or a duration string (`'1s'`, `'1m'`, `'1h'`). */
  readonly window: number | string;
  /**
   * GCRA and token bucket only: how many requests beyond the first may arrive together after
   * an idle period. `0` spaces every request `window / limit` apart. In any window of length
   * `window` a key gets at most `limit + burst`.
   * @default limit - 1 (a fresh key may spend its whole `limit` at once)
   */
  readonly burst?: number | undefined;
  /** @default 'gcra' */
  readonly algorithm?: RateAlgorithm | undefined;
  /**
   * Sliding window only: how many segments the window is cut into (1–1000). More segments
   * waste less quota and keep more counters per key.
   * @default 10
   */
  readonly segments?: number | undefined;
}

/** A policy as a string `'<limit>/<window>'` — `'5/1m'`, `'120/60s'`, `'10/s'` — or written out. */
export type RatePolicySpec = string | RatePolicyOptions;

/** A validated policy, as every decision reports it. Immutable. */
export interface RatePolicy {
  /** The limiter's or tier's name: the id in the `RateLimit-Policy` header. */
  readonly name: string;
  /** Requests (cost units) per window. */
  readonly limit: number;
  /** The window in ms. */
  readonly windowMs: number;
  /** Requests beyond the first that may arrive together (GCRA, bucket); 0 for windows. */
  readonly burst: number;
  /** How the policy decides. */
  readonly algorithm: RateAlgorithm;
  /** Segments of a sliding window; 1 for the other algorithms. */
  readonly segments: number;
  /** Time between two requests at the sustained rate, in µs (`ceil(window / limit)`). */
  readonly intervalUs: number;
  /** The window in µs. */
  readonly windowUs: number;
  /** Sliding window: the segment length in µs (`ceil(window / segments)`). */
  readonly segmentUs: number;
  /** The largest `cost` one request may have: `burst + 1` (GCRA, bucket) or `limit`. */
  readonly capacity: number;
}

const SHORT = /^\s*(\d+)\s*\/\s*(\d*(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/;
const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_WINDOW_MS = 366 * 86_400_000;

function parseShort(name: string, spec: string): RatePolicyOptions {
  const match = SHORT.exec(spec);
  if (match === null) {
    throw new TypeError(v.expectation(name, "a policy like '5/1m', '120/60s' or '10/s'", spec));
  }
  const count = match[2] === '' ? 1 : Number(match[2]);
  return { limit: Number(match[1]), window: count * (UNIT[match[3] ?? 'ms'] ?? 1) };
}

/**
 * Validates a policy and derives its integer constants. Throws `TypeError` / `RangeError` with
 * the DESIGN message shape; `label` names the option in messages.
 */
export function parsePolicy(spec: unknown, policyName: string, label = 'policy'): RatePolicy {
  let options: RatePolicyOptions;
  if (typeof spec === 'string') options = parseShort(label, spec);
  else if (typeof spec === 'object' && spec !== null) options = spec as RatePolicyOptions;
  else throw new TypeError(v.expectation(label, "a policy string like '5/1m' or { limit, window }", spec));

  const algorithm =
    options.algorithm === undefined ? 'gcra' : v.oneOf(`${label}.algorithm`, options.algorithm, ALGORITHMS);
  const limit = v.positiveInteger(`${label}.limit`, options.limit);
  const windowMs = v.positiveDuration(`${label}.window`, options.window);
  if (windowMs > MAX_WINDOW_MS) {
    throw new RangeError(v.expectation(`${label}.window`, 'at most 366 days', options.window));
  }
  const windowUs = Math.ceil(windowMs * 1000);
  if (limit > windowUs) {
    throw new RangeError(
      v.expectation(`${label}.limit`, `at most one per µs of the window (${windowUs})`, limit),
    );
  }
  const bucket = algorithm === 'gcra' || algorithm === 'token-bucket';
  let burst = limit - 1;
  if (options.burst !== undefined) {
    if (!bucket) {
      throw new TypeError(
        v.expectation(
          `${label}.burst`,
          `undefined: burst applies to 'gcra' and 'token-bucket', not '${algorithm}'`,
          options.burst,
        ),
      );
    }
    burst = v.nonNegativeInteger(`${label}.burst`, options.burst);
    if (burst > 1e9) throw new RangeError(v.expectation(`${label}.burst`, 'at most 1e9', burst));
  }
  let segments = 10;
  if (options.segments !== undefined) {
    if (algorithm !== 'sliding-window') {
      throw new TypeError(
        v.expectation(
          `${label}.segments`,
          `undefined: segments apply to 'sliding-window', not '${algorithm}'`,
          options.segments,
        ),
      );
    }
    segments = v.positiveInteger(`${label}.segments`, options.segments);
    if (segments > 1000) throw new RangeError(v.expectation(`${label}.segments`, 'at most 1000', segments));
  }
  if (!bucket) burst = 0;
  if (algorithm !== 'sliding-window') segments = 1;
  const intervalUs = Math.ceil(windowUs / limit);
  // Every time a decision computes stays an exact integer: (burst + 1) intervals under 2^50 µs.
  if ((burst + 1) * intervalUs > 2 ** 50) {
    throw new RangeError(
      v.expectation(
        `${label}.burst`,
        `at most ${Math.floor(2 ** 50 / intervalUs) - 1} with this limit and window (35 years of burst)`,
        burst,
      ),
    );
  }
  return Object.freeze({
    name: policyName,
    limit,
    windowMs,
    burst,
    algorithm,
    segments,
    intervalUs,
    windowUs,
    segmentUs: Math.ceil(windowUs / segments),
    capacity: bucket ? burst + 1 : limit,
  });
}
