import { TimeoutError } from '../errors.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import { Timer } from '../internal/timer.js';
import * as v from '../internal/validate.js';
import { invoke, OPEN, refusal, type Policy, type PolicyRunOptions, type Work } from './policy.js';

/**
 * One timed call: the controller whose signal `fn` receives, the deadline timer, the link to the
 * caller's signal. Settling (by `fn`, the deadline or the caller) happens once, cancels the timer
 * and unlinks the caller's signal, so nothing outlives the call.
 */
class TimedCall<T> {
  readonly controller = new AbortController();
  timer: Timer | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  done = false;

  constructor(
    readonly ms: number,
    readonly parent: AbortSignal | undefined,
    readonly resolve: (value: T) => void,
    readonly reject: (reason: unknown) => void,
  ) {}

  settle(): boolean {
    if (this.done) return false;
    this.done = true;
    this.timer?.cancel();
    this.timer = undefined;
    unlinkSignal(this.parent, this.onAbort);
    this.onAbort = undefined;
    return true;
  }

  expire(): void {
    if (!this.settle()) return;
    const error = new TimeoutError(`Timed out after ${this.ms} ms`);
    this.controller.abort(error);
    this.reject(error);
  }

  abort(): void {
    if (!this.settle()) return;
    const reason = (this.parent as AbortSignal).reason as unknown;
    this.controller.abort(reason);
    this.reject(reason);
  }
}

function parseMs(value: unknown): number {
  return v.duration('ms', value, true);
}

/**
 * Runs `fn` with a deadline of `ms` milliseconds. `fn` receives an AbortSignal that aborts at the
 * deadline (with the `TimeoutError`) or when the caller's `signal` aborts (with its reason), so
 * the work is **cancelled**, not just abandoned: pass the signal to `fetch` or your driver.
 *
 * - Resolves with `fn`'s value, or rejects with its error, whichever comes first.
 * - At the deadline: aborts `fn`'s signal and rejects with `TimeoutError` (`SLUICE_TIMEOUT`).
 * - When `options.signal` aborts first: aborts `fn`'s signal and rejects with `signal.reason`
 *   unchanged; an already-aborted signal rejects without calling `fn`.
 * - Settled either way, it leaves nothing behind: the timer is cleared and the listener on the
 *   caller's signal removed (one listener per signal however many calls share it).
 * - `fn` starts asynchronously (one microtask later) in the caller's async context; a
 *   synchronous throw becomes the rejection. `ms` may be `Infinity` (no deadline) or a string
 *   such as `'500ms'`; a bad `ms` rejects with `InvalidInputError`.
 *
 * Costs one AbortController and one timer per call. The timer is ref'd (it settles the promise
 * you await; unref'd, a process whose only pending work holds no handle would exit before the
 * deadline) and always cleared when the call settles, so it never outlives the call.
 *
 * @example
 * ```ts
 * import { withTimeout } from 'sluice/resilience';
 * const res = await withTimeout((signal) => fetch(url, { signal }), 500, { signal: req.signal });
 * ```
 */
export function withTimeout<T>(fn: Work<T>, ms: number | string, options?: PolicyRunOptions): Promise<T> {
  const refused = refusal(fn, options);
  if (refused !== undefined) return Promise.reject(refused);
  let deadline: number;
  try {
    deadline = parseMs(ms);
  } catch {
    return Promise.reject(v.invalidInput('ms', 'a non-negative duration in ms or Infinity', ms));
  }
  return timed(fn, deadline, options?.signal);
}

function timed<T>(fn: Work<T>, ms: number, parent: AbortSignal | undefined): Promise<T> {
  let call!: TimedCall<T>;
  const promise = new Promise<T>((resolve, reject) => {
    call = new TimedCall(ms, parent, resolve, reject);
  });
  if (parent !== undefined) call.onAbort = linkSignal(parent, () => call.abort());
  if (ms !== Infinity) call.timer = new Timer(() => call.expire(), ms, true);
  void OPEN.then(() => {
    if (call.done) return;
    invoke(fn, call.controller.signal).then(
      (value) => {
        if (call.settle()) call.resolve(value);
      },
      (error: unknown) => {
        if (call.settle()) call.reject(error);
      },
    );
  });
  return promise;
}

/**
 * The timeout as a {@link Policy}: `run(fn, { signal })` is `withTimeout(fn, ms, { signal })`.
 * Build one with {@link timeout}.
 *
 * @example
 * ```ts
 * import { timeout } from 'sluice/resilience';
 * const perCall = timeout(500); // a TimeoutPolicy
 * const user = await perCall.run((signal) => fetch(url, { signal }), { signal: req.signal });
 * ```
 */
export class TimeoutPolicy implements Policy {
  /** The deadline of every call, in ms. */
  readonly ms: number;

  /** @param ms deadline in ms (or a string like `'500ms'`); `Infinity` for none. */
  constructor(ms: number | string) {
    this.ms = parseMs(ms);
  }

  /** Runs `fn` with this policy's deadline; see {@link withTimeout}. */
  run<T>(fn: Work<T>, options?: PolicyRunOptions): Promise<T> {
    const refused = refusal(fn, options);
    if (refused !== undefined) return Promise.reject(refused);
    return timed(fn, this.ms, options?.signal);
  }
}

/**
 * A timeout {@link Policy} for {@link pipe}: each `run` gets its own deadline of `ms`. Where it
 * sits in a pipe decides what it bounds — outside a retry it bounds the whole sequence, inside
 * it each attempt.
 *
 * @example
 * ```ts
 * import { pipe, retry, timeout } from 'sluice/resilience';
 * const perAttempt = pipe(retry({ attempts: 3 }), timeout(500));
 * const overall = pipe(timeout(2000), retry({ attempts: 3 }));
 * ```
 */
export function timeout(ms: number | string): TimeoutPolicy {
  return new TimeoutPolicy(ms);
}
