import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { headlineRatio, headlineText } from '../../scenarios/harness/headline.js';
import type { Headline, Scenario } from '../../scenarios/harness/types.js';
import { loadScenarios, main, selectScenarios, type Io } from '../../scenarios/index.js';

const KEYS = ['seed', 'scenario', 'naive', 'sluice', 'ratio', 'invariant', 'ok', 'headline', 'fix'];

function capture(columns = 120): { io: Io; out: string[]; err: () => string } {
  const out: string[] = [];
  let err = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      err += chunk.toString();
      done();
    },
  });
  return { io: { out: (l) => out.push(l), err: stream, columns }, out, err: () => err };
}

const fake = (name: string, run: Scenario['run']): Scenario => ({
  seed: '999',
  name,
  workload: `fake ${name}`,
  api: 'Fake.api',
  run,
});
const passing = fake('passing', async () => ({
  naive: { ms: 10 },
  sluice: { ms: 5 },
  headline: { measure: 'time', unit: 'ms', naive: 10, sluice: 5, better: 'lower' },
  invariant: 'holds',
  ok: true,
}));
const failing = fake('failing', async () => ({
  naive: { ms: 10 },
  sluice: { ms: 20 },
  headline: { measure: 'time', unit: 'ms', naive: 10, sluice: 20, better: 'lower' },
  invariant: 'broken',
  ok: false,
}));
const pattern: Scenario = {
  ...fake('pattern', async () => ({
    naive: { lost: 53 },
    sluice: { lost: 0 },
    headline: { measure: 'lost', of: 60, naive: 53, sluice: 0, better: 'lower' },
    invariant: 'none lost',
    ok: true,
  })),
  api: null,
  pattern: 'a Set',
};
const long = fake('long', async () => ({
  naive: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`item${i}Ms`, 1000 + i + 0.25])),
  sluice: { ms: 1 },
  invariant: 'a long invariant '.repeat(12).trim(),
  ok: true,
}));
const throwing = fake('throwing', async () => {
  throw new Error('boom');
});

