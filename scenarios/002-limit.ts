import { Limiter, settle } from '../src/limit/index.js';
import { LoopbackServer, round, timed } from './harness/server.js';
import type { Scenario } from './harness/types.js';

const LATENCY = 25;

const poolStatus: Scenario = {
  seed: '002',
  name: 'pool-status-settled',
  workload: `status of 10 pools (${LATENCY} ms each, pools 3 and 7 fail): sequential loop vs settle`,
  async run() {
    const server = await new LoopbackServer().start();
    try {
      const paths = Array.from(
        { length: 10 },
        (_, i) => `/work?ms=${LATENCY}&fail=${i === 3 || i === 7 ? 1 : 0}`,
      );
      const naive = await timed(async () => {
        const out: string[] = [];
        for (const p of paths) out.push(await server.call(p).catch(() => 'error'));
        return out;
      });
      const fast = await timed(() => settle(paths.map((p) => () => server.call(p))));
      const good = fast.value.filter((o) => o.ok).length;
      const bad = fast.value.length - good;
      const ok = good === 8 && bad === 2 && fast.ms < LATENCY * 4;
      return {
        naive: { ms: round(naive.ms) },
        sluice: { ms: round(fast.ms), results: good, errors: bad },
        ratio: round(naive.ms / fast.ms, 2),
        invariant: `8 results + 2 errors in input order; total ${round(fast.ms)} ms ≈ one call (${LATENCY} ms)`,
        ok,
      };
    } finally {
      await server.close();
    }
  },
};

const doubleSemaphore: Scenario = {
  seed: '002',
  name: 'double-semaphore',
  workload: `60 calls of ${LATENCY} ms: outer Limiter(20) nested around inner Limiter(10) vs one Limiter(20)`,
  async run() {
    const server = await new LoopbackServer().start();
    try {
      const n = 60;
      const call = () => server.call(`/work?ms=${LATENCY}`);
      const outer = new Limiter({ concurrency: 20 });
      const inner = new Limiter({ concurrency: 10 });
      const nested = await timed(() =>
        Promise.all(Array.from({ length: n }, () => outer.run(() => inner.run(call)))),
      );
      const nestedMax = server.maxInFlight;
      server.resetCounters();
      const single = new Limiter({ concurrency: 20 });
      const flat = await timed(() => Promise.all(Array.from({ length: n }, () => single.run(call))));
      const flatMax = server.maxInFlight;
      const ok = nestedMax === 10 && flatMax === 20 && flat.ms < nested.ms;
      return {
        naive: { ms: round(nested.ms), effectiveConcurrency: nestedMax },
        sluice: { ms: round(flat.ms), effectiveConcurrency: flatMax },
        ratio: round(nested.ms / flat.ms, 2),
        invariant: `effective concurrency at the server ${nestedMax} → ${flatMax}`,
        ok,
      };
    } finally {
      await server.close();
    }
  },
};

export default [poolStatus, doubleSemaphore];
