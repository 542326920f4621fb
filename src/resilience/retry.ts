import { InvalidInputError } from '../errors.js';
import { Backoff } from '../internal/backoff.js';
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
import { retryAfterOf } from './retry-after.js';
import { RetryBudget } from './retry-budget.js';
import { sleep } from './sleep.js';

/** What {@link RetryOptions.onRetry} is told before each retry wait. */
export interface RetryEvent {
  /** The attempt that just failed: 1 after the first failure. */
  readonly attempt: number;
  /** How long the retry waits before the next attempt, in ms. */
  readonly delayMs: number;
  /** What the failed attempt threw or rejected with. */
  readonly error: unknown;
}

/**
 * How long to wait before retry number `attempt` (1 after the first failure):
 * - `'exponential-jitter'`: `delayMs × factor^(attempt−1)`, capped at `maxDelayMs`, then drawn
 *   uniformly in `[0, that]` ("full jitter": many callers' retries spread out instead of arriving
 *   together);
 * - `'exponential'`: the same without jitter;
 * - a number: that many ms every time;
 * - a function `(attempt, error) => ms`: yours (a non-negative finite number; capped at
 *   `maxDelayMs`).
 */
export type RetryBackoff =
  'exponential-jitter' | 'exponential' | number | ((attempt: number, error: unknown) => number);

/** Options of {@link retry} (the policy form takes the same, without `signal`). */
export interface RetryPolicyOptions {
  /**
   * Total tries, the first included (`1` = no retry): a positive integer or `Infinity` (then
   * bound it with a `signal`, a timeout around the retry, or a `budget`).
   * @default 3
   */
  readonly attempts?: number | undefined;
  /**
   * The wait between attempts; see {@link RetryBackoff}.
   * @default 'exponential-jitter'
   */
  readonly backoff?: RetryBackoff | undefined;
  /**
   * Base delay of the exponential backoffs, in ms.
   * @default 100
   */
  readonly delayMs?: number | undefined;
  /**
   * Upper bound of one wait, in ms: caps every backoff, and bounds `Retry-After` — an error that
   * asks for a longer wait than this is not retried (retrying earlier than the server asked only
   * earns another refusal), the call rejects with it at once.
   * @default 10_000
   */
  readonly maxDelayMs?: number | undefined;
  /**
   * Growth of the exponential backoffs per retry.
   * @default 2
   */
  readonly factor?: number | undefined;
  /**
   * Source of the jitter, uniform in `[0, 1)`; inject a seeded one for reproducible waits.
   * @default Math.random
   */
  readonly random?: (() => number) | undefined;
  /**
   * Whether an error is worth retrying. A throw counts as "no" (and is reported on
   * `sluice:resilience:error`). The caller's own abort is never retried, nor is an
   * `InvalidInputError`.
   * @default every error
   */
  readonly retryIf?: ((error: unknown, attempt: number) => boolean) | undefined;
  /**
   * How long an error asks to be waited out before a retry, in ms, or `undefined`. The wait is
   * then at least that (and the backoff's, if longer); over `maxDelayMs`, no retry.
   * @default {@link retryAfterOf}: `RateLimitedError` / `CircuitOpenError`'s `retryAfterMs`, or the `Retry-After` of a 429 / 503 `Response` thrown or carried as `error.response`
   */
  readonly retryAfter?: ((error: unknown) => number | undefined) | undefined;
  /**
   * Called before each retry wait; a throw (or the rejection of a returned promise) is reported
   * on `sluice:resilience:error` and ignored.
   * @default none
   */
  readonly onRetry?: ((event: RetryEvent) => void) | undefined;
  /**
   * A {@link RetryBudget} shared with the other callers of the same dependency: every success
   * deposits, every retry withdraws first, and when the budget refuses, the call rejects with
   * the last error at once (published on `sluice:resilience:retry-denied`).
   * @default none: only `attempts` bounds retries
   */
  readonly budget?: RetryBudget | undefined;
}

/** Options of the one-shot {@link retry}`(fn, options)`. */
export interface RetryOptions extends RetryPolicyOptions {
  /**
   * Aborting cancels: the attempt in flight sees it through its signal (the call rejects with
   * `signal.reason` unchanged once that attempt settles — an attempt that ignores its signal
   * holds the call until it ends, as a running Limiter task does; put a `timeout` inside the
   * retry to bound it), and a wait between attempts stops at once.
   */
  readonly signal?: AbortSignal | undefined;
}

