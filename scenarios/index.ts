// `npm start [-- --list | --json | <name-or-seed...>]`: replays every scenario, naive vs sluice.
// Scenarios are discovered: every `scenarios/<seed>-<topic>.ts` whose default export is a
// `Scenario` or an array of them (see harness/types.ts). Progress goes to stderr (live on a TTY,
// plain lines otherwise); the table, or one JSON line per scenario, goes to stdout.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { closeSharedDb } from './harness/db.js';
import { headlineRatio, headlineText } from './harness/headline.js';
import { SEEDS } from './harness/seeds.js';
import { SIZE_ENV, isQuick } from './harness/size.js';
import { round } from './harness/stats.js';
import type { Measures, Scenario, ScenarioResult } from './harness/types.js';

const dir = dirname(fileURLToPath(import.meta.url));
const FILE = /^\d{3}-[\w.-]+\.ts$/;
/** A scenario that runs longer than this fails (its signal is aborted) and the run goes on. */
const TIME_LIMIT_MS = 60_000;

function isScenario(x: unknown): x is Scenario {
  const s = x as Partial<Scenario> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.seed === 'string' &&
    /^\d{3}$/.test(s.seed) &&
    typeof s.name === 'string' &&
    s.name.length > 0 &&
    typeof s.workload === 'string' &&
    (s.api === null || typeof s.api === 'string') &&
    typeof s.run === 'function'
  );
}

/** Imports every `scenarios/<seed>-*.ts`, in file order; throws on a file that exports no scenario. */
export async function loadScenarios(from = dir): Promise<Scenario[]> {
  const files = readdirSync(from)
    .filter((f) => FILE.test(f) && !f.endsWith('.d.ts') && !f.endsWith('.test.ts'))
    .sort();
  const out: Scenario[] = [];
  const names = new Set<string>();
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(from, file)).href)) as { default?: unknown };
    const list: unknown[] = Array.isArray(mod.default) ? mod.default : [mod.default];
    for (const s of list) {
      if (!isScenario(s)) {
        throw new TypeError(
          `${file}: export default a Scenario ({ seed: '000', name, workload, api, run }) or an array of them`,
        );
      }
      if (names.has(s.name)) throw new Error(`${file}: duplicate scenario name ${s.name}`);
      names.add(s.name);
      out.push(s);
    }
  }
  return out;
}

/** Keeps the scenarios matching any filter: a seed (`004`), a name, or part of one. */
export function selectScenarios(
  all: readonly Scenario[],
  filters: readonly string[],
): { selected: Scenario[]; unmatched: string[] } {
  if (filters.length === 0) return { selected: [...all], unmatched: [] };
  const matches = (s: Scenario, f: string): boolean =>
    s.seed === f || s.name === f || s.name.includes(f) || `${s.seed}-${s.name}`.includes(f);
  return {
    selected: all.filter((s) => filters.some((f) => matches(s, f))),
    unmatched: filters.filter((f) => !all.some((s) => matches(s, f))),
  };
}

/** Where output goes (the test passes buffers). */
export interface Io {
  readonly out: (line: string) => void;
  readonly err: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly columns: number;
}

export interface Row {
  readonly scenario: Scenario;
  readonly result: ScenarioResult;
  readonly ms: number;
  readonly error?: string;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Live status line on a TTY, plain lines otherwise; silent in JSON mode unless on a TTY. */
class Progress {
  readonly #err: Io['err'];
  readonly #tty: boolean;
  readonly #plain: boolean;
  readonly #total: number;
  #line = '';
  #lastDraw = 0;
  #timer: NodeJS.Timeout | undefined;
  #frame = 0;
  #start = 0;
  #head = '';

  constructor(io: Io, total: number, json: boolean) {
    this.#err = io.err;
    this.#tty = io.err.isTTY === true;
    this.#plain = !this.#tty && !json;
    this.#total = total;
  }

