// Seed 002 (pool orchestrator): cross-pool search behind a 5-minute TTL cache, replaying a
// repeated-query trace over 20 minutes of (injected) time: hit ratio, latency, stats, clear().
import { Cache } from '../src/cache/index.js';
import { LoopbackServer } from './harness/server.js';
import { Latencies, round } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const REQUESTS = 400;
const WAVE = 8;
const SEARCH_MS = 8;
const LIMIT = 10;
const TTL_MS = 5 * 60_000;
/** Simulated time between requests: 400 requests span 20 minutes, so entries expire 3–4 times. */
const STEP_MS = 3_000;

const TOPICS = ['auth', 'pool', 'memory', 'routing', 'cache', 'workflow', 'agent', 'index', 'deploy', 'repo'];
const ASPECTS = ['timeout', 'error', 'config', 'latency', 'retry', 'schema'];
/** 60 distinct queries, most popular first. */
const QUERIES = TOPICS.flatMap((t) => ASPECTS.map((a) => `${t} ${a}`)).sort((a, b) => rank(a) - rank(b));

/** A fixed, scrambled popularity order (so rank 1 is not simply the first topic × aspect). */
function rank(query: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < query.length; i++) h = Math.imul(h ^ query.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The query of each request, Zipf(1) over `QUERIES` from a seeded PRNG: the same trace every run. */
function trace(): string[] {
  const weights = QUERIES.map((_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const out: string[] = [];
  let x = 7;
  for (let r = 0; r < REQUESTS; r++) {
    x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0;
    let u = (x / 2 ** 32) * total;
    let q = 0;
    while (q < QUERIES.length - 1 && u >= (weights[q] as number)) u -= weights[q++] as number;
    out.push(QUERIES[q] as string);
  }
  return out;
}

interface Results {
  readonly query: string;
  readonly results: number;
  /** Simulated time at which the pools were searched. */
  readonly fetchedAt: number;
}

const searchTtlCache: Scenario = {
  seed: '002',
  name: 'search-ttl-cache',
  api: "Cache({ ttl: '5m' })",
  workload: `${REQUESTS} searches over ${QUERIES.length} queries (Zipf), ${WAVE} at a time, ${SEARCH_MS} ms per cross-pool search, 20 simulated minutes: uncached vs Cache({ ttl: '5m' })`,
  async run(ctx) {
    const server = new LoopbackServer();
    const serve = (): void => {
      server.route('/search', {
        latencyMs: SEARCH_MS,
        handler: ({ query }) => ({ query: query.get('q'), results: Number(query.get('limit')) }),
      });
    };
    serve();
    await server.start();
    try {
      const queries = trace();
      let now = 0;
      const clock = { now: () => now };
      const searches = (): number => server.routeStats('/search').requests;
      // The report's cross_pool_search: one HTTP call to the search service per request.
      const search = async (query: string, limit = LIMIT): Promise<Results> => {
        const body = await server.client.get(`/search?q=${encodeURIComponent(query)}&limit=${limit}`);
        const parsed = JSON.parse(body) as { query: string; results: number };
        return { ...parsed, fetchedAt: now };
      };
      const replay = async (
        lookup: (query: string) => Promise<Results>,
        phase: string,
        isHit?: (query: string) => boolean,
      ) => {
        const all = new Latencies();
        const hit = new Latencies();
        const miss = new Latencies();
        let stale = 0;
        let wrong = 0;
        for (let i = 0; i < queries.length; i += WAVE) {
          ctx.progress(i, queries.length, phase);
          if (ctx.signal.aborted) throw ctx.signal.reason;
          const wave = queries.slice(i, i + WAVE);
          now += STEP_MS * wave.length;
          const results = await Promise.all(
            wave.map(async (query) => {
              const cached = isHit?.(query) ?? false;
              const start = performance.now();
              const result = await lookup(query);
              const ms = performance.now() - start;
              all.record(ms);
              (cached ? hit : miss).record(ms);
              if (result.query !== query) wrong++;
              return result;
            }),
          );
          for (const r of results) if (now - r.fetchedAt >= TTL_MS) stale++;
        }
        return { all: all.summary(), hit: hit.summary(), miss: miss.summary(), stale, wrong };
      };

      const naive = await replay(search, 'uncached');
      const naiveSearches = searches();

      serve(); // fresh counters
      now = 0;
      const cache = new Cache<string, Results>({ maxSize: 1000, ttl: TTL_MS, clock });
      const key = (query: string): string => `${query}:${LIMIT}`; // the report's cache key
      const cached = await replay(
        (query) => cache.getOrLoad(key(query), () => search(query)),
        'cached',
        (query) => cache.has(key(query)),
      );
      const stats = cache.stats;
      const loads = searches();

      // clear(): everything goes, and the next search goes to the pools again.
      ctx.progress(REQUESTS, REQUESTS, 'clear + expiry');
      const first = queries[0] as string;
      const sizeBefore = cache.size;
      cache.clear();
      const sizeAfter = cache.size;
      const missesBefore = cache.stats.misses;
      await cache.getOrLoad(key(first), () => search(first));
      const missAfterClear = searches() === loads + 1 && cache.stats.misses === missesBefore + 1;

      // Expiry on the injected clock: a hit 1 ms before the TTL, a fresh search at the TTL.
      const loadedAt = now;
      now = loadedAt + TTL_MS - 1;
      const beforeTtl = await cache.getOrLoad(key(first), () => search(first));
      const servedBeforeTtl = searches() === loads + 1 && beforeTtl.fetchedAt === loadedAt;
      now = loadedAt + TTL_MS;
      const atTtl = await cache.getOrLoad(key(first), () => search(first));
      const reloadedAtTtl = searches() === loads + 2 && atTtl.fetchedAt === now;

      const hitRatio = stats.hits / REQUESTS;
      const ok =
        naiveSearches === REQUESTS &&
        naive.wrong === 0 &&
        cached.wrong === 0 &&
        stats.loads === loads &&
        stats.hits + stats.misses === REQUESTS &&
        stats.hits === cached.hit.count &&
        stats.expirations > 0 &&
        cached.stale === 0 &&
        sizeBefore > 0 &&
        sizeAfter === 0 &&
        missAfterClear &&
        servedBeforeTtl &&
        reloadedAtTtl &&
        cached.all.mean < naive.all.mean;
      const pct = (x: number): string => `${round(x * 100, 1)}%`;
      return {
        naive: {
          meanMs: round(naive.all.mean, 2),
          p99Ms: round(naive.all.p99, 1),
          searches: naiveSearches,
        },
        sluice: {
          meanMs: round(cached.all.mean, 2),
          p99Ms: round(cached.all.p99, 1),
          searches: loads,
          hitRatio: pct(hitRatio),
          hitVsMissMs: `${round(cached.hit.mean, 3)} vs ${round(cached.miss.mean, 2)}`,
          stats: `hits ${stats.hits}, misses ${stats.misses}, loads ${stats.loads}, expirations ${stats.expirations}, size ${stats.size}, hitRatio ${pct(stats.hitRatio)}`,
          clear: `size ${sizeBefore} → ${sizeAfter}, next search missed: ${missAfterClear}`,
          expiry: `hit at ttl−1 ms: ${servedBeforeTtl}, reload at ttl: ${reloadedAtTtl}`,
        },
        headline: { measure: 'searches', naive: naiveSearches, sluice: loads, better: 'lower' },
        invariant: `hit ratio ${pct(hitRatio)} (stats.hits/requests); ${loads} of ${REQUESTS} searches reached the pools; nothing older than 5 min served (${cached.stale} stale), hit at ttl−1 ms, reload at ttl; clear() → size 0 and a miss`,
        ok,
      };
    } finally {
      await server.close();
    }
  },
};

export default searchTtlCache;
