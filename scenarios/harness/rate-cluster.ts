// Runs N rate-limited worker processes (harness/rate-worker.ts) behind a round-robin client and
// counts what they let through: the `rate-shared` scenario and the two-process integration test.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MemoryStore, parsePolicy, type RatePolicy } from '../../src/rate/index.js';

const worker = fileURLToPath(new URL('./rate-worker.ts', import.meta.url));

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

export interface ClusterResult {
  readonly allowed: number;
  readonly denied: number;
  readonly retryAfter: string | null;
  readonly perWorker: number[];
}

export interface ClusterOptions {
  /** Where the workers keep their state. */
  readonly kind: 'per-process' | 'ipc' | 'redis';
  readonly workers: number;
  readonly attempts: number;
  /** The login limiter's policy. */
  readonly policy: string;
  /** RedisStore key prefix (kind `redis`). */
  readonly prefix: string;
}

/** Starts the workers, sends `attempts` logins round-robin, stops the workers. */
export async function runCluster(options: ClusterOptions): Promise<ClusterResult> {
  const { kind, workers: WORKERS, attempts: ATTEMPTS, policy: POLICY, prefix } = options;
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
    await Promise.all(children.map(exited));
  }
}

/** Resolves when the child has exited; kills it if it has not within 5 s of disconnecting. */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
