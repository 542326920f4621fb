// Seed 000 (knowledge agent): "background non-critical writes" — a learn request does 2 critical
// writes it must await and 3 non-critical ones (store_pattern, reinforce_existing_pattern, …)
// it should not. Awaiting all vs Supervisor.background for the non-critical ones, then a
// shutdown in the middle of traffic: untracked fire-and-forget vs supervised.
import { Supervisor } from '../src/tasks/index.js';
import { LoopbackServer } from './harness/server.js';
import { sized } from './harness/size.js';
import { percentile, round } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const CRITICAL_MS = 10;
const NON_CRITICAL_MS = 25;
const REQUESTS = sized(60, 30);
const CONCURRENCY = 10;

const backgroundWrites: Scenario = {
  seed: '000',
  name: 'background-writes',
  api: 'Supervisor.background',
  workload: `${REQUESTS} learn requests (${CONCURRENCY} concurrent), each 2 critical writes (${CRITICAL_MS} ms) + 3 non-critical writes (${NON_CRITICAL_MS} ms) to a loopback server; then shutdown right after the last response`,
  async run(ctx) {
    const server = new LoopbackServer()
      .route('/critical', { latencyMs: CRITICAL_MS })
      .route('/non-critical', { latencyMs: NON_CRITICAL_MS });
    await server.start();
    const write = (kind: 'critical' | 'non-critical', id: string) => server.client.put(`/${kind}/${id}`, id);
    let done = 0;
    const serve = async (respond: (id: string) => Promise<void>): Promise<number[]> => {
      const latencies: number[] = [];
      let next = 0;
      const client = async () => {
        while (next < REQUESTS) {
          const id = String(next++);
          const start = performance.now();
          await respond(id);
          latencies.push(performance.now() - start);
          ctx.progress(++done, 3 * REQUESTS);
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, client));
      return latencies.sort((a, b) => a - b);
    };
    const critical = (id: string) => Promise.all([write('critical', `${id}a`), write('critical', `${id}b`)]);
    const nonCritical = ['store-pattern', 'reinforce-pattern', 'tag-memories'];
    try {
      // 1. Naive: the response waits for every write.
      const awaited = await serve(async (id) => {
        await critical(id);
        await Promise.all(nonCritical.map((w) => write('non-critical', `${id}-${w}`)));
      });
      const p50Awaited = percentile(awaited, 50);

      // 2. Untracked fire-and-forget, then "exit" right after the last response.
      server.resetCounters();
      let floatingDone = 0;
      const floating: Promise<unknown>[] = [];
      await serve(async (id) => {
        await critical(id);
        for (const w of nonCritical) {
          floating.push(
            write('non-critical', `${id}-${w}`).then(
              () => floatingDone++,
              () => undefined,
            ),
          );
        }
      });
      const doneAtExit = floatingDone;
      // A real process would exit here; settle them so that they do not count in phase 3.
      await Promise.all(floating);

      // 3. Supervisor.background, then shutdown right after the last response.
      server.resetCounters();
      const sup = new Supervisor({ name: 'learn' });
      const supervised = await serve(async (id) => {
        await critical(id);
        for (const w of nonCritical) sup.background(() => write('non-critical', `${id}-${w}`), { name: w });
      });
      const inFlightAtShutdown = sup.stats.backgroundInFlight;
      const report = await sup.shutdown({ deadlineMs: 5000 });
      const counted = server.routeStats('/non-critical').requests;
      const p50 = percentile(supervised, 50);
      const total = 3 * REQUESTS;
      const lost = total - doneAtExit;
      return {
        naive: {
          p50Ms: round(p50Awaited),
          p99Ms: round(percentile(awaited, 99)),
          fireAndForgetDoneAtExit: `${doneAtExit}/${total}`,
        },
        sluice: {
          p50Ms: round(p50),
          p99Ms: round(percentile(supervised, 99)),
          inFlightAtShutdown,
          doneAtShutdown: `${sup.stats.backgroundCompleted}/${total}`,
          shutdownMs: round(report.durationMs),
        },
        headline: {
          measure: 'time',
          unit: 'ms',
          naive: round(p50Awaited),
          sluice: round(p50),
          better: 'lower',
        },
        invariant: `p50 response ${round(p50Awaited)} → ${round(p50)} ms; shutdown with ${inFlightAtShutdown} writes in flight: ${counted}/${total} non-critical writes counted at the server, none unfinished (untracked fire-and-forget: ${lost} not done at exit)`,
        ok:
          p50 < p50Awaited &&
          counted === total &&
          sup.stats.backgroundCompleted === total &&
          report.unfinished.length === 0 &&
          !report.timedOut &&
          inFlightAtShutdown > 0,
      };
    } finally {
      await server.close();
    }
  },
};

export default backgroundWrites;
