import * as v from '../../internal/validate.js';
import { Engine, type Outcome, type RateLimitOptions, type RouteLimit } from './core.js';
import { defaultIpKey } from './core.js';
import type { IncomingMessage } from 'node:http';

/** The parts of a Fastify request the plugin reads (structural: no import of fastify). */
export interface FastifyRequestLike {
  /** The Node request. */
  readonly raw: IncomingMessage;
  /** Whether no route matched (Fastify's getter reads one field; `routeOptions` builds an object). */
  readonly is404: boolean;
}

/** The parts of a Fastify reply the plugin writes. */
export interface FastifyReplyLike {
  /** Whether a reply has been sent. */
  readonly sent: boolean;
  /** The Node response. */
  readonly raw: RawReplyLike;
  /** Sets a response header. */
  header(name: string, value: string): unknown;
  /** Sets the status. */
  code(status: number): unknown;
  /** Sends the reply. */
  send(payload: string): unknown;
}

/** The parts of the Node response behind a Fastify reply the plugin reads. */
export interface RawReplyLike {
  /** Whether the head has been sent. */
  readonly headersSent: boolean;
  /** Whether the connection is gone. */
  readonly destroyed?: boolean;
}

/** The parts of a Fastify instance the plugin uses. */
export interface FastifyInstanceLike {
  /** Adds the global `onRequest` hook (for requests no route matched). */
  addHook(
    name: 'onRequest',
    hook: (request: never, reply: never, done: (error?: Error) => void) => void,
  ): unknown;
  /** Adds the `onRoute` hook that gives each route its limiting hook. */
  addHook(name: 'onRoute', hook: (route: FastifyRouteLike) => void): unknown;
}

/** The parts of a route's options the plugin reads and extends (in Fastify's `onRoute`). */
export interface FastifyRouteLike {
  /** The route's path, for error messages. */
  readonly url?: string;
  /** The route's config; `rateLimit` is read from it. */
  readonly config?: unknown;
  /** The route's own `onRequest` hooks; the plugin puts its hook first. */
  onRequest?: unknown;
}

/**
 * A route's `config.rateLimit`: `false` exempts the route; `{ tier, cost }` overrides the
 * plugin's `tier` / `cost` for it (checked when the route is registered).
 */
export type FastifyRouteRateLimit<Req = FastifyRequestLike> = false | RouteLimit<Req>;

/** A Fastify plugin function, marked to apply to the whole app. */
export interface FastifyRateLimitPlugin {
  (instance: FastifyInstanceLike, options: unknown, done: (error?: Error) => void): void;
  readonly [key: symbol]: unknown;
}

/**
 * Rate limiting as a Fastify plugin: an `onRequest` hook on every route registered after it
 * (added in `onRoute`, with the route's config captured: nothing is looked up per request) and a
 * global one that limits requests no route matched, so every request is counted — 404s
 * included — before body parsing. Routes override per route with
 * `config: { rateLimit: { tier, cost } }` or opt out with `config: { rateLimit: false }`;
 * register the plugin before the routes so their configs are checked at registration. The
 * plugin is marked `skip-override`: registered in any scope, it applies app-wide. Answers,
 * headers, guest-callback and double-counting rules are those of `rateLimit`.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { Tiers } from 'sluice/rate';
 * import { fastifyRateLimit } from 'sluice/rate/http';
 * const app = Fastify();
 * await app.register(fastifyRateLimit({ tiers: new Tiers({ auth: '5/1m', read: '120/1m' }), tier: () => 'read' }));
 * app.post('/login', { config: { rateLimit: { tier: 'auth' } } }, async () => ({ ok: true }));
 * app.get('/health', { config: { rateLimit: false } }, async () => 'ok');
 * ```
 */
export function fastifyRateLimit<Req extends FastifyRequestLike = FastifyRequestLike>(
  options: RateLimitOptions<Req>,
): FastifyRateLimitPlugin {
  const engine = new Engine<Req>(options, (req) => defaultIpKey(req.raw), true);

  function check(url: string | undefined, config: unknown): void {
    if (typeof config !== 'object' || config === null) return;
    const limit = (config as { rateLimit?: unknown }).rateLimit;
    if (limit === undefined) return;
    const label = `config.rateLimit of route ${url ?? '?'}`;
    if (limit === false) return;
    if (typeof limit !== 'object' || limit === null) {
      throw new TypeError(v.expectation(label, 'false or { tier, cost }', limit));
    }
    const { tier, cost } = limit as RouteLimit<Req>;
    if (tier !== undefined) {
      if (!engine.usesTiers)
        throw new TypeError(v.expectation(`${label}.tier`, 'undefined with `limiter`', tier));
      if (typeof tier !== 'string' || !engine.hasTier(tier)) {
        throw new TypeError(v.expectation(`${label}.tier`, 'a tier name of `tiers`', tier));
      }
    }
    if (cost !== undefined && typeof cost !== 'function') v.nonNegativeInteger(`${label}.cost`, cost);
  }

  const limit = (
    request: Req,
    reply: FastifyReplyLike,
    done: (error?: Error) => void,
    route: RouteLimit<Req> | undefined,
  ): void => {
    const outcome = engine.decide(request, request.raw, route);
    if (outcome instanceof Promise) outcome.then((o) => finish(o, reply, done), ignore);
    else finish(outcome, reply, done);
  };

  const onRoute = (route: FastifyRouteLike): void => {
    check(route.url, route.config);
    const config = route.config as { rateLimit?: FastifyRouteRateLimit<Req> } | undefined;
    const own = config?.rateLimit;
    if (own === false) return;
    const hook = (request: Req, reply: FastifyReplyLike, done: (error?: Error) => void): void =>
      limit(request, reply, done, own);
    // First among the route's own hooks: a denied request costs no user hook.
    const existing = route.onRequest;
    route.onRequest =
      existing === undefined
        ? [hook]
        : Array.isArray(existing)
          ? [hook, ...(existing as unknown[])]
          : [hook, existing];
  };

  const onNotFound = (request: Req, reply: FastifyReplyLike, done: (error?: Error) => void): void => {
    if (request.is404) limit(request, reply, done, undefined);
    else done();
  };

  const plugin = (instance: FastifyInstanceLike, _options: unknown, done: (error?: Error) => void): void => {
    instance.addHook('onRoute', onRoute);
    instance.addHook('onRequest', onNotFound as (request: never, reply: never, done: () => void) => void);
    done();
  };
  Object.defineProperty(plugin, Symbol.for('skip-override'), { value: true });
  Object.defineProperty(plugin, Symbol.for('fastify.display-name'), { value: 'sluice-rate-limit' });
  return plugin as FastifyRateLimitPlugin;
}

const ignore = (): void => undefined;

function finish(outcome: Outcome, reply: FastifyReplyLike, done: (error?: Error) => void): void {
  if (reply.sent || reply.raw.headersSent || reply.raw.destroyed === true) return;
  const headers = outcome.headers;
  for (let i = 0; i < headers.length; i++) reply.header(headers[i]![0], headers[i]![1]);
  if (outcome.pass) {
    done();
    return;
  }
  reply.code(outcome.status);
  reply.send(outcome.body);
}
