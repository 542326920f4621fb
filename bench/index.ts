/**
 * `npm run bench [-- <module | module/bench-prefix ...>] [--json] [--rounds N]`
 *
 * Runs every `bench/*.ts` module (other than this file and the harness), or the named ones.
 * Without `--json` prints a table per group; with `--json` prints one JSON line per case on
 * stdout (progress goes to stderr), e.g.
 * `{"bench":"limit/run-200k-c16","impl":"sluice","opsPerSec":…,"heapBytes":null,…}`.
 *
 * Each module runs in its own child process when more than one is selected: a module's bench
 * must not run on JIT feedback and a heap shaped by another module's (the batch bench builds
 * number-keyed caches, which turned the cache bench's string-keyed hit path polymorphic and
 * cost it ~2× in one shared process). Peers and sluice inside one module still share a process.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatTable, runGroup, type BenchModule, type Group } from './harness.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const NOT_MODULES = new Set(['index', 'harness']);

function usage(modules: readonly string[]): string {
  return [
    'usage: npm run bench [-- <module | module/bench-prefix ...>] [--json] [--rounds N]',
    `modules: ${modules.join(', ') || '(none)'}`,
  ].join('\n');
}

async function main(): Promise<number> {
  const modules = readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => basename(f, '.ts'))
    .filter((m) => !NOT_MODULES.has(m) && !m.includes('-')) // `<module>-*.ts` are a module's helpers
    .sort();

  let json = false;
  let rounds: number | undefined;
  const selectors: string[] = [];
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--json') json = true;
    else if (arg === '--rounds') {
      rounds = Number(args[++i]);
      if (!Number.isInteger(rounds) || rounds < 1) {
        console.error(`--rounds expects a positive integer, got ${args[i]}`);
        return 2;
      }
    } else if (arg === '--help' || arg === '-h') {
      console.log(usage(modules));
      return 0;
    } else if (arg.startsWith('-')) {
      console.error(`unknown option ${arg}\n${usage(modules)}`);
      return 2;
    } else selectors.push(arg);
  }

  // `limit` selects a module; `limit/map` selects that module's groups whose name starts so.
  const wanted = new Map<string, string[]>();
  for (const sel of selectors) {
    const [mod = '', ...rest] = sel.split('/');
    if (!modules.includes(mod)) {
      console.error(`unknown bench module \`${mod}\`\n${usage(modules)}`);
      return 2;
    }
    const prefixes = wanted.get(mod) ?? [];
    if (rest.length > 0) prefixes.push(sel);
    wanted.set(mod, prefixes);
  }
  const selected = selectors.length === 0 ? modules : modules.filter((m) => wanted.has(m));

  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const child = process.env['SLUICE_BENCH_CHILD'] === '1';
  if (!json && !child) {
    out(`sluice bench: Node ${process.version}, ${process.platform}/${process.arch}, rounds alternate impls`);
  }

  if (selected.length > 1) {
    for (const mod of selected) {
      const prefixes = wanted.get(mod) ?? [];
      const flags = [
        ...(json ? ['--json'] : []),
        ...(rounds === undefined ? [] : ['--rounds', String(rounds)]),
      ];
      const { status, signal } = spawnSync(
        process.execPath,
        [
          ...process.execArgv,
          fileURLToPath(import.meta.url),
          ...(prefixes.length > 0 ? prefixes : [mod]),
          ...flags,
        ],
        { stdio: 'inherit', env: { ...process.env, SLUICE_BENCH_CHILD: '1' } },
      );
      if (status !== 0) throw new Error(`bench module ${mod} exited with ${signal ?? status}`);
    }
    return 0;
  }

  for (const mod of selected) {
    const { default: exported, report } = (await import(pathToFileURL(`${dir}/${mod}.ts`).href)) as {
      default?: BenchModule;
      report?: { readonly name: string; run(): string };
    };
    if (exported === undefined) throw new Error(`bench/${mod}.ts has no default export`);
    let groups: readonly Group[] = typeof exported === 'function' ? await exported() : exported;
    const prefixes = wanted.get(mod) ?? [];
    if (prefixes.length > 0) groups = groups.filter((g) => prefixes.some((p) => g.bench.startsWith(p)));
    for (const group of groups) {
      const results = await runGroup(group, { rounds, log: json ? log : undefined });
      if (json) for (const r of results) out(JSON.stringify(r));
      else out(`\n${formatTable(results)}`);
    }
    // A module may add a non-timed table (the cache's hit ratios), printed after its groups.
    if (report !== undefined && (prefixes.length === 0 || prefixes.some((p) => report.name.startsWith(p)))) {
      const { name } = report;
      const markdown = report.run();
      if (json) out(JSON.stringify({ report: name, markdown }));
      else out(`\n${name}\n\n${markdown}`);
    }
  }
  return 0;
}

main().then(
  (code) => {
    // A module may leave connections open (the Redis groups' clients): exit once stdout has
    // flushed instead of waiting for them.
    process.stdout.write('', () => process.exit(code));
  },
  (error: unknown) => {
    console.error(error);
    // A line that `scripts/bench-table.mjs` recognises, so a piped README update refuses
    // to write a table from a run that died half way.
    if (process.argv.includes('--json')) {
      process.stdout.write(`${JSON.stringify({ error: String(error) })}\n`);
    }
    process.exitCode = 1;
  },
);
