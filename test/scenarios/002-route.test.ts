import assert from 'node:assert/strict';
import { it } from 'node:test';
import { SIZE_ENV } from '../../scenarios/harness/size.js';

it('002 least-loaded-routing: Router makes no stale pick; the report’s push-only heap does', async () => {
  // The scenario reads its size at module load.
  process.env[SIZE_ENV] = 'quick';
  const { default: scenarios } = await import('../../scenarios/002-route.js');
  const scenario = scenarios.find((s) => s.name === 'least-loaded-routing');
  assert.ok(scenario !== undefined);
  const result = await scenario.run({ progress: () => undefined, signal: new AbortController().signal });
  assert.equal(result.ok, true, result.invariant);
  assert.equal(result.sluice['stalePicks'], 0);
  assert.equal(result.naive['scanStalePicks'], 0);
  assert.ok(Number(result.naive['heapStalePicks']) > 0);
  assert.ok(Number(result.naive['heapEntries']) > 1000, 'the push-only heap grows past one entry per pool');
  assert.equal(result.sluice['heapEntries'], 1000);
  assert.match(result.invariant, /^every one of 20000 Router picks had the minimum load/);
});
