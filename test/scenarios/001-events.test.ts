import assert from 'node:assert/strict';
import { it } from 'node:test';
import { SIZE_ENV } from '../../scenarios/harness/size.js';

it('001 event-burst (quick): handlers bounded, duplicates suppressed, nothing lost, history and heap bounded', async () => {
  // The scenario reads its size at module load.
  process.env[SIZE_ENV] = 'quick';
  const { default: scenario } = await import('../../scenarios/001-events.js');
  const result = await scenario.run({ progress: () => undefined, signal: new AbortController().signal });
  assert.equal(result.ok, true, `${result.invariant}\n${JSON.stringify(result)}`);
  const { naive, sluice } = result;
  // Bus-wide bound: never above 100 handlers, while the report's original bus ran a whole burst.
  assert.ok(Number(sluice['maxInFlight']) <= 100);
  assert.equal(naive['maxInFlight'], 200);
  assert.equal(naive['tasksSpawned'], 1000);
  // 500 emits, 150 of them duplicates: 350 distinct events × 2 handlers, each run exactly once.
  assert.equal(sluice['handlerRuns'], 700);
  assert.equal(sluice['deduplicated'], 150);
  assert.equal(sluice['duplicateRuns'], 0);
  assert.equal(naive['duplicateRuns'], 300);
  // History: a ring of 200 (the quick bound) vs one entry per emit.
  assert.equal(sluice['history'], 200);
  assert.equal(naive['history'], 500);
  assert.equal(sluice['soakHistory'], 200);
  assert.equal(naive['soakHistory'], 18_000);
  assert.ok(Number(sluice['soakDedupKeys']) <= 30);
  assert.match(result.invariant, /^handlers in flight ≤ 100 \(max \d+; naive 200, 1000 tasks spawned\)/);
});
