import { Limiter, settle } from '../src/limit/index.js';
import { LoopbackServer, round, timed } from './harness/server.js';
import type { Scenario } from './harness/types.js';

const LATENCY = 30;

const independentAwaits: Scenario = {
  seed: '000',
  name: 'independent-awaits',
  workload: `5 independent reads of ${LATENCY} ms (one fails): sequential awaits vs settle`,
  async run() {
    const server = await new LoopbackServer().start();
    try {
      const paths = [1, 2, 3, 4, 5].map((i) => `/work?ms=${LATENCY}&fail=${i === 4 ? 1 : 0}`);
      const naive = await timed(async () => {
        let failed = 0;
        for (const p of paths) {
          try {
            await server.call(p);
          } catch {
            failed++;
          }
        }
        return failed;
      });
      const fast = await timed(() => settle(paths.map((p) => () => server.call(p))));
      const errors = fast.value.filter((o) => !o.ok).length;
      const ok = errors === 1 && naive.value === 1 && fast.ms < naive.ms / 2 && fast.ms < LATENCY * 3;
      return {
        naive: { ms: round(naive.ms), failures: naive.value },
        sluice: { ms: round(fast.ms), failures: errors },
        ratio: round(naive.ms / fast.ms, 2),
        invariant: `all 5 outcomes reported (1 error); time ≈ one call: ${round(fast.ms)} ms vs ${round(naive.ms)} ms`,
        ok,
      };
    } finally {
      await server.close();
    }
  },
};

const episodeBatch: Scenario = {
  seed: '000',
  name: 'episode-batch-c3',
  workload: `12 episode writes of ${LATENCY} ms: unbounded Promise.all vs Limiter(3)`,
  async run() {
    const server = await new LoopbackServer().start();
    try {
      const n = 12;
      const naive = await timed(() =>
        Promise.all(Array.from({ length: n }, () => server.call(`/work?ms=${LATENCY}`))),
      );
      const naiveMax = server.maxInFlight;
      server.resetCounters();
      const limiter = new Limiter({ concurrency: 3 });
      const bounded = await timed(() =>
        Promise.all(Array.from({ length: n }, () => limiter.run(() => server.call(`/work?ms=${LATENCY}`)))),
      );
      const max = server.maxInFlight;
      const expected = Math.ceil(n / 3) * LATENCY;
      const ok = max === 3 && bounded.ms >= expected * 0.9 && bounded.ms < expected * 2.5;
      return {
        naive: { ms: round(naive.ms), maxInFlight: naiveMax },
        sluice: { ms: round(bounded.ms), maxInFlight: max },
        ratio: round(naiveMax / max, 2),
        invariant: `max in flight at the server = ${max} (bound 3); time ${round(bounded.ms)} ms ≈ ceil(12/3) × ${LATENCY} = ${expected} ms`,
        ok,
      };
    } finally {
      await server.close();
    }
  },
};

export default [independentAwaits, episodeBatch];