type BackoffFn = (attempt: number, error: unknown) => number;

/**
 * Retries work that failed, with backoff, optionally under a shared {@link RetryBudget}. Build
 * one with {@link retry}`(options)`; `run` is reusable and holds no per-call state.
 *
 * @example
 * ```ts
 * import { retry, RetryBudget } from 'sluice/resilience';
 * const policy = retry({ attempts: 3, budget: new RetryBudget() }); // a RetryPolicy, reuse it
 * const body = await policy.run((signal) => fetchJson(url, { signal }), { signal: req.signal });
 * ```
 */
export class RetryPolicy implements Policy {
  /** Total tries per call, the first included. */
  readonly attempts: number;
  readonly #backoff: Backoff | undefined;
  readonly #fixed: number;
  readonly #custom: BackoffFn | undefined;
  readonly #maxDelayMs: number;
  readonly #retryIf: ((error: unknown, attempt: number) => boolean) | undefined;
  readonly #retryAfter: (error: unknown) => number | undefined;
  readonly #onRetry: ((event: RetryEvent) => void) | undefined;
  readonly #budget: RetryBudget | undefined;

  constructor(options: RetryPolicyOptions = {}) {
    v.options('options', options);
    const o = options ?? {};
    const backoff: unknown = o.backoff ?? 'exponential-jitter';
    this.#maxDelayMs = v.nonNegativeNumber('maxDelayMs', o.maxDelayMs ?? 10_000);
    this.#fixed = 0;
    if (typeof backoff === 'number') {
      this.#fixed = Math.min(v.nonNegativeNumber('backoff', backoff), this.#maxDelayMs);
    } else if (typeof backoff === 'function') {
      this.#custom = backoff as BackoffFn;
    } else if (backoff === 'exponential-jitter' || backoff === 'exponential') {
      this.#backoff = new Backoff({
        attempts: 1,
        delayMs: o.delayMs,
        maxDelayMs: this.#maxDelayMs,
        factor: o.factor,
        random: o.random,
        jitter: backoff === 'exponential' ? 'none' : 'full',
      });
    } else {
      throw new TypeError(
        v.expectation(
          'backoff',
          "'exponential-jitter', 'exponential', a number of ms or a function",
          backoff,
        ),
      );
    }
    this.attempts = v.positiveInteger('attempts', o.attempts ?? 3, true);
    v.optionalFunction('retryIf', o.retryIf);
    v.optionalFunction('retryAfter', o.retryAfter);
    v.optionalFunction('onRetry', o.onRetry);
    if (o.budget !== undefined && !(o.budget instanceof RetryBudget)) {
      throw new TypeError(v.expectation('budget', 'a RetryBudget or undefined', o.budget));
    }
    this.#retryIf = o.retryIf;
    this.#retryAfter = o.retryAfter ?? retryAfterOf;
    this.#onRetry = o.onRetry;
    this.#budget = o.budget;
  }

  /**
   * Runs `fn` until it succeeds, an error is not worth retrying, `attempts` are spent or the
   * budget refuses; rejects with the last error in the last three cases (never a wrapper), with
   * `signal.reason` when the caller aborts. Each attempt gets the caller's signal (or one that
   * never aborts).
   */
  run<T>(fn: Work<T>, options?: PolicyRunOptions): Promise<T> {
    const refused = refusal(fn, options);
    if (refused !== undefined) return Promise.reject(refused);
    return this.#loop(fn, options?.signal);
  }

  async #loop<T>(fn: Work<T>, signal: AbortSignal | undefined): Promise<T> {
    await OPEN;
    const given = signal ?? NEVER_ABORTED;
    for (let attempt = 1; ; attempt++) {
      let error: unknown;
      try {
        const value = await invoke(fn, given);
        this.#budget?.deposit();
        return value;
      } catch (thrown) {
        error = thrown;
      }
      if (signal?.aborted === true) throw signal.reason;
      const delay = this.#nextDelay(attempt, error);
      if (delay === undefined) throw error;
      if (this.#budget !== undefined && !this.#budget.tryWithdraw()) {
        if (channel['retry-denied'].hasSubscribers) channel['retry-denied'].publish({ attempt, error });
        throw error;
      }
      if (channel.retry.hasSubscribers) channel.retry.publish({ attempt, delayMs: delay, error });
      if (this.#onRetry !== undefined)
        this.#call('onRetry', this.#onRetry, { attempt, delayMs: delay, error });
      await sleep(delay, signal);
    }
  }

  /** The wait before retrying after `attempt` failed with `error`, or `undefined`: give up. */
  #nextDelay(attempt: number, error: unknown): number | undefined {
    if (attempt >= this.attempts || error instanceof InvalidInputError) return undefined;
    const retryIf = this.#retryIf;
    if (retryIf !== undefined) {
      let yes: unknown;
      try {
        yes = retryIf(error, attempt);
      } catch (thrown) {
        reportError(channel.error, thrown, this, 'retryIf');
        return undefined;
      }
      if (yes !== true) return undefined;
    }
    let after: number | undefined;
    try {
      after = this.#retryAfter(error);
    } catch (thrown) {
      reportError(channel.error, thrown, this, 'retryAfter');
    }
    if (after !== undefined && !(after >= 0)) after = undefined;
    if (after !== undefined && after > this.#maxDelayMs) return undefined;
    const delay = this.#backoffDelay(attempt, error);
    return after === undefined || after < delay ? delay : after;
  }

  #backoffDelay(attempt: number, error: unknown): number {
    if (this.#backoff !== undefined) {
      return this.#backoff.delay(attempt, (thrown) => reportError(channel.error, thrown, this, 'random'));
    }
    const custom = this.#custom;
    if (custom === undefined) return this.#fixed;
    const ms = custom(attempt, error);
    if (typeof ms !== 'number' || !(ms >= 0) || ms === Infinity) {
      throw v.invalidInput('backoff(attempt, error)', 'a non-negative finite number', ms);
    }
    return Math.min(ms, this.#maxDelayMs);
  }

  #call<A>(where: string, callback: (arg: A) => void, arg: A): void {
    try {
      // An async callback's rejection is reported like a throw, never left unhandled.
      watchResult(callback(arg), channel.error, this, where);
    } catch (thrown) {
      reportError(channel.error, thrown, this, where);
    }
  }
}

