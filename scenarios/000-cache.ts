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

const registryStampede: Scenario = {
  seed: '000',
  name: 'registry-stampede',
  workload: `${READERS} concurrent cold reads of the content-type registry (load ${LOAD_MS} ms): check-then-fetch cache vs Cache.getOrLoad`,
  async run(ctx) {
    const server = new LoopbackServer();
    server.route(PATH, { latencyMs: LOAD_MS, handler: ({ n }) => ({ types: TYPES, version: n }) });
    await server.start();
    try {
      const fetchRegistry = async (): Promise<{ types: string[]; version: number }> =>
        JSON.parse(await server.client.get(PATH)) as { types: string[]; version: number };

      // Naive: the report's registry before the fix — look in a dict, fetch on a miss, store.
      ctx.progress(0, 2, 'naive');
      let naiveCached: { types: string[]; version: number } | undefined;
      const naiveGet = async () => {
        if (naiveCached !== undefined) return naiveCached;
        const value = await fetchRegistry();
        naiveCached = value;
        return value;
      };
      const naive = await timed(() => Promise.all(Array.from({ length: READERS }, naiveGet)));
      const naiveLoads = server.routeStats(PATH).requests;
      const naiveVersions = new Set(naive.value.map((r) => r.version)).size;

      ctx.progress(1, 2, 'sluice');
      server.route(PATH, { latencyMs: LOAD_MS, handler: ({ n }) => ({ types: TYPES, version: n }) });
      const cache = new Cache<string, { types: string[]; version: number }>({ maxSize: 16, ttl: '5m' });
      const fast = await timed(() =>
        Promise.all(Array.from({ length: READERS }, () => cache.getOrLoad('content-types', fetchRegistry))),
      );
      const sluiceLoads = server.routeStats(PATH).requests;
      const sluiceVersions = new Set(fast.value.map((r) => r.version)).size;
      const stats = cache.stats;
      const ok =
        naiveLoads === READERS &&
        sluiceLoads === 1 &&
        stats.loads === 1 &&
        sluiceVersions === 1 &&
        fast.value.length === READERS &&
        fast.value.every((r) => r.types.length === TYPES.length);
      return {
        naive: { ms: round(naive.ms), loads: naiveLoads, distinctResults: naiveVersions },
        sluice: {
          ms: round(fast.ms),
          loads: sluiceLoads,
          distinctResults: sluiceVersions,
          misses: stats.misses,
        },
        ratio: round(naiveLoads / Math.max(sluiceLoads, 1), 2),
        invariant: `${READERS} cold readers → ${sluiceLoads} load at the server (naive ${naiveLoads}); every reader got the same registry (${sluiceVersions} version)`,
        ok,
      };
    } finally {
      await server.close();
    }
  },
};

export default registryStampede;
