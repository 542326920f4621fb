import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { it } from 'node:test';
import fc from 'fast-check';
import { WorkQueue } from '../../src/tasks/index.js';

interface Op {
  readonly id: number;
  readonly key: number;
  /** Tries that fail before one succeeds (a try may also be failed by a `complete` command). */
  readonly syncThrowFirst: boolean;
}

type Command =
  | { kind: 'add'; key: number; wait: boolean; signal: boolean; syncThrowFirst: boolean }
  | { kind: 'abort'; pick: number }
  | { kind: 'complete'; pick: number; fail: boolean }
  | { kind: 'tick' }
  | { kind: 'close' };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      key: fc.integer({ min: 0, max: 3 }),
      wait: fc.boolean(),
      signal: fc.boolean(),
      syncThrowFirst: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }) },
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('complete' as const), pick: fc.nat(), fail: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('close' as const) }) },
);

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

it('property: per key FIFO and exclusive; every added op handled, reported or cancelled exactly once; bounds hold', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 3 }),
      fc.boolean(),
      fc.array(command, { maxLength: 50, size: 'max' }),
      async (concurrency, maxPending, attempts, ordered, commands) => {
        const violations: string[] = [];
        const gates: { op: Op; settle: (fail: boolean) => void }[] = [];
        const succeeded = new Map<number, number>();
        const reported = new Map<number, number>();
        const cancelled = new Map<number, number>();
        const notAccepted = new Set<number>();
        const addRejected = new Set<number>();
        const terminal = new Set<number>();
        const ops: Op[] = [];
        const controllers = new Map<number, AbortController>();
        const runningKeys = new Map<number, number>();
        let running = 0;
        const bump = (m: Map<number, number>, id: number) => m.set(id, (m.get(id) ?? 0) + 1);

        const queue: WorkQueue<Op> = new WorkQueue<Op>(
          (op, { attempt }) => {
            if (queue.pending > maxPending) violations.push(`pending ${queue.pending} > ${maxPending}`);
            running++;
            if (running > concurrency) violations.push(`${running} running > ${concurrency}`);
            if (ordered) {
              const n = (runningKeys.get(op.key) ?? 0) + 1;
              runningKeys.set(op.key, n);
              if (n > 1) violations.push(`key ${op.key}: ${n} ops at once`);
              // Every earlier op of this key must have finished (or never been accepted).
              if (attempt === 1) {
                for (const earlier of ops) {
                  if (earlier.id >= op.id || earlier.key !== op.key) continue;
                  if (!terminal.has(earlier.id) && !notAccepted.has(earlier.id))
                    violations.push(`op ${op.id} started before op ${earlier.id} of key ${op.key} ended`);
                }
              }
            }
            const end = () => {
              running--;
              if (ordered) runningKeys.set(op.key, (runningKeys.get(op.key) ?? 1) - 1);
            };
            if (op.syncThrowFirst && attempt === 1) {
              end();
              throw new Error('sync throw');
            }
            return new Promise<void>((resolve, reject) => {
              gates.push({
                op,
                settle: (fail) => {
                  end();
                  if (fail) reject(new Error('failed'));
                  else {
                    bump(succeeded, op.id);
                    terminal.add(op.id);
                    resolve();
                  }
                },
              });
            });
          },
          {
            concurrency,
            maxPending,
            orderBy: ordered ? (op) => op.key : undefined,
            retry: { attempts, delayMs: 0, jitter: 'none' },
            onError: (op) => {
              bump(reported, op.id);
              terminal.add(op.id);
            },
          },
        );
        const onCancelled = (message: unknown) => {
          const m = message as { queue: unknown; op: Op };
          if (m.queue !== queue) return;
          bump(cancelled, m.op.id);
          terminal.add(m.op.id);
        };
        subscribe('sluice:tasks:cancelled', onCancelled);
        const adds: Promise<unknown>[] = [];
        try {
          for (const c of commands) {
            if (c.kind === 'add') {
              const op: Op = { id: ops.length, key: c.key, syncThrowFirst: c.syncThrowFirst };
              ops.push(op);
              const controller = c.signal ? new AbortController() : undefined;
              if (controller !== undefined) controllers.set(op.id, controller);
              const options = controller === undefined ? undefined : { signal: controller.signal };
              const p = c.wait ? queue.addAndWait(op, options) : queue.add(op, options);
              // A refused add (closed) was never accepted.
              const closedNow = queue.closed;
              if (closedNow) notAccepted.add(op.id);
              adds.push(p.catch(() => (c.wait ? undefined : addRejected.add(op.id))));
            } else if (c.kind === 'abort') {
              const ids = [...controllers.keys()];
              if (ids.length === 0) continue;
              const id = ids[c.pick % ids.length] as number;
              const controller = controllers.get(id) as AbortController;
              controllers.delete(id);
              const before = queue.stats.aborted;
              controller.abort(new Error(`abort ${id}`));
              if (queue.stats.aborted > before) notAccepted.add(id); // it was waiting for room
            } else if (c.kind === 'complete') {
              if (gates.length === 0) continue;
              const [gate] = gates.splice(c.pick % gates.length, 1);
              gate?.settle(c.fail);
            } else if (c.kind === 'tick') {
              await tick();
            } else {
              void queue.close();
            }
            if (queue.stats.pending > maxPending) violations.push(`pending ${queue.stats.pending}`);
          }
          // Drain: close, then let every try succeed until close() resolves.
          let closed = false;
          void queue.close().then(() => (closed = true));
          for (let i = 0; i < 500 && !closed; i++) {
            for (const gate of gates.splice(0)) gate.settle(false);
            await (i % 10 === 9 ? sleep(1) : tick());
          }
          assert.ok(closed, 'close() resolved');
          await Promise.all(adds);

          assert.deepEqual(violations, []);
          const s = queue.stats;
          assert.equal(s.pending, 0);
          assert.equal(s.running, 0);
          assert.equal(s.keys, 0, 'idle keys freed');
          assert.equal(s.waiting, 0);
          let accepted = 0;
          for (const op of ops) {
            const outcomes =
              (succeeded.get(op.id) ?? 0) + (reported.get(op.id) ?? 0) + (cancelled.get(op.id) ?? 0);
            if (notAccepted.has(op.id) || addRejected.has(op.id)) {
              assert.equal(outcomes, 0, `op ${op.id} was never accepted but has an outcome`);
            } else {
              accepted++;
              assert.equal(outcomes, 1, `op ${op.id}: ${outcomes} outcomes`);
            }
          }
          assert.equal(s.accepted, accepted);
          assert.equal(s.completed + s.failed + s.cancelled, accepted);
          assert.equal(s.completed, [...succeeded.values()].length);
          assert.equal(s.failed, [...reported.values()].length);
          assert.equal(s.cancelled, [...cancelled.values()].length);
        } finally {
          unsubscribe('sluice:tasks:cancelled', onCancelled);
        }
      },
    ),
    { numRuns: 150 },
  );
});
