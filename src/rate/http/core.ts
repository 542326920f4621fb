import { RateLimitedError } from '../../errors.js';
import { channels } from '../../internal/channels.js';
import { reportError, watchResult } from '../../internal/report.js';
import * as v from '../../internal/validate.js';
import { RateLimiter } from '../rate-limiter.js';
import type { RateDecision } from '../store.js';
import { Tiers } from '../tiers.js';
import {
  decisionHeaders,
  policyHeaders,
  retryAfterSeconds,
  type HeaderList,
  type HeadersMode,
  type PolicyHeaders,
} from './headers.js';
import { ipKey, type IpSource } from './ip-key.js';
import { httpStatusOf } from './status.js';

/** A value or a promise of it: callbacks may be sync or async. */
export type Awaitable<T> = T | PromiseLike<T>;

/**
 * Options shared by every adapter; `Req` is what the callbacks receive (the node request, the
 * Fastify request, the Hono context).
 */
export interface RateLimitOptions<Req> {
  /** One limit for every request. Give exactly one of `limiter` and `tiers`. */
  readonly limiter?: RateLimiter | undefined;
  /** Named limits; `tier` picks one per request. Give exactly one of `limiter` and `tiers`. */
  readonly tiers?: Tiers | undefined;
  /**
   * With `tiers`: the tier of a request. Returning `undefined` leaves the request unlimited
   * (and without rate-limit headers); an unknown name answers 500 and is reported. Fastify's
   * route `config.rateLimit.tier` takes precedence.
   */
  readonly tier?: ((req: Req) => Awaitable<string | undefined>) | undefined;
  /**
   * The client a request is counted against. Must return a string; anything else, a throw or a
   * rejection answers 500 and is reported on `sluice:rate:error`.
   * @default ipKey() — the socket's peer address, X-Forwarded-For ignored
   */
  readonly key?: ((req: Req) => Awaitable<string>) | undefined;
  /** Cost units of a request: an integer from 0 to the policy's capacity. @default 1 */
  readonly cost?: ((req: Req) => Awaitable<number>) | undefined;
  /** Which rate-limit headers to send. @default 'draft' */
  readonly headers?: HeadersMode | undefined;
  /**
   * Called for every denied request (429 and fail-closed 503), before the answer is written:
   * for logs and metrics. Its throw or rejection is reported, never answered.
   */
  readonly onLimited?: ((req: Req, decision: RateDecision) => unknown) | undefined;
}

/** Per-route overrides (Fastify's `config.rateLimit`). */
export interface RouteLimit<Req> {
  /** The tier this route's requests consume from (with `tiers`), instead of `tier(req)`. */
  readonly tier?: string | undefined;
  /** This route's cost per request, or a function of the request, instead of `cost(req)`. */
  readonly cost?: number | ((req: Req) => Awaitable<number>) | undefined;
}

/** What the adapter does with a request. */
export type Outcome =
  /** Go on, with these headers (none when the request was not limited or counted already). */
  | { readonly pass: true; readonly headers: HeaderList }
  /** Answer now: 429, a fail-closed 503, or 500/503/504 for a failed callback. */
  | {
      readonly pass: false;
      readonly status: number;
      readonly headers: HeaderList;
      readonly body: string;
    };

