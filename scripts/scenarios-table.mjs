#!/usr/bin/env node
// Turns `npm start -- --json` output into the README's scenario table.
//
//   npm run start:readme                                   # run every scenario, rewrite README.md
//   node scripts/scenarios-table.mjs results.jsonl          # from a saved run
//   node scripts/scenarios-table.mjs --readme /tmp/R.md < results.jsonl
//
// Rewrites what lies between `<!-- scenarios:start -->` and `<!-- scenarios:end -->` in README.md
// (prints the table when there is no README or no markers). Refuses to write anything when the
// input holds no scenario, or when a scenario failed its invariant or did not run.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { URL, fileURLToPath } from 'node:url';

const START = '<!-- scenarios:start -->';
const END = '<!-- scenarios:end -->';

function fail(message) {
  process.stderr.write(`scenarios-table: ${message}\n`);
  process.exit(1);
}

let file;
let readme = fileURLToPath(new URL('../README.md', import.meta.url));
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--readme') readme = args[++i] ?? fail('--readme needs a path');
  else if (args[i]?.startsWith('-')) fail(`unknown option ${args[i]}`);
  else file = args[i];
}

const input = file === undefined ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
const date = (file === undefined ? new Date() : statSync(file).mtime).toISOString().slice(0, 10);

const rows = [];
for (const line of input.split('\n')) {
  const text = line.trim();
  if (!text.startsWith('{')) continue;
  let row;
  try {
    row = JSON.parse(text);
  } catch {
    continue;
  }
  if (typeof row.scenario !== 'string') continue;
  if (row.ok !== true)
    fail(
      `scenario ${row.scenario} did not hold its invariant (${row.error ?? row.invariant}); README left unchanged`,
    );
  rows.push(row);
}
if (rows.length === 0) fail('no scenario results in the input; README left unchanged');

const cell = (s) => String(s).replaceAll('|', '\\|').replaceAll('\n', ' ');
const measures = (m) =>
  Object.entries(m ?? {})
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
// The section of docs/scenarios.md for a scenario: its heading is `<seed> <name>`.
const anchor = (r) => `docs/scenarios.md#${r.seed}-${r.scenario}`;
const fix = (r) => (String(r.fix ?? '').startsWith('pattern') ? r.fix : `\`${r.fix}\``);
const table = [
  `Measured by \`npm start -- --json\` on ${date} (Node ${process.version}, ${cpus().length} cores; latencies scaled down, shape kept). ` +
    'Each scenario replays a workload from one of five seed reports (000 knowledge agent, 001 multi-agent API, ' +
    "002 agent-pool orchestrator, 003 validation engine, 004 agent orchestrator): **naive** is how the report's code did it, " +
    '**sluice** the fix. The headline names its measure and direction; **sluice API** is what the fix uses, or ' +
    '"pattern — no sluice API" when the fix needs none. [docs/scenarios.md](docs/scenarios.md) explains each one: ' +
    'the backend, what went wrong, the fix, what is measured and checked.',
  '',
  '| seed | scenario | headline | sluice API | naive | sluice | invariant checked |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.seed} | [${cell(r.scenario)}](${anchor(r)}) | ${cell(r.headline?.text ?? '—')} | ${cell(fix(r))} | ` +
      `${cell(measures(r.naive))} | ${cell(measures(r.sluice))} | ${cell(r.invariant)} |`,
  ),
].join('\n');

if (!existsSync(readme)) {
  process.stdout.write(`${table}\n`);
  process.exit(0);
}
const text = readFileSync(readme, 'utf8');
const start = text.indexOf(START);
const end = text.indexOf(END);
if (start === -1 || end === -1 || end < start) {
  process.stderr.write(
    `scenarios-table: ${readme} has no ${START} … ${END} block; printing the table instead\n`,
  );
  process.stdout.write(`${table}\n`);
  process.exit(0);
}
writeFileSync(readme, `${text.slice(0, start + START.length)}\n${table}\n${text.slice(end)}`);
process.stderr.write(`scenarios-table: ${readme} updated (${rows.length} scenarios)\n`);
