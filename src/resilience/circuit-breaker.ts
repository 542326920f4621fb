import { CircuitOpenError } from '../errors.js';
import { monotonicClock, readClock, type Clock } from '../internal/clock.js';
import { reportError, watchResult } from '../internal/report.js';
import * as v from '../internal/validate.js';
import { channel } from './channels.js';
import {
  invoke,
  NEVER_ABORTED,
  OPEN,
  refusal,
  type Policy,
  type PolicyRunOptions,
  type Work,
} from './policy.js';
import { SlidingCounts } from './sliding-counts.js';

/** The three states of a {@link CircuitBreaker}. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** What `onStateChange` and the `sluice:resilience:breaker-state` channel are told. */
export interface CircuitStateChange {
  /** The breaker's `name`. */
  readonly name: string;
  /** The state left. */
  readonly from: CircuitState;
  /** The state entered. */
  readonly to: CircuitState;
  /** The failure rate that decided it (of the window when opening, of the trials otherwise). */
  readonly failureRate: number;
}

/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /**
   * Failure rate (0 < rate ≤ 1) at or above which the breaker opens, over the calls of the last
   * `windowMs` — once there were at least `minimumRequests` of them.
   * @default 0.5
   */
  readonly failureRate?: number | undefined;
  /**
   * Calls the window must hold before its failure rate can open the breaker (one failure out of
   * one call is no evidence). A positive integer.
   * @default 10
   */
  readonly minimumRequests?: number | undefined;
  /**
   * Length of the sliding window outcomes are counted over, in ms (or `'10s'`).
   * @default 10_000
   */
  readonly windowMs?: number | string | undefined;
  /**
   * Time buckets the window is counted in (bounded memory, O(1) per call). An integer from 1 to
   * 1000.
   * @default 10
   */
  readonly buckets?: number | undefined;
  /**
   * How long the breaker stays open before letting trial calls through, in ms (or `'5s'`).
   * Decided on the next call by the clock: the breaker arms no timer.
   * @default 5_000
   */
  readonly halfOpenAfterMs?: number | string | undefined;
  /**
   * Trial calls let through in half-open (Resilience4j's `permittedNumberOfCallsInHalfOpenState`):
   * once their outcomes decide it — the trials' failure rate is sure to end at or above
   * `failureRate` (reopen), or sure to end below it (close) — the breaker moves; at the latest
   * when all have completed. Calls beyond them are rejected meanwhile. A positive integer.
   * @default 3
   */
  readonly halfOpenCalls?: number | undefined;
  /**
   * Whether an error counts as a failure of the dependency. A rejection for which it returns
   * `false` counts as a success (a 404 is the dependency working). A throw counts as `true` and
   * is reported on `sluice:resilience:error`. The caller's own abort is never counted.
   * @default every error
   */
  readonly isFailure?: ((error: unknown) => boolean) | undefined;
  /**
   * Called after every state change; a throw (or the rejection of a returned promise) is reported
   * on `sluice:resilience:error`, counted in
   * `stats.callbackErrors` and never reaches the caller.
   * @default none
   */
  readonly onStateChange?: ((change: CircuitStateChange) => void) | undefined;
  /**
   * Time source, in ms. A throw (reported on `sluice:resilience:error`)
   * or a reading that is not a finite number counts as the previous reading.
   * @default monotonic `performance.now()`
   */
  readonly clock?: Clock | undefined;
  /**
   * Names the breaker in its errors, stats and channel payloads.
   * @default 'CircuitBreaker'
   */
  readonly name?: string | undefined;
}

/** Counters and gauges of a {@link CircuitBreaker}; reading them is free. */
export interface CircuitBreakerStats {
  /** The `name` option. */
  readonly name: string;
  /** The state now (an open breaker whose wait is over reads `'half-open'`). */
  readonly state: CircuitState;
  /** Calls that ran and completed, ever (successes and failures). */
  readonly calls: number;
  /** Completed calls that counted as failures, ever. */
  readonly failures: number;
  /** Calls refused with `CircuitOpenError`, ever. */
  readonly rejected: number;
  /** Calls running now. */
  readonly running: number;
  /** Completed calls in the current window. */
  readonly windowCalls: number;
  /** Failure rate of the current window (0 when it is empty). */
  readonly failureRate: number;
  /** Times the breaker opened, ever. */
  readonly opened: number;
  /** Throws of `onStateChange` or `isFailure`. */
  readonly callbackErrors: number;
}

const CALLS = 0;
const FAILURES = 1;

