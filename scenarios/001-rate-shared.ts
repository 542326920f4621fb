// Seed 001 (multi-agent API): its rate limiter counted per process, so N workers let N times the
// limit through. Two real worker processes, each a loopback HTTP server, take turns answering
// login attempts from one client (as a round-robin load balancer would): a MemoryStore per
// process vs one shared store — a RedisStore when REDIS_URL is set, otherwise a MemoryStore in
// the parent process that both workers reach over IPC (said plainly in the result).
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MemoryStore, parsePolicy, type RatePolicy } from '../src/rate/index.js';
import type { Scenario } from './harness/types.js';

const POLICY = '5/1m';
const LIMIT = 5;
const WORKERS = 2;
const ATTEMPTS = 20;
const worker = fileURLToPath(new URL('./harness/rate-worker.ts', import.meta.url));

interface StoreRequest {
  readonly id: number;
  readonly op: 'consume' | 'peek' | 'reset';
  readonly key: string;
  readonly cost: number;
  readonly policy: { readonly name: string; readonly limit: number; readonly window: number };
}

/** Serves the workers' IPC store requests from one MemoryStore in this process. */
function serveStore(child: ChildProcess, store: MemoryStore, policies: Map<string, RatePolicy>): void {
  child.on('message', (m: StoreRequest | { port: number }) => {
    if (!('op' in m)) return;
    let policy = policies.get(m.policy.name);
    if (policy === undefined) {
      policy = parsePolicy({ limit: m.policy.limit, window: m.policy.window }, m.policy.name);
      policies.set(m.policy.name, policy);
    }
    const now = performance.now();
    if (m.op === 'reset') {
      void store.reset(m.key, policy).then(() => child.send({ id: m.id, decision: {} }));
      return;
    }
    const d =
      m.op === 'consume' ? store.consumeSync(m.key, policy, m.cost, now) : store.peekSync(m.key, policy, now);
    child.send({ id: m.id, decision: { ...d, policy: undefined } });
  });
}

interface ClusterResult {
  readonly allowed: number;
  readonly denied: number;
  readonly retryAfter: string | null;
  readonly perWorker: number[];
}

async function runCluster(kind: 'per-process' | 'ipc' | 'redis', prefix: string): Promise<ClusterResult> {
  const store = new MemoryStore();
  const policies = new Map<string, RatePolicy>();
  const children: ChildProcess[] = [];
  try {
    const ports = await Promise.all(
      Array.from({ length: WORKERS }, () => {
        const child = fork(worker, [kind, POLICY], {
          execArgv: ['--import', 'tsx'],
          env: { ...process.env, SLUICE_RATE_PREFIX: prefix },
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        children.push(child);
        if (kind === 'ipc') serveStore(child, store, policies);
        return new Promise<number>((resolve, reject) => {
          child.on('message', (m: { port?: number }) => {
            if (m.port !== undefined) resolve(m.port);
          });
          child.once('exit', (code) => reject(new Error(`rate worker exited with ${code}`)));
        });
      }),
    );
    let allowed = 0;
    let denied = 0;
    let retryAfter: string | null = null;
    const perWorker = ports.map(() => 0);
    for (let i = 0; i < ATTEMPTS; i++) {
      const w = i % WORKERS;
      const res = await fetch(`http://127.0.0.1:${ports[w]}/login`, { method: 'POST', body: '{}' });
      await res.arrayBuffer();
      if (res.status === 200) {
        allowed++;
        perWorker[w]!++;
      } else if (res.status === 429) {
        denied++;
        retryAfter ??= res.headers.get('retry-after');
      } else throw new Error(`worker answered ${res.status}`);
    }
    return { allowed, denied, retryAfter, perWorker };
  } finally {
    for (const child of children) {
      if (child.connected) child.disconnect();
    }
    await Promise.all(
      children.map((c) =>
        c.exitCode !== null ? undefined : new Promise((resolve) => c.once('exit', resolve)),
      ),
    );
  }
}

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
    const naive = await runCluster('per-process', prefix);
    ctx.progress(1, 2, kind === 'redis' ? 'RedisStore' : 'shared store over IPC');
    const fixed = await runCluster(kind, prefix);
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