/**
 * Retries `fn` with backoff until it succeeds (see {@link RetryOptions}); the one-shot form of
 * {@link RetryPolicy}.
 *
 * - **Waits** between attempts are cancellable: aborting `signal` stops a wait at once and
 *   rejects with `signal.reason`, leaving no timer or listener behind. Attempts receive the same
 *   signal.
 * - **Gives up** with the last error, unchanged: after `attempts` tries, when `retryIf` says no,
 *   when the error asks (`Retry-After`) for more than `maxDelayMs`, or when the `budget` refuses.
 * - **Retry-After**: a `RateLimitedError`, `CircuitOpenError` or 429/503 `Response` is waited out
 *   (see {@link retryAfterOf}), never retried early.
 * - `fn` starts asynchronously, in the caller's async context; a synchronous throw is a failed
 *   attempt. A `backoff` function that returns garbage rejects with `InvalidInputError`.
 *
 * @example
 * ```ts
 * import { retry } from 'sluice/resilience';
 * const body = await retry((signal) => fetchJson(url, { signal }), {
 *   attempts: 4, backoff: 'exponential-jitter', signal: req.signal,
 *   retryIf: (err) => !(err instanceof HttpError && err.status < 500),
 * });
 * ```
 */
export function retry<T>(fn: Work<T>, options?: RetryOptions): Promise<T>;
/**
 * A retry {@link Policy} for {@link pipe}: `retry({ attempts: 3, budget })`.
 *
 * @example
 * ```ts
 * import { pipe, retry, RetryBudget, timeout } from 'sluice/resilience';
 * const budget = new RetryBudget();
 * const policy = pipe(retry({ attempts: 3, budget }), timeout(500));
 * await policy.run((signal) => fetch(url, { signal }));
 * ```
 */
export function retry(options?: RetryPolicyOptions): RetryPolicy;
export function retry<T>(
  fnOrOptions?: Work<T> | RetryPolicyOptions,
  options?: RetryOptions,
): Promise<T> | RetryPolicy {
  if (typeof fnOrOptions !== 'function') return new RetryPolicy(fnOrOptions);
  let policy: RetryPolicy;
  try {
    policy = new RetryPolicy(options === undefined ? undefined : withoutSignal(options));
  } catch (error) {
    return Promise.reject(new InvalidInputError((error as Error).message, { cause: error }));
  }
  return policy.run(fnOrOptions, options === undefined ? undefined : { signal: options.signal });
}

function withoutSignal(options: RetryOptions): RetryPolicyOptions {
  if (typeof options !== 'object' || options === null) return options;
  const { signal: _signal, ...rest } = options;
  return rest;
}
