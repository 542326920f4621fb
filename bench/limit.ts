/**
 * `limit` benches: sluice's Limiter and map against their peers, same inputs, same run.
 *
 * Fairness rules used here (copy them for other modules):
 * - every impl calls the same task / mapper function object, so no impl pays for a closure
 *   another one avoids; each impl uses its idiomatic, fastest public API;
 * - instances are built in `setup` (untimed); a run resolves only once every task has run,
 *   and checks that it did (a counter bumped by the shared task);
 * - ratios are best-of-rounds, impls alternate (see harness.ts).
 */
import { Sema } from 'async-sema';
import pLimit, { type LimitFunction } from 'p-limit';
import pMap from 'p-map';
import PQueue from 'p-queue';
import { Limiter, map } from '../src/limit/index.js';
import type { Case, Group } from './harness.js';

const CONCURRENCY = 16;
const RUN_TASKS = 200_000;
const MAP_ITEMS = 200_000;
const QUEUED = 1_000_000;

/** Throws unless `actual === expected`: a bench that skipped work must not report a number. */
function check(what: string, actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`${what}: expected ${expected}, got ${actual}`);
}

/**
 * `limit/run-200k-c16`: 200k trivial async tasks through a concurrency-16 limiter, awaiting
 * every task's promise with `Promise.all` (what callers do with `limit(() => work())`).
 * The hand-written worker loop is the floor: 16 loops, no per-task promise besides the task's.
 * `Promise.all (unbounded)` is the same caller pattern with no limiter: what a limiter adds
 * on top of it is the limiter's own cost.
 */
function runGroup(): Group {
  let done = 0;
  const task = async (): Promise<void> => {
    done++;
  };
  const reset = (): void => {
    done = 0;
  };

  let limiter!: Limiter;
  let limit!: LimitFunction;
  let queue!: PQueue;
  let sema!: Sema;
  const withSema = async (): Promise<void> => {
    await sema.acquire();
    try {
      await task();
    } finally {
      sema.release();
    }
  };

  const cases: Case[] = [
    {
      impl: 'sluice',
      setup: () => {
        reset();
        limiter = new Limiter({ concurrency: CONCURRENCY, maxQueue: Infinity });
      },
      run: async () => {
        const promises = new Array<Promise<void>>(RUN_TASKS);
        for (let i = 0; i < RUN_TASKS; i++) promises[i] = limiter.run(task);
        await Promise.all(promises);
        check('sluice tasks', done, RUN_TASKS);
      },
    },
    {
      impl: 'p-limit',
      setup: () => {
        reset();
        limit = pLimit(CONCURRENCY);
      },
      run: async () => {
        const promises = new Array<Promise<void>>(RUN_TASKS);
        for (let i = 0; i < RUN_TASKS; i++) promises[i] = limit(task);
        await Promise.all(promises);
        check('p-limit tasks', done, RUN_TASKS);
      },
    },
    {
      impl: 'p-queue',
      setup: () => {
        reset();
        queue = new PQueue({ concurrency: CONCURRENCY });
      },
      run: async () => {
        const promises = new Array<Promise<void>>(RUN_TASKS);
        for (let i = 0; i < RUN_TASKS; i++) promises[i] = queue.add(task);
        await Promise.all(promises);
        check('p-queue tasks', done, RUN_TASKS);
      },
    },
    {
      impl: 'async-sema',
      setup: () => {
        reset();
        sema = new Sema(CONCURRENCY);
      },
      run: async () => {
        const promises = new Array<Promise<void>>(RUN_TASKS);
        for (let i = 0; i < RUN_TASKS; i++) promises[i] = withSema();
        await Promise.all(promises);
        check('async-sema tasks', done, RUN_TASKS);
      },
    },
    {
      // No limiter at all: every task starts at once. The ceiling for the Promise.all pattern.
      impl: 'Promise.all (unbounded)',
      setup: reset,
      run: async () => {
        const promises = new Array<Promise<void>>(RUN_TASKS);
        for (let i = 0; i < RUN_TASKS; i++) promises[i] = task();
        await Promise.all(promises);
        check('unbounded tasks', done, RUN_TASKS);
      },
    },
    {
      impl: 'worker loop',
      setup: reset,
      run: async () => {
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < RUN_TASKS) {
            next++;
            await task();
          }
        };
        const workers = new Array<Promise<void>>(CONCURRENCY);
        for (let w = 0; w < CONCURRENCY; w++) workers[w] = worker();
        await Promise.all(workers);
        check('worker-loop tasks', done, RUN_TASKS);
      },
    },
  ];
  return { bench: `limit/run-200k-c${CONCURRENCY}`, ops: RUN_TASKS, cases };
}

