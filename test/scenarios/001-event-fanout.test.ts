import assert from 'node:assert/strict';
import { it } from 'node:test';

// Runs two worker processes on a Redis stream when REDIS_URL is set, else one process with two
// buses on a MemoryTransport; the invariants are the same.
it('001 event-fanout (quick): every event seen by both in one order, the group once, at least once across a kill', async () => {
  process.env['SLUICE_SCENARIOS'] = 'quick';
  const { default: scenario } = await import('../../scenarios/001-event-fanout.js');
  const controller = new AbortController();
  const result = await scenario.run({ signal: controller.signal, progress: () => undefined });
  assert.ok(result.ok, `${result.invariant}\n${JSON.stringify(result)}`);
  assert.equal(result.headline?.sluice, result.headline?.of, 'every event seen by both processes');
  assert.equal(result.headline?.naive, 0, 'per-process emitters share nothing');
  assert.match(String(result.sluice['transport']), process.env['REDIS_URL'] ? /Redis stream/ : /ONE process/);
});
