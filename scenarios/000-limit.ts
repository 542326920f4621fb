// Seed 000 (knowledge agent): independent awaits made concurrent with a settled gather, and the
// episode batch run under a concurrency of 3. Latencies scaled from ~1 s calls to 15–35 ms.
import { map, settle } from '../src/limit/index.js';
import { LoopbackServer } from './harness/server.js';
import { round, timed } from './harness/stats.js';
import type { Scenario } from './harness/types.js';
import { timeHeadline } from './harness/headline.js';

/** The setup-status reads of the report: four independent reads and one that fails. */
const READS = [
  { path: '/memories/count', latencyMs: 20 },
  { path: '/patterns/count', latencyMs: 35 },
  { path: '/graph/health', latencyMs: 25, fails: true },
  { path: '/experiences/count', latencyMs: 30 },
  { path: '/reviews/latest', latencyMs: 15 },
] as const;

const independentAwaits: Scenario = {
  seed: '000',
  name: 'independent-awaits',
  api: null,
  pattern: 'start the reads together; settle here, Promise.allSettled would do the same',
  workload: `setup status: ${READS.length} independent reads of 15–35 ms, one fails — sequential awaits vs settle`,
  async run(ctx) {
    const server = new LoopbackServer();
    for (const r of READS)
      server.route(r.path, { latencyMs: r.latencyMs, ...('fails' in r ? { failEvery: 1 } : {}) });
    await server.start();
    try {
      const sum = READS.reduce((a, r) => a + r.latencyMs, 0);
      const max = Math.max(...READS.map((r) => r.latencyMs));
      // Naive: one await after another, each in its own try/catch so the failure is reported too.
      const naive = await timed(async () => {
        const outcomes: boolean[] = [];
        for (const [i, r] of READS.entries()) {
          ctx.progress(i, READS.length, 'naive');
          try {
            await server.client.get(r.path);
            outcomes.push(true);
          } catch {
            outcomes.push(false);
          }
        }
        return outcomes;
      });
      const naiveMax = server.maxInFlight;
      server.resetCounters();
      ctx.progress(0, 1, 'sluice');
      const fast = await timed(() => settle(READS.map((r) => () => server.client.get(r.path))));
      const sluiceMax = server.maxInFlight;
      const expected = READS.map((r) => !('fails' in r));
      const reported = fast.value.map((o) => o.ok);
      const allReported =
        reported.length === expected.length && reported.every((ok, i) => ok === expected[i]);
      const sameAsNaive = naive.value.every((ok, i) => ok === expected[i]);
      const errors = reported.filter((ok) => !ok).length;
      // ≈ sum vs ≈ max: the concurrent run is closer to the slowest call than to the sum.
      const ok =
        allReported &&
        sameAsNaive &&
        sluiceMax === READS.length &&
        naive.ms >= sum &&
        fast.ms < (sum + max) / 2;
      return {
        naive: { ms: round(naive.ms), failures: naive.value.filter((x) => !x).length, maxInFlight: naiveMax },
        sluice: { ms: round(fast.ms), failures: errors, maxInFlight: sluiceMax },
        headline: timeHeadline(round(naive.ms), round(fast.ms)),
        invariant:
          `all ${READS.length} outcomes reported in order (${READS.length - errors} ok, ${errors} error); ` +
          `${round(fast.ms)} ms ≈ slowest ${max} ms, sequential ${round(naive.ms)} ms ≈ sum ${sum} ms`,
        ok,
      };
    } finally {
      await server.close();
    }
  },
};

const EPISODES = 10;
const EPISODE_MS = 30;
const BOUND = 3;

const episodeBatch: Scenario = {
  seed: '000',
  name: 'episode-batch-c3',
  api: 'map({ concurrency })',
  workload: `add ${EPISODES} episodes to the graph, ${EPISODE_MS} ms each: sequential loop vs map(concurrency ${BOUND})`,
  async run(ctx) {
    const server = await new LoopbackServer().route('/episodes', { latencyMs: EPISODE_MS }).start();
    try {
      const episodes = Array.from({ length: EPISODES }, (_, i) => ({ id: i, body: `episode ${i}` }));
      const add = (e: { id: number; body: string }) => server.client.post('/episodes', JSON.stringify(e));
      let done = 0;
      const naive = await timed(async () => {
        for (const e of episodes) {
          await add(e);
          ctx.progress(++done, EPISODES, 'naive');
        }
      });
      const naiveMax = server.maxInFlight;
      server.resetCounters();
      done = 0;
      const bounded = await timed(() =>
        map(
          episodes,
          async (e) => {
            const r = await add(e);
            ctx.progress(++done, EPISODES, 'sluice');
            return r;
          },
          { concurrency: BOUND },
        ),
      );
      const stats = server.routeStats('/episodes');
      const waves = Math.ceil(EPISODES / BOUND);
      const expected = waves * EPISODE_MS;
      // The bound is exact at the server, and the time is `waves` latencies (never fewer; allow
      // scheduling overhead, but well under the sequential EPISODES latencies).
      const ok =
        stats.maxInFlight === BOUND &&
        stats.requests === EPISODES &&
        bounded.value.length === EPISODES &&
        bounded.ms >= expected &&
        bounded.ms < expected + 2 * EPISODE_MS &&
        naive.ms >= EPISODES * EPISODE_MS;
      return {
        naive: { ms: round(naive.ms), maxInFlight: naiveMax },
        sluice: { ms: round(bounded.ms), maxInFlight: stats.maxInFlight },
        headline: timeHeadline(round(naive.ms), round(bounded.ms)),
        invariant: `max in flight at the server = ${stats.maxInFlight} (bound ${BOUND}); ${round(bounded.ms)} ms ≈ ceil(${EPISODES}/${BOUND}) × ${EPISODE_MS} = ${expected} ms`,
        ok,
      };
    } finally {
      await server.close();
    }
  },
};

export default [independentAwaits, episodeBatch];
