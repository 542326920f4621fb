import type { IncomingMessage, ServerResponse } from 'node:http';
import { defaultIpKey, Engine, reportHttpError, type Outcome, type RateLimitOptions } from './core.js';

/** The parts of a Node `ServerResponse` the middleware writes to (Express's `res` is one). */
export interface NodeResponse {
  /** The status to send. */
  statusCode: number;
  /** Whether the head has been sent (then nothing is written). */
  readonly headersSent: boolean;
  /** Whether the response has ended. */
  readonly writableEnded: boolean;
  /** Whether the connection is gone. */
  readonly destroyed?: boolean;
  /** Sets a response header. */
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  /** Ends the response with a body. */
  end(body?: string): unknown;
}

/** A connect-style middleware: node:http, Express, Connect, Polka. */
export type NodeMiddleware<Req = IncomingMessage, Res extends NodeResponse = ServerResponse> = (
  req: Req,
  res: Res,
  next: (error?: unknown) => void,
) => void;

/**
 * Rate limiting for node:http and every connect-style framework (Express 4 and 5, Connect,
 * Polka): `(req, res, next)`. An allowed request gets the rate-limit headers and `next()`; a
 * denied one is answered here — 429 with `Retry-After` and an RFC 9457 problem+json body (type
 * `…#quota-exceeded`), or 503 when a failing store denied it (`onStoreError: 'fail-closed'`).
 * Shadow-mode decisions pass with the headers of the real state.
 *
 * - **No double counting**: a request that meets two middlewares on the same limiter or tier is
 *   consumed once.
 * - **User code is a guest**: `key`, `tier`, `cost` may be sync or async and may throw; the
 *   request then gets 500 (503/504 for a sluice `QueueFull`/`Closed`/`Timeout` error, 429 for a
 *   thrown `RateLimitedError`) and the error goes to `sluice:rate:error`. Nothing reaches `next`.
 * - **Late decisions**: if the response was already sent (a timeout middleware answered) or
 *   the client went away while a remote store decided, nothing more is written and `next` is
 *   not called. A decision that reached the store has been counted.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { Tiers } from 'sluice/rate';
 * import { rateLimit } from 'sluice/rate/http';
 * const tiers = new Tiers({ auth: '5/1m', read: '120/1m' });
 * const limit = rateLimit({ tiers, tier: (req) => (req.url === '/login' ? 'auth' : 'read') });
 * createServer((req, res) => limit(req, res, () => res.end('ok'))).listen(3000);
 * ```
 */
export function rateLimit<
  Req extends IncomingMessage = IncomingMessage,
  Res extends NodeResponse = ServerResponse,
>(options: RateLimitOptions<Req>): NodeMiddleware<Req, Res> {
  const engine = new Engine<Req>(options, defaultIpKey);
  return (req, res, next) => {
    const outcome = engine.decide(req, req);
    if (outcome instanceof Promise) outcome.then((o) => applyLate(engine, o, res, next), ignore);
    else apply(outcome, res, next);
  };
}

/** Writes an outcome to a Node response; `next` for a pass. */
export function apply(outcome: Outcome, res: NodeResponse, next: (error?: unknown) => void): void {
  if (res.headersSent || res.writableEnded || res.destroyed === true) return;
  const headers = outcome.headers;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    res.setHeader(h[0], h[1]);
  }
  if (outcome.pass) {
    next();
    return;
  }
  res.statusCode = outcome.status;
  res.setHeader('content-length', Buffer.byteLength(outcome.body));
  res.end(outcome.body);
}

const ignore = (): void => undefined;

/**
 * `apply` after an asynchronous decision: what `next` throws can no longer reach the caller, so
 * it is reported and answered with 500 instead of becoming an unhandled rejection.
 */
function applyLate(
  engine: object,
  outcome: Outcome,
  res: NodeResponse,
  next: (error?: unknown) => void,
): void {
  try {
    apply(outcome, res, next);
  } catch (error) {
    reportHttpError(error, engine, 'next');
    if (!res.headersSent && !res.writableEnded) {
      res.statusCode = 500;
      res.end();
    }
  }
}