/**
 * A circuit breaker: while a dependency fails at `failureRate` or more (over the last `windowMs`,
 * once `minimumRequests` calls were seen), calls fail fast with `CircuitOpenError` instead of
 * waiting on it; after `halfOpenAfterMs` a few trial calls (`halfOpenCalls`) decide whether it
 * has recovered.
 *
 * - **closed** → **open** when the window's failure rate reaches `failureRate`.
 * - **open**: every call rejects at once with `CircuitOpenError` (`SLUICE_CIRCUIT_OPEN`,
 *   `retryAfterMs` = time left). The first call after `halfOpenAfterMs` moves it to half-open —
 *   decided by the clock on that call, no timer per breaker.
 * - **half-open**: up to `halfOpenCalls` trial calls run (others reject with `retryAfterMs: 0`).
 *   As soon as the trials' outcomes decide it, it closes (a fresh window) or reopens (another
 *   `halfOpenAfterMs`). Outcomes of calls started before the last transition only count in
 *   `stats`, not in the decision.
 *
 * Each state change is published on `sluice:resilience:breaker-state` and passed to
 * `onStateChange`. A breaker is a {@link Policy}; it lives as long as you hold it (no registry).
 * Put a timeout inside it (`pipe(breaker, timeout(ms))`) so that a hanging call counts as a
 * failure instead of holding a trial forever.
 *
 * @example
 * ```ts
 * import { CircuitBreaker, CircuitOpenError } from 'sluice/resilience';
 * const breaker = new CircuitBreaker({ failureRate: 0.5, minimumRequests: 20, halfOpenAfterMs: 10_000 });
 * const quote = await breaker.run((signal) => pricing.quote(item, { signal }), { signal });
 * breaker.stats; // { state: 'closed', calls, failures, rejected, failureRate, ... }
 * ```
 */
export class CircuitBreaker implements Policy {
  readonly #failureRate: number;
  readonly #minimumRequests: number;
  readonly #halfOpenAfterMs: number;
  readonly #halfOpenCalls: number;
  readonly #isFailure: ((error: unknown) => boolean) | undefined;
  readonly #onStateChange: ((change: CircuitStateChange) => void) | undefined;
  readonly #clock: Clock;
  readonly #name: string;
  readonly #window: SlidingCounts;

  #state: CircuitState = 'closed';
  /** Bumped on every transition: outcomes of calls started under an older one are not evidence. */
  #generation = 0;
  #openedAt = 0;
  /** The last good clock reading (see `#now`). */
  #lastNow = 0;
  /** Half-open: trials started, and completed with success / failure. */
  #trials = 0;
  #trialSuccesses = 0;
  #trialFailures = 0;

