// Limiter maxQueueWaitMs: queue-time load shedding. Fake time: mocked setTimeout and Date, and
// the limiter's clock reads the mocked Date, so "waited" is exact and nothing sleeps.
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { ClosedError, OverloadedError, QueueFullError, SluiceError } from '../../src/errors.js';
import { Limiter } from '../../src/limit/index.js';
import { deferred } from '../helpers/async.js';

function fakeTime(t: TestContext, start = 1_000_000) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: start });
  const clock = { now: () => Date.now() };
  const flush = async () => {
    for (let i = 0; i < 10; i++) await Promise.resolve();
  };
  /** Advances `ms` one millisecond at a time, letting what became ready run after each step. */
  const advance = async (ms: number) => {
    for (let i = 0; i < ms; i++) {
      t.mock.timers.tick(1);
      await flush();
    }
  };
  return { clock, flush, advance };
}

const outcome = (p: Promise<unknown>) =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

describe('Limiter maxQueueWaitMs', () => {
  it('validates the option', () => {
    for (const bad of [0, -1, Number.NaN, '0ms', 'soon', null]) {
      assert.throws(() => new Limiter({ concurrency: 1, maxQueueWaitMs: bad as never }), /`maxQueueWaitMs`/);
    }
    assert.equal(new Limiter({ concurrency: 1, maxQueueWaitMs: '100ms' }).stats.shed, 0);
    assert.equal(new Limiter({ concurrency: 1, maxQueueWaitMs: Infinity }).stats.shed, 0);
  });

  it('rejects a waiter at its deadline with OverloadedError even when no slot frees (one timer)', async (t) => {
    const { clock, advance } = fakeTime(t);
    const limiter = new Limiter({ concurrency: 1, maxQueueWaitMs: 50, clock });
    const hold = deferred();
    const running = limiter.run(() => hold.promise);
    const waiting = [outcome(limiter.run(() => 'a')), outcome(limiter.acquire())];
    await advance(10);
    const later = outcome(limiter.run(() => 'b', { priority: 5 }));
    await advance(39);
    assert.equal(limiter.stats.shed, 0, 'not before 50 ms');
    await advance(1);
    assert.equal(limiter.stats.shed, 2, 'both first waiters at 50 ms');
    for (const o of await Promise.all(waiting)) {
      assert.equal(o.ok, false);
      assert.ok(o.error instanceof OverloadedError && o.error instanceof SluiceError);
      assert.equal(o.error.code, 'SLUICE_OVERLOADED');
      assert.match(
        (o.error as Error).message,
        /^Limiter shed a call that waited 50 ms for a slot \(maxQueueWaitMs: 50\)$/,
      );
    }
    await advance(10);
    assert.equal(limiter.stats.shed, 3, 'the later one, 50 ms after it queued');
    assert.equal((await later).ok, false);
    hold.resolve();
    await running;
    const s = limiter.stats;
    assert.deepEqual([s.queued, s.running, s.completed, s.shed, s.rejected], [0, 0, 1, 3, 0]);
  });

  it('when a slot frees, sheds every expired waiter before admitting the next one', async (t) => {
    // A hand-moved clock and timers that never fire: only the drain can shed here.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let now = 0;
    const clock = { now: () => now };
    const limiter = new Limiter({ concurrency: 1, maxQueueWaitMs: 100, clock });
    const hold = deferred();
    void limiter.run(() => hold.promise);
    const old = [outcome(limiter.run(() => 'old1')), outcome(limiter.run(() => 'old2', { priority: 3 }))];
    now = 60;
    const fresh = outcome(limiter.run(() => 'fresh'));
    now = 100; // the old ones have waited 100 ms as the slot frees
    hold.resolve();
    assert.deepEqual(
      (await Promise.all(old)).map((o) => o.ok),
      [false, false],
    );
    assert.deepEqual(await fresh, { ok: true, value: 'fresh' });
    assert.equal(limiter.stats.shed, 2);
    assert.equal(limiter.stats.queueWaitMs, 40, 'only the admitted call counts its wait');
  });

  it('sheds the oldest waiter first whatever its priority; a younger high-priority one survives', async (t) => {
    const { clock, advance } = fakeTime(t);
    const limiter = new Limiter({ concurrency: 1, maxQueueWaitMs: 30, clock });
    const hold = deferred();
    void limiter.run(() => hold.promise);
    const low = outcome(limiter.run(() => 'low', { priority: -1 }));
    await advance(20);
    const high = outcome(limiter.run(() => 'high', { priority: 9 }));
    await advance(10);
    assert.equal((await low).ok, false, 'the low-priority waiter waited 30 ms');
    assert.equal(limiter.stats.queued, 1);
    hold.resolve();
    assert.deepEqual(await high, { ok: true, value: 'high' });
  });

  it('publishes each shed on sluice:limit:reject with reason shed and the wait', async (t) => {
    const { clock, advance } = fakeTime(t);
    const seen: unknown[] = [];
    const onMessage = (m: unknown) => seen.push(m);
    subscribe('sluice:limit:reject', onMessage);
    t.after(() => unsubscribe('sluice:limit:reject', onMessage));
    const limiter = new Limiter({ concurrency: 1, maxQueueWaitMs: 5, clock, name: 'db' });
    const hold = deferred();
    void limiter.run(() => hold.promise);
    const p = outcome(limiter.run(() => 1));
    await advance(5);
    await p;
    assert.deepEqual(seen, [{ limiter, name: 'db', reason: 'shed', waitedMs: 5 }]);
    hold.resolve();
  });

  it('abort and timeout still work beside shedding; close rejects the rest with ClosedError', async (t) => {
    const { clock, advance } = fakeTime(t);
    const limiter = new Limiter({ concurrency: 1, maxQueueWaitMs: 100, maxQueue: 3, clock });
    const hold = deferred();
    void limiter.run(() => hold.promise);
    const controller = new AbortController();
    const aborted = outcome(limiter.run(() => 1, { signal: controller.signal }));
    const timed = outcome(limiter.run(() => 2, { timeout: 10 }));
    const closed = outcome(limiter.acquire());
    const full = outcome(limiter.run(() => 4));
    controller.abort(new Error('bye'));
    await advance(10);
    assert.equal(((await aborted) as { error: Error }).error.message, 'bye');
    assert.equal(((await timed) as { error: Error }).error.name, 'TimeoutError');
    assert.ok(((await full) as { error: unknown }).error instanceof QueueFullError);
    const closing = limiter.close();
    assert.ok(((await closed) as { error: unknown }).error instanceof ClosedError);
    await advance(200);
    hold.resolve();
    await closing;
    const s = limiter.stats;
    assert.deepEqual([s.aborted, s.timedOut, s.rejected, s.shed, s.queued], [1, 1, 2, 0, 0]);
  });

  it('a limiter without maxQueueWaitMs never sheds', async (t) => {
    const { clock, advance } = fakeTime(t);
    const limiter = new Limiter({ concurrency: 1, clock });
    const hold = deferred();
    void limiter.run(() => hold.promise);
    const p = limiter.run(() => 'late');
    await advance(10_000);
    hold.resolve();
    assert.equal(await p, 'late');
    assert.equal(limiter.stats.shed, 0);
  });
});

