// Seed 001 (multi-agent API): its rate limiter counted per process, so N workers let N times the
// limit through. Two real worker processes, each a loopback HTTP server, take turns answering
// login attempts from one client (as a round-robin load balancer would): a MemoryStore per
// process vs one shared store — a RedisStore when REDIS_URL is set, otherwise a MemoryStore in
// the parent process that both workers reach over IPC (said plainly in the result).
import { runCluster } from './harness/rate-cluster.js';
import type { Scenario } from './harness/types.js';

const POLICY = '5/1m';
const LIMIT = 5;
const WORKERS = 2;
const ATTEMPTS = 20;

const shared: Scenario = {
  seed: '001',
  name: 'rate-shared',
  api: 'RateLimiter + shared RateStore',
  workload: `${ATTEMPTS} login attempts from one client, round-robin over ${WORKERS} worker processes, limit ${POLICY}: per-process MemoryStore vs one shared store`,
  async run(ctx) {
    const redis = process.env['REDIS_URL'];
    const kind = redis === undefined || redis === '' ? 'ipc' : 'redis';
    const prefix = `sluice:scenario:${process.pid}:${Date.now()}:`;
    ctx.progress(0, 2, 'per-process stores');
    const base = { workers: WORKERS, attempts: ATTEMPTS, policy: POLICY, prefix };
    const naive = await runCluster({ ...base, kind: 'per-process' });
    ctx.progress(1, 2, kind === 'redis' ? 'RedisStore' : 'shared store over IPC');
    const fixed = await runCluster({ ...base, kind });
    const storeUsed =
      kind === 'redis'
        ? 'RedisStore at REDIS_URL'
        : 'no REDIS_URL: one MemoryStore in the parent process, reached by both workers over IPC';
    return {
      naive: { allowed: naive.allowed, denied: naive.denied, perWorker: naive.perWorker.join('+') },
      sluice: {
        allowed: fixed.allowed,
        denied: fixed.denied,
        perWorker: fixed.perWorker.join('+'),
        retryAfterS: fixed.retryAfter ?? '-',
        store: storeUsed,
      },
      headline: {
        measure: 'logins let through',
        naive: naive.allowed,
        sluice: fixed.allowed,
        better: 'lower',
        of: ATTEMPTS,
      },
      invariant: `shared store (${storeUsed}): exactly ${fixed.allowed} of ${ATTEMPTS} allowed = the limit ${LIMIT}, 6th → 429 (Retry-After: ${fixed.retryAfter ?? '-'} s); per-process: ${naive.allowed} = ${WORKERS} × the limit`,
      ok: fixed.allowed === LIMIT && naive.allowed === WORKERS * LIMIT && fixed.retryAfter !== null,
    };
  },
};

export default shared;