describe('npm start -- --json --quick (every scenario, scaled down)', () => {
  let run: SpawnSyncReturns<string> | undefined;
  const lines = (): Record<string, unknown>[] => {
    run ??= spawnSync(process.execPath, ['--import', 'tsx', 'scenarios/index.ts', '--json', '--quick'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    return run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };

  it('one line per scenario in the documented shape, every invariant holds, exit 0', () => {
    const names = lines().map((l) => l['scenario']);
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
    for (const line of lines()) {
      assert.deepEqual(Object.keys(line), KEYS);
      assert.equal(line['ok'], true, `${String(line['scenario'])}: ${String(line['invariant'])}`);
      assert.match(String(line['seed']), /^\d{3}$/);
      const headline = line['headline'] as { text?: unknown } | null;
      assert.ok(line['ratio'] === null || typeof line['ratio'] === 'number');
      assert.equal(typeof headline?.text, 'string', `${String(line['scenario'])}: no headline`);
      assert.equal(typeof line['fix'], 'string');
      assert.equal(typeof line['invariant'], 'string');
      assert.equal(typeof line['naive'], 'object');
      assert.equal(typeof line['sluice'], 'object');
    }
  });

  it('names the measure of every ratio; patterns say they use no sluice API', () => {
    const names = new Map(lines().map((l) => [l['scenario'], l]));
    const text = (n: string) => (names.get(n)?.['headline'] as { text: string }).text;
    assert.match(text('registry-stampede'), /^100× fewer loads \(100 → 1\)$/);
    assert.match(text('registration-race'), /^0 of 60 lost vs \d+$/);
    assert.match(text('independent-awaits'), /^[\d.]+× faster \([\d.]+ → [\d.]+ ms\)$/);
    assert.equal(names.get('registration-race')?.['ratio'], null);
    assert.match(String(names.get('duplicate-detection')?.['fix']), /^pattern — no sluice API/);
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

  it('prints a table at 100 columns: a summary line per scenario, details below, no number split', async () => {
    const { io, out } = capture(100);
    assert.equal(await main([], io, [passing, pattern, long]), 0);
    const text = out.join('\n');
    for (const line of text.split('\n')) assert.ok(line.length <= 100, `too wide: ${line}`);
    assert.match(text, /^seed\s+scenario\s+headline\s+sluice API\s+ok$/m);
    assert.match(text, /^999\s+passing\s+2× faster \(10 → 5 ms\)\s+Fake\.api\s+ok$/m);
    assert.match(text, /^\s+naive\s+10 ms$/m);
    assert.match(text, /^\s+sluice\s+5 ms$/m);
    assert.match(text, /^\s+check\s+holds$/m);
    // A pattern says it uses no sluice API, and its measured side is "fixed", not "sluice".
    assert.match(text, /^999\s+pattern\s+0 of 60 lost vs 53\s+none \(pattern\)\s+ok$/m);
    assert.match(text, /^\s+fix\s+pattern — no sluice API \(a Set\)$/m);
    assert.match(text, /^\s+fixed\s+lost 0$/m);
    // Wrapped measures break between items, never inside a number.
    for (let i = 0; i < 40; i++) assert.match(text, new RegExp(`item${i} ${1000 + i}\\.25 ms`));
    assert.match(text, /seed report \(999 unknown report\)/);
    assert.match(text, /1\/1|3\/3 scenarios held their invariant/);
  });

  it('stacks one block per scenario when the terminal is narrow', async () => {
    const { io, out } = capture(60);
    assert.equal(await main([], io, [passing, pattern, long]), 0);
    const text = out.join('\n');
    for (const line of text.split('\n')) assert.ok(line.length <= 60, `too wide: ${line}`);
    assert.doesNotMatch(text, /^seed\s+scenario/m);
    assert.match(
      text,
      /^999 passing {2}ok\n {2}2× faster \(10 → 5 ms\)\n {2}uses Fake\.api\n {2}naive {3}10 ms\n {2}sluice {2}5 ms\n {2}check {3}holds$/m,
    );
    assert.match(
      text,
      /^999 pattern {2}ok\n {2}0 of 60 lost vs 53\n {2}fix {5}pattern — no sluice API \(a Set\)$/m,
    );
    for (let i = 0; i < 40; i++) assert.match(text, new RegExp(`item${i} ${1000 + i}\\.25 ms`));
  });

  it('names the measure and direction of each headline; no ratio where none is meaningful', () => {
    const h = (x: Partial<Headline>): Headline => ({
      measure: 'loads',
      naive: 100,
      sluice: 1,
      better: 'lower',
      ...x,
    });
    assert.equal(headlineText(h({})), '100× fewer loads (100 → 1)');
    assert.equal(headlineRatio(h({})), 100);
    assert.equal(
      headlineText(h({ measure: 'time', unit: 'ms', naive: 133.8, sluice: 40 })),
      '3.3× faster (133.8 → 40 ms)',
    );
    assert.equal(
      headlineText(h({ measure: 'time', unit: 'ms', naive: 137, sluice: 221 })),
      '1.6× slower (137 → 221 ms)',
    );
    assert.equal(
      headlineText(h({ measure: 'concurrency', naive: 10, sluice: 20, better: 'higher' })),
      '2× more concurrency (10 → 20)',
    );
    assert.equal(
      headlineText(h({ measure: 'p99', unit: 'µs', naive: 900, sluice: 3 })),
      '300× lower p99 (900 → 3 µs)',
    );
    assert.equal(headlineText(h({ measure: 'lost', of: 60, naive: 53, sluice: 0 })), '0 of 60 lost vs 53');
    assert.equal(headlineRatio(h({ measure: 'lost', of: 60, naive: 53, sluice: 0 })), null);
    const heap = h({ measure: 'retained heap', unit: 'MiB', naive: 180.3, sluice: 0.2, form: 'change' });
    assert.equal(headlineText(heap), 'retained heap 180.3 → 0.2 MiB');
    assert.equal(headlineRatio(heap), null);
    assert.equal(headlineText(h({ sluice: 0 })), 'loads 100 → 0');
    assert.equal(headlineText(undefined), '');
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
