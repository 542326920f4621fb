import type { RatePolicy } from './policy.js';

/**
 * What a rate limiter decided for one request. Every algorithm and every store answers with
 * this shape; times are whole milliseconds, rounded up (never earlier than the truth).
 */
export interface RateDecision {
  /** Whether the request may proceed. In `mode: 'shadow'` always `true`; see `shadowed`. */
  readonly allowed: boolean;
  /** The policy's `limit` (the `q` of the `RateLimit-Policy` header). */
  readonly limit: number;
  /** How many more cost units this key could spend right now. */
  readonly remaining: number;
  /** Milliseconds until this key's quota is whole again (the `t` of the `RateLimit` header). */
  readonly resetMs: number;
  /**
   * `0` when allowed. When denied: milliseconds until the same request would be allowed,
   * rounded up — retrying after exactly this long succeeds if nothing else spent the quota.
   */
  readonly retryAfterMs: number;
  /** The policy that decided. */
  readonly policy: RatePolicy;
  /** `mode: 'shadow'` only: `true` when the request would have been denied and was let through. */
  readonly shadowed?: boolean;
  /** Set when the store failed and `onStoreError` decided instead: the store's error. */
  readonly storeError?: unknown;
  /**
   * `true` when the store failed and `onStoreError: 'fail-closed'` denied the request: not the
   * client's fault (HTTP adapters answer 503, not 429). A denial by a `fallback` store is an
   * ordinary rate-limit denial and does not set it.
   */
  readonly unavailable?: boolean;
}

/**
 * Shared state behind rate limiters: an in-process {@link MemoryStore}, a `RedisStore`, or your
 * own. A store runs the policy's algorithm atomically per key and answers with a full
 * {@link RateDecision}. State is kept per `(policy.name, key)`: `key` is the limiter's key as the
 * caller gave it, and the store namespaces it by the policy's name (a `RedisStore` uses
 * `<prefix><name>:<key>`), so limiters and tiers sharing a store never share keys unless they
 * share a name. `nowMs` is the limiter's clock reading; a store with a clock of its own (Redis
 * `TIME`) ignores it.
 */
export interface RateStore {
  /** Spends `cost` from `key` if the policy allows it; otherwise changes nothing. */
  consume(
    key: string,
    policy: RatePolicy,
    cost: number,
    nowMs: number,
    signal?: AbortSignal,
  ): Promise<RateDecision>;
  /** The decision a request of cost 1 would get now, without spending anything. */
  peek(key: string, policy: RatePolicy, nowMs: number, signal?: AbortSignal): Promise<RateDecision>;
  /** Forgets `key`: its next request starts from a whole quota. */
  reset(key: string, policy: RatePolicy, signal?: AbortSignal): Promise<void>;
  /** Releases what the store owns (connections). Optional. */
  close?(): Promise<void>;
}

/** A store that can decide synchronously (in process): what `RateLimiter.tryConsume` needs. */
export interface SyncRateStore extends RateStore {
  /** {@link RateStore.consume}, synchronously. */
  consumeSync(key: string, policy: RatePolicy, cost: number, nowMs: number): RateDecision;
  /** {@link RateStore.peek}, synchronously. */
  peekSync(key: string, policy: RatePolicy, nowMs: number): RateDecision;
}

/** Builds a decision from µs quantities, rounding every time up to whole ms. */
export function decide(
  policy: RatePolicy,
  allowed: boolean,
  remaining: number,
  resetUs: number,
  retryUs: number,
): RateDecision {
  return {
    allowed,
    limit: policy.limit,
    remaining,
    resetMs: resetUs > 0 ? Math.ceil(resetUs / 1000) : 0,
    retryAfterMs: retryUs > 0 ? Math.ceil(retryUs / 1000) : 0,
    policy,
  };
}
