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
  | 'SLUICE_NO_TARGET'
  | 'SLUICE_TARGET_LOAD'
  | 'SLUICE_CIRCUIT_OPEN'
  | 'SLUICE_TRANSPORT_RESET'
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
 * A router had no target to route to: `pick()` on an empty router, or `acquire()` when there is
 * no target and no room to wait (`maxWaiting`). Code `SLUICE_NO_TARGET`.
 *
 * @example
 * ```ts
 * import { NoTargetError } from 'sluice';
 * try { router.pick(); } catch (err) { if (err instanceof NoTargetError) return reply(503); throw err; }
 * ```
 */
export class NoTargetError extends SluiceError {
  static override readonly code: SluiceErrorCode = 'SLUICE_NO_TARGET';
}

/**
 * A router's `load(target)` callback threw; `cause` is what it threw. The router is unchanged:
 * the target keeps its previous load (or, from `add`, is not added). Code `SLUICE_TARGET_LOAD`.
 *
 * @example
 * ```ts
 * import { TargetLoadError } from 'sluice';
 * try { router.update(pool); } catch (err) { if (err instanceof TargetLoadError) log(err.cause); }
 * ```
 */
export class TargetLoadError extends SluiceError {
  static override readonly code: SluiceErrorCode = 'SLUICE_TARGET_LOAD';
}

/** Options of {@link CircuitOpenError}. */
export interface CircuitOpenErrorOptions extends SluiceErrorOptions {
  /**
   * Milliseconds until the breaker lets a trial call through (0 when it is half-open and its
   * trial calls are all taken).
   * @default 0
   */
  readonly retryAfterMs?: number | undefined;
}

/**
 * A circuit breaker refused a call without running it: it is open (the dependency failed too
 * often), or half-open with every trial call taken. Code `SLUICE_CIRCUIT_OPEN`. `retry` treats
 * `retryAfterMs` like a `Retry-After` header.
 *
 * @example
 * ```ts
 * import { CircuitOpenError } from 'sluice';
 * try { await breaker.run(callPayments); } catch (err) {
 *   if (err instanceof CircuitOpenError) return cachedQuote(err.retryAfterMs);
 *   throw err;
 * }
 * ```
 */
export class CircuitOpenError extends SluiceError {
  static override readonly code: SluiceErrorCode = 'SLUICE_CIRCUIT_OPEN';
  /** Milliseconds until a trial call will be let through; whole, never negative. */
  readonly retryAfterMs: number;

  constructor(message: string, options?: CircuitOpenErrorOptions) {
    super(message, options);
    const raw = options?.retryAfterMs ?? 0;
    this.retryAfterMs = Number.isFinite(raw) && raw > 0 ? Math.ceil(raw) : 0;
  }
}

/** Options of {@link TransportResetError}. */
export interface TransportResetErrorOptions extends SluiceErrorOptions {
  /** The newest id of the log when the reset was seen (`read`). */
  readonly lastId?: string | undefined;
  /** The consumer group that no longer exists (`readGroup`, `ack`, `claim`). */
  readonly group?: string | undefined;
}

/**
 * An event transport's log is not the one the caller's cursor or group came from: a read's
 * cursor is above the log's newest id, or a consumer group no longer exists. It happens when
 * the log was lost or replaced (a Redis restart without persistence, `FLUSHALL`, a failover to
 * a replica that had not seen the newest entries, a deleted key). Nothing is retried silently:
 * the caller decides where to resume (`lastId`, or `'0-0'` to read what the new log holds) and
 * recreates its group. Code `SLUICE_TRANSPORT_RESET`.
 *
 * @example
 * ```ts
 * import { TransportResetError } from 'sluice';
 * try { entries = await transport.read(cursor, { count: 100, blockMs: 1000 }); } catch (err) {
 *   if (err instanceof TransportResetError) cursor = err.lastId ?? '0-0';
 * }
 * ```
 */
export class TransportResetError extends SluiceError {
  static override readonly code: SluiceErrorCode = 'SLUICE_TRANSPORT_RESET';
  /** The newest id of the log when the reset was seen, if a read saw it. */
  readonly lastId: string | undefined;
  /** The consumer group that no longer exists, if a group call saw it. */
  readonly group: string | undefined;

  constructor(message: string, options?: TransportResetErrorOptions) {
    super(message, options);
    this.lastId = options?.lastId;
    this.group = options?.group;
  }
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
