// AdaptiveLimit invariant: the limit stays an integer in [min, max] whatever it is fed, and every
// change is published once (convergence: adaptive-limit.convergence.test.ts).
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { it } from 'node:test';
import fc from 'fast-check';
import { AdaptiveLimit, type AdaptiveLimitChange } from '../../src/resilience/index.js';

const sample = fc.record({
  rtt: fc.oneof(
    { weight: 8, arbitrary: fc.double({ min: 0, max: 1e4, noNaN: true }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(Number.NaN, -1, Infinity, -Infinity, 0, Number.MAX_VALUE, 1e-300),
    },
  ),
  inflight: fc.integer({ min: 0, max: 5000 }),
  dropped: fc.boolean(),
  dt: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 500, noNaN: true })),
});

it('property: the limit is always an integer in [min, max]; a change is published only when it changes', async () => {
  const published: AdaptiveLimitChange[] = [];
  const onMessage = (m: unknown) => published.push(m as AdaptiveLimitChange);
  subscribe('sluice:limit:adaptive', onMessage);
  try {
    fc.assert(
      fc.property(
        fc.constantFrom('gradient' as const, 'aimd' as const),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 0, max: 200 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(sample, { maxLength: 400, size: 'max' }),
        (algorithm, min, extra, at, minSamples, samples) => {
          const max = min + extra;
          const initial = min + Math.floor(at * extra);
          const limit = new AdaptiveLimit({
            algorithm,
            min,
            max,
            initial,
            minSamples,
            windowMs: 10,
            probeIntervalMs: 200,
            timeoutMs: 5000,
          });
          published.length = 0;
          let now = 0;
          let seen = limit.limit;
          const ok = (n: number) => Number.isInteger(n) && n >= min && n <= max;
          assert.ok(ok(limit.limit), `initial ${limit.limit}`);
          for (const s of samples) {
            now += s.dt;
            limit.sample(s.rtt, s.inflight, s.dropped, now);
            assert.ok(ok(limit.limit), `${limit.limit} outside [${min}, ${max}]`);
          }
          // The messages chain from the first limit to the current one, each a real change (one
          // sample can close a window and start a probe: two changes).
          for (const m of published) {
            assert.equal(m.adaptiveLimit, limit);
            assert.equal(m.previous, seen);
            assert.notEqual(m.limit, m.previous);
            assert.ok(ok(m.limit));
            seen = m.limit;
          }
          assert.equal(seen, limit.limit);
          assert.equal(limit.stats.changes, published.length);
        },
      ),
      { numRuns: 500 },
    );
  } finally {
    unsubscribe('sluice:limit:adaptive', onMessage);
  }
});
