/**
 * The bench harness: a module (`bench/<module>.ts`) default-exports a list of groups (or a
 * function returning them); `bench/index.ts` runs them. A group is one workload, run by every
 * impl on the same inputs:
 *
 * ```ts
 * const group: Group = {
 *   bench: 'limit/run-200k-c16', // `<module>/<what>`: the key of the README table row
 *   ops: 200_000, // operations one `run()` performs; ops/s = ops / run time
 *   cases: [
 *     { impl: 'sluice', setup: () => { limiter = new Limiter(...) }, run: async () => { ... } },
 *     { impl: 'p-limit', setup: ..., run: ... },
 *   ],
 * };
 * ```
 *
 * Per group the harness warms up every impl, then runs `rounds` rounds; each round runs every
 * impl once, starting one impl later than the previous round (rotated order), so no impl
 * always runs first, or always right after another one's garbage. Before every timed run it
 * calls `setup()` (untimed: build fresh instances and inputs there) and a full GC. Reported:
 * the best and the median ops/s over the rounds; ratios use the best (DESIGN.md).
 *
 * Heap groups (`heap: true`): `run(probe)` calls `probe.alive()` once, at the moment the
 * structure being measured is at its peak (e.g. every waiter queued). The harness then forces
 * a GC and records the growth of `heapUsed + external` since right before `run` (after setup
 * and a GC), so inputs built in `setup` are not counted, and typed-array / Buffer backing
 * stores (outside the JS heap, in `external`) are. The time spent in `alive()` is excluded from the run
 * time. Outside heap groups `alive()` does nothing, so cases may call it unconditionally.
 */

import { PerformanceObserver } from 'node:perf_hooks';

/** One implementation of a group's workload. */
export interface Case {
  /** `'sluice'`, or the peer's package name (or a short description of a hand-written baseline). */
  readonly impl: string;
  /** Untimed, before every run (warm-up and timed): build fresh instances / inputs here. */
  readonly setup?: () => void | Promise<void>;
  /** Timed: performs the group's `ops` operations and resolves only once all have completed. */
  readonly run: (probe: Probe) => Promise<void>;
}

/** Passed to `Case.run`. */
export interface Probe {
  /** Heap groups: call once when the measured structure is alive at its peak. Otherwise a no-op. */
  alive(): void;
}

/** One workload, run by every case on the same inputs. */
export interface Group {
  /** `<module>/<workload>`, e.g. `limit/run-200k-c16`; stable, it keys the README table. */
  readonly bench: string;
  /** Operations per run, for ops/s. */
  readonly ops: number;
  /** Measure retained heap at `probe.alive()`. */
  readonly heap?: boolean;
  /** Timed rounds (every case once per round). `--rounds N` overrides. @default 5 */
  readonly rounds?: number;
  /** Untimed warm-up runs per case. @default 1 */
  readonly warmup?: number;
  /** The impl ratios are computed against: `'sluice'` if present, else the first case. */
  readonly cases: readonly Case[];
}

/** What a bench module default-exports. */
export type BenchModule = readonly Group[] | (() => readonly Group[] | Promise<readonly Group[]>);

/** One line of `--json` output. */
export interface Result {
  readonly bench: string;
  readonly impl: string;
  /** Best of the rounds. */
  readonly opsPerSec: number;
  /**
   * Bytes retained at `probe.alive()`: growth of `heapUsed + external` (median of the rounds),
   * or `null` outside heap groups.
   */
  readonly heapBytes: number | null;
  readonly medianOpsPerSec: number;
  /** Share of the run time spent in GC pauses (median of the rounds), 0–1. */
  readonly gcShare: number;
  readonly ops: number;
  readonly rounds: number;
}

export interface RunOptions {
  readonly rounds?: number | undefined;
  /** Progress lines (e.g. to stderr). */
  readonly log?: ((line: string) => void) | undefined;
}

const gc: () => void =
  (globalThis as { gc?: () => void }).gc ??
  (() => {
    throw new Error('The bench needs a GC hook: run it with `node --expose-gc` (npm run bench does).');
  });

function fullGc(): void {
  // Two passes: the first may only unlink objects that hold weak/finalizable references.
  gc();
  gc();
}

/** JS heap plus off-heap backing stores (typed arrays, Buffers) that JS objects keep alive. */
function retained(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** GC pauses reported by V8 (`gc` performance entries), collected while a group runs. */
const pauses: { readonly start: number; readonly ms: number }[] = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) pauses.push({ start: e.startTime, ms: e.duration });
});

/** GC time inside [from, to) outside the `skip` window; clears what it has looked at. */
async function gcTime(from: number, to: number, skip: readonly [number, number]): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 10)); // entries arrive asynchronously
  let ms = 0;
  for (const p of pauses) {
    if (p.start >= from && p.start < to && !(p.start >= skip[0] && p.start < skip[1])) ms += p.ms;
  }
  pauses.length = 0;
  return ms;
}

