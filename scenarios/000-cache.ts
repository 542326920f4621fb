// Seed 000 (knowledge agent): the ContentTypeRegistry stampede. A cold registry read by 100
// concurrent requests: a check-then-fetch cache loads it 100 times; single flight loads it once.
import { Cache } from '../src/cache/index.js';
import { LoopbackServer } from './harness/server.js';
import { round, timed } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const READERS = 100;
const LOAD_MS = 20;
const PATH = '/registry/content-types';
const TYPES = ['episode', 'pattern', 'review', 'experience', 'memory'];

interface Registry {
  readonly types: string[];
  /** The server's request number: distinct versions mean distinct loads. */
  readonly version: number;
}

const registryStampede: Scenario = {
  seed: '000',
  name: 'registry-stampede',
  api: 'Cache.getOrLoad',
  workload: `${READERS} concurrent cold reads of the content-type registry (load ${LOAD_MS} ms): check-then-fetch cache vs Cache.getOrLoad`,
  async run(ctx) {
    const server = new LoopbackServer();
    const serve = (): void => {
      server.route(PATH, { latencyMs: LOAD_MS, handler: ({ n }) => ({ types: TYPES, version: n }) });
    };
    serve();
    await server.start();
    try {
      const fetchRegistry = async (): Promise<Registry> =>
        JSON.parse(await server.client.get(PATH)) as Registry;
      const readers = <T>(read: () => Promise<T>): Promise<T[]> =>
        Promise.all(Array.from({ length: READERS }, read));

      // Naive: the report's registry before the lock — look in the cache, fetch on a miss, store.
      // Every reader checks before the first fetch has returned, so every reader fetches.
      ctx.progress(0, 3, 'naive');
      let naiveCached: Registry | undefined;
      const naiveGet = async (): Promise<Registry> => {
        if (naiveCached !== undefined) return naiveCached;
        const value = await fetchRegistry();
        naiveCached = value;
        return value;
      };
      const naive = await timed(() => readers(naiveGet));
      const naiveServer = { ...server.routeStats(PATH) };
      const naiveVersions = new Set(naive.value.map((r) => r.version)).size;

      ctx.progress(1, 3, 'sluice');
      serve(); // fresh counters
      const cache = new Cache<string, Registry>({ maxSize: 16, ttl: '5m' });
      const load = (): Promise<Registry> => cache.getOrLoad('content-types', fetchRegistry);
      const fast = await timed(() => readers(load));
      const sluiceServer = { ...server.routeStats(PATH) };
      const sluiceVersions = new Set(fast.value.map((r) => r.version)).size;
      const cold = cache.stats;

      // Warm: the same burst again is served from memory, nothing reaches the server.
      ctx.progress(2, 3, 'warm');
      const warm = await timed(() => readers(load));
      const warmLoads = server.routeStats(PATH).requests - sluiceServer.requests;
      const stats = cache.stats;

      const ok =
        naiveServer.requests === READERS &&
        naiveVersions === READERS &&
        sluiceServer.requests === 1 &&
        sluiceServer.maxInFlight === 1 &&
        cold.loads === 1 &&
        sluiceVersions === 1 &&
        fast.value.length === READERS &&
        fast.value.every((r) => r.types.length === TYPES.length) &&
        warmLoads === 0 &&
        stats.hits - cold.hits === READERS;
      return {
        naive: {
          ms: round(naive.ms),
          serverLoads: naiveServer.requests,
          maxInFlight: naiveServer.maxInFlight,
          distinctResults: naiveVersions,
        },
        sluice: {
          ms: round(fast.ms),
          serverLoads: sluiceServer.requests,
          maxInFlight: sluiceServer.maxInFlight,
          distinctResults: sluiceVersions,
          stats: `misses ${cold.misses}, loads ${cold.loads}`,
          warm: `${round(warm.ms, 2)} ms, ${warmLoads} loads, ${stats.hits - cold.hits} hits`,
        },
        headline: {
          measure: 'loads',
          naive: naiveServer.requests,
          sluice: sluiceServer.requests,
          better: 'lower',
        },
        invariant: `${READERS} cold readers → ${sluiceServer.requests} load at the server (naive ${naiveServer.requests}, ${naiveVersions} different registries); every reader got the same one; a warm burst loads ${warmLoads}`,
        ok,
      };
    } finally {
      await server.close();
    }
  },
};

export default registryStampede;
