#!/usr/bin/env node
// Turns `npm run bench -- --json` output into the README's performance table.
//
//   npm run bench:readme                                  # run every bench, rewrite README.md
//   node scripts/bench-table.mjs results.jsonl            # from a saved run
//   node scripts/bench-table.mjs --command "npm run bench -- limit --json" < results.jsonl
//   node scripts/bench-table.mjs --readme /tmp/README.md results.jsonl   # another file
//
// Rewrites what lies between `<!-- bench:start -->` and `<!-- bench:end -->` in README.md.
// Without a README.md (or without the markers) it prints the table to stdout instead.
// Refuses to write anything if the input holds no results or reports a failed run.
import { readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { URL, fileURLToPath } from 'node:url';

const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

function fail(message) {
  process.stderr.write(`bench-table: ${message}\n`);
  process.exit(1);
}

let file;
let command = 'npm run bench -- --json';
let readme = fileURLToPath(new URL('../README.md', import.meta.url));
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--command') command = args[++i] ?? fail('--command needs a value');
  else if (args[i] === '--readme') readme = args[++i] ?? fail('--readme needs a path');
  else if (args[i]?.startsWith('-')) fail(`unknown option ${args[i]}`);
  else file = args[i];
}

const input = file === undefined ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
const date = (file === undefined ? new Date() : statSync(file).mtime).toISOString().slice(0, 10);

/** @type {Map<string, {impl: string, opsPerSec: number, heapBytes: number | null}[]>} */
const groups = new Map();
/** @type {{report: string, markdown: string}[]} Non-timed tables a module adds (cache hit ratios). */
const reports = [];
for (const line of input.split('\n')) {
  const text = line.trim();
  if (!text.startsWith('{')) continue; // npm's banner, warnings
  let row;
  try {
    row = JSON.parse(text);
  } catch {
    continue;
  }
  if (row.error !== undefined) fail(`the bench run failed (${row.error}); README left unchanged`);
  if (typeof row.report === 'string' && typeof row.markdown === 'string') {
    reports.push(row);
    continue;
  }
  if (typeof row.bench !== 'string' || typeof row.impl !== 'string' || typeof row.opsPerSec !== 'number') {
    continue;
  }
  const rows = groups.get(row.bench) ?? [];
  rows.push({ impl: row.impl, opsPerSec: row.opsPerSec, heapBytes: row.heapBytes ?? null });
  groups.set(row.bench, rows);
}
if (groups.size === 0) fail('no bench results in the input; README left unchanged');

const ops = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : `${n}`);
const bytes = (n) => (n === null ? '—' : `${(n / 1024 / 1024).toFixed(1)} MiB`);
const cell = (s) => s.replaceAll('|', '\\|');

const lines = ['| bench | impl | ops/s | heap | sluice vs impl |', '| --- | --- | ---: | ---: | ---: |'];
for (const [bench, rows] of groups) {
  const base = rows.find((r) => r.impl === 'sluice') ?? rows[0];
  const heap = base.heapBytes !== null;
  for (const r of rows) {
    let ratio = '—';
    if (r !== base && heap && r.heapBytes) ratio = `${(base.heapBytes / r.heapBytes).toFixed(2)}× heap`;
    else if (r !== base && !heap) ratio = `${(base.opsPerSec / r.opsPerSec).toFixed(2)}× ops/s`;
    const name = r === base ? `**${cell(r.impl)}**` : cell(r.impl);
    lines.push(`| ${cell(bench)} | ${name} | ${ops(r.opsPerSec)} | ${bytes(r.heapBytes)} | ${ratio} |`);
  }
}
const table = [
  `Generated from \`${command}\` on ${date} (Node ${process.version}, ${cpus().length} cores); ` +
    'ops/s is the best of several alternating rounds, heap is what is retained while the structure is alive. ' +
    '"sluice vs impl": above 1× ops/s sluice is faster; below 1× heap sluice retains less.',
  '',
  ...lines,
  ...reports.flatMap((r) => ['', `**${r.report}**`, '', r.markdown]),
].join('\n');

if (!existsSync(readme)) {
  process.stdout.write(`${table}\n`);
  process.exit(0);
}
const text = readFileSync(readme, 'utf8');
const start = text.indexOf(START);
const end = text.indexOf(END);
if (start === -1 || end === -1 || end < start) {
  process.stderr.write(`bench-table: ${readme} has no ${START} … ${END} block; printing the table instead\n`);
  process.stdout.write(`${table}\n`);
  process.exit(0);
}
writeFileSync(readme, `${text.slice(0, start + START.length)}\n${table}\n${text.slice(end)}`);
process.stderr.write(`bench-table: ${readme} updated (${groups.size} benches)\n`);
