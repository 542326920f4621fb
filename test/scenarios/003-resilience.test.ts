import assert from 'node:assert/strict';
import { it } from 'node:test';

it('003 flaky-dependency (quick): timeout + budgeted retry + breaker + hedge hold their invariant', async () => {
  process.env['SLUICE_SCENARIOS'] = 'quick';
  const { default: scenario } = await import('../../scenarios/003-resilience.js');
  const controller = new AbortController();
  const result = await scenario.run({ signal: controller.signal, progress: () => undefined });
  assert.ok(result.ok, `${result.invariant}\n${JSON.stringify(result)}`);
  assert.ok(Number(result.sluice['successPct']) >= 95);
  assert.ok(Number(result.sluice['outageSent']) < Number(result.naive['outageSent']));
});
