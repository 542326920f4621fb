// Scenario 003 overload, scaled down: 2× a dependency's capacity through a fixed Limiter vs an
// AdaptiveLimit with maxQueueWaitMs. The invariant compares the two sides of one run.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Limiter } from '../../src/limit/index.js';
import { AdaptiveLimit } from '../../src/resilience/index.js';
import { overload, overloadHolds } from '../../scenarios/003-overload.js';

it('overload: adaptive + shedding keeps goodput near capacity and p99 under the deadline; fixed queues past it', async () => {
  const naive = await overload(new Limiter({ concurrency: 64, maxQueue: Infinity }), 1200);
  const limit = new AdaptiveLimit({ min: 2, max: 256 });
  const fixed = await overload(
    new Limiter({ concurrency: limit, maxQueue: Infinity, maxQueueWaitMs: 50 }),
    1200,
  );
  const detail = JSON.stringify({ naive, fixed });
  assert.ok(naive.peakOutstanding >= 1000, `1000+ concurrent callers: ${detail}`);
  assert.ok(fixed.goodputShare >= 0.5, `goodput ≥ 50% of capacity (~97% unloaded): ${detail}`);
  assert.ok(fixed.p99Ms <= 400, `p99 of answered ≤ the 400 ms deadline: ${detail}`);
  assert.equal(fixed.late, 0, 'no answer after its caller left');
  assert.ok(fixed.shed > 0 && fixed.abandoned === 0, detail);
  assert.ok(fixed.peakAtDependency <= 256 && limit.limit >= 2 && limit.limit <= 256);
  assert.ok(overloadHolds(naive, fixed), detail);
});
