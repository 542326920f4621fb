import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { RestartIntensityError } from '../../src/errors.js';
import { Supervisor, type RestartPolicy, type TaskErrorInfo } from '../../src/tasks/index.js';

/** Lets queued microtasks and promise chains run (setImmediate is not mocked). */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

function fakeClock() {
  const clock = { t: 0, now: () => clock.t };
  return clock;
}

/** A task whose every run waits for the test to end it. */
function controllable() {
  const runs: { resolve: () => void; reject: (e: unknown) => void; signal: AbortSignal }[] = [];
  const fn = (signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      runs.push({ resolve, reject, signal });
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
  return { fn, runs };
}

function restartDelays(): { delays: { delay: number; count: number }[]; stop: () => void } {
  const delays: { delay: number; count: number }[] = [];
  const listener = (m: unknown) => delays.push(m as { delay: number; count: number });
  subscribe('sluice:tasks:restart', listener);
  return { delays, stop: () => unsubscribe('sluice:tasks:restart', listener) };
}

describe('restart intensity', () => {
  it('property: gives up exactly when more than maxRestarts restarts fall within withinMs', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.integer({ min: 0, max: 1500 }), { minLength: 1, maxLength: 14 }),
        async (maxRestarts, withinMs, gaps) => {
          const clock = fakeClock();
          const errors: [unknown, TaskErrorInfo][] = [];
          const sup = new Supervisor({
            maxRestarts,
            withinMs,
            clock,
            backoff: { initialMs: 0, jitter: false },
            onError: (e, info) => void errors.push([e, info]),
          });
          const task = controllable();
          const handle = sup.spawn('worker', task.fn);
          await flush();
          // The oracle: a restart is decided at the failure; the window is (now - withinMs, now].
          const restarts: number[] = [];
          let gaveUpAt = -1;
          for (let i = 0; i < gaps.length; i++) {
            clock.t += gaps[i]!;
            assert.equal(task.runs.length, i + 1, 'one run per failure so far');
            task.runs[i]!.reject(new Error(`fail ${i}`));
            await flush();
            const inWindow = restarts.filter((r) => r > clock.t - withinMs).length + 1;
            if (inWindow > maxRestarts) {
              gaveUpAt = i;
              break;
            }
            restarts.push(clock.t);
            assert.equal(handle.state, 'restarting');
            t.mock.timers.tick(0);
            await flush();
            assert.equal(handle.state, 'running');
          }
          if (gaveUpAt >= 0) {
            assert.equal(handle.state, 'gave-up');
            assert.equal(sup.stats.givenUp, 1);
            const last = errors.at(-1)!;
            assert.ok(last[0] instanceof RestartIntensityError);
            assert.equal(last[1].kind, 'supervisor');
            assert.equal((last[0] as Error).cause instanceof Error, true);
            t.mock.timers.tick(10_000);
            await flush();
            assert.equal(task.runs.length, gaveUpAt + 1, 'no run after giving up');
            assert.equal(sup.stats.tasks, 0, 'a final give-up forgets the task');
          } else {
            assert.equal(sup.stats.givenUp, 0);
          }
          assert.equal(sup.stats.restarts, restarts.length);
          assert.equal(handle.restarts, restarts.length);
          assert.equal(sup.stats.failures, gaveUpAt >= 0 ? gaveUpAt + 1 : gaps.length);
          const closing = sup.shutdown({ deadlineMs: 0 });
          t.mock.timers.tick(0);
          await flush();
          await closing;
        },
      ),
      { numRuns: 150 },
    );
  });

  it('property: each backoff delay is within [base/2, base], base = min(maxMs, initialMs·factor^(n−1)); no restart before it', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 1, max: 5000 }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.boolean(),
        async (initialMs, maxMs, us, jitter) => {
          const draws = [...us];
          const sup = new Supervisor({
            maxRestarts: Infinity,
            withinMs: 1e9,
            clock: fakeClock(),
            backoff: { initialMs, maxMs, jitter, random: () => draws.shift() ?? 0.5 },
          });
          const { delays, stop } = restartDelays();
          const task = controllable();
          const handle = sup.spawn('t', task.fn);
          await flush();
          try {
            for (let n = 1; n <= us.length; n++) {
              task.runs[n - 1]!.reject(new Error('x'));
              await flush();
              const { delay, count } = delays.at(-1)!;
              assert.equal(count, n);
              const base = Math.min(maxMs, initialMs * 2 ** (n - 1));
              if (jitter)
                assert.ok(delay >= base / 2 && delay <= base, `${delay} not in [${base / 2}, ${base}]`);
              else assert.equal(delay, base);
              // Timers have 1 ms granularity: 1 ms short of the delay's whole part is early.
              const early = Math.max(0, Math.floor(delay) - 1);
              if (early > 0) t.mock.timers.tick(early);
              await flush();
              assert.equal(task.runs.length, n, 'not restarted before its delay');
              t.mock.timers.tick(Math.ceil(delay) - early + 1);
              await flush();
              assert.equal(task.runs.length, n + 1);
            }
            assert.equal(handle.restarts, us.length);
          } finally {
            stop();
            const closing = sup.shutdown({ deadlineMs: 0 });
            t.mock.timers.tick(0);
            await flush();
            await closing;
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('the backoff exponent resets when the window empties', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const clock = fakeClock();
    const sup = new Supervisor({
      maxRestarts: 10,
      withinMs: 1000,
      clock,
      backoff: { initialMs: 10, jitter: false },
    });
    const { delays, stop } = restartDelays();
    const task = controllable();
    sup.spawn('t', task.fn);
    await flush();
    for (let i = 0; i < 3; i++) {
      task.runs[i]!.reject(new Error('x'));
      await flush();
      t.mock.timers.tick(1000);
      await flush();
    }
    clock.t += 5000;
    task.runs[3]!.reject(new Error('x'));
    await flush();
    stop();
    assert.deepEqual(
      delays.map((d) => d.delay),
      [10, 20, 40, 10],
    );
    await sup.shutdown({ deadlineMs: 0 });
  });
});