type Op =
  | { kind: 'run'; priority: number; signal: boolean }
  | { kind: 'finish'; pick: number; fail: boolean }
  | { kind: 'abort'; pick: number }
  | { kind: 'tick'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('run' as const),
      priority: fc.integer({ min: -1, max: 2 }),
      signal: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('finish' as const), pick: fc.nat(), fail: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 40 }) }),
  },
);

it('property: no call waits maxQueueWaitMs + 1 tick, none starts after waiting maxQueueWaitMs, each settles once', async (t) => {
  const { clock, flush } = fakeTime(t);
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 60 }),
      fc.array(op, { maxLength: 80, size: 'max' }),
      async (concurrency, maxWait, ops) => {
        const limiter = new Limiter({ concurrency, maxQueueWaitMs: maxWait, maxQueue: Infinity, clock });
        const violations: string[] = [];
        const started: { finish: (fail: boolean) => void }[] = [];
        const controllers: AbortController[] = [];
        const pending = new Map<number, number>(); // id → enqueue time, until settled
        const startedIds = new Set<number>();
        const settled: number[] = [];
        const calls: Promise<void>[] = [];
        for (const o of ops) {
          switch (o.kind) {
            case 'run': {
              const id = settled.length;
              settled.push(0);
              const enqueued = clock.now();
              pending.set(id, enqueued);
              const controller = new AbortController();
              controllers.push(controller);
              const task = () => {
                startedIds.add(id);
                const waited = clock.now() - enqueued;
                if (waited >= maxWait) violations.push(`#${id} started after waiting ${waited} ≥ ${maxWait}`);
                return new Promise<void>((resolve, reject) => {
                  started.push({ finish: (fail) => (fail ? reject(new Error('task failed')) : resolve()) });
                });
              };
              const options =
                o.signal || o.priority !== 0
                  ? { signal: controller.signal, priority: o.priority }
                  : undefined;
              const done = () => {
                settled[id]!++;
                pending.delete(id);
              };
              calls.push(
                limiter.run(task, options).then(done, (err: unknown) => {
                  done();
                  const known =
                    err instanceof OverloadedError ||
                    (err instanceof Error && /^(task failed|aborted)$/.test(err.message));
                  if (!known) violations.push(`unexpected ${String(err)}`);
                }),
              );
              break;
            }
            case 'finish': {
              if (started.length === 0) break;
              const [job] = started.splice(o.pick % started.length, 1);
              job!.finish(o.fail);
              break;
            }
            case 'abort':
              if (controllers.length > 0)
                controllers[o.pick % controllers.length]!.abort(new Error('aborted'));
              break;
            case 'tick':
              for (let i = 0; i < o.ms; i++) {
                t.mock.timers.tick(1);
                await flush();
                // A call not started nor settled is queued: it is shed once it has waited maxWait,
                // by the timer, within the tick that reaches its deadline.
                const now = clock.now();
                for (const [id, at] of pending) {
                  if (!startedIds.has(id) && now - at > maxWait)
                    violations.push(`#${id} queued ${now - at} ms`);
                }
              }
              break;
          }
          await flush();
        }
        // Finish everything, let the rest shed or run.
        for (let guard = 0; guard < 10_000 && (started.length > 0 || limiter.stats.queued > 0); guard++) {
          started.shift()?.finish(false);
          t.mock.timers.tick(1);
          await flush();
        }
        await Promise.all(calls);
        assert.deepEqual(violations, []);
        assert.ok(
          settled.every((n) => n === 1),
          'every call settled exactly once',
        );
        const s = limiter.stats;
        assert.equal(s.queued, 0);
        assert.equal(s.running, 0);
        assert.equal(s.submitted, s.completed + s.failed + s.rejected + s.aborted + s.timedOut + s.shed);
      },
    ),
    { numRuns: 200 },
  );
});
