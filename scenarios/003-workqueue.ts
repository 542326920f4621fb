// Seed 003 (validation engine, FUSE layer): file changes persisted fire-and-forget
// (`asyncio.create_task()` without awaiting). Each write goes through an async step of varying
// latency before it hits the disk, so later versions of a file can land before earlier ones;
// writes still in flight at shutdown are lost; failures are swallowed. sluice: a WorkQueue
// ordered per path — every write applied in order, failures retried then surfaced to onError,
// and close() at shutdown waits for all of them.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkQueue } from '../src/tasks/index.js';
import { sized } from './harness/size.js';
import { round, sleep } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const PATHS = sized(40, 20);
const VERSIONS = sized(10, 5);
/** Writes whose parent directory does not exist: they fail (ENOENT) every time. */
const BAD_PATHS = 2;
const MAX_LATENCY_MS = 4;

interface FileOp {
  readonly path: string;
  readonly version: number;
}

/** Deterministic pseudo-random latency per (path, version), so both sides see the same. */
const latency = (path: number, version: number): number => ((path * 7919 + version * 104729) % 97) / 97;

const orderedFileOps: Scenario = {
  seed: '003',
  name: 'ordered-file-ops',
  api: 'WorkQueue (orderBy path) + close()',
  workload:
    `${PATHS} files × ${VERSIONS} versions written through an async step of 0–${MAX_LATENCY_MS} ms, ` +
    `${BAD_PATHS} paths failing, shutdown right after the last write is issued: fire-and-forget vs WorkQueue per path`,
  async run(ctx) {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-003-'));
    try {
      const pathOf = (side: string, p: number) =>
        p < BAD_PATHS ? join(dir, 'missing-dir', `${side}-${p}.txt`) : join(dir, `${side}-${p}.txt`);
      const ops = (side: string): FileOp[] => {
        const out: FileOp[] = [];
        for (let v = 1; v <= VERSIONS; v++)
          for (let p = 0; p < PATHS; p++) out.push({ path: pathOf(side, p), version: v });
        return out;
      };
      const write = async (op: FileOp) => {
        const p = Number(/-(\d+)\.txt$/.exec(op.path)?.[1]);
        await sleep(latency(p, op.version) * MAX_LATENCY_MS);
        await writeFile(op.path, String(op.version));
      };
      const total = PATHS * VERSIONS;
      const badWrites = BAD_PATHS * VERSIONS;
      /** Files whose content is not their last version (good paths only). */
      const stale = async (side: string) => {
        let n = 0;
        for (let p = BAD_PATHS; p < PATHS; p++) {
          const content = await readFile(pathOf(side, p), 'utf8').catch(() => '');
          if (content !== String(VERSIONS)) n++;
        }
        return n;
      };

      // Naive: every change starts its own write and nobody awaits it.
      let naiveApplied = 0;
      let swallowed = 0;
      const untracked: Promise<void>[] = [];
      for (const op of ops('naive')) {
        const task = write(op).then(
          () => void naiveApplied++,
          () => void swallowed++, // the report's create_task: nobody looks at the error
        );
        untracked.push(task);
      }
      ctx.progress(1, 2, 'naive');
      const appliedAtShutdown = naiveApplied;
      await Promise.all(untracked); // the scenario (not the naive code) waits, to look at the end state
      const naiveStale = await stale('naive');

      // sluice: the same changes through a WorkQueue ordered per path.
      const applied = new Map<string, number[]>();
      let surfaced = 0;
      const queue = new WorkQueue<FileOp>(
        async (op) => {
          await write(op);
          const list = applied.get(op.path) ?? [];
          list.push(op.version);
          applied.set(op.path, list);
        },
        {
          concurrency: 8,
          maxPending: 1000,
          orderBy: (op) => op.path,
          retry: { attempts: 2, delayMs: 1 },
          onError: () => void surfaced++,
        },
      );
      const start = performance.now();
      for (const op of ops('sluice')) await queue.add(op);
      await queue.close(); // shutdown
      const closeMs = performance.now() - start;
      ctx.progress(2, 2, 'sluice');
      const sluiceStale = await stale('sluice');
      let inOrder = true;
      for (const list of applied.values()) if (list.some((v, i) => v !== i + 1)) inOrder = false;
      const sluiceApplied = [...applied.values()].reduce((n, l) => n + l.length, 0);
      const s = queue.stats;

      return {
        naive: {
          appliedAtShutdown,
          lostAtShutdown: total - badWrites - appliedAtShutdown,
          staleFiles: naiveStale,
          errorsSwallowed: swallowed,
        },
        sluice: {
          applied: sluiceApplied,
          staleFiles: sluiceStale,
          errorsSurfaced: surfaced,
          retried: s.retried,
          closeMs: round(closeMs),
        },
        headline: {
          measure: 'stale files',
          of: PATHS - BAD_PATHS,
          naive: naiveStale,
          sluice: sluiceStale,
          better: 'lower',
        },
        invariant:
          `every file holds its last version (${sluiceStale} stale vs ${naiveStale} naive once its writes settled); ` +
          `writes applied in order per path: ${inOrder}; ${sluiceApplied} of ${total - badWrites} applied before close() resolved; ` +
          `${surfaced} of ${badWrites} failing writes surfaced to onError (naive swallowed ${swallowed}); keys left ${s.keys}`,
        ok:
          sluiceStale === 0 &&
          inOrder &&
          sluiceApplied === total - badWrites &&
          surfaced === badWrites &&
          s.failed === badWrites &&
          s.pending === 0 &&
          s.keys === 0 &&
          naiveStale + (total - badWrites - appliedAtShutdown) > 0,
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};

export default orderedFileOps;
