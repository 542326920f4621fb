import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { ClosedError, QueueFullError } from '../../src/errors.js';
import { Limiter } from '../../src/limit/index.js';

type Op =
  | { kind: 'run'; signal: boolean; priority: number }
  | { kind: 'acquire' }
  | { kind: 'finish'; pick: number; fail: boolean }
  | { kind: 'abort'; pick: number }
  | { kind: 'resize'; to: number }
  | { kind: 'close' };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('run' as const),
      signal: fc.boolean(),
      priority: fc.integer({ min: -1, max: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('acquire' as const) }) },
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('finish' as const), pick: fc.nat(), fail: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('resize' as const), to: fc.integer({ min: 1, max: 4 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('close' as const) }) },
);

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

it('property: running ≤ concurrency, every call settles exactly once, stats add up', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 6 }),
      fc.array(op, { maxLength: 60, size: 'max' }),
      async (concurrency, maxQueue, ops) => {
        const limiter = new Limiter({ concurrency, maxQueue });
        let bound = concurrency;
        let active = 0;
        const started: { finish: (fail: boolean) => void }[] = [];
        const controllers: AbortController[] = [];
        const settledCount: number[] = [];
        const calls: Promise<void>[] = [];
        let closed = false;
        const violations: string[] = [];

        const track = (promise: Promise<unknown>, id: number) => {
          settledCount[id] = 0;
          calls.push(
            promise.then(
              () => {
                settledCount[id]!++;
              },
              (err: unknown) => {
                settledCount[id]!++;
                const known =
                  err instanceof QueueFullError ||
                  err instanceof ClosedError ||
                  (err instanceof Error && /^(task failed|aborted \d+)$/.test(err.message));
                if (!known) violations.push(`unexpected rejection ${String(err)}`);
              },
            ),
          );
        };

        for (const o of ops) {
          switch (o.kind) {
            case 'run': {
              const id = settledCount.length;
              const controller = new AbortController();
              controllers.push(controller);
              const task = () => {
                // A task may only start while a slot is free under the current bound.
                if (active >= bound) violations.push(`task started with ${active} running at bound ${bound}`);
                active++;
                return new Promise<void>((resolve, reject) => {
                  started.push({
                    finish: (fail) => {
                      active--;
                      if (fail) reject(new Error('task failed'));
                      else resolve();
                    },
                  });
                });
              };
              const options =
                o.signal || o.priority !== 0
                  ? { signal: controller.signal, priority: o.priority }
                  : undefined;
              track(limiter.run(task, options), id);
              break;
            }
            case 'acquire': {
              const id = settledCount.length;
              track(
                limiter.acquire().then((permit) => {
                  if (active >= bound)
                    violations.push(`permit granted with ${active} running at bound ${bound}`);
                  active++;
                  started.push({
                    finish: () => {
                      active--;
                      permit.release();
                    },
                  });
                }),
                id,
              );
              break;
            }
            case 'finish': {
              if (started.length === 0) break;
              const [job] = started.splice(o.pick % started.length, 1);
              job!.finish(o.fail);
              break;
            }
            case 'abort': {
              if (controllers.length === 0) break;
              const i = o.pick % controllers.length;
              controllers[i]!.abort(new Error(`aborted ${i}`));
              break;
            }
            case 'resize':
              if (!closed) {
                bound = o.to; // the new bound applies from inside resize()
                limiter.resize(o.to);
              }
              break;
            case 'close':
              closed = true;
              void limiter.close();
              break;
          }
          await flush();
          assert.ok(limiter.stats.running <= Math.max(bound, active), 'running within bound');
          assert.ok(limiter.stats.queued <= maxQueue, 'queue within maxQueue');
        }
        // Drain: finish everything still running until all calls have settled.
        for (let guard = 0; guard < 1000 && (started.length > 0 || limiter.stats.queued > 0); guard++) {
          started.shift()?.finish(false);
          await flush();
        }
        await limiter.close();
        await Promise.all(calls);
        assert.deepEqual(violations, []);
        assert.ok(
          settledCount.every((n) => n === 1),
          'every call settled exactly once',
        );
        const s = limiter.stats;
        assert.equal(s.running, 0);
        assert.equal(s.queued, 0);
        assert.equal(s.submitted, settledCount.length);
        assert.equal(s.submitted, s.completed + s.failed + s.rejected + s.aborted + s.timedOut);
      },
    ),
    { numRuns: 300 },
  );
});
