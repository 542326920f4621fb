// Seed 001 (agent platform): five unbounded dicts used as caches, growing with every distinct
// key. 1M distinct keys into a plain Map vs a Cache bounded at 500 entries.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Cache } from '../src/cache/index.js';
import { round, timed } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const KEYS = 1_000_000;
const MAX = 500;
const CHECKPOINTS = 5;
const MiB = 1024 * 1024;

/** A full GC, so heap readings are what is retained: `--expose-gc` if given, else enabled here. */
function collector(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing !== undefined) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

interface Session {
  readonly user: string;
  readonly scopes: string[];
}

const session = (i: number): Session => ({ user: `user-${i}`, scopes: ['read'] });

const boundedCaches: Scenario = {
  seed: '001',
  name: 'bounded-caches',
  workload: `${KEYS / 1e6}M distinct session keys into an unbounded Map vs Cache({ maxSize: ${MAX} }); heap after GC at ${CHECKPOINTS} checkpoints`,
  async run(ctx) {
    const gc = collector();
    const heap = (): number => {
      gc();
      return process.memoryUsage().heapUsed;
    };
    const step = KEYS / CHECKPOINTS;

    // Naive: a module-level dict that every request adds to.
    let map: Map<string, Session> | undefined = new Map<string, Session>();
    const naiveBase = heap();
    const naiveHeap: number[] = [];
    const naive = await timed(() => {
      for (let c = 0; c < CHECKPOINTS; c++) {
        ctx.progress(c, CHECKPOINTS, 'naive');
        for (let i = c * step; i < (c + 1) * step; i++) map!.set(`session:${i}`, session(i));
        naiveHeap.push(heap() - naiveBase);
      }
      return map!.size;
    });
    map = undefined; // released before the sluice run is measured

    const cache = new Cache<string, Session>({ maxSize: MAX });
    const base = heap();
    const sluiceHeap: number[] = [];
    let maxSize = 0;
    const fast = await timed(() => {
      for (let c = 0; c < CHECKPOINTS; c++) {
        ctx.progress(c, CHECKPOINTS, 'sluice');
        for (let i = c * step; i < (c + 1) * step; i++) {
          cache.set(`session:${i}`, session(i));
          if (cache.size > maxSize) maxSize = cache.size;
        }
        sluiceHeap.push(heap() - base);
      }
      return cache.size;
    });

    const mib = (b: number): number => round(b / MiB, 1);
    const naiveGrowth = naiveHeap[naiveHeap.length - 1] ?? 0;
    const sluiceGrowth = sluiceHeap[sluiceHeap.length - 1] ?? 0;
    // Flat: the last checkpoint holds no more than the first (within 1 MiB of GC noise).
    const flat = sluiceGrowth - (sluiceHeap[0] ?? 0) < MiB;
    const ok =
      naive.value === KEYS &&
      maxSize <= MAX &&
      fast.value === MAX &&
      cache.stats.evictions === KEYS - MAX &&
      flat &&
      sluiceGrowth * 10 < naiveGrowth;
    return {
      naive: { ms: round(naive.ms), size: naive.value, heapMiB: naiveHeap.map(mib).join(' → ') },
      sluice: {
        ms: round(fast.ms),
        maxSize,
        evictions: cache.stats.evictions,
        heapMiB: sluiceHeap.map(mib).join(' → '),
      },
      ratio: round(naiveGrowth / Math.max(sluiceGrowth, 64 * 1024), 0),
      invariant: `size never above ${MAX} (max seen ${maxSize}) over ${KEYS} keys; heap after GC flat at ${mib(sluiceGrowth)} MiB vs Map growing to ${mib(naiveGrowth)} MiB`,
      ok,
    };
  },
};

export default boundedCaches;
