import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { ClosedError } from '../../src/errors.js';
import { Supervisor } from '../../src/tasks/index.js';
import { deferred } from '../helpers/async.js';

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));
const never = () => new Promise<void>(() => undefined);
const cooperative = (signal: AbortSignal) =>
  new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));

function fakeClock() {
  const clock = { t: 0, now: () => clock.t };
  return clock;
}

describe('Supervisor.shutdown', () => {
  it('property: always resolves by its deadline and reports exactly the runs that ignored it', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    type Work = { kind: 'background' | 'spawn' | 'every'; hangs: boolean; inChild: boolean };
    const work = fc.record({
      kind: fc.constantFrom('background' as const, 'spawn' as const, 'every' as const),
      hangs: fc.boolean(),
      inChild: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(work, { maxLength: 12 }),
        fc.integer({ min: 0, max: 5000 }),
        async (items: Work[], deadlineMs) => {
          const clock = fakeClock();
          const root = new Supervisor({ name: 'root', clock });
          const child = root.child({ name: 'c' });
          const finishBackground: (() => void)[] = [];
          items.forEach((w, i) => {
            const sup = w.inChild ? child : root;
            const name = `${w.kind}-${i}`;
            if (w.kind === 'background') {
              const gate = deferred();
              if (!w.hangs) finishBackground.push(() => gate.resolve());
              sup.background(() => gate.promise, { name });
            } else if (w.kind === 'spawn') {
              sup.spawn(name, w.hangs ? never : cooperative);
            } else {
              sup.every(name, 10, w.hangs ? never : cooperative);
            }
          });
          t.mock.timers.tick(10); // every job runs once
          await flush();
          const order: string[] = [];
          const childDone = child.shutdown().then(() => order.push('child'));
          const closing = root.shutdown({ deadlineMs });
          void closing.then(() => order.push('root'));
          for (const finish of finishBackground) finish();
          await flush();
          clock.t += deadlineMs;
          t.mock.timers.tick(deadlineMs);
          await flush();
          const report = await closing;
          await childDone;
          assert.deepEqual(order, ['child', 'root'], "a child's shutdown completes before its parent's");
          const expected = items
            .map((w, i) => ({ ...w, name: `${w.kind}-${i}` }))
            .filter((w) => w.hangs)
            .map((w) => `${w.inChild ? 'root/c' : 'root'}:${w.kind}:${w.name}`)
            .sort();
          const got = report.unfinished.map((u) => `${u.supervisor}:${u.kind}:${u.name}`).sort();
          assert.deepEqual(got, expected);
          assert.equal(report.timedOut, expected.length > 0);
          for (const u of report.unfinished) assert.equal(u.ageMs, deadlineMs);
          assert.ok(report.durationMs <= deadlineMs);
          assert.equal(root.shutdown(), closing, 'idempotent');
        },
      ),
      { numRuns: 100 },
    );
  });

  it('resolves on time with real timers although a task ignores its signal (and awaits nothing)', async () => {
    const sup = new Supervisor();
    sup.spawn('stubborn', never);
    sup.background(never, { name: 'hung-write' });
    const start = performance.now();
    const report = await sup.shutdown({ deadlineMs: 50 });
    const took = performance.now() - start;
    assert.ok(took >= 45 && took < 500, `took ${took} ms`);
    assert.equal(report.timedOut, true);
    assert.deepEqual(report.unfinished.map((u) => [u.name, u.kind]).sort(), [
      ['hung-write', 'background'],
      ['stubborn', 'spawn'],
    ]);
  });

  it('aborts spawned and periodic runs with a ClosedError reason, rejects waiting backgroundAsync calls', async () => {
    const sup = new Supervisor({ maxBackground: 1 });
    let reason: unknown;
    sup.spawn('s', (signal) => cooperative(signal).then(() => void (reason = signal.reason)));
    const gate = deferred();
    sup.background(() => gate.promise);
    const waiting = sup.backgroundAsync(() => undefined);
    await flush();
    const closing = sup.shutdown({ deadlineMs: 1000 });
    await assert.rejects(waiting, ClosedError);
    gate.resolve();
    const report = await closing;
    assert.ok(reason instanceof ClosedError);
    assert.deepEqual(report.unfinished, []);
    assert.equal(report.timedOut, false);
  });

  it('shutdown called from inside a task does not deadlock when not awaited; awaited, it ends at the deadline', async () => {
    const a = new Supervisor();
    a.background(() => void a.shutdown({ deadlineMs: 1000 }));
    await flush();
    assert.equal(a.closed, true);
    assert.equal((await a.shutdown()).timedOut, false);

    const b = new Supervisor();
    let report: unknown;
    b.background(async () => (report = await b.shutdown({ deadlineMs: 20 })), { name: 'self' });
    await flush();
    const r = await b.shutdown();
    assert.equal(r.timedOut, true);
    assert.deepEqual(
      r.unfinished.map((u) => u.name),
      ['self'],
    );
    await flush();
    assert.equal(report, r);
  });

  it('Symbol.asyncDispose shuts down; invalid deadline rejects', async () => {
    const sup = new Supervisor();
    await assert.rejects(sup.shutdown({ deadlineMs: -1 }), /`deadlineMs`/);
    {
      await using s = sup;
      s.background(() => undefined);
    }
    assert.equal(sup.closed, true);
  });
});