  #calls = 0;
  #failures = 0;
  #rejected = 0;
  #running = 0;
  #opened = 0;
  #callbackErrors = 0;
  readonly #countCallbackError = (): void => {
    this.#callbackErrors++;
  };

  constructor(options: CircuitBreakerOptions = {}) {
    v.options('options', options);
    const o = options ?? {};
    const rate = o.failureRate ?? 0.5;
    if (typeof rate !== 'number' || !(rate > 0 && rate <= 1)) {
      throw new (typeof rate === 'number' ? RangeError : TypeError)(
        v.expectation('failureRate', 'a number in (0, 1]', rate),
      );
    }
    this.#failureRate = rate;
    this.#minimumRequests = v.positiveInteger('minimumRequests', o.minimumRequests ?? 10);
    const windowMs = v.positiveDuration('windowMs', o.windowMs ?? 10_000);
    if (windowMs === Infinity) throw new RangeError(v.expectation('windowMs', 'a finite duration', windowMs));
    const buckets = v.positiveInteger('buckets', o.buckets ?? 10);
    if (buckets > 1000) throw new RangeError(v.expectation('buckets', 'an integer from 1 to 1000', buckets));
    this.#halfOpenAfterMs = v.duration('halfOpenAfterMs', o.halfOpenAfterMs ?? 5_000);
    this.#halfOpenCalls = v.positiveInteger('halfOpenCalls', o.halfOpenCalls ?? 3);
    v.optionalFunction('isFailure', o.isFailure);
    v.optionalFunction('onStateChange', o.onStateChange);
    this.#isFailure = o.isFailure;
    this.#onStateChange = o.onStateChange;
    this.#clock = o.clock === undefined ? monotonicClock : v.clock('clock', o.clock);
    this.#name = o.name === undefined ? 'CircuitBreaker' : v.string('name', o.name);
    this.#window = new SlidingCounts(windowMs, buckets, 2);
  }

  /** The `name` option. */
  get name(): string {
    return this.#name;
  }

  /**
   * The state now. Reading it moves an open breaker whose `halfOpenAfterMs` has passed to
   * half-open (the clock decides, on the first look).
   */
  get state(): CircuitState {
    if (this.#state === 'open') this.#maybeHalfOpen(this.#now());
    return this.#state;
  }

  /** A snapshot of the counters and gauges; cheap, synchronous. */
  get stats(): CircuitBreakerStats {
    const now = this.#now();
    if (this.#state === 'open') this.#maybeHalfOpen(now);
    const window = this.#window;
    window.advance(now);
    const calls = window.sum(CALLS);
    return {
      name: this.#name,
      state: this.#state,
      calls: this.#calls,
      failures: this.#failures,
      rejected: this.#rejected,
      running: this.#running,
      windowCalls: calls,
      failureRate: calls === 0 ? 0 : window.sum(FAILURES) / calls,
      opened: this.#opened,
      callbackErrors: this.#callbackErrors,
    };
  }

  /**
   * Runs `fn` if the breaker lets it through, and records its outcome. Rejects with
   * `CircuitOpenError` without running `fn` while open (or half-open with every trial taken),
   * with `signal.reason` on an already-aborted signal, else with `fn`'s own error. `fn` receives
   * the caller's signal (or one that never aborts) and starts asynchronously.
   */
  run<T>(fn: Work<T>, options?: PolicyRunOptions): Promise<T> {
    const refused = refusal(fn, options);
    if (refused !== undefined) return Promise.reject(refused);
    const now = this.#now();
    let trial = false;
    if (this.#state !== 'closed') {
      if (this.#state === 'open') this.#maybeHalfOpen(now);
      if (this.#state === 'open') {
        this.#rejected++;
        const left = this.#openedAt + this.#halfOpenAfterMs - now;
        return Promise.reject(
          new CircuitOpenError(`${this.#name} is open`, { retryAfterMs: Math.max(1, left) }),
        );
      }
      if (this.#state === 'half-open') {
        if (this.#trials >= this.#halfOpenCalls) {
          this.#rejected++;
          return Promise.reject(
            new CircuitOpenError(`${this.#name} is half-open and its trial calls are taken`),
          );
        }
        this.#trials++;
        trial = true;
      }
    }
    this.#running++;
    return this.#call(fn, options?.signal, this.#generation, trial);
  }

  async #call<T>(
    fn: Work<T>,
    signal: AbortSignal | undefined,
    generation: number,
    trial: boolean,
  ): Promise<T> {
    await OPEN;
    let value: T;
    try {
      value = await invoke(fn, signal ?? NEVER_ABORTED);
    } catch (error) {
      this.#running--;
      if (signal?.aborted === true) this.#ignore(generation, trial);
      else this.#record(this.#counts(error), generation, trial);
      throw error;
    }
    this.#running--;
    this.#record(false, generation, trial);
    return value;
  }

  /** Whether `error` counts as a failure; `isFailure` is guarded. */
  #counts(error: unknown): boolean {
    const isFailure = this.#isFailure;
    if (isFailure === undefined) return true;
    try {
      return isFailure(error) !== false;
    } catch (thrown) {
      this.#callbackErrors++;
      reportError(channel.error, thrown, this, 'isFailure');
      return true;
    }
  }

  /** A call the caller aborted: no evidence; a trial gives its place back. */
  #ignore(generation: number, trial: boolean): void {
    if (trial && generation === this.#generation && this.#state === 'half-open') this.#trials--;
  }

  #record(failed: boolean, generation: number, trial: boolean): void {
    this.#calls++;
    if (failed) this.#failures++;
    if (generation !== this.#generation) return;
    const now = this.#now();
    if (trial) {
      if (failed) this.#trialFailures++;
      else this.#trialSuccesses++;
      this.#decideTrials(now);
      return;
    }
    // Closed (the generation matches, and only the closed state runs non-trial calls).
    const window = this.#window;
    window.advance(now);
    window.add(CALLS);
    if (!failed) return;
    window.add(FAILURES);
    const calls = window.sum(CALLS);
    if (calls >= this.#minimumRequests) {
      const rate = window.sum(FAILURES) / calls;
      if (rate >= this.#failureRate) this.#open(now, rate);
    }
  }

  /** Half-open: moves as soon as the remaining trials cannot change the verdict. */
  #decideTrials(now: number): void {
    const n = this.#halfOpenCalls;
    const failed = this.#trialFailures;
    const done = failed + this.#trialSuccesses;
    // Verdict at the end: failures / n >= failureRate. Sure to reopen once the failures so far
    // reach it; sure to close once even n − done more failures cannot.
    if (failed / n >= this.#failureRate) this.#open(now, failed / done);
    else if ((failed + n - done) / n < this.#failureRate) this.#transition('closed', failed / done);
  }

  /** A clock reading; a throwing or non-finite clock gives the previous one (and is reported). */
  #now(): number {
    return (this.#lastNow = readClock(this.#clock, this.#lastNow, channel.error, this, 'clock.now'));
  }

  #maybeHalfOpen(now: number): void {
    if (now - this.#openedAt >= this.#halfOpenAfterMs) this.#transition('half-open', 0);
  }

  #open(now: number, rate: number): void {
    this.#openedAt = now;
    this.#opened++;
    this.#transition('open', rate);
  }

  #transition(to: CircuitState, failureRate: number): void {
    const from = this.#state;
    this.#state = to;
    this.#generation++;
    this.#trials = 0;
    this.#trialSuccesses = 0;
    this.#trialFailures = 0;
    if (to === 'closed') this.#window.clear();
    const publish = channel['breaker-state'].hasSubscribers;
    const callback = this.#onStateChange;
    if (!publish && callback === undefined) return;
    const change: CircuitStateChange = { name: this.#name, from, to, failureRate };
    if (publish) channel['breaker-state'].publish({ breaker: this, ...change });
    if (callback === undefined) return;
    try {
      // An async callback's rejection is reported and counted like a throw, never left unhandled.
      watchResult(callback(change), channel.error, this, 'onStateChange', this.#countCallbackError);
    } catch (thrown) {
      this.#callbackErrors++;
      reportError(channel.error, thrown, this, 'onStateChange');
    }
  }
}
