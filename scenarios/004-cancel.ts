// Seed 004 (agent orchestrator): operations cancelled mid-flight (the report's
// `asyncio.CancelledError` handling). Each operation takes a concurrency permit, locks its
// agent's record, works, then queues a background file op and a result row. Naive: a
// hand-rolled permit counter, a Set of locked agents and a pending-writes array, released after
// the work — a cancellation thrown mid-work skips the release. sluice: Limiter, KeyedMutex,
// WorkQueue and BatchWriter, every one of which releases on any exit and drops cancelled waits.
import { BatchWriter } from '../src/batch/index.js';
import { KeyedMutex, Limiter } from '../src/limit/index.js';
import { WorkQueue } from '../src/tasks/index.js';
import { sized } from './harness/size.js';
import { round, sleep } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const OPERATIONS = sized(400, 120);
const AGENTS = 20;
const CONCURRENCY = 8;
const WORK_MS = 4;

/** Work that honours its signal: rejects with signal.reason when cancelled mid-way. */
function work(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, WORK_MS);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Every other operation is cancelled, at a time spread over its life (waiting or working). */
const cancelAfter = (i: number): number | undefined => (i % 2 === 0 ? undefined : (i * 37) % (WORK_MS * 6));

const cancelMidOperation: Scenario = {
  seed: '004',
  name: 'cancel-mid-operation',
  api: 'Limiter + KeyedMutex + WorkQueue + BatchWriter',
  workload: `${OPERATIONS} operations on ${AGENTS} agents (permit, agent lock, ${WORK_MS} ms work, background file op, result row), every other one cancelled mid-flight: hand-rolled release vs sluice primitives`,
  async run(ctx) {
    const controllers = (): AbortController[] =>
      Array.from({ length: OPERATIONS }, (_, i) => {
        const c = new AbortController();
        const after = cancelAfter(i);
        if (after !== undefined) setTimeout(() => c.abort(new Error(`cancelled ${i}`)), after);
        return c;
      });

    // Naive: release after the work, not in a finally; waits spin on the shared state.
    let permits = 0;
    const locked = new Set<number>();
    const pendingWrites: number[] = [];
    let naiveCancelled = 0;
    let naiveStuck = 0;
    const naiveOp = async (i: number, signal: AbortSignal) => {
      const agent = i % AGENTS;
      const deadline = performance.now() + 200;
      while (permits >= CONCURRENCY || locked.has(agent)) {
        if (performance.now() > deadline) {
          naiveStuck++; // waits forever in the real service: the lock or permit leaked
          return;
        }
        await sleep(1);
      }
      permits++;
      locked.add(agent);
      pendingWrites.push(i);
      await work(signal);
      pendingWrites.splice(pendingWrites.indexOf(i), 1);
      locked.delete(agent);
      permits--;
    };
    const naiveSignals = controllers();
    await Promise.all(
      naiveSignals.map((c, i) =>
        naiveOp(i, c.signal).catch(() => {
          naiveCancelled++;
        }),
      ),
    );
    ctx.progress(1, 2, 'naive');

    // sluice.
    const limiter = new Limiter({ concurrency: CONCURRENCY, maxQueue: Infinity });
    const locks = new KeyedMutex<number>({ maxQueue: Infinity });
    let fileOps = 0;
    const files = new WorkQueue<number>(
      async (_i, { signal }) => {
        await work(signal);
        fileOps++;
      },
      { concurrency: 4, orderBy: (i) => i % AGENTS },
    );
    let rows = 0;
    const writer = new BatchWriter<number>(
      (items) => {
        rows += items.length;
      },
      { maxItems: 20, maxWaitMs: 2 },
    );
    let sluiceCancelled = 0;
    let completed = 0;
    const sluiceSignals = controllers();
    const start = performance.now();
    await Promise.all(
      sluiceSignals.map((c, i) => {
        const signal = c.signal;
        return limiter
          .run(
            () =>
              locks.run(
                i % AGENTS,
                async () => {
                  await work(signal);
                  await files.add(i, { signal });
                  await writer.add(i, { signal });
                  completed++;
                },
                { signal },
              ),
            { signal },
          )
          .catch(() => {
            sluiceCancelled++;
          });
      }),
    );
    await files.close();
    await writer.close();
    const sluiceMs = performance.now() - start;
    ctx.progress(2, 2, 'sluice');
    const l = limiter.stats;
    const k = locks.stats;
    const q = files.stats;
    const w = writer.stats;
    const leftSluice = l.running + l.queued + k.keys + k.running + k.queued + q.pending + q.keys + w.pending;
    const leftNaive = permits + locked.size + pendingWrites.length;

    return {
      naive: {
        cancelled: naiveCancelled,
        leakedPermits: permits,
        leakedLocks: locked.size,
        pendingWritesLeft: pendingWrites.length,
        stuckWaiters: naiveStuck,
      },
      sluice: {
        cancelled: sluiceCancelled,
        completed,
        permitsHeld: l.running + l.queued,
        lockKeys: k.keys,
        workQueuePending: q.pending,
        workQueueCancelled: q.cancelled,
        writerPending: w.pending,
        fileOps,
        rows,
        ms: round(sluiceMs),
      },
      headline: {
        measure: 'left behind',
        naive: leftNaive,
        sluice: leftSluice,
        better: 'lower',
        form: 'change',
      },
      invariant:
        `after ${sluiceCancelled} cancellations: limiter running ${l.running} / queued ${l.queued}, KeyedMutex keys ${k.keys}, ` +
        `WorkQueue pending ${q.pending} / keys ${q.keys}, BatchWriter pending ${w.pending}; ${completed} completed, ` +
        `${rows} rows and ${fileOps + q.cancelled + q.failed} file ops accounted for (naive left ${permits} permits, ${locked.size} locks, ${pendingWrites.length} writes; ${naiveStuck} callers stuck)`,
      ok:
        leftSluice === 0 &&
        sluiceCancelled > 0 &&
        completed + sluiceCancelled === OPERATIONS &&
        rows === completed &&
        fileOps + q.cancelled + q.failed === q.accepted &&
        leftNaive > 0,
    };
  },
};

export default cancelMidOperation;