describe('Supervisor.every', () => {
  it('never overlaps itself: skip drops ticks, queue keeps at most one', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    for (const overlap of ['skip', 'queue'] as const) {
      const sup = new Supervisor();
      let inFlight = 0;
      let maxInFlight = 0;
      const gates: (() => void)[] = [];
      const job = sup.every(
        'j',
        10,
        () =>
          new Promise<void>((resolve) => {
            inFlight++;
            maxInFlight = Math.max(maxInFlight, inFlight);
            gates.push(() => {
              inFlight--;
              resolve();
            });
          }),
        { overlap },
      );
      t.mock.timers.tick(10);
      await flush();
      assert.equal(gates.length, 1);
      for (let i = 0; i < 3; i++) {
        t.mock.timers.tick(10);
        await flush();
      }
      assert.equal(gates.length, 1, 'no second run while the first is going');
      assert.equal(job.skipped, overlap === 'skip' ? 3 : 2);
      gates[0]!();
      await flush();
      assert.equal(gates.length, overlap === 'queue' ? 2 : 1, 'queue runs the pending one at once');
      assert.equal(maxInFlight, 1);
      assert.equal(sup.stats.skipped, job.skipped);
      for (const g of gates.slice(1)) g();
      await job.stop();
      assert.equal(job.stopped, true);
      await sup.shutdown({ deadlineMs: 0 });
    }
  });

  it('a failing run (sync throw or rejection) is reported and the schedule goes on', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const errors: string[] = [];
    const sup = new Supervisor({
      onError: (e, info) => void errors.push(`${info.kind}:${info.name}:${(e as Error).message}`),
    });
    let n = 0;
    const job = sup.every('flaky', 5, () => {
      n++;
      if (n % 3 === 1) throw new Error(`sync ${n}`);
      if (n % 3 === 2) return Promise.reject(new Error(`async ${n}`));
      return undefined;
    });
    for (let i = 0; i < 6; i++) {
      t.mock.timers.tick(5);
      await flush();
    }
    assert.equal(job.runs, 6);
    assert.equal(job.failures, 4);
    assert.deepEqual(errors.slice(0, 2), ['every:flaky:sync 1', 'every:flaky:async 2']);
    await sup.shutdown({ deadlineMs: 0 });
    t.mock.timers.tick(5);
    await flush();
    assert.equal(job.runs, 6, 'stopped at shutdown');
  });

  it('an interval beyond 2^31-1 ms does not fire early', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const sup = new Supervisor();
    let runs = 0;
    const interval = 2 ** 31 + 5000;
    sup.every('monthly', interval, () => void runs++);
    t.mock.timers.tick(1);
    t.mock.timers.tick(2 ** 31 - 2);
    await flush();
    assert.equal(runs, 0);
    t.mock.timers.tick(5000);
    await flush();
    assert.equal(runs, 0, 'not before the full interval');
    t.mock.timers.tick(1);
    await flush();
    assert.equal(runs, 1);
    await sup.shutdown({ deadlineMs: 0 });
  });

  it('its timer is unref’d by default (a job alone does not keep a process alive)', async () => {
    const sup = new Supervisor();
    const active = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = active();
    const job = sup.every('x', 60_000, () => undefined);
    assert.equal(active(), before, 'an unref’d timer is not an active resource');
    await job.stop();
    const ref = sup.every('y', 60_000, () => undefined, { ref: true });
    assert.equal(active(), before + 1);
    await ref.stop();
    await sup.shutdown({ deadlineMs: 0 });
  });
});
