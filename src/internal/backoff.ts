import * as v from './validate.js';

/** The backoff part of a retry policy (BatchWriter, WorkQueue): exponential, optionally jittered. */
export interface BackoffOptions {
  /**
   * Total tries, the first included (`1` = no retry).
   * @default 3
   */
  readonly attempts?: number | undefined;
  /**
   * Delay before the first retry, in ms; each later retry multiplies it by `factor`.
   * @default 100
   */
  readonly delayMs?: number | undefined;
  /**
   * Upper bound of one delay, in ms.
   * @default 10_000
   */
  readonly maxDelayMs?: number | undefined;
  /**
   * Growth of the delay per retry.
   * @default 2
   */
  readonly factor?: number | undefined;
  /**
   * `'full'`: each delay is uniform in `[0, delay]` (spreads the retries of many callers);
   * `'none'`: exactly `delay`.
   * @default 'full'
   */
  readonly jitter?: 'full' | 'none' | undefined;
  /**
   * Source of the full jitter, uniform in `[0, 1)`; inject a seeded one for reproducible delays.
   * A throwing source counts as 0.5 (and is reported by the owner).
   * @default Math.random
   */
  readonly random?: (() => number) | undefined;
}

/** `value`, or `fallback` when it is `undefined` (an option given as `null` is a mistake). */
export function orDefault<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value;
}

/**
 * A validated retry policy: `retry` given as an object, `false` or `undefined` (no retries).
 * Option names in messages are `retry.<name>`.
 */
export class Backoff {
  /** Total tries per item, the first included. */
  readonly attempts: number;
  readonly #delayMs: number;
  readonly #maxDelayMs: number;
  readonly #factor: number;
  readonly #jitter: boolean;
  readonly #random: () => number;

  constructor(retry: unknown) {
    const given: unknown = orDefault<unknown>(retry, false);
    if (given !== false && (typeof given !== 'object' || given === null)) {
      throw new TypeError(v.expectation('retry', 'an object, false or undefined', given));
    }
    const r = (given === false ? {} : given) as BackoffOptions & { retryIf?: unknown };
    this.attempts = given === false ? 1 : v.positiveInteger('retry.attempts', orDefault(r.attempts, 3), true);
    this.#delayMs = v.nonNegativeNumber('retry.delayMs', orDefault(r.delayMs, 100));
    this.#maxDelayMs = v.nonNegativeNumber('retry.maxDelayMs', orDefault(r.maxDelayMs, 10_000));
    this.#factor = v.positiveNumber('retry.factor', orDefault(r.factor, 2));
    this.#jitter = v.oneOf('retry.jitter', orDefault<unknown>(r.jitter, 'full'), ['full', 'none']) === 'full';
    v.optionalFunction('retry.random', r.random);
    this.#random = r.random ?? Math.random;
    v.optionalFunction('retry.retryIf', r.retryIf);
  }

  /**
   * The delay before retry number `attempt` (1 after the first failure). `onRandomError` is
   * told when the jitter source throws; the delay is then taken at 0.5.
   */
  delay(attempt: number, onRandomError: (thrown: unknown) => void): number {
    const grown = this.#delayMs * this.#factor ** (attempt - 1);
    // 0 × Infinity is NaN (a zero base, a huge factor): a delay that never fires would hang close().
    const delay = grown === grown ? Math.min(this.#maxDelayMs, grown) : 0;
    if (!this.#jitter) return delay;
    let u: number;
    try {
      u = this.#random();
    } catch (thrown) {
      onRandomError(thrown);
      u = 0.5;
    }
    // A source outside [0, 1) must not turn into a negative or unbounded delay.
    return (u >= 0 && u < 1 ? u : 0.5) * delay;
  }
}