describe('restart policies', () => {
  const cases: [RestartPolicy, 'ok' | 'fail', boolean][] = [
    ['permanent', 'ok', true],
    ['permanent', 'fail', true],
    ['transient', 'ok', false],
    ['transient', 'fail', true],
    ['temporary', 'ok', false],
    ['temporary', 'fail', false],
  ];
  for (const [policy, end, restarts] of cases) {
    it(`${policy}: ${restarts ? 'restarts' : 'does not restart'} after ${end === 'ok' ? 'a normal end' : 'a failure'}`, async (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const sup = new Supervisor({ clock: fakeClock(), backoff: { initialMs: 5, jitter: false } });
      const task = controllable();
      const handle = sup.spawn('t', task.fn, { restart: policy });
      await flush();
      if (end === 'ok') task.runs[0]!.resolve();
      else task.runs[0]!.reject(new Error('x'));
      await flush();
      t.mock.timers.tick(5);
      await flush();
      assert.equal(task.runs.length, restarts ? 2 : 1);
      assert.equal(handle.state, restarts ? 'running' : 'done');
      assert.equal(sup.stats.failures, end === 'fail' ? 1 : 0);
      await handle.stop().then(async () => {
        assert.equal(handle.state, restarts ? 'stopped' : 'done');
      });
      if (restarts) assert.equal(task.runs[1]!.signal.aborted, true, 'stop aborts the running run');
      assert.equal(sup.stats.tasks, 0);
    });
  }

  it('a synchronous task, and one that throws synchronously, restart without recursion', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const sup = new Supervisor({ maxRestarts: Infinity, backoff: { initialMs: 0 }, clock: fakeClock() });
    let a = 0;
    let b = 0;
    sup.spawn('sync', () => void a++);
    sup.spawn('throws', () => {
      b++;
      throw new Error('sync throw');
    });
    for (let i = 0; i < 200; i++) {
      await flush();
      t.mock.timers.tick(0);
    }
    await flush();
    assert.ok(a >= 150 && b >= 150, `${a} ${b}`);
    assert.equal(sup.stats.givenUp, 0);
    const closing = sup.shutdown({ deadlineMs: 0 });
    t.mock.timers.tick(0);
    await flush();
    assert.equal((await closing).timedOut, false);
  });
});

describe('nested supervisors', () => {
  it('a child that gives up escalates: the parent restarts its tasks, then gives up itself when over its own intensity', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const clock = fakeClock();
    const errors: [string, string, string][] = [];
    const root = new Supervisor({
      name: 'root',
      maxRestarts: 1,
      withinMs: 10_000,
      clock,
      backoff: { initialMs: 100, jitter: false },
      onError: (e, info) => void errors.push([info.supervisor, info.kind, (e as Error).constructor.name]),
    });
    const child = root.child({ name: 'db', maxRestarts: 0 });
    assert.equal(child.name, 'root/db');
    const task = controllable();
    const sibling = controllable();
    const handle = child.spawn('conn', task.fn);
    const other = child.spawn('other', sibling.fn);
    await flush();

    task.runs[0]!.reject(new Error('down'));
    await flush();
    assert.equal(handle.state, 'gave-up');
    assert.equal(other.state, 'gave-up', 'a give-up stops every task of the child');
    assert.equal(sibling.runs[0]!.signal.aborted, true);
    assert.ok(sibling.runs[0]!.signal.reason instanceof RestartIntensityError);
    sibling.runs[0]!.resolve();
    await flush();
    assert.equal(root.stats.restarts, 1, 'the parent counted one restart');
    t.mock.timers.tick(100);
    await flush();
    assert.equal(handle.state, 'running');
    assert.equal(other.state, 'running');
    assert.equal(task.runs.length, 2);
    assert.equal(sibling.runs.length, 2);

    task.runs[1]!.reject(new Error('down again'));
    await flush();
    assert.equal(root.stats.givenUp, 1, 'second escalation within the window: the root gives up');
    assert.deepEqual(errors, [
      ['root/db', 'spawn', 'Error'],
      ['root/db', 'supervisor', 'RestartIntensityError'],
      ['root/db', 'spawn', 'Error'],
      ['root/db', 'supervisor', 'RestartIntensityError'],
      ['root', 'supervisor', 'RestartIntensityError'],
    ]);
    t.mock.timers.tick(10_000);
    await flush();
    assert.equal(task.runs.length, 2, 'nothing restarts after the root gave up');
    assert.equal(handle.state, 'gave-up');
    sibling.runs[1]!.resolve();
    await flush();
    const closing = root.shutdown({ deadlineMs: 0 });
    t.mock.timers.tick(0);
    await flush();
    assert.equal((await closing).timedOut, false);
  });
});