const channel = channels('rate', ['error']);
const PROBLEM = 'application/problem+json';
/** Problem type of draft-ietf-httpapi-ratelimit-headers (IANA HTTP Problem Types). */
export const QUOTA_EXCEEDED = 'https://iana.org/assignments/http-problem-types#quota-exceeded';
const EMPTY: HeaderList = [];
const NO_PARTS: PolicyHeaders = { id: '', policy: '', limit: '' };
const PASS_EMPTY: Outcome = { pass: true, headers: EMPTY };
const TITLES: Record<number, string> = {
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/**
 * Requests already counted, per limiter: a request that meets two middlewares built on the same
 * limiter or tier (global + route-level, or mounted twice) is consumed once.
 */
const kCounted = Symbol('sluice.rate.counted');
/** For a request object that cannot take a property (frozen or sealed). */
const countedElsewhere = new WeakMap<object, RateLimiter | Set<RateLimiter>>();

function alreadyCounted(req: object, limiter: RateLimiter): boolean {
  // A symbol property on the request itself is cheaper than a WeakMap entry per request.
  const marked = req as { [kCounted]?: RateLimiter | Set<RateLimiter> };
  const extensible = Object.isExtensible(req);
  const seen = extensible ? marked[kCounted] : countedElsewhere.get(req);
  if (seen === limiter) return true;
  if (seen instanceof Set) {
    if (seen.has(limiter)) return true;
    seen.add(limiter);
    return false;
  }
  const next = seen === undefined ? limiter : new Set([seen, limiter]);
  if (extensible) marked[kCounted] = next;
  else countedElsewhere.set(req, next);
  return false;
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function';
}

/**
 * The framework-independent part of every adapter: validated options, per-limiter header
 * constants, and `decide(req, mark)` → what to answer.
 */
export class Engine<Req> {
  readonly #limiter: RateLimiter | undefined;
  readonly #tiers: Tiers | undefined;
  readonly #tier: ((req: Req) => Awaitable<string | undefined>) | undefined;
  readonly #key: (req: Req) => Awaitable<string>;
  readonly #cost: ((req: Req) => Awaitable<number>) | undefined;
  readonly #onLimited: ((req: Req, decision: RateDecision) => unknown) | undefined;
  readonly mode: HeadersMode;
  readonly #parts = new Map<RateLimiter, PolicyHeaders>();

  constructor(options: RateLimitOptions<Req>, defaultKey: (req: Req) => string, tierOptional = false) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(v.expectation('options', 'an object with `limiter` or `tiers`', options));
    }
    const { limiter, tiers } = options;
    if ((limiter === undefined) === (tiers === undefined)) {
      throw new TypeError(
        v.expectation('options', 'given exactly one of `limiter` and `tiers`', {
          limiter: limiter === undefined ? undefined : '[RateLimiter]',
          tiers: tiers === undefined ? undefined : '[Tiers]',
        }),
      );
    }
    if (limiter !== undefined && !(limiter instanceof RateLimiter)) {
      throw new TypeError(v.expectation('limiter', 'a RateLimiter', limiter));
    }
    if (tiers !== undefined && !(tiers instanceof Tiers)) {
      throw new TypeError(v.expectation('tiers', 'a Tiers', tiers));
    }
    v.optionalFunction('tier', options.tier);
    if (limiter !== undefined && options.tier !== undefined) {
      throw new TypeError(v.expectation('tier', 'undefined when `limiter` is given', options.tier));
    }
    if (tiers !== undefined && options.tier === undefined && !tierOptional) {
      throw new TypeError(v.expectation('tier', 'a function (req) => tier name, with `tiers`', undefined));
    }
    v.optionalFunction('key', options.key);
    v.optionalFunction('cost', options.cost);
    v.optionalFunction('onLimited', options.onLimited);
    this.mode =
      options.headers === undefined
        ? 'draft'
        : options.headers === false
          ? false
          : v.oneOf<'draft' | 'legacy' | 'both'>('headers', options.headers, ['draft', 'legacy', 'both']);
    this.#limiter = limiter;
    this.#tiers = tiers;
    this.#tier = options.tier;
    this.#key = options.key ?? defaultKey;
    this.#cost = options.cost;
    this.#onLimited = options.onLimited;
    // Header ids are checked now, not on the first request.
    if (limiter !== undefined) this.#partsOf(limiter, 'limiter.policy.name');
    else for (const name of tiers!.names) this.#partsOf(tiers!.get(name), `tiers.${name}`);
  }

  /** Whether `name` is a tier of this engine (Fastify checks route configs at registration). */
  hasTier(name: string): boolean {
    return this.#tiers !== undefined && this.#tiers.names.includes(name);
  }

  get usesTiers(): boolean {
    return this.#tiers !== undefined;
  }

  #partsOf(limiter: RateLimiter, label: string): PolicyHeaders {
    let parts = this.#parts.get(limiter);
    if (parts === undefined) {
      if (this.mode === false) return NO_PARTS;
      parts = policyHeaders(limiter.policy, label);
      this.#parts.set(limiter, parts);
    }
    return parts;
  }

  /**
   * Decides one request. `mark` is the object that identifies the request across middlewares
   * (the node request). Never rejects: a failing callback becomes a 500 (or the status
   * {@link httpStatusOf} gives its error), reported on `sluice:rate:error`.
   */
  decide(req: Req, mark: object, route?: RouteLimit<Req>): Outcome | Promise<Outcome> {
    let step = 'tier';
    try {
      let tier: string | undefined;
      if (this.#tiers !== undefined) {
        const picked = route?.tier ?? (this.#tier === undefined ? undefined : this.#tier(req));
        if (isThenable(picked)) return this.#decideAsync(req, mark, route, picked);
        if (picked === undefined) return PASS_EMPTY;
        tier = picked;
      }
      step = 'key';
      const key = this.#key(req);
      if (isThenable(key)) return this.#decideAsync(req, mark, route, tier, key);
      step = 'cost';
      const costFn = route?.cost ?? this.#cost;
      const cost = typeof costFn === 'function' ? costFn(req) : costFn;
      if (isThenable(cost)) return this.#decideAsync(req, mark, route, tier, key, cost);
      step = 'limiter';
      return this.#consume(req, mark, tier, key, cost);
    } catch (error) {
      return this.#failed(req, error, step);
    }
  }

  async #decideAsync(
    req: Req,
    mark: object,
    route: RouteLimit<Req> | undefined,
    tierIn: Awaitable<string | undefined> | undefined,
    keyIn?: Awaitable<string>,
    costIn?: Awaitable<number | undefined>,
  ): Promise<Outcome> {
    let step = 'tier';
    try {
      const tier = await tierIn;
      if (this.#tiers !== undefined && tier === undefined) return PASS_EMPTY;
      step = 'key';
      const key = await (keyIn ?? this.#key(req));
      step = 'cost';
      let cost = costIn;
      if (keyIn === undefined || costIn === undefined) {
        const costFn = route?.cost ?? this.#cost;
        cost = typeof costFn === 'function' ? costFn(req) : costFn;
      }
      const resolved = await cost;
      step = 'limiter';
      return await this.#consume(req, mark, tier, key, resolved);
    } catch (error) {
      return this.#failed(req, error, step);
    }
  }

  #consume(
    req: Req,
    mark: object,
    tier: string | undefined,
    key: unknown,
    cost: number | undefined,
  ): Outcome | Promise<Outcome> {
    let limiter: RateLimiter;
    if (this.#tiers !== undefined) {
      if (typeof tier !== 'string' || !this.#tiers.names.includes(tier)) {
        throw v.invalidInput(
          'tier',
          `one of ${this.#tiers.names.map((n) => `'${n}'`).join(', ')} or undefined`,
          tier,
        );
      }
      limiter = this.#tiers.get(tier);
    } else limiter = this.#limiter!;
    if (typeof key !== 'string') throw v.invalidInput('key', 'a string (what `key` returned)', key);
    if (alreadyCounted(mark, limiter)) return PASS_EMPTY;
    const parts = this.#partsOf(limiter, 'policy name');
    if (limiter.synchronous) {
      // In-process store: decide without a promise. If that throws (a broken clock), the
      // promise path below decides instead, so `onStoreError` applies as it does there.
      let decision: RateDecision | undefined;
      try {
        decision = limiter.tryConsume(key, cost);
      } catch {
        decision = undefined;
      }
      if (decision !== undefined) {
        try {
          return this.#outcome(req, parts, decision);
        } catch (error) {
          return this.#failed(req, error, 'headers');
        }
      }
    }
    return limiter.consume(key, cost === undefined ? undefined : { cost }).then(
      (decision) => {
        try {
          return this.#outcome(req, parts, decision);
        } catch (error) {
          return this.#failed(req, error, 'headers');
        }
      },
      (error: unknown) => this.#failed(req, error, 'limiter'),
    );
  }

  #outcome(req: Req, parts: PolicyHeaders, decision: RateDecision): Outcome {
    const headers = decisionHeaders(this.mode, parts, decision, []);
    if (decision.allowed) return { pass: true, headers };
    this.#notify(req, decision);
    const retry = retryAfterSeconds(decision.retryAfterMs);
    headers.push(['retry-after', String(retry)]);
    if (decision.unavailable === true) {
      return problem(
        503,
        headers,
        'The rate-limit store is unavailable; the request was refused (fail-closed).',
        retry,
      );
    }
    const policy = decision.policy.name;
    return problem(
      429,
      headers,
      `Quota exceeded: ${decision.limit} per ${Math.ceil(decision.policy.windowMs / 1000)} s. Retry in ${retry} s.`,
      retry,
      policy,
    );
  }

  #notify(req: Req, decision: RateDecision): void {
    const onLimited = this.#onLimited;
    if (onLimited === undefined) return;
    try {
      watchResult(onLimited(req, decision), channel.error, this, 'onLimited');
    } catch (error) {
      reportError(channel.error, error, this, 'onLimited');
    }
  }

  #failed(_req: Req, error: unknown, step: string): Outcome {
    const status = httpStatusOf(error) ?? 500;
    if (status === 429 && error instanceof RateLimitedError) {
      const retry = retryAfterSeconds(error.retryAfterMs);
      return problem(429, [['retry-after', String(retry)]], 'Quota exceeded.', retry);
    }
    reportError(channel.error, error, this, step);
    return problem(status, [], `Rate limiting failed (${step}).`, undefined);
  }
}

/** An RFC 9457 problem+json answer. The detail never includes user input. */
function problem(
  status: number,
  headers: HeaderList,
  detail: string,
  retryAfter: number | undefined,
  policy?: string,
): Outcome {
  const body: Record<string, unknown> = {
    type: status === 429 ? QUOTA_EXCEEDED : 'about:blank',
    title: TITLES[status] ?? 'Error',
    status,
    detail,
  };
  if (retryAfter !== undefined) body['retryAfter'] = retryAfter;
  if (policy !== undefined) body['violated-policies'] = [policy];
  headers.push(['content-type', PROBLEM], ['cache-control', 'no-store']);
  return { pass: false, status, headers, body: JSON.stringify(body) };
}

/** The default key of adapters whose callbacks receive a Node-like request. */
export const defaultIpKey: (req: IpSource) => string = ipKey();

/** Reports an error of the HTTP layer on `sluice:rate:error`. */
export function reportHttpError(error: unknown, source: object, where: string): void {
  reportError(channel.error, error, source, where);
}
