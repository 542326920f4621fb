import * as v from '../internal/validate.js';

/** Per-call options of every {@link Policy}: the caller's cancellation. */
export interface PolicyRunOptions {
  /**
   * Aborting cancels the call: the policy stops waiting (a retry's backoff, a hedge's delay, a
   * bulkhead's queue), aborts the signal it handed to `fn`, and rejects with `signal.reason`
   * unchanged. An already-aborted signal rejects without calling `fn`.
   */
  readonly signal?: AbortSignal | undefined;
}

/**
 * The work a policy runs: it receives an AbortSignal (never `undefined`) that aborts when the
 * work should stop — the caller aborted, a timeout passed, another hedged attempt won. Pass it
 * on to `fetch`, a driver, or whatever does the I/O. It may return a value or a promise, and
 * may throw synchronously (the policy rejects with what it threw).
 */
export type Work<T> = (signal: AbortSignal) => T | PromiseLike<T>;

/**
 * One resilience policy: something that runs work under a rule (a timeout, retries, a circuit
 * breaker, hedging, a bulkhead). Every policy has this one method, so any policy composes with
 * any other through {@link pipe}, and a composed pipeline is itself a `Policy`.
 *
 * Contract of `run`: it never throws (bad input rejects with `InvalidInputError`); `fn` starts
 * asynchronously, in the async context (`AsyncLocalStorage`) of the `run` call; an abort of
 * `options.signal` rejects with `signal.reason` unchanged and leaves no listener or timer
 * behind.
 *
 * @example
 * ```ts
 * import { CircuitBreaker, pipe, retry, timeout } from 'sluice/resilience';
 * const policy = pipe(retry({ attempts: 3 }), new CircuitBreaker(), timeout(500));
 * const user = await policy.run((signal) => fetch(url, { signal }), { signal: req.signal });
 * ```
 */
export interface Policy {
  /** Runs `fn` under this policy and returns (a promise of) its result. */
  run<T>(fn: Work<T>, options?: PolicyRunOptions): Promise<T>;
}

/**
 * The signal handed to work run without a caller signal (and not given one of its own by a
 * timeout or a hedge): it never aborts. Shared, as cockatiel's is: creating an AbortController
 * costs about 2 µs, more than the rest of a closed breaker's path. Work that adds an `abort`
 * listener to it should remove it, as it would on any long-lived signal.
 */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/** Awaited before user code starts: work never runs inside the `run` call itself. */
export const OPEN: Promise<void> = Promise.resolve();

/** `fn(signal)` as a promise: a synchronous throw becomes a rejection. */
export function invoke<T>(fn: Work<T>, signal: AbortSignal): Promise<T> {
  try {
    return Promise.resolve(fn(signal));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * What a `run(fn, options)` must reject with before doing anything, or `undefined`: a non-function
 * `fn` or bad options (`InvalidInputError`), an already-aborted signal (its reason).
 */
export function refusal(fn: unknown, options: PolicyRunOptions | undefined): Error | undefined {
  if (typeof fn !== 'function') return v.invalidInput('fn', 'a function', fn);
  if (options === undefined) return undefined;
  const invalid = v.invalidCallOptions(options);
  if (invalid !== undefined) return invalid;
  const signal = options.signal;
  // Aborts reject with the reason unchanged, whatever it is; typed as Error for the linter only.
  if (signal?.aborted === true) return signal.reason as Error;
  return undefined;
}
