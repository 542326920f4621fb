// Seed 003 (validation engine): "graceful shutdown procedures" for fire-and-forget work. A real
// child process serves loopback HTTP; every request does one background write. Under load it
// gets SIGTERM: the naive `process.exit` handler vs onShutdown([server, supervisor]).
import { shutdownUnderLoad, type ShutdownLoadResult } from './harness/shutdown-load.js';
import { sized } from './harness/size.js';
import { round } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const DEADLINE_MS = 3000;
const CONCURRENCY = 16;
const SIGTERM_AFTER = sized(300, 100);

const lost = (r: ShutdownLoadResult): number => r.unanswered + r.lostWrites;

const gracefulShutdown: Scenario = {
  seed: '003',
  name: 'graceful-shutdown',
  api: 'onShutdown + Supervisor.background',
  workload: `child process, ${CONCURRENCY} concurrent loopback clients, each request 20 ms + one 30 ms background write; SIGTERM after ${SIGTERM_AFTER} answers: process.exit vs onShutdown (deadline ${DEADLINE_MS} ms)`,
  async run(ctx) {
    ctx.progress(0, 2, 'naive');
    const naive = await shutdownUnderLoad({
      mode: 'naive',
      concurrency: CONCURRENCY,
      sigtermAfter: SIGTERM_AFTER,
    });
    ctx.progress(1, 2, 'sluice');
    const fixed = await shutdownUnderLoad({
      mode: 'graceful',
      deadlineMs: DEADLINE_MS,
      concurrency: CONCURRENCY,
      sigtermAfter: SIGTERM_AFTER,
    });
    ctx.progress(2, 2, 'sluice');
    const side = (r: ShutdownLoadResult) => ({
      received: r.arrived,
      unanswered: r.unanswered,
      writesLost: r.lostWrites,
      exitCode: r.exitCode ?? String(r.exitSignal),
      exitMs: round(r.exitMs),
    });
    return {
      naive: side(naive),
      sluice: side(fixed),
      headline: {
        measure: 'requests + writes lost',
        naive: lost(naive),
        sluice: lost(fixed),
        better: 'lower',
      },
      invariant: `onShutdown: ${fixed.arrived} received = ${fixed.answered} answered, ${fixed.writes} writes done, exit ${fixed.exitCode} in ${round(fixed.exitMs)} ms (< ${DEADLINE_MS}); process.exit lost ${naive.unanswered} requests and ${naive.lostWrites} writes`,
      ok:
        fixed.exitCode === 0 &&
        fixed.unanswered === 0 &&
        fixed.lostWrites === 0 &&
        fixed.writes === fixed.arrived &&
        fixed.exitMs < DEADLINE_MS &&
        lost(naive) > 0,
    };
  },
};

export default gracefulShutdown;
