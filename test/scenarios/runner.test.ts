import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { Scenario } from '../../scenarios/harness/types.js';
import { loadScenarios, main, selectScenarios, type Io } from '../../scenarios/index.js';

const KEYS = ['seed', 'scenario', 'naive', 'sluice', 'ratio', 'invariant', 'ok'];

function capture(): { io: Io; out: string[]; err: () => string } {
  const out: string[] = [];
  let err = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      err += chunk.toString();
      done();
    },
  });
  return { io: { out: (l) => out.push(l), err: stream, columns: 120 }, out, err: () => err };
}

const fake = (name: string, run: Scenario['run']): Scenario => ({
  seed: '999',
  name,
  workload: `fake ${name}`,
  run,
});
const passing = fake('passing', async () => ({
  naive: { ms: 10 },
  sluice: { ms: 5 },
  ratio: 2,
  invariant: 'holds',
  ok: true,
}));
const failing = fake('failing', async () => ({
  naive: { ms: 10 },
  sluice: { ms: 20 },
  ratio: 0.5,
  invariant: 'broken',
  ok: false,
}));
const throwing = fake('throwing', async () => {
  throw new Error('boom');
});

describe('npm start', () => {
  it('--json: one line per scenario in the documented shape, every invariant holds, exit 0', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'scenarios/index.ts', '--json'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const names = lines.map((l) => l['scenario']);
    for (const name of [
      'independent-awaits',
      'episode-batch-c3',
      'pool-status-settled',
      'double-semaphore',
      'duplicate-detection',
      'registration-race',
    ]) {
      assert.ok(names.includes(name), `missing ${name}`);
    }
    for (const line of lines) {
      assert.deepEqual(Object.keys(line), KEYS);
      assert.equal(line['ok'], true, `${String(line['scenario'])}: ${String(line['invariant'])}`);
      assert.match(String(line['seed']), /^\d{3}$/);
      assert.equal(typeof line['ratio'], 'number');
      assert.equal(typeof line['invariant'], 'string');
      assert.equal(typeof line['naive'], 'object');
      assert.equal(typeof line['sluice'], 'object');
    }
  });
});

describe('runner', () => {
  it('discovers every <seed>-*.ts scenario with a unique name', async () => {
    const all = await loadScenarios();
    assert.ok(all.length >= 6);
    assert.equal(new Set(all.map((s) => s.name)).size, all.length);
    for (const s of all) assert.match(s.seed, /^\d{3}$/);
  });

  it('selects by seed, name or part of a name, and reports what matched nothing', () => {
    const all = [passing, failing, { ...throwing, seed: '004' }];
    assert.deepEqual(
      selectScenarios(all, ['004']).selected.map((s) => s.name),
      ['throwing'],
    );
    assert.deepEqual(
      selectScenarios(all, ['fail', 'passing']).selected.map((s) => s.name),
      ['passing', 'failing'],
    );
    assert.deepEqual(selectScenarios(all, ['nope']).unmatched, ['nope']);
  });

  it('prints a table and exits 0 when every invariant holds', async () => {
    const { io, out } = capture();
    assert.equal(await main([], io, [passing]), 0);
    const text = out.join('\n');
    assert.match(text, /seed\s+scenario\s+naive\s+sluice\s+ratio\s+invariant\s+ok/);
    assert.match(text, /999\s+passing\s+10\u00a0ms\s+5\u00a0ms\s+2×\s+holds\s+ok/);
    assert.match(text, /1\/1 scenarios held their invariant/);
  });

  it('exits 1 when an invariant fails or a scenario throws, and keeps the JSON shape', async () => {
    const { io, out } = capture();
    assert.equal(await main(['--json'], io, [passing, failing, throwing]), 1);
    const lines = out.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => [l['scenario'], l['ok']]),
      [
        ['passing', true],
        ['failing', false],
        ['throwing', false],
      ],
    );
    for (const line of lines) assert.deepEqual(Object.keys(line), KEYS);
    assert.match(String(lines[2]?.['invariant']), /threw Error: boom/);

    const table = capture();
    assert.equal(await main([], table.io, [passing, throwing]), 1);
    assert.match(table.out.join('\n'), /1 of 2 scenarios FAILED: throwing/);
    assert.match(table.err(), /FAIL in [\d.]+s: Error: boom/);
  });

  it('--list lists without running; an unknown name or option exits 2', async () => {
    let ran = false;
    const spy = fake('spy', async () => {
      ran = true;
      return passing.run({ progress: () => {}, signal: new AbortController().signal });
    });
    const list = capture();
    assert.equal(await main(['--list'], list.io, [spy]), 0);
    assert.equal(ran, false);
    assert.match(list.out.join('\n'), /999\s+spy\s+fake spy/);
    const unknownName = capture();
    assert.equal(await main(['nope'], unknownName.io, [spy]), 2);
    assert.match(unknownName.err(), /No scenario matches nope/);
    const unknownFlag = capture();
    assert.equal(await main(['--nope'], unknownFlag.io, [spy]), 2);
    assert.equal(ran, false);
  });
});
