/**
 * `tasks` benches: the cost of tracking fire-and-forget work.
 *
 * `tasks/background-200k`: 200k `async` no-op tasks started without awaiting them, then wait
 * until all have finished. Every impl runs the same task function and checks that it ran 200k
 * times.
 *
 * - `sluice`: `Supervisor.background(task)` (errors reported, counted, awaited by `shutdown`;
 *   the run ends with `shutdown()`, which resolves once all 200k are done).
 * - `floating promises (floor)`: `task().then(done, done)` with a counter — what untracked
 *   fire-and-forget costs when someone at least counts completions and swallows errors. The
 *   floor: one promise per task plus a reaction.
 * - `Set of promises`: the hand-written tracker (`set.add(p); p.finally(() => set.delete(p))`,
 *   then `Promise.allSettled(set)`) services write to get something to await at shutdown.
 *
 * Tracking overhead per task = 1/ops(sluice) − 1/ops(floor).
 */
import { Supervisor } from '../src/tasks/index.js';
import type { Group } from './harness.js';
import { workQueueGroups } from './tasks-workqueue.js';

const TASKS = 200_000;

let ran = 0;
async function work(): Promise<void> {
  ran++;
}

function check(impl: string): void {
  if (ran !== TASKS) throw new Error(`${impl}: expected ${TASKS} runs, got ${ran}`);
}

function backgroundGroup(): Group {
  let sup!: Supervisor;
  return {
    bench: 'tasks/background-200k',
    ops: TASKS,
    cases: [
      {
        impl: 'sluice',
        setup: () => {
          ran = 0;
          sup = new Supervisor({ maxBackground: Infinity });
        },
        run: async () => {
          for (let i = 0; i < TASKS; i++) sup.background(work);
          const report = await sup.shutdown({ deadlineMs: Infinity });
          if (report.unfinished.length !== 0) throw new Error('unfinished tasks');
          check('sluice');
        },
      },
      {
        impl: 'floating promises (floor)',
        setup: () => {
          ran = 0;
        },
        run: async () => {
          let settled = 0;
          let resolve!: () => void;
          const all = new Promise<void>((r) => (resolve = r));
          const done = (): void => {
            if (++settled === TASKS) resolve();
          };
          for (let i = 0; i < TASKS; i++) void work().then(done, done);
          await all;
          check('floor');
        },
      },
      {
        impl: 'Set of promises',
        setup: () => {
          ran = 0;
        },
        run: async () => {
          const inFlight = new Set<Promise<void>>();
          for (let i = 0; i < TASKS; i++) {
            const p = work();
            inFlight.add(p);
            void p.finally(() => inFlight.delete(p)).catch(() => undefined);
          }
          await Promise.allSettled(inFlight);
          check('Set of promises');
        },
      },
    ],
  };
}

export default (): Group[] => [backgroundGroup(), ...workQueueGroups()];
