// Seed 003 (validation engine) calls flaky dependencies and hopes (so does 004's orchestrator):
// no timeout, no retry policy, nothing between a failing dependency and its callers. Replayed
// against a loopback dependency that fails 20% of requests and sometimes hangs, then has an
// outage. Naive: await the call. sluice: pipe(retry with a shared RetryBudget, CircuitBreaker,
// Hedger 'p95', timeout) — success rate, p99, and the requests the dependency had to serve.
import { CircuitBreaker, Hedger, pipe, retry, RetryBudget, timeout } from '../src/resilience/index.js';
import { LoopbackServer } from './harness/server.js';
import { sized } from './harness/size.js';
import { percentile, round } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const REQUESTS = sized(400, 160);
const OUTAGE = sized(200, 100);
const CONCURRENCY = 20;
const HANG_MS = 1500; // "hangs": a reply far slower than any caller would wait
const HANG_RATE = 0.03;
const FAIL_RATE = 0.2;
const TIMEOUT_MS = 100;

/** xorshift32: the same attempts hang every run. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

interface Side {
  ok: number;
  latencies: number[];
}

/** Runs `count` calls, CONCURRENCY at a time, each timed end to end. */
async function drive(count: number, call: (i: number) => Promise<unknown>): Promise<Side> {
  const side: Side = { ok: 0, latencies: [] };
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const start = performance.now();
      try {
        await call(i);
        side.ok++;
      } catch {
        // counted as not ok
      }
      side.latencies.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return side;
}

const p99 = (s: Side) =>
  round(
    percentile(
      [...s.latencies].sort((a, b) => a - b),
      99,
    ),
  );
const pct = (s: Side, n: number) => round((100 * s.ok) / n);

const flakyDependency: Scenario = {
  seed: '003',
  name: 'flaky-dependency',
  api: 'pipe(retry + RetryBudget, CircuitBreaker, Hedger, timeout)',
  workload: `${REQUESTS} calls (${CONCURRENCY} at a time) to a dependency that fails ${FAIL_RATE * 100}% and hangs ${HANG_RATE * 100}% (${HANG_MS} ms), then ${OUTAGE} calls during an outage: naive await vs timeout + budgeted retry + breaker + hedge`,
  async run(ctx) {
    const server = await new LoopbackServer()
      .route('/dep', { latencyMs: 5, failRate: FAIL_RATE, seed: 3 })
      .route('/down', { failEvery: 1 })
      .start();
    try {
      // Each attempt draws whether it hangs, from one seeded stream per side.
      const caller = (seed: number) => {
        const draw = prng(seed);
        return (path: string, signal?: AbortSignal) =>
          server.client.get(
            draw() < HANG_RATE ? `${path}?ms=${HANG_MS}` : path,
            signal ? { signal } : undefined,
          );
      };

      // Naive: await the dependency, no timeout, no retry.
      const naiveCall = caller(11);
      const naive = await drive(REQUESTS, () => naiveCall('/dep'));
      const naiveSent = server.routeStats('/dep').requests;
      const naiveOutage = await drive(OUTAGE, () => naiveCall('/down'));
      const naiveOutageSent = server.routeStats('/down').requests;
      ctx.progress(1, 2, 'naive');
      server.resetCounters();
      server.route('/dep', { latencyMs: 5, failRate: FAIL_RATE, seed: 3 }).route('/down', { failEvery: 1 });

      // sluice: one policy per dependency, its budget shared by every caller.
      const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 5, windowMs: 10_000 });
      const breaker = new CircuitBreaker({ failureRate: 0.5, minimumRequests: 20, halfOpenAfterMs: 5_000 });
      const hedger = new Hedger({ delayMs: 'p95', initialDelayMs: 30, minDelayMs: 10 });
      const policy = pipe(
        retry({ attempts: 3, backoff: 'exponential-jitter', delayMs: 5, maxDelayMs: 50, budget }),
        breaker,
        hedger,
        timeout(TIMEOUT_MS),
      );
      const sluiceCall = caller(11);
      const sluice = await drive(REQUESTS, () => policy.run((signal) => sluiceCall('/dep', signal)));
      const sluiceSent = server.routeStats('/dep').requests;
      const downBudget = new RetryBudget({ ratio: 0.2, minPerSecond: 5, windowMs: 10_000 });
      const downBreaker = new CircuitBreaker({
        failureRate: 0.5,
        minimumRequests: 20,
        halfOpenAfterMs: 5_000,
      });
      const downPolicy = pipe(
        retry({ attempts: 3, backoff: 'exponential-jitter', delayMs: 5, maxDelayMs: 50, budget: downBudget }),
        downBreaker,
        timeout(TIMEOUT_MS),
      );
      const sluiceOutage = await drive(OUTAGE, () => downPolicy.run((signal) => sluiceCall('/down', signal)));
      const sluiceOutageSent = server.routeStats('/down').requests;
      ctx.progress(2, 2, 'sluice');

      const b = budget.stats;
      const d = downBudget.stats;
      const naiveP99 = p99(naive);
      const sluiceP99 = p99(sluice);
      return {
        naive: {
          successPct: pct(naive, REQUESTS),
          p99Ms: naiveP99,
          sent: naiveSent,
          outageSent: naiveOutageSent,
          outageP99Ms: p99(naiveOutage),
        },
        sluice: {
          successPct: pct(sluice, REQUESTS),
          p99Ms: sluiceP99,
          sent: sluiceSent,
          retries: b.withdrawals,
          hedges: hedger.stats.hedges,
          outageSent: sluiceOutageSent,
          outageP99Ms: p99(sluiceOutage),
          outageRejected: downBreaker.stats.rejected,
          retriesDenied: d.denied,
        },
        headline: { measure: 'time', unit: 'ms', naive: naiveP99, sluice: sluiceP99, better: 'lower' },
        invariant:
          `p99 ${naiveP99} → ${sluiceP99} ms, success ${pct(naive, REQUESTS)}% → ${pct(sluice, REQUESTS)}% ` +
          `(${sluiceSent} requests for ${REQUESTS} calls: ${b.withdrawals} retries, ${hedger.stats.hedges} hedges); ` +
          `outage: ${naiveOutageSent} → ${sluiceOutageSent} requests sent (breaker refused ${downBreaker.stats.rejected}, budget denied ${d.denied} retries)`,
        ok:
          sluice.ok > naive.ok &&
          sluice.ok >= REQUESTS * 0.95 &&
          sluiceP99 < naiveP99 / 3 &&
          sluiceOutageSent < naiveOutageSent &&
          downBreaker.stats.opened >= 1,
      };
    } finally {
      await server.close();
    }
  },
};

export default flakyDependency;
