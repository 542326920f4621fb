// Seed 002 (pool orchestrator): cross-pool search behind a 5-minute TTL cache, replaying a
// repeated-query trace over 20 minutes of (injected) time: hit ratio, latency, stats, clear().
import { Cache } from '../src/cache/index.js';
import { LoopbackServer } from './harness/server.js';
import { Latencies, round } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const REQUESTS = 400;
const QUERIES = 60;
const WAVE = 8;
const SEARCH_MS = 8;
const TTL_MS = 5 * 60_000;
/** Simulated time between requests: 400 requests span 20 minutes, so entries expire 3–4 times. */
const STEP_MS = 3_000;

/** Query indices drawn Zipf(1)-like from a seeded integer generator: the same trace every run. */
function trace(): number[] {
  const weights = Array.from({ length: QUERIES }, (_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  let x = 7;
  for (let r = 0; r < REQUESTS; r++) {
    x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0;
    let u = (x / 2 ** 32) * total;
    let q = 0;
    while (q < QUERIES - 1 && u >= (weights[q] as number)) u -= weights[q++] as number;
    out.push(q);
  }
  return out;
}

interface Result {
  readonly query: string;
  readonly fetchedAt: number;
}

const searchTtlCache: Scenario = {
  seed: '002',
  name: 'search-ttl-cache',
  workload: `${REQUESTS} searches over ${QUERIES} queries (Zipf), ${WAVE} at a time, ${SEARCH_MS} ms per cross-pool search, 20 simulated minutes: uncached vs Cache({ ttl: '5m' })`,
  async run(ctx) {
    const server = new LoopbackServer();
    server.route('/search', { latencyMs: SEARCH_MS });
    await server.start();
    try {
      const queries = trace();
      let now = 0;
      const clock = { now: () => now };
      const search = async (q: number): Promise<Result> => {
        await server.client.get(`/search?q=${q}`);
        return { query: `q${q}`, fetchedAt: now };
      };
      const replay = async (lookup: (q: number) => Promise<Result>, phase: string) => {
        const latencies = new Latencies();
        let stale = 0;
        for (let i = 0; i < queries.length; i += WAVE) {
          ctx.progress(i, queries.length, phase);
          if (ctx.signal.aborted) throw ctx.signal.reason;
          const wave = queries.slice(i, i + WAVE);
          now += STEP_MS * wave.length;
          const results = await Promise.all(wave.map((q) => latencies.time(() => lookup(q))));
          for (const r of results) if (now - r.fetchedAt > TTL_MS) stale++;
        }
        return { latencies: latencies.summary(), stale };
      };

      const naive = await replay(search, 'uncached');
      const naiveRequests = server.routeStats('/search').requests;
      server.route('/search', { latencyMs: SEARCH_MS });
      now = 0;
      const cache = new Cache<number, Result>({ maxSize: 1000, ttl: TTL_MS, clock });
      const cached = await replay((q) => cache.getOrLoad(q, search), 'cached');
      const stats = cache.stats;
      const loads = server.routeStats('/search').requests;

      // clear(): everything goes, and the next search goes to the pools again.
      const sizeBefore = cache.size;
      cache.clear();
      const sizeAfter = cache.size;
      await cache.getOrLoad(queries[0] as number, search);
      const missAfterClear = server.routeStats('/search').requests === loads + 1;

      const hitRatio = stats.hits / REQUESTS;
      const ok =
        naiveRequests === REQUESTS &&
        stats.loads === loads &&
        stats.hits + stats.misses === REQUESTS &&
        stats.expirations > 0 &&
        cached.stale === 0 &&
        sizeAfter === 0 &&
        missAfterClear &&
        cached.latencies.mean < naive.latencies.mean;
      return {
        naive: {
          meanMs: round(naive.latencies.mean, 2),
          p99Ms: round(naive.latencies.p99, 1),
          searches: naiveRequests,
        },
        sluice: {
          meanMs: round(cached.latencies.mean, 2),
          p99Ms: round(cached.latencies.p99, 1),
          searches: loads,
          hitRatio: `${round(hitRatio * 100, 1)}%`,
          stats: `hits ${stats.hits}, misses ${stats.misses}, loads ${stats.loads}, expirations ${stats.expirations}, size ${stats.size}`,
          clear: `size ${sizeBefore} → ${sizeAfter}, next search missed: ${missAfterClear}`,
        },
        ratio: round(naive.latencies.mean / cached.latencies.mean, 2),
        invariant: `hit ratio ${round(hitRatio * 100, 1)}% = stats.hits/requests; ${loads} of ${REQUESTS} searches reached the pools; no result older than 5 min served (${cached.stale} stale); clear() → size 0 and a miss`,
        ok,
      };
    } finally {
      await server.close();
    }
  },
};

export default searchTtlCache;
