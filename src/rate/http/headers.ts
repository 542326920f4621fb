import * as v from '../../internal/validate.js';
import type { RateDecision } from '../store.js';
import type { RatePolicy } from '../policy.js';

/**
 * Which rate-limit headers responses carry:
 * - `'draft'` — `RateLimit-Policy` and `RateLimit` of draft-ietf-httpapi-ratelimit-headers-11
 *   (Structured Field Lists: `"read";q=120;w=60` and `"read";r=37;t=12`);
 * - `'legacy'` — `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix
 *   time in whole seconds, rounded up, when the quota is whole again — what slowapi, GitHub
 *   and express-rate-limit send);
 * - `'both'`; `false` — none (a denial still carries `Retry-After`).
 */
export type HeadersMode = 'draft' | 'legacy' | 'both' | false;

/** Largest integer a Structured Field Integer may hold (RFC 9651 §3.3.1: 15 digits). */
const SF_MAX = 999_999_999_999_999;
const PRINTABLE = /^[\x20-\x7e]*$/;
const ESCAPE = /["\\]/g;
const MAX_ID = 256;

/**
 * `name` as an RFC 9651 sf-string: `"` and `\` escaped. Throws `TypeError` (DESIGN shape) for a
 * name a header cannot carry: characters outside printable ASCII, or longer than 256.
 */
export function sfString(label: string, name: string): string {
  if (!PRINTABLE.test(name) || name.length > MAX_ID) {
    throw new TypeError(
      v.expectation(
        label,
        'printable ASCII (0x20–0x7E), at most 256 characters, to be a RateLimit header id',
        name,
      ),
    );
  }
  return `"${name.replace(ESCAPE, '\\$&')}"`;
}

/** A non-negative sf-integer from any number: NaN and negatives → 0, huge → the SF maximum. */
export function sfInt(n: number): number {
  if (!(n > 0)) return 0;
  return n >= SF_MAX ? SF_MAX : Math.floor(n);
}

/** Whole seconds from ms, rounded up (never earlier than the truth), bounded. */
export function ceilSeconds(ms: number): number {
  if (!(ms > 0)) return 0;
  return ms >= SF_MAX * 1000 ? SF_MAX : Math.max(1, Math.ceil(ms / 1000));
}

/** The constant parts of one policy's headers, computed once per limiter. */
export interface PolicyHeaders {
  /** The sf-string id, quoted and escaped. */
  readonly id: string;
  /** `RateLimit-Policy` value. */
  readonly policy: string;
  /** `X-RateLimit-Limit` value. */
  readonly limit: string;
}

/** Precomputes a policy's header parts; throws `TypeError` for a name a header cannot carry. */
export function policyHeaders(policy: RatePolicy, label: string): PolicyHeaders {
  const id = sfString(label, policy.name);
  return {
    id,
    policy: `${id};q=${sfInt(policy.limit)};w=${ceilSeconds(policy.windowMs)}`,
    limit: String(sfInt(policy.limit)),
  };
}

/** A header list: `[name, value]` pairs, lower-case names. */
export type HeaderList = [string, string][];

/**
 * The rate-limit headers of one decision. `Retry-After` is added for denials by the caller.
 * `nowMs` (wall clock) is read only for `legacy` headers.
 */
export function decisionHeaders(
  mode: HeadersMode,
  parts: PolicyHeaders,
  decision: RateDecision,
  out: HeaderList,
): HeaderList {
  if (mode === false) return out;
  const remaining = sfInt(decision.remaining);
  const reset = ceilSeconds(decision.resetMs);
  if (mode !== 'legacy') {
    out.push(['ratelimit-policy', parts.policy], ['ratelimit', `${parts.id};r=${remaining};t=${reset}`]);
  }
  if (mode !== 'draft') {
    out.push(
      ['x-ratelimit-limit', parts.limit],
      ['x-ratelimit-remaining', String(remaining)],
      [
        'x-ratelimit-reset',
        String(Math.ceil((Date.now() + Math.min(decision.resetMs > 0 ? decision.resetMs : 0, 1e15)) / 1000)),
      ],
    );
  }
  return out;
}

/** `Retry-After` in whole seconds, rounded up, at least 1 for a denial. */
export function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, ceilSeconds(retryAfterMs));
}
