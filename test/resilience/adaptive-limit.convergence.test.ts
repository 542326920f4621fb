// AdaptiveLimit convergence: in a deterministic simulation of a dependency of capacity C (see
// simulate.ts: fake time, no timers) the limit settles near C.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { AdaptiveLimit } from '../../src/resilience/index.js';
import { simulate } from './simulate.js';

// Tolerance: gradient's fixed point past C is L = (1 + buffer)·C + √((1 + buffer)·C) (the
// latency it tolerates, plus Envoy's headroom), so "near C" means in [C, that + 2].
const gradientCeiling = (c: number, buffer = 0.1) => (1 + buffer) * c + Math.sqrt((1 + buffer) * c) + 2;

it('property: gradient settles (mean) in [C, 1.1·C + √(1.1·C) + 2] and keeps ≥ 90% of capacity', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 3, max: 30 }),
      fc.integer({ min: 1, max: 100 }),
      async (capacity, initial) => {
        const limit = new AdaptiveLimit({ min: 1, max: 1000, initial, windowMs: 20, probeIntervalMs: 1000 });
        const r = await simulate({
          limit,
          capacity,
          baseMs: 10,
          clients: 3 * capacity + 40,
          durationMs: 3000,
          measureFromMs: 1500,
        });
        const ceiling = gradientCeiling(capacity);
        assert.ok(
          r.meanLimit >= capacity && r.meanLimit <= ceiling,
          `C=${capacity}: mean limit ${r.meanLimit}, ceiling ${ceiling}`,
        );
        assert.ok(
          r.minLimit >= capacity && r.maxLimit <= ceiling + 1,
          `C=${capacity}: limit ${r.minLimit}..${r.maxLimit}, ceiling ${ceiling}`,
        );
        assert.ok(r.throughput >= 0.9 * (capacity / 10), `C=${capacity}: throughput ${r.throughput}`);
        assert.ok(r.meanLatency <= 10 * (ceiling / capacity), `C=${capacity}: latency ${r.meanLatency}`);
      },
    ),
    { numRuns: 4 },
  );
});

it('gradient re-probes its no-load latency: a dependency that got 2× slower keeps its limit near C', async () => {
  const capacity = 30;
  const limit = new AdaptiveLimit({ min: 1, windowMs: 20, probeIntervalMs: 1000 });
  const r = await simulate({
    limit,
    capacity,
    baseMs: 10,
    clients: 120,
    durationMs: 4000,
    measureFromMs: 2500,
    slowerAt: { ms: 1000, baseMs: 20 },
  });
  // Without a re-probe the old 10 ms minimum would read as 2× queueing and halve the limit.
  assert.ok(limit.stats.minRttMs >= 19 && limit.stats.minRttMs <= 21, `minRtt ${limit.stats.minRttMs}`);
  assert.ok(
    r.minLimit >= capacity && r.maxLimit <= gradientCeiling(capacity),
    `${r.minLimit}..${r.maxLimit}`,
  );
});

it('property: aimd against a dependency that fails past C settles in [0.8·C, 1.15·C]', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 10, max: 30 }), async (capacity) => {
      const limit = new AdaptiveLimit({ algorithm: 'aimd', min: 1, max: 1000, windowMs: 20 });
      const r = await simulate({
        limit,
        capacity,
        baseMs: 10,
        clients: 3 * capacity + 40,
        durationMs: 4000,
        measureFromMs: 2000,
        failPastCapacity: true,
      });
      assert.ok(
        r.meanLimit >= 0.8 * capacity && r.meanLimit <= 1.15 * capacity,
        `C=${capacity}: mean ${r.meanLimit} (${r.minLimit}..${r.maxLimit})`,
      );
      assert.ok(r.minLimit >= Math.floor(0.8 * capacity) - 1, `C=${capacity}: min ${r.minLimit}`);
    }),
    { numRuns: 2 },
  );
});
