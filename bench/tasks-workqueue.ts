/**
 * `tasks` benches for WorkQueue (wired into bench/tasks.ts): 200k ops over 1000 ordering keys,
 * a trivial async handler, concurrency 16, against the usual peer — p-queue for the global
 * bound plus a hand-rolled per-key async mutex (a promise chain per key, deleted when the key
 * goes idle) — same inputs, same run.
 *
 * Fairness (as in bench/limit.ts): every impl calls the same handler function object; every
 * impl enqueues all ops up front (no backpressure wait: `maxPending` is set to the op count)
 * and resolves only when every op has run; the handler checks that each key's ops run in
 * acceptance order and never two at once, and the run throws if any op ran out of order, twice,
 * or not at all. Idle keys are freed by every impl (bounded key table).
 */
import PQueue from 'p-queue';
import { KeyedMutex, Limiter } from '../src/limit/index.js';
import { WorkQueue } from '../src/tasks/index.js';
import type { Case, Group } from './harness.js';

const OPS = 200_000;
const RESOLVED: Promise<void> = Promise.resolve();
const KEYS = 1000;
const CONCURRENCY = 16;

interface Op {
  readonly key: number;
  readonly seq: number;
}

/** Throws unless `actual === expected`: a bench that skipped work must not report a number. */
function check(what: string, actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`${what}: expected ${expected}, got ${actual}`);
}

/** Shared state of the handler: per key, the last seq handled and whether one is running. */
const lastSeq = new Int32Array(KEYS);
const busy = new Uint8Array(KEYS);
let handled = 0;
let violations = 0;
let finished: (() => void) | undefined;

/** The one handler every impl runs: checks per-key order and exclusion, then yields once. */
const handler = async (op: Op): Promise<void> => {
  if (busy[op.key] === 1 || op.seq <= (lastSeq[op.key] as number)) violations++;
  busy[op.key] = 1;
  lastSeq[op.key] = op.seq;
  await RESOLVED;
  busy[op.key] = 0;
  if (++handled === OPS) finished?.();
};

/** Op i goes to key i % KEYS, so each key gets OPS / KEYS ops interleaved with every other key. */
const ops: Op[] = Array.from({ length: OPS }, (_, i) => ({ key: i % KEYS, seq: i }));

function reset(): Promise<void> {
  lastSeq.fill(-1);
  busy.fill(0);
  handled = 0;
  violations = 0;
  return new Promise<void>((resolve) => (finished = resolve));
}

function verify(impl: string): void {
  check(`${impl} ops handled`, handled, OPS);
  check(`${impl} order violations`, violations, 0);
}

/** The usual peer: p-queue bounds concurrency, a promise chain per key keeps per-key order. */
class ChainedPQueue {
  readonly queue = new PQueue({ concurrency: CONCURRENCY });
  readonly tails = new Map<number, Promise<void>>();

  add(op: Op): void {
    const tails = this.tails;
    const prev = tails.get(op.key);
    const run = (): Promise<void> => this.queue.add(() => handler(op));
    // A failure must not break the chain of its key; an idle key is deleted.
    const next = (prev === undefined ? run() : prev.then(run)).catch(() => undefined);
    tails.set(op.key, next);
    void next.then(() => {
      if (tails.get(op.key) === next) tails.delete(op.key);
    });
  }
}

/** `tasks/workqueue-200k-1000keys-c16`. */
function orderedGroup(): Group {
  let sluice!: WorkQueue<Op>;
  let peer!: ChainedPQueue;
  let locks!: KeyedMutex<number>;
  let limiter!: Limiter;
  let done: Promise<void> = Promise.resolve();
  const cases: Case[] = [
    {
      impl: 'sluice',
      setup: () => {
        done = reset();
        sluice = new WorkQueue<Op>(handler, {
          concurrency: CONCURRENCY,
          maxPending: OPS,
          orderBy: (op) => op.key,
        });
      },
      run: async () => {
        for (const op of ops) void sluice.add(op);
        await done;
        await sluice.close();
        verify('sluice');
        check('sluice keys left', sluice.stats.keys, 0);
      },
    },
    {
      impl: 'p-queue + per-key promise chain',
      setup: () => {
        done = reset();
        peer = new ChainedPQueue();
      },
      run: async () => {
        for (const op of ops) peer.add(op);
        await done;
        await peer.queue.onIdle();
        verify('p-queue');
      },
    },
    {
      // What composing sluice's own KeyedMutex and Limiter costs (why WorkQueue does not).
      impl: 'sluice KeyedMutex + Limiter',
      setup: () => {
        done = reset();
        locks = new KeyedMutex<number>({ maxQueue: Infinity });
        limiter = new Limiter({ concurrency: CONCURRENCY, maxQueue: Infinity });
      },
      run: async () => {
        for (const op of ops) {
          void locks.run(op.key, () => limiter.run(() => handler(op))).catch(() => undefined);
        }
        await done;
        await limiter.onIdle();
        await new Promise<void>((resolve) => setImmediate(resolve)); // KeyedMutex frees keys a tick later
        verify('KeyedMutex + Limiter');
        check('KeyedMutex keys left', locks.stats.keys, 0);
      },
    },
  ];
  return { bench: `tasks/workqueue-${OPS / 1000}k-${KEYS}keys-c${CONCURRENCY}`, ops: OPS, cases };
}

/** The WorkQueue groups; bench/tasks.ts appends them to its own. */
export function workQueueGroups(): Group[] {
  return [orderedGroup()];
}
