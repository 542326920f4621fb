import type { RatePolicy } from './policy.js';
import { decide, type RateDecision } from './store.js';

/**
 * The state of one key in an in-process store, for any algorithm. Times are integer µs of the
 * limiter's clock; every quantity stays an integer, so decisions are exact (no float drift
 * between "retry after" and the check made then).
 *
 * - gcra: `a` = theoretical arrival time.
 * - token-bucket: `a` = credit in µs (tokens × interval), `b` = time of the last update.
 * - fixed-window: `a` = window number, `b` = count in it.
 * - sliding-window: `a` = newest segment seen, `b` = sum of `ring`, `c` = newest segment
 *   written; `ring` = counts of the last `segments + 1` segments.
 */
export class KeyState {
  policy: RatePolicy;
  a = 0;
  b = 0;
  c = 0;
  ring: Float64Array | null = null;
  /** When this state is indistinguishable from a fresh key's (µs). */
  expiresUs = 0;

  constructor(policy: RatePolicy, nowUs: number) {
    this.policy = policy;
    init(this, policy, nowUs);
  }
}

/** Resets `state` to a fresh key's state under `policy`. */
export function init(state: KeyState, policy: RatePolicy, nowUs: number): void {
  state.policy = policy;
  state.b = 0;
  state.c = 0;
  state.expiresUs = nowUs;
  state.ring = null;
  switch (policy.algorithm) {
    case 'gcra':
      state.a = nowUs;
      break;
    case 'token-bucket':
      state.a = policy.capacity * policy.intervalUs;
      state.b = nowUs;
      break;
    case 'fixed-window':
      state.a = Math.floor(nowUs / policy.windowUs);
      break;
    case 'sliding-window':
      state.ring = new Float64Array(policy.segments + 1);
      state.a = Math.floor(nowUs / policy.segmentUs);
      state.c = state.a;
      break;
  }
}

/**
 * Decides a request of `cost` for `state` at `nowUs`; spends it when allowed and `commit` is
 * true (`commit: false` is a peek). `cost` must be an integer in `0..policy.capacity`.
 */
export function apply(
  state: KeyState,
  policy: RatePolicy,
  nowUs: number,
  cost: number,
  commit: boolean,
): RateDecision {
  switch (policy.algorithm) {
    case 'gcra':
      return gcra(state, policy, nowUs, cost, commit);
    case 'token-bucket':
      return tokenBucket(state, policy, nowUs, cost, commit);
    case 'fixed-window':
      return fixedWindow(state, policy, nowUs, cost, commit);
    case 'sliding-window':
      return slidingWindow(state, policy, nowUs, cost, commit);
  }
}

function gcra(state: KeyState, policy: RatePolicy, now: number, cost: number, commit: boolean): RateDecision {
  const interval = policy.intervalUs;
  const horizon = now + policy.burst * interval + interval; // a TAT up to here conforms
  const tat = state.a > now ? state.a : now;
  const next = tat + cost * interval;
  if (next <= horizon) {
    if (commit) state.a = state.expiresUs = next;
    return decide(policy, true, Math.floor((horizon - next) / interval), next - now, 0);
  }
  return decide(policy, false, Math.floor((horizon - tat) / interval), tat - now, next - horizon);
}

function tokenBucket(
  state: KeyState,
  policy: RatePolicy,
  now: number,
  cost: number,
  commit: boolean,
): RateDecision {
  const interval = policy.intervalUs;
  const full = policy.capacity * interval;
  const elapsed = now > state.b ? now - state.b : 0;
  const credit = state.a + elapsed < full ? state.a + elapsed : full;
  const need = cost * interval;
  if (credit >= need) {
    const left = credit - need;
    if (commit) {
      state.a = left;
      state.b = now;
      state.expiresUs = now + full - left;
    }
    return decide(policy, true, Math.floor(left / interval), full - left, 0);
  }
  return decide(policy, false, Math.floor(credit / interval), full - credit, need - credit);
}

function fixedWindow(
  state: KeyState,
  policy: RatePolicy,
  now: number,
  cost: number,
  commit: boolean,
): RateDecision {
  const window = policy.windowUs;
  const id = Math.floor(now / window);
  const count = state.a === id ? state.b : 0;
  const end = (id + 1) * window;
  if (count + cost <= policy.limit) {
    if (commit) {
      state.a = id;
      state.b = count + cost;
      state.expiresUs = end;
    }
    return decide(policy, true, policy.limit - count - cost, count + cost > 0 ? end - now : 0, 0);
  }
  return decide(policy, false, policy.limit - count, end - now, end - now);
}

function slot(segment: number, size: number): number {
  const i = segment % size;
  return i < 0 ? i + size : i;
}

function slidingWindow(
  state: KeyState,
  policy: RatePolicy,
  now: number,
  cost: number,
  commit: boolean,
): RateDecision {
  const ring = state.ring as Float64Array;
  const size = ring.length; // segments + 1: every segment a window of length `window` can touch
  const span = policy.segmentUs;
  const current = Math.floor(now / span);
  // Drop segments that left the counted range; at most `size` steps, whatever the gap.
  if (current > state.a) {
    const steps = current - state.a < size ? current - state.a : size;
    for (let k = 1; k <= steps; k++) {
      const i = slot(current - steps + k, size);
      state.b -= ring[i] as number;
      ring[i] = 0;
    }
    state.a = current;
  }
  const oldest = current - size + 1;
  const total = state.b;
  if (total + cost <= policy.limit) {
    if (commit && cost > 0) {
      const i = slot(current, size);
      ring[i] = (ring[i] as number) + cost;
      state.b = total + cost;
      state.c = current;
      state.expiresUs = (current + size) * span;
    }
    // As if spent (a peek too, like the other algorithms): the reset never depends on when a
    // never-written key's state happened to be created.
    const newest = cost > 0 ? current : newestWritten(state, oldest);
    const reset = total + cost > 0 && newest >= oldest ? (newest + size) * span - now : 0;
    return decide(policy, true, policy.limit - total - cost, reset, 0);
  }
  // Denied: find how many of the oldest segments must leave before the request fits.
  const excess = total + cost - policy.limit;
  let dropped = 0;
  let retry = 0;
  for (let segment = oldest; segment <= current; segment++) {
    dropped += ring[slot(segment, size)] as number;
    if (dropped >= excess) {
      retry = (segment + size) * span - now;
      break;
    }
  }
  const newest = newestWritten(state, oldest);
  return decide(policy, false, policy.limit - total, (newest + size) * span - now, retry);
}

function newestWritten(state: KeyState, oldest: number): number {
  return state.c >= oldest ? state.c : oldest - 1;
}
