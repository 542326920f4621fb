// Seed 001 (agent platform): five unbounded dicts used as caches (persona, project, session,
// embedding…), growing with every distinct key. 1M distinct keys into a plain Map vs a Cache
// bounded at 500 entries, the bound the report's session cache got.
import { Cache } from '../src/cache/index.js';
import { collector } from './harness/gc.js';
import { sized } from './harness/size.js';
import { round, timed } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const KEYS = sized(1_000_000, 100_000);
const MAX = 500;
const CHECKPOINTS = 5;
const MiB = 1024 * 1024;

interface Session {
  readonly user: string;
  readonly scopes: string[];
}

const session = (i: number): Session => ({ user: `user-${i}`, scopes: ['read'] });
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const boundedCaches: Scenario = {
  seed: '001',
  name: 'bounded-caches',
  api: 'Cache({ maxSize })',
  workload: `${KEYS >= 1e6 ? `${KEYS / 1e6}M` : `${KEYS / 1000}k`} distinct session keys into an unbounded Map vs Cache({ maxSize: ${MAX} }); size checked after every set, heap after GC at ${CHECKPOINTS} checkpoints`,
  async run(ctx) {
    const gc = collector();
    const heap = (): number => {
      gc?.();
      return process.memoryUsage().heapUsed;
    };
    const step = KEYS / CHECKPOINTS;
    /** Fills `set` with keys [from, to) checkpoint by checkpoint, reading the heap after each. */
    const fill = async (phase: string, set: (i: number) => void): Promise<number[]> => {
      const base = heap();
      const growth: number[] = [];
      for (let c = 0; c < CHECKPOINTS; c++) {
        ctx.progress(c, CHECKPOINTS, phase);
        if (ctx.signal.aborted) throw ctx.signal.reason;
        for (let i = c * step; i < (c + 1) * step; i++) set(i);
        growth.push(heap() - base);
        await tick();
      }
      return growth;
    };

    // sluice first, on a clean heap: the Map's garbage cannot blur its readings.
    const cache = new Cache<string, Session>({ maxSize: MAX });
    let maxSize = 0;
    const fast = await timed(() =>
      fill('sluice', (i) => {
        cache.set(`session:${i}`, session(i));
        if (cache.size > maxSize) maxSize = cache.size;
      }),
    );
    const stats = cache.stats;

    // Naive: a module-level dict that every request adds to.
    const map = new Map<string, Session>();
    const naive = await timed(() => fill('naive', (i) => map.set(`session:${i}`, session(i))));
    const naiveSize = map.size;
    map.clear();

    const mib = (b: number): number => round(b / MiB, 1);
    const naiveGrowth = naive.value[naive.value.length - 1] ?? 0;
    const sluiceGrowth = fast.value[fast.value.length - 1] ?? 0;
    const sluiceFirst = fast.value[0] ?? 0;
    // Flat: after the first checkpoint (the cache is full by then) the heap does not grow with
    // more keys: within 1 MiB after a forced GC, and a tenth of the Map's growth. Without a GC,
    // uncollected garbage shows up in the readings, so then only a looser comparison holds.
    const flat =
      gc === undefined
        ? sluiceGrowth * 4 < naiveGrowth
        : sluiceGrowth - sluiceFirst < MiB && sluiceGrowth * 10 < naiveGrowth;
    const ok =
      naiveSize === KEYS && maxSize === MAX && cache.size === MAX && stats.evictions === KEYS - MAX && flat;
    return {
      naive: {
        ms: round(naive.ms),
        size: naiveSize,
        heapMiB: naive.value.map(mib).join(' → '),
      },
      sluice: {
        ms: round(fast.ms),
        maxSize,
        evictions: stats.evictions,
        heapMiB: fast.value.map(mib).join(' → '),
      },
      // Retained heap after the last checkpoint. No ratio: sluice's reading sits at the GC noise
      // floor (about 0), so a quotient would be a division by noise.
      headline: {
        measure: 'retained heap',
        unit: 'MiB',
        naive: mib(naiveGrowth),
        sluice: Math.max(0, mib(sluiceGrowth)),
        better: 'lower',
        form: 'change',
      },
      invariant: `size never above ${MAX} (max seen ${maxSize}, checked after each of ${KEYS} sets); heap ${gc === undefined ? 'without forced GC' : 'after GC'} flat at ${mib(sluiceGrowth)} MiB vs the Map's ${mib(naiveGrowth)} MiB`,
      ok,
    };
  },
};

export default boundedCaches;
