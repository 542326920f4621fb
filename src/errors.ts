import type { RateDecision } from './rate/store.js';

const kBrand = Symbol.for('sluice.error.code');

/**
 * Every `code` a {@link SluiceError} can carry. A union of literals, so a misspelt comparison
 * (`err.code === 'SLUICE_QUEUE_FUL'`) fails to compile.
 */
export type SluiceErrorCode =
  | 'SLUICE_ERROR'
  | 'SLUICE_QUEUE_FULL'
  | 'SLUICE_CLOSED'
  | 'SLUICE_TIMEOUT'
  | 'SLUICE_INVALID_INPUT'
  | 'SLUICE_BATCH_RESULT'
  | 'SLUICE_RATE_LIMITED'
  | 'SLUICE_RESTART_INTENSITY'
  | 'SLUICE_OVERLOADED';

/** Options accepted by every sluice error constructor. */
export interface SluiceErrorOptions {
  /** The underlying error, if any. */
  readonly cause?: unknown;
}

/**
 * Base class of every error sluice rejects or throws with (aborts excepted: they reject with
 * `signal.reason` unchanged). Each subclass has a stable `code`. `instanceof` works across
 * duplicate copies of the package through a `Symbol.for` brand, as undici's errors do.
 *
 * @example
 * ```ts
 * import { SluiceError } from 'sluice';
 * try { await limiter.run(task); } catch (err) {
 *   if (err instanceof SluiceError && err.code === 'SLUICE_QUEUE_FULL') shed();
 * }
 * ```
 */
export class SluiceError extends Error {
  /** Stable machine-readable code of this error class. */
  static readonly code: SluiceErrorCode = 'SLUICE_ERROR';
  /** Stable machine-readable code, e.g. `'SLUICE_QUEUE_FULL'`. */
  readonly code: SluiceErrorCode;

  constructor(message: string, options?: SluiceErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    const code = new.target.code;
    this.code = code;
    this.name = new.target.name;
    Object.defineProperty(this, kBrand, { value: code });
  }

  /**
   * `instanceof` that also recognises errors from another copy of sluice (two versions in one
   * `node_modules`), by their branded code.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    if (typeof value !== 'object' || value === null) return false;
    const code = (value as { [kBrand]?: unknown })[kBrand];
    if (typeof code !== 'string') return false;
    return this === SluiceError || code === this.code;
  }
}

/** A bounded queue is full; the bound's policy is to reject. Code `SLUICE_QUEUE_FULL`. */
export class QueueFullError extends SluiceError {
  static override readonly code: SluiceErrorCode = 'SLUICE_QUEUE_FULL';
}

/** The object was closed; the operation was refused or abandoned. Code `SLUICE_CLOSED`. */
export class ClosedError extends SluiceError {
  static override readonly code: SluiceErrorCode = 'SLUICE_CLOSED';
}

/** A wait or an operation exceeded its time budget. Code `SLUICE_TIMEOUT`. */
export class TimeoutError extends SluiceError {
  static override readonly code: SluiceErrorCode = 'SLUICE_TIMEOUT';
}

/**
 * Invalid input at run time — a non-function task, a bad per-call option, a callback that
 * returned something unusable — as opposed to a bad constructor option, which throws a
 * `TypeError` / `RangeError` at once. A function that returns a promise rejects with it; it
 * never throws. The message has the same shape as an option's:
 * ``Expected `priority` to be a finite number, got `NaN` (number)``. Code `SLUICE_INVALID_INPUT`.
 */
export class InvalidInputError extends SluiceError {
  static override readonly code: SluiceErrorCode = 'SLUICE_INVALID_INPUT';
}

/**
 * A batch function returned a result that does not match its keys: not an array or `Map`, an
 * array of the wrong length, or a `Map` missing a key. Code `SLUICE_BATCH_RESULT`.
 */
export class BatchResultError extends SluiceError {
  static override readonly code: SluiceErrorCode = 'SLUICE_BATCH_RESULT';
}

/** Options of {@link RateLimitedError}. */
export interface RateLimitedErrorOptions extends SluiceErrorOptions {
  /**
   * Milliseconds until the same request would be allowed (rounded up, never early).
   * @default the decision's `retryAfterMs`, else 0
   */
  readonly retryAfterMs?: number | undefined;
  /** The rate-limit decision that denied the request. */
  readonly decision?: RateDecision | undefined;
}

/**
 * A request was denied by a rate limit. Code `SLUICE_RATE_LIMITED`; `httpStatusOf` (from
 * `sluice/rate/http`) maps it to 429, and the HTTP adapters answer with `Retry-After` from
 * `retryAfterMs` when a callback or handler throws one.
 *
 * @example
 * ```ts
 * import { RateLimitedError } from 'sluice';
 * const d = await limiter.consume(userId);
 * if (!d.allowed) throw new RateLimitedError(`limit ${d.limit} reached`, { decision: d });
 * ```
 */
export class RateLimitedError extends SluiceError {
  static override readonly code: SluiceErrorCode = 'SLUICE_RATE_LIMITED';
  /** Milliseconds until the same request would be allowed; whole, never negative. */
  readonly retryAfterMs: number;
  /** The decision that denied the request, when one was given. */
  readonly decision: RateDecision | undefined;

  constructor(message: string, options?: RateLimitedErrorOptions) {
    super(message, options);
    const raw = options?.retryAfterMs ?? options?.decision?.retryAfterMs ?? 0;
    this.retryAfterMs = Number.isFinite(raw) && raw > 0 ? Math.ceil(raw) : 0;
    this.decision = options?.decision;
  }
}

/**
 * A supervisor saw more than `maxRestarts` restarts within `withinMs` and gave up on its
 * tasks; `cause` is the failure that tipped it over. Code `SLUICE_RESTART_INTENSITY`.
 */
export class RestartIntensityError extends SluiceError {
  static override readonly code: SluiceErrorCode = 'SLUICE_RESTART_INTENSITY';
}

/**
 * Load was shed: a queued call waited `maxQueueWaitMs` or longer for a slot and was rejected
 * instead of started, because work that old is likely past its caller's deadline (answer 503,
 * retry elsewhere or later). Distinct from `QueueFullError` (a bound on *how many* wait) and
 * `TimeoutError` (the caller's own `timeout`). Code `SLUICE_OVERLOADED`.
 *
 * @example
 * ```ts
 * import { OverloadedError } from 'sluice';
 * try { await limiter.run(task); } catch (err) {
 *   if (err instanceof OverloadedError) res.writeHead(503).end();
 * }
 * ```
 */
export class OverloadedError extends SluiceError {
  static override readonly code: SluiceErrorCode = 'SLUICE_OVERLOADED';
}
