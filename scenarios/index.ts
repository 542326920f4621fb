// `npm start [-- --list | --json | <name-or-seed...>]`: replays every scenario, naive vs sluice.
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import type { Scenario, ScenarioResult } from './harness/types.js';

const dir = dirname(fileURLToPath(import.meta.url));

export async function loadScenarios(): Promise<Scenario[]> {
  const files = readdirSync(dir)
    .filter((f) => /^\d{3}-.+\.ts$/.test(f))
    .sort();
  const out: Scenario[] = [];
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as { default: Scenario | Scenario[] };
    out.push(...(Array.isArray(mod.default) ? mod.default : [mod.default]));
  }
  return out;
}

const fmt = (r: Record<string, number | string>): string =>
  Object.entries(r)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const names = args.filter((a) => !a.startsWith('--'));
  let scenarios = await loadScenarios();
  if (args.includes('--list')) {
    for (const s of scenarios) console.log(`${s.seed}  ${s.name.padEnd(28)} ${s.workload}`);
    return 0;
  }
  if (names.length > 0) {
    scenarios = scenarios.filter((s) => names.some((n) => s.name.includes(n) || s.seed === n));
    if (scenarios.length === 0) {
      console.error(`No scenario matches ${names.join(', ')}; see npm start -- --list`);
      return 2;
    }
  }
  const tty = process.stderr.isTTY && !json;
  let failed = 0;
  const rows: { s: Scenario; r: ScenarioResult | undefined; error?: string }[] = [];
  for (const [i, s] of scenarios.entries()) {
    if (tty) process.stderr.write(`\r\x1b[K[${i + 1}/${scenarios.length}] ${s.seed} ${s.name} …`);
    else if (!json) console.log(`[${i + 1}/${scenarios.length}] ${s.seed} ${s.name}: ${s.workload}`);
    try {
      const r = await s.run();
      if (!r.ok) failed++;
      rows.push({ s, r });
      if (json) console.log(JSON.stringify({ seed: s.seed, scenario: s.name, ...r }));
    } catch (error) {
      failed++;
      const message = error instanceof Error ? error.message : String(error);
      rows.push({ s, r: undefined, error: message });
      if (json) console.log(JSON.stringify({ seed: s.seed, scenario: s.name, ok: false, error: message }));
    }
  }
  if (tty) process.stderr.write('\r\x1b[K');
  if (!json) {
    for (const { s, r, error } of rows) {
      console.log(`\n${r?.ok === true ? 'ok  ' : 'FAIL'} ${s.seed} ${s.name} — ${s.workload}`);
      if (r === undefined) {
        console.log(`     error:  ${error}`);
        continue;
      }
      console.log(`     naive:  ${fmt(r.naive)}`);
      console.log(`     sluice: ${fmt(r.sluice)}`);
      console.log(`     ratio:  ${r.ratio}×   invariant: ${r.invariant}`);
    }
    console.log(`\n${rows.length - failed}/${rows.length} scenarios held their invariant`);
  }
  return failed === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main();
}