/**
 * `limit/map-200k-c16`: map 200k numbers through a trivial async mapper, results in order.
 * `Promise.all` is unbounded (all 200k calls at once): the reference point, not a limiter.
 */
function mapGroup(): Group {
  const items = Array.from({ length: MAP_ITEMS }, (_, i) => i);
  const mapper = async (item: number, _index: number): Promise<number> => item;
  let limit!: LimitFunction;
  const verify = (impl: string, results: readonly number[]): void => {
    check(`${impl} results`, results.length, MAP_ITEMS);
    check(`${impl} last result`, results[MAP_ITEMS - 1]!, MAP_ITEMS - 1);
  };

  const cases: Case[] = [
    {
      impl: 'sluice',
      run: async () => verify('sluice', await map(items, mapper, { concurrency: CONCURRENCY })),
    },
    {
      impl: 'p-map',
      run: async () => verify('p-map', await pMap(items, mapper, { concurrency: CONCURRENCY })),
    },
    {
      impl: 'p-limit limit.map',
      setup: () => {
        limit = pLimit(CONCURRENCY);
      },
      run: async () => verify('p-limit', await limit.map(items, mapper)),
    },
    {
      impl: 'Promise.all (unbounded)',
      run: async () => verify('Promise.all', await Promise.all(items.map(mapper))),
    },
  ];
  return { bench: `limit/map-200k-c${CONCURRENCY}`, ops: MAP_ITEMS, cases };
}

/**
 * `limit/queue-1m-heap`: all 16 slots held, 1M tasks queued; heap retained at that moment
 * (the promises `run` returns are not kept by the bench, so what is measured is exactly what
 * the limiter keeps alive: its queue entries and each caller's pending promise). Every queued
 * task is the same function object, so no per-task closure is counted for anyone. Then the
 * slots are released and the run ends when all 1M tasks have run; ops/s is enqueue + drain.
 */
function heapGroup(): Group {
  let done = 0;
  let finish!: () => void;
  let finished!: Promise<void>;
  let open!: () => void;
  let gate!: Promise<void>;
  const hold = (): Promise<void> => gate;
  const task = async (): Promise<void> => {
    if (++done === QUEUED) finish();
  };
  const reset = (): void => {
    done = 0;
    finished = new Promise((resolve) => (finish = resolve));
    gate = new Promise((resolve) => (open = resolve));
  };

  let limiter!: Limiter;
  let limit!: LimitFunction;
  const cases: Case[] = [
    {
      impl: 'sluice',
      setup: () => {
        reset();
        limiter = new Limiter({ concurrency: CONCURRENCY, maxQueue: Infinity });
      },
      run: async (probe) => {
        for (let i = 0; i < CONCURRENCY; i++) void limiter.run(hold);
        for (let i = 0; i < QUEUED; i++) void limiter.run(task);
        check('sluice queued', limiter.queued, QUEUED);
        probe.alive();
        open();
        await finished;
        await limiter.onIdle();
      },
    },
    {
      impl: 'p-limit',
      setup: () => {
        reset();
        limit = pLimit(CONCURRENCY);
      },
      run: async (probe) => {
        for (let i = 0; i < CONCURRENCY; i++) void limit(hold);
        for (let i = 0; i < QUEUED; i++) void limit(task);
        check('p-limit queued', limit.pendingCount, QUEUED);
        probe.alive();
        open();
        await finished;
      },
    },
  ];
  return { bench: 'limit/queue-1m-heap', ops: QUEUED, heap: true, rounds: 3, cases };
}

export default (): Group[] => [runGroup(), mapGroup(), heapGroup()];
