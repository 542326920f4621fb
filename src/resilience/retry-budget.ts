import { monotonicClock, readClock, type Clock } from '../internal/clock.js';
import * as v from '../internal/validate.js';
import { channel } from './channels.js';
import { SlidingCounts } from './sliding-counts.js';

/** Options of {@link RetryBudget}. */
export interface RetryBudgetOptions {
  /**
   * Retries allowed per successful call in the window: `0.2` lets retries add at most 20% to
   * the load a healthy dependency sees. A number ≥ 0.
   * @default 0.2
   */
  readonly ratio?: number | undefined;
  /**
   * Retries allowed per second whatever the successes, so a caller with little traffic can still
   * retry: the window allows `minPerSecond × windowMs / 1000` on top of the ratio. A number ≥ 0.
   * @default 10
   */
  readonly minPerSecond?: number | undefined;
  /**
   * Length of the sliding window successes and retries are counted over, in ms (or `'10s'`).
   * @default 10_000
   */
  readonly windowMs?: number | string | undefined;
  /**
   * Time buckets the window is counted in: more buckets slide more smoothly and cost a few bytes
   * each. An integer from 1 to 1000.
   * @default 10
   */
  readonly buckets?: number | undefined;
  /**
   * Time source, in ms. A throw (reported on `sluice:resilience:error`)
   * or a reading that is not a finite number counts as the previous reading.
   * @default monotonic `performance.now()`
   */
  readonly clock?: Clock | undefined;
}

/** Counters of a {@link RetryBudget}; reading them is free. */
export interface RetryBudgetStats {
  /** Successful calls deposited, ever. */
  readonly deposits: number;
  /** Retries the budget granted, ever. */
  readonly withdrawals: number;
  /** Retries the budget refused, ever: each one is a retry storm request that did not happen. */
  readonly denied: number;
  /** Retries the budget would grant right now. */
  readonly available: number;
}

const SUCCESS = 0;
const RETRY = 1;

/**
 * A retry budget shared by many callers of one dependency (tower's `TpsBudget`, Finagle's
 * `RetryBudget`): retries are limited to a fraction of recent successful calls plus a small
 * floor per second, so when the dependency starts failing, its callers' retries shrink with its
 * successes instead of multiplying its load (a retry storm).
 *
 * **Guarantee**: whenever it grants a retry at time `t`, the retries it granted in
 * `(t − windowMs, t]`, that one included, are at most
 * `minPerSecond × windowMs / 1000 + ratio × (successes deposited in (t − windowMs, t])`.
 * It counts retries over a little more than the window and successes over a little less
 * (`buckets` time buckets), so bucket edges can only make it stricter.
 *
 * O(1) per call, bounded memory (`buckets + 1` buckets), no timer: the window moves when the
 * budget is next used. Pass it to {@link retry} as `budget`; `retry` deposits every success and
 * withdraws before every retry, and when the budget refuses, rejects with the last error.
 *
 * @example
 * ```ts
 * import { retry, RetryBudget } from 'sluice/resilience';
 * const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 5 }); // one per dependency
 * await retry((signal) => fetch(url, { signal }), { attempts: 3, budget });
 * ```
 */
export class RetryBudget {
  readonly #ratio: number;
  readonly #reserve: number;
  readonly #clock: Clock;
  readonly #counts: SlidingCounts;
  #deposits = 0;
  #withdrawals = 0;
  #denied = 0;
  /** The last good clock reading (see `#now`). */
  #lastNow = 0;

  constructor(options: RetryBudgetOptions = {}) {
    v.options('options', options);
    const o = options ?? {};
    this.#ratio = v.nonNegativeNumber('ratio', o.ratio ?? 0.2);
    const minPerSecond = v.nonNegativeNumber('minPerSecond', o.minPerSecond ?? 10);
    const windowMs = v.positiveDuration('windowMs', o.windowMs ?? 10_000);
    if (windowMs === Infinity) throw new RangeError(v.expectation('windowMs', 'a finite duration', windowMs));
    const buckets = v.positiveInteger('buckets', o.buckets ?? 10);
    if (buckets > 1000) throw new RangeError(v.expectation('buckets', 'an integer from 1 to 1000', buckets));
    this.#clock = o.clock === undefined ? monotonicClock : v.clock('clock', o.clock);
    this.#reserve = (minPerSecond * windowMs) / 1000;
    this.#counts = new SlidingCounts(windowMs, buckets, 2);
  }

  /** Records one successful call: it earns `ratio` of a retry for the next `windowMs`. */
  deposit(): void {
    this.#deposits++;
    this.#counts.advance(this.#now());
    this.#counts.add(SUCCESS);
  }

  /**
   * Asks for one retry: `true` (and counts it) when the budget allows it, `false` (counted in
   * `denied`) when it does not.
   */
  tryWithdraw(): boolean {
    const counts = this.#counts;
    counts.advance(this.#now());
    if (counts.sumWithOlder(RETRY) + 1 > this.#allowance()) {
      this.#denied++;
      return false;
    }
    counts.add(RETRY);
    this.#withdrawals++;
    return true;
  }

  /** A snapshot of the counters; cheap, synchronous. */
  get stats(): RetryBudgetStats {
    const counts = this.#counts;
    counts.advance(this.#now());
    return {
      deposits: this.#deposits,
      withdrawals: this.#withdrawals,
      denied: this.#denied,
      available: Math.max(0, Math.floor(this.#allowance() - counts.sumWithOlder(RETRY))),
    };
  }

  /** A clock reading; a throwing or non-finite clock gives the previous one (and is reported). */
  #now(): number {
    return (this.#lastNow = readClock(this.#clock, this.#lastNow, channel.error, this, 'clock.now'));
  }

  #allowance(): number {
    return this.#reserve + this.#ratio * this.#counts.sum(SUCCESS);
  }
}