  begin(i: number, s: Scenario): void {
    this.#head = `[${i + 1}/${this.#total}] ${s.seed} ${s.name}`;
    this.#start = performance.now();
    if (this.#plain) this.#err.write(`${this.#head} — ${s.workload}\n`);
    if (!this.#tty) return;
    this.#line = '';
    this.#draw(true);
    this.#timer = setInterval(() => this.#draw(true), 100).unref();
  }

  update(done: number, total: number, note?: string): void {
    if (!this.#tty) return;
    const pct = total > 0 ? Math.min(100, Math.floor((100 * done) / total)) : 0;
    const width = 20;
    const bar = '█'.repeat(Math.round((pct / 100) * width)).padEnd(width, '░');
    this.#line = `${note === undefined ? '' : `${note} `}${bar} ${done}/${total}`;
    this.#draw(false);
  }

  #draw(force: boolean): void {
    const now = performance.now();
    if (!force && now - this.#lastDraw < 50) return;
    this.#lastDraw = now;
    const spin = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏'[this.#frame++ % 10] ?? '*';
    const secs = ((now - this.#start) / 1000).toFixed(1);
    const text = `${spin} ${this.#head}  ${this.#line}  ${secs}s`;
    const cols = Math.max(20, (this.#err.columns || 80) - 1);
    this.#err.write(`\r\x1b[K${text.slice(0, cols)}`);
  }

  end(s: Scenario, row: Row): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    const mark = row.result.ok ? 'ok' : 'FAIL';
    const secs = (row.ms / 1000).toFixed(2);
    if (this.#tty) {
      const sym = row.result.ok ? '\x1b[32m✔\x1b[0m' : '\x1b[31m✘\x1b[0m';
      this.#err.write(`\r\x1b[K${sym} ${this.#head}  ${secs}s — ${s.workload}\n`);
    } else if (this.#plain) {
      this.#err.write(`  ${mark} in ${secs}s${row.error === undefined ? '' : `: ${row.error}`}\n`);
    }
  }
}

async function runOne(s: Scenario, progress: Progress): Promise<{ result: ScenarioResult; error?: string }> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const overrun = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`did not finish within ${TIME_LIMIT_MS / 1000} s`);
      controller.abort(error);
      reject(error);
    }, TIME_LIMIT_MS);
  });
  try {
    const ctx = {
      signal: controller.signal,
      progress: (done: number, total: number, note?: string) => progress.update(done, total, note),
    };
    const result = await Promise.race([s.run(ctx), overrun]);
    return { result };
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return {
      result: { naive: {}, sluice: {}, invariant: `threw ${message}`, ok: false },
      error: message,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** `{ ms: 131.2, maxInFlight: 3 }` → `131.2 ms, maxInFlight 3`. */
export function formatMeasures(m: Measures): string {
  return Object.entries(m)
    .map(([k, v]) => {
      // No-break spaces inside an item, so text wraps between items only.
      if (k === 'ms') return `${v}\u00a0ms`;
      if (k.endsWith('Ms') && typeof v === 'number') return `${k.slice(0, -2)}\u00a0${v}\u00a0ms`;
      return `${k}\u00a0${v}`;
    })
    .join(', ');
}

/** What the fix is: the sluice API, or `pattern — no sluice API (…)`. */
export function fixText(s: Scenario): string {
  if (s.api !== null) return s.api;
  return `pattern — no sluice API${s.pattern === undefined ? '' : ` (${s.pattern})`}`;
}

/** Wraps at spaces (a no-break space never breaks); a word longer than `width` is cut. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line.length > 0 && line.length + 1 + word.length > width) {
      lines.push(line);
      line = '';
    }
    line = line.length === 0 ? word : `${line} ${word}`;
    while (line.length > width) {
      lines.push(line.slice(0, width));
      line = line.slice(width);
    }
  }
  if (line.length > 0 || lines.length === 0) lines.push(line);
  return lines;
}

const GAP = '  ';
const LABEL = 8;

/** The labelled detail lines of a row (naive, sluice or fixed, the check), wrapped to `width`. */
function details(r: Row, width: number): string[] {
  const items: [string, string][] = [];
  if (r.scenario.api === null) items.push(['fix', fixText(r.scenario)]);
  items.push(['naive', formatMeasures(r.result.naive)]);
  items.push([r.scenario.api === null ? 'fixed' : 'sluice', formatMeasures(r.result.sluice)]);
  items.push(['check', r.result.invariant]);
  const out: string[] = [];
  for (const [label, text] of items) {
    wrap(text, Math.max(20, width - LABEL)).forEach((l, i) =>
      out.push(`${(i === 0 ? label : '').padEnd(LABEL)}${l}`.replaceAll('\u00a0', ' ').trimEnd()),
    );
  }
  return out;
}

const okText = (r: Row): string => (r.result.ok ? 'ok' : 'FAIL');
const apiCell = (s: Scenario): string => s.api ?? 'none (pattern)';

/**
 * One summary line per scenario (seed, scenario, headline, sluice API, ok), its details
 * indented below. `null` when the summary columns do not fit in `columns`.
 */
function tableLayout(rows: readonly Row[], columns: number): string | null {
  const header = ['seed', 'scenario', 'headline', 'sluice API', 'ok'];
  const cells = rows.map((r) => [
    r.scenario.seed,
    r.scenario.name,
    headlineText(r.result.headline) || '—',
    apiCell(r.scenario),
    okText(r),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...cells.map((row) => (row[c] ?? '').length)));
  const total = widths.reduce((a, b) => a + b, 0) + GAP.length * (widths.length - 1);
  const indent = (widths[0] ?? 0) + GAP.length;
  if (total > columns || columns - indent < 60) return null;
  const line = (row: readonly string[]): string =>
    row
      .map((cell, c) => cell.padEnd(widths[c] ?? 0))
      .join(GAP)
      .trimEnd();
  const out = [line(header), widths.map((w) => '─'.repeat(w)).join(GAP)];
  for (const [i, r] of rows.entries()) {
    out.push(line(cells[i] ?? []));
    for (const d of details(r, columns - indent)) out.push(`${' '.repeat(indent)}${d}`);
  }
  return out.join('\n');
}

/** One block per scenario: `seed scenario ok`, the headline, the sluice API, the details. */
function stackedLayout(rows: readonly Row[], columns: number): string {
  const width = Math.max(30, columns);
  const blocks = rows.map((r) => {
    const lines = [`${r.scenario.seed} ${r.scenario.name}  ${okText(r)}`];
    const headline = headlineText(r.result.headline);
    if (headline !== '') lines.push(...wrap(headline, width - 2).map((l) => `  ${l}`));
    if (r.scenario.api !== null)
      lines.push(...wrap(`uses ${r.scenario.api}`, width - 2).map((l) => `  ${l}`));
    for (const d of details(r, width - 2)) lines.push(`  ${d}`);
    return lines.join('\n');
  });
  return blocks.join('\n\n');
}

/** Renders rows as a table when its summary columns fit in `columns`, else one block per scenario. */
export function renderTable(rows: readonly Row[], columns: number): string {
  return tableLayout(rows, columns) ?? stackedLayout(rows, columns);
}

/** What the seeds and the columns mean, wrapped to `columns`. */
export function legend(rows: readonly Row[], columns: number): string {
  const seeds = [...new Set(rows.map((r) => r.scenario.seed))]
    .sort()
    .map((seed) => `${seed} ${SEEDS[seed] ?? 'unknown report'}`)
    .join('; ');
  const text =
    `Each scenario replays a workload from a seed report (${seeds}): naive is how the report's code did it, ` +
    `sluice the fix (its sluice API, or "pattern" when the fix needs none). The headline names its measure; ` +
    `check is the invariant verified. Details: docs/scenarios.md.`;
  return wrap(text, Math.max(30, columns)).join('\n');
}

const USAGE = `Usage: npm start [-- [--list] [--json] [--quick] [<seed|name>...]]
  (no arguments)   run every scenario and print a table (one block per scenario when narrow)
  <seed|name>...   run the scenarios whose seed or name matches (e.g. 000, registration-race, race)
  --list           list the scenarios and their workloads
  --json           one JSON line per scenario on stdout
  --quick          scaled-down workloads, same invariants (what the tests run; ${SIZE_ENV}=quick)
Exits 1 if a scenario's invariant fails or a scenario throws, 2 on bad arguments.`;

/** One `--json` line: the documented keys, then the headline (with its text) and the fix. */
export function jsonLine(s: Scenario, result: ScenarioResult): string {
  const { naive, sluice, invariant, ok, headline } = result;
  return JSON.stringify({
    seed: s.seed,
    scenario: s.name,
    naive,
    sluice,
    ratio: headlineRatio(headline),
    invariant,
    ok,
    headline: headline === undefined ? null : { ...headline, text: headlineText(headline) },
    fix: fixText(s),
  });
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: readonly string[], io: Io, all?: readonly Scenario[]): Promise<number> {
  const flags = argv.filter((a) => a.startsWith('-'));
  const unknown = flags.filter((f) => !['--list', '--json', '--quick', '--help', '-h'].includes(f));
  if (unknown.length > 0) {
    io.err.write(`Unknown option ${unknown.join(', ')}\n${USAGE}\n`);
    return 2;
  }
  if (flags.includes('--help') || flags.includes('-h')) {
    io.out(USAGE);
    return 0;
  }
  const json = flags.includes('--json');
  // Before the scenario files load: they read their sizes at module load.
  if (flags.includes('--quick')) process.env[SIZE_ENV] = 'quick';
  const scenarios = all ?? (await loadScenarios());
  const { selected, unmatched } = selectScenarios(
    scenarios,
    argv.filter((a) => !a.startsWith('-')),
  );
  if (unmatched.length > 0) {
    io.err.write(`No scenario matches ${unmatched.join(', ')}; see npm start -- --list\n`);
    return 2;
  }
  if (flags.includes('--list')) {
    const width = Math.max(...selected.map((s) => s.name.length));
    for (const s of selected) {
      io.out(
        json
          ? JSON.stringify({ seed: s.seed, scenario: s.name, workload: s.workload })
          : `${s.seed}  ${s.name.padEnd(width)}  ${s.workload}`,
      );
    }
    return 0;
  }

  const progress = new Progress(io, selected.length, json);
  const rows: Row[] = [];
  const started = performance.now();
  for (const [i, s] of selected.entries()) {
    progress.begin(i, s);
    const t = performance.now();
    const { result, error } = await runOne(s, progress);
    const row: Row = {
      scenario: s,
      result,
      ms: performance.now() - t,
      ...(error === undefined ? {} : { error }),
    };
    rows.push(row);
    progress.end(s, row);
    if (json) {
      io.out(jsonLine(s, result));
    }
  }
  await closeSharedDb();
  const failed = rows.filter((r) => !r.result.ok);
  if (!json) {
    io.out('');
    io.out(legend(rows, io.columns));
    io.out('');
    io.out(renderTable(rows, io.columns));
    io.out('');
    const secs = round((performance.now() - started) / 1000, 1);
    io.out(
      failed.length === 0
        ? `${rows.length}/${rows.length} scenarios held their invariant (${secs} s${isQuick() ? ', quick size' : ''})`
        : `${failed.length} of ${plural(rows.length, 'scenario')} FAILED: ${failed.map((r) => r.scenario.name).join(', ')} (${secs} s)`,
    );
  }
  return failed.length === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const io: Io = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: process.stderr,
    // A terminal's width; piped, $COLUMNS if set (e.g. COLUMNS=100 npm start | less), else 160.
    columns: (process.stdout.isTTY && process.stdout.columns) || Number(process.env['COLUMNS']) || 160,
  };
  process.exitCode = await main(process.argv.slice(2), io);
  // A scenario that overran may have left handles behind; everything else closes what it opened.
  if (process.exitCode !== 0) setTimeout(() => process.exit(), 1000).unref();
}