interface Sample {
  readonly ms: number;
  readonly gcMs: number;
  readonly heapBytes: number | null;
}

async function once(group: Group, c: Case): Promise<Sample> {
  await c.setup?.();
  fullGc();
  let heapBytes: number | null = null;
  let skip: readonly [number, number] = [0, 0];
  let base = 0;
  const probe: Probe = group.heap
    ? {
        alive(): void {
          const t = performance.now();
          fullGc();
          heapBytes = retained() - base;
          skip = [t, performance.now()];
        },
      }
    : { alive: () => undefined };
  base = group.heap ? retained() : 0;
  const start = performance.now();
  await c.run(probe);
  const end = performance.now();
  if (group.heap && heapBytes === null) {
    throw new Error(`${group.bench} ${c.impl}: run() never called probe.alive()`);
  }
  return { ms: end - start - (skip[1] - skip[0]), gcMs: await gcTime(start, end, skip), heapBytes };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Warms up, runs the rounds and returns one result per case, in case order. */
export async function runGroup(group: Group, options: RunOptions = {}): Promise<Result[]> {
  const rounds = options.rounds ?? group.rounds ?? 5;
  const warmup = group.warmup ?? 1;
  const log = options.log ?? (() => undefined);
  const { cases } = group;
  const samples: Sample[][] = cases.map(() => []);
  gcObserver.observe({ entryTypes: ['gc'] });
  try {
    log(`${group.bench}: warm-up`);
    for (const c of cases) {
      for (let i = 0; i < warmup; i++) await once(group, c);
    }
    for (let r = 0; r < rounds; r++) {
      log(`${group.bench}: round ${r + 1}/${rounds}`);
      for (let k = 0; k < cases.length; k++) {
        const i = (r + k) % cases.length;
        samples[i]!.push(await once(group, cases[i]!));
      }
    }
  } finally {
    gcObserver.disconnect();
  }

  return cases.map((c, i) => {
    const s = samples[i]!;
    const rates = s.map((x) => (group.ops * 1000) / x.ms);
    const heaps = s.flatMap((x) => (x.heapBytes === null ? [] : [x.heapBytes]));
    return {
      bench: group.bench,
      impl: c.impl,
      opsPerSec: Math.round(Math.max(...rates)),
      heapBytes: heaps.length > 0 ? Math.round(median(heaps)) : null,
      medianOpsPerSec: Math.round(median(rates)),
      gcShare: Math.round(median(s.map((x) => x.gcMs / x.ms)) * 100) / 100,
      ops: group.ops,
      rounds,
    };
  });
}

/** The result ratios are computed against: impl `'sluice'`, else the first. */
export function baselineOf<T extends { readonly impl: string }>(results: readonly T[]): T | undefined {
  return results.find((r) => r.impl === 'sluice') ?? results[0];
}

export function formatOps(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

export function formatBytes(n: number | null): string {
  if (n === null) return '—';
  if (Math.abs(n) >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (Math.abs(n) >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

function ratio(sluice: number | null, peer: number | null): string {
  return sluice === null || peer === null || peer === 0 ? '—' : `${(sluice / peer).toFixed(2)}×`;
}

/**
 * A readable table for one group. `sluice ÷ peer` columns read like DESIGN.md's targets:
 * speed > 1 means sluice is faster, heap < 1 means sluice retains less.
 */
export function formatTable(results: readonly Result[]): string {
  const base = baselineOf(results);
  const first = results[0];
  if (base === undefined || first === undefined) return '';
  const heap = results.some((r) => r.heapBytes !== null);
  const header = ['impl', 'best ops/s', 'median ops/s', 'spread', 'GC'];
  if (heap) header.push('heap');
  header.push('speed sluice÷peer');
  if (heap) header.push('heap sluice÷peer');
  const rows = results.map((r) => {
    const row = [
      r.impl,
      formatOps(r.opsPerSec),
      formatOps(r.medianOpsPerSec),
      `${(((r.opsPerSec - r.medianOpsPerSec) / r.opsPerSec) * 100).toFixed(0)}%`,
      `${(r.gcShare * 100).toFixed(0)}%`,
    ];
    if (heap) row.push(formatBytes(r.heapBytes));
    row.push(r === base ? '(baseline)' : ratio(base.opsPerSec, r.opsPerSec));
    if (heap) row.push(r === base ? '(baseline)' : ratio(base.heapBytes, r.heapBytes));
    return row;
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [
    `${first.bench}  (${formatOps(first.ops)} ops per run, best of ${first.rounds} rounds; spread = best vs median; GC = share of run time in GC pauses)`,
    line(header),
    line(widths.map((w) => '─'.repeat(w))),
    ...rows.map(line),
  ].join('\n');
}
