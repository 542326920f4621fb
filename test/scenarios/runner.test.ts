import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { it } from 'node:test';

it('npm start -- --json: one line per scenario, every invariant holds', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'scenarios/index.ts', '--json'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.length >= 6);
  for (const line of lines) {
    assert.deepEqual(Object.keys(line), ['seed', 'scenario', 'naive', 'sluice', 'ratio', 'invariant', 'ok']);
    assert.equal(line['ok'], true, `${String(line['scenario'])}: ${String(line['invariant'])}`);
    assert.match(String(line['seed']), /^\d{3}$/);
    assert.equal(typeof line['ratio'], 'number');
  }
});
