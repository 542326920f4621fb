// The defining guarantee of each rate algorithm, under a fake clock in integer ms:
// - gcra / token-bucket: never more than `limit + burst` in any window of length `window`;
// - sliding-window: never more than `limit` in any window of length `window`;
// - fixed-window: never more than `limit` in any aligned window;
// and for every algorithm: a denied request's `retryAfterMs` is exact (denied 1 ms earlier,
// allowed then), `remaining` is exactly how many unit requests fit now, a denial spends nothing,
// and GCRA and the token bucket decide identically.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { apply, KeyState } from '../../src/rate/algorithms.js';
import { parsePolicy, type RateAlgorithm, type RatePolicy } from '../../src/rate/policy.js';

const ALGORITHMS: readonly RateAlgorithm[] = ['gcra', 'token-bucket', 'sliding-window', 'fixed-window'];

function clone(state: KeyState): KeyState {
  const copy = new KeyState(state.policy, 0);
  copy.a = state.a;
  copy.b = state.b;
  copy.c = state.c;
  copy.expiresUs = state.expiresUs;
  copy.ring = state.ring === null ? null : state.ring.slice();
  return copy;
}

const policyArb = (algorithm: RateAlgorithm) =>
  fc
    .record({
      limit: fc.integer({ min: 1, max: 12 }),
      window: fc.integer({ min: 1, max: 5000 }),
      burst: fc.integer({ min: 0, max: 15 }),
      segments: fc.integer({ min: 1, max: 12 }),
    })
    .map(({ limit, window, burst, segments }) =>
      parsePolicy(
        algorithm === 'gcra' || algorithm === 'token-bucket'
          ? { limit, window, burst, algorithm }
          : algorithm === 'sliding-window'
            ? { limit, window, segments, algorithm }
            : { limit, window, algorithm },
        'p',
      ),
    );

/** Steps: wait `dt` ms (small or up to two windows), then a request of `cost` (scaled to capacity). */
const stepsArb = fc.array(
  fc.record({
    dt: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 10_000 })),
    cost: fc.double({ min: 0, max: 1, noNaN: true }),
  }),
  { minLength: 1, maxLength: 120 },
);

interface Event {
  readonly at: number;
  readonly cost: number;
}

/** Replays steps on one key; checks exactness of every decision on the way; returns what was allowed. */
function replay(policy: RatePolicy, steps: readonly { dt: number; cost: number }[], start: number): Event[] {
  const state = new KeyState(policy, start * 1000);
  const allowed: Event[] = [];
  let now = start;
  for (const step of steps) {
    now += step.dt % (policy.windowMs * 2 + 1);
    const cost = Math.max(1, Math.ceil(step.cost * policy.capacity));
    const before = clone(state);
    const d = apply(state, policy, now * 1000, cost, true);
    assert.ok(Number.isInteger(d.remaining) && d.remaining >= 0, `remaining ${d.remaining}`);
    assert.ok(Number.isInteger(d.resetMs) && d.resetMs >= 0);
    if (d.allowed) {
      assert.equal(d.retryAfterMs, 0);
      allowed.push({ at: now, cost });
      // `remaining` unit requests fit right now, one more does not.
      const probe = clone(state);
      for (let i = 0; i < d.remaining; i++) assert.ok(apply(probe, policy, now * 1000, 1, true).allowed);
      assert.equal(apply(probe, policy, now * 1000, 1, true).allowed, false, 'remaining + 1 fits');
    } else {
      apply(before, policy, now * 1000, 0, false); // let a sliding window drop old segments too
      assert.deepEqual(state, before, 'a denial spends nothing');
      const r = d.retryAfterMs;
      assert.ok(Number.isInteger(r) && r >= 1, `retryAfterMs ${r}`);
      assert.equal(
        apply(clone(state), policy, (now + r) * 1000, cost, false).allowed,
        true,
        `allowed after ${r} ms`,
      );
      assert.equal(
        apply(clone(state), policy, (now + r - 1) * 1000, cost, false).allowed,
        false,
        `early at ${r - 1} ms`,
      );
    }
  }
  return allowed;
}

