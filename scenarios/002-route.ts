// Seed 002 (pool orchestrator): least-loaded routing over 1000 pools whose loads keep changing.
// The report routes with an O(n) `min()` scan, then designs a heapq that only ever pushes: every
// load change pushes a new (load, pool) entry and the old one stays, so the top can be a pool
// whose load has risen since — it routes to it again. Router keeps one entry per pool in an
// indexed heap. In-process, no I/O: the cost is CPU per pick, and the bug is which pool it picks.
import { Router } from '../src/route/index.js';
import { sized } from './harness/size.js';
import { round } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const POOLS = 1000;
const STEPS = sized(200_000, 20_000);
/** Every CHURN steps one pool is removed and a new one added. */
const CHURN = 500;

interface Pool {
  readonly id: number;
  load: number;
}

/** One way of routing: told about every change, asked for a pool. */
interface Routing {
  readonly name: string;
  add(pool: Pool): void;
  remove(pool: Pool): void;
  changed(pool: Pool): void;
  pick(): Pool;
  entries(): number;
}

/** The report's `min(self._pools.keys(), key=...)`: a scan of the pools dict per pick. */
function scan(): Routing {
  const pools = new Map<number, Pool>();
  return {
    name: 'scan',
    add: (p) => void pools.set(p.id, p),
    remove: (p) => void pools.delete(p.id),
    changed: () => undefined,
    pick() {
      let best: Pool | undefined;
      for (const p of pools.values()) if (best === undefined || p.load < best.load) best = p;
      return best as Pool;
    },
    entries: () => pools.size,
  };
}

/**
 * The report's heap, as designed: `heappush((count, pool_id))` on every change, `heap[0]` to
 * route (popping only entries of pools that no longer exist). Ties by id, as tuples compare.
 */
function pushOnlyHeap(): Routing {
  const pools = new Map<number, Pool>();
  const heap: [number, number][] = [];
  const less = (a: [number, number], b: [number, number]): boolean =>
    a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  const push = (e: [number, number]): void => {
    let i = heap.push(e) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  };
  const pop = (): void => {
    const last = heap.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    for (let i = 0; ;) {
      let c = 2 * i + 1;
      if (c >= heap.length) break;
      if (c + 1 < heap.length && less(heap[c + 1]!, heap[c]!)) c++;
      if (!less(heap[c]!, heap[i]!)) break;
      [heap[i], heap[c]] = [heap[c]!, heap[i]!];
      i = c;
    }
  };
  return {
    name: 'push-only heap',
    add(p) {
      pools.set(p.id, p);
      push([p.load, p.id]);
    },
    remove: (p) => void pools.delete(p.id),
    changed: (p) => push([p.load, p.id]),
    pick() {
      for (;;) {
        const pool = pools.get(heap[0]![1]);
        if (pool !== undefined) return pool;
        pop(); // "Verify pool still exists", else remove stale and retry
      }
    },
    entries: () => heap.length,
  };
}

function router(): Routing {
  const r = new Router<Pool>([], { load: (p) => p.load, name: 'pools' });
  return {
    name: 'Router',
    add: (p) => r.add(p),
    remove: (p) => void r.remove(p),
    changed: (p) => void r.update(p),
    pick: () => r.pick(),
    entries: () => r.size,
  };
}

interface Run {
  readonly ms: number;
  readonly stale: number;
  readonly entries: number;
}

/**
 * Replays the same workload (an integer LCG, the same on every run) on one routing: each step
 * routes a task to the picked pool (its load +1) and finishes one on a random pool (−1 if any);
 * every CHURN steps a pool goes and a new one comes. With `check`, every pick is compared with
 * the true minimum (an O(n) scan, so that pass is not timed).
 */
function drive(routing: Routing, check: boolean): Run {
  let x = 12345;
  const next = (range: number): number => {
    x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0;
    return (x >>> 8) % range;
  };
  const live: Pool[] = [];
  let nextId = 0;
  for (let i = 0; i < POOLS; i++) {
    const pool = { id: nextId++, load: next(8) };
    live.push(pool);
    routing.add(pool);
  }
  let stale = 0;
  const start = performance.now();
  for (let step = 0; step < STEPS; step++) {
    const picked = routing.pick();
    if (check) {
      let min = Infinity;
      for (const p of live) if (p.load < min) min = p.load;
      if (picked.load !== min || !live.includes(picked)) stale++;
    }
    picked.load++;
    routing.changed(picked);
    const done = live[next(live.length)] as Pool;
    if (done.load > 0) {
      done.load--;
      routing.changed(done);
    }
    if (step % CHURN === CHURN - 1) {
      const k = next(live.length);
      routing.remove(live[k] as Pool);
      let min = Infinity;
      for (const p of live) if (p.load < min) min = p.load;
      const fresh = { id: nextId++, load: min === Infinity ? 0 : min + 1 };
      live[k] = fresh;
      routing.add(fresh);
    }
  }
  return { ms: performance.now() - start, stale, entries: routing.entries() };
}

const leastLoaded: Scenario = {
  seed: '002',
  name: 'least-loaded-routing',
  api: 'Router (least-loaded)',
  workload: `${STEPS / 1000}k tasks routed to the least-loaded of ${POOLS} pools whose loads change every step (plus pool churn): O(n) scan vs the report's push-only heap vs Router`,
  async run(ctx) {
    const timed: Record<string, Run> = {};
    const checked: Record<string, Run> = {};
    const makers = [scan, pushOnlyHeap, router];
    for (const [i, make] of makers.entries()) {
      ctx.signal.throwIfAborted();
      ctx.progress(i, makers.length * 2, 'timed');
      drive(make(), false); // warm-up
      const name = make().name;
      timed[name] = drive(make(), false);
      ctx.progress(i + makers.length, makers.length * 2, 'checked');
      checked[name] = drive(make(), true);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const us = (name: string): number => round(((timed[name] as Run).ms * 1000) / STEPS, 3);
    const scanStale = (checked['scan'] as Run).stale;
    const heapStale = (checked['push-only heap'] as Run).stale;
    const routerStale = (checked['Router'] as Run).stale;
    const heapEntries = (timed['push-only heap'] as Run).entries;
    const ok = routerStale === 0 && scanStale === 0 && heapStale > 0 && us('Router') < us('scan');
    return {
      naive: {
        scanUsPerTask: us('scan'),
        scanStalePicks: scanStale,
        heapUsPerTask: us('push-only heap'),
        heapStalePicks: heapStale,
        heapEntries,
      },
      sluice: {
        usPerTask: us('Router'),
        stalePicks: routerStale,
        heapEntries: (timed['Router'] as Run).entries,
      },
      headline: { measure: 'stale picks', of: STEPS, naive: heapStale, sluice: routerStale, better: 'lower' },
      invariant:
        `every one of ${STEPS} Router picks had the minimum load (checked against an O(n) scan): 0 stale; ` +
        `the report's push-only heap picked a pool whose load had risen ${heapStale} times and grew to ${heapEntries} entries for ${POOLS} pools; ` +
        `per task (pick + updates) ${us('Router')} µs vs scan ${us('scan')} µs (${round(us('scan') / us('Router'), 1)}×)`,
      ok,
    };
  },
};

export default [leastLoaded];
