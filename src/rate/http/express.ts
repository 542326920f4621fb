import type { IncomingMessage } from 'node:http';
import type { RateLimitOptions } from './core.js';
import { rateLimit, type NodeMiddleware, type NodeResponse } from './node.js';

/**
 * Rate limiting as Express middleware (Express 4 and 5): `rateLimit` under the name Express
 * users look for — Express requests and responses are Node's, so it is the same middleware.
 * Callbacks receive Express's `req` (type it with the generic). The default key is the socket
 * address, not `req.ip`: Express's `trust proxy` setting is not consulted; use
 * `key: ipKey({ trustProxy: n })` or `key: (req) => req.ip ?? ''`.
 *
 * @example
 * ```ts
 * import express, { type Request } from 'express';
 * import { RateLimiter } from 'sluice/rate';
 * import { expressRateLimit } from 'sluice/rate/http';
 * const app = express();
 * const logins = new RateLimiter({ policy: '5/1m', name: 'auth' });
 * app.post('/login', expressRateLimit<Request>({ limiter: logins }), (req, res) => res.json({ ok: true }));
 * ```
 */
export function expressRateLimit<
  Req extends IncomingMessage = IncomingMessage,
  Res extends NodeResponse = NodeResponse,
>(options: RateLimitOptions<Req>): NodeMiddleware<Req, Res> {
  return rateLimit<Req, Res>(options);
}