/** The most cost allowed in any half-open window [t, t + length) — it suffices to start at events. */
function maxInWindow(events: readonly Event[], length: number): number {
  let best = 0;
  let sum = 0;
  let lo = 0;
  for (let hi = 0; hi < events.length; hi++) {
    sum += events[hi]!.cost;
    while (events[hi]!.at - events[lo]!.at >= length) sum -= events[lo++]!.cost;
    if (sum > best) best = sum;
  }
  return best;
}

const runs = { numRuns: 150, size: 'max' as const };

describe('rate algorithms under a fake clock', () => {
  for (const algorithm of ALGORITHMS) {
    it(`${algorithm}: its window guarantee, exact retryAfterMs and remaining`, () => {
      fc.assert(
        fc.property(
          policyArb(algorithm),
          stepsArb,
          fc.integer({ min: 0, max: 1e9 }),
          (policy, steps, start) => {
            const allowed = replay(policy, steps, start);
            const { limit, burst, windowMs } = policy;
            if (algorithm === 'fixed-window') {
              const perWindow = new Map<number, number>();
              for (const e of allowed) {
                const id = Math.floor(e.at / windowMs);
                perWindow.set(id, (perWindow.get(id) ?? 0) + e.cost);
              }
              for (const sum of perWindow.values())
                assert.ok(sum <= limit, `${sum} > ${limit} in one window`);
            } else {
              const bound = algorithm === 'sliding-window' ? limit : limit + burst;
              const most = maxInWindow(allowed, windowMs);
              assert.ok(most <= bound, `${most} allowed in ${windowMs} ms, bound ${bound}`);
            }
          },
        ),
        runs,
      );
    });
  }

  it('gcra and token-bucket make the same decisions', () => {
    fc.assert(
      fc.property(policyArb('gcra'), stepsArb, (gcraPolicy, steps) => {
        const bucketPolicy = parsePolicy(
          {
            limit: gcraPolicy.limit,
            window: gcraPolicy.windowMs,
            burst: gcraPolicy.burst,
            algorithm: 'token-bucket',
          },
          'p',
        );
        const a = new KeyState(gcraPolicy, 0);
        const b = new KeyState(bucketPolicy, 0);
        let now = 0;
        for (const step of steps) {
          now += step.dt;
          const cost = Math.max(1, Math.ceil(step.cost * gcraPolicy.capacity));
          const x = apply(a, gcraPolicy, now * 1000, cost, true);
          const y = apply(b, bucketPolicy, now * 1000, cost, true);
          assert.deepEqual({ ...x, policy: null }, { ...y, policy: null });
        }
      }),
      runs,
    );
  });

  it('a fresh key spends its whole limit at once by default, then is spaced window / limit apart', () => {
    for (const algorithm of ['gcra', 'token-bucket'] as const) {
      const policy = parsePolicy({ limit: 5, window: 60_000, algorithm }, 'p');
      const state = new KeyState(policy, 0);
      for (let i = 0; i < 5; i++) assert.equal(apply(state, policy, 0, 1, true).allowed, true);
      const denied = apply(state, policy, 0, 1, true);
      assert.equal(denied.allowed, false);
      assert.equal(denied.retryAfterMs, 12_000);
      assert.equal(apply(state, policy, 12_000_000, 1, true).allowed, true);
    }
  });

  it('rounds a fractional interval up: 3 per second denies the 2nd until the 333.334 ms interval has passed', () => {
    const policy = parsePolicy({ limit: 3, window: 1000, burst: 0 }, 'p');
    const state = new KeyState(policy, 0);
    assert.equal(apply(state, policy, 0, 1, true).allowed, true);
    const d = apply(state, policy, 0, 1, true);
    assert.equal(d.retryAfterMs, 334);
    assert.equal(apply(state, policy, 333_333, 1, true).allowed, false);
    assert.equal(apply(state, policy, 334_000, 1, true).allowed, true);
  });
});
