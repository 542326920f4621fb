import { defaultIpKey, Engine, type RateLimitOptions } from './core.js';

/** The parts of a Hono context the middleware uses (structural: no import of hono). */
export interface HonoContextLike {
  /** The request; `raw` identifies it across middlewares. */
  readonly req: {
    /** The fetch `Request`. */
    readonly raw: Request;
  };
  /** The response so far. */
  readonly res: Response;
  /** The runtime's bindings: on `@hono/node-server`, `{ incoming, outgoing }`. */
  readonly env?: unknown;
  /** Sets a response header. */
  header(name: string, value: string): void;
}

/** A Hono middleware: `app.use(honoRateLimit(...))`. */
export type HonoMiddleware<C extends HonoContextLike = HonoContextLike> = (
  c: C,
  next: () => Promise<void>,
) => Promise<Response | undefined>;

/**
 * Rate limiting as Hono middleware `(c, next)`. Allowed: headers are set and `next()` runs; a
 * handler that returns its own `Response` still gets them. Denied: answers with a `Response`
 * (429 or a fail-closed 503, problem+json). The default key is `ipKey()`, which needs
 * `@hono/node-server` (it reads `c.env.incoming`); on other runtimes give `key` (e.g. from
 * `hono/conninfo`). Answers, headers, guest-callback and double-counting rules are those of
 * `rateLimit`; the request is identified by `c.req.raw`.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono';
 * import { RateLimiter } from 'sluice/rate';
 * import { honoRateLimit } from 'sluice/rate/http';
 * const app = new Hono();
 * app.use('/login', honoRateLimit({ limiter: new RateLimiter({ policy: '5/1m', name: 'auth' }) }));
 * app.post('/login', (c) => c.json({ ok: true }));
 * ```
 */
export function honoRateLimit<C extends HonoContextLike = HonoContextLike>(
  options: RateLimitOptions<C>,
): HonoMiddleware<C> {
  const engine = new Engine<C>(options, defaultIpKey);
  return async (c, next) => {
    const decided = engine.decide(c, c.req.raw);
    const outcome = decided instanceof Promise ? await decided : decided;
    const headers = outcome.headers;
    if (!outcome.pass) {
      return new Response(c.req.raw.method === 'HEAD' ? null : outcome.body, {
        status: outcome.status,
        headers: headers,
      });
    }
    for (let i = 0; i < headers.length; i++) c.header(headers[i]![0], headers[i]![1]);
    await next();
    // A handler that built its own Response dropped the prepared headers: set them again.
    const first = headers[0];
    if (first !== undefined && !c.res.headers.has(first[0])) {
      for (let i = 0; i < headers.length; i++) c.header(headers[i]![0], headers[i]![1]);
    }
    return undefined;
  };
}
