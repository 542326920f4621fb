import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, it } from 'node:test';
import { ClosedError, InvalidInputError, QueueFullError } from '../../src/errors.js';
import { Supervisor, type TaskErrorInfo } from '../../src/tasks/index.js';
import { captureReports, deferred } from '../helpers/async.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Supervisor options', () => {
  it('validates eagerly with the DESIGN message shape', () => {
    assert.throws(() => new Supervisor({ maxRestarts: -1 }), {
      name: 'RangeError',
      message: 'Expected `maxRestarts` to be a non-negative integer or Infinity, got `-1` (number)',
    });
    assert.throws(() => new Supervisor({ maxBackground: 0 }), /`maxBackground` to be a positive integer/);
    assert.throws(() => new Supervisor({ withinMs: 0 }), /`withinMs` to be a positive duration/);
    assert.throws(() => new Supervisor({ backoff: { initialMs: -1 } }), /`backoff.initialMs`/);
    assert.throws(
      () => new Supervisor({ backoff: { jitter: 'yes' as never } }),
      /`backoff.jitter` to be a boolean/,
    );
    assert.throws(() => new Supervisor({ onError: 1 as never }), /`onError` to be a function or undefined/);
    assert.throws(
      () => new Supervisor({ clock: {} as never }),
      /`clock` to be an object with a now\(\) method/,
    );
    assert.throws(
      () => new Supervisor({ withinMs: '1m' }).spawn('x', () => undefined, { restart: 'x' as never }),
      {
        name: 'RangeError',
        message:
          "Expected `restart` to be one of 'permanent', 'transient', 'temporary', got `\"x\"` (string)",
      },
    );
    const sup = new Supervisor();
    assert.throws(() => sup.background(42 as never), TypeError);
    assert.throws(() => sup.every('x', 0, () => undefined), RangeError);
  });
});

describe('Supervisor.background', () => {
  it('reports sync throws, rejections and broken thenables with the task name; none is unhandled', async () => {
    const seen: [string, string][] = [];
    const { reports, stop } = captureReports('sluice:tasks:error');
    const sup = new Supervisor({
      name: 'app',
      onError: (error, info) => void seen.push([info.name, (error as Error).message]),
    });
    sup.background(
      () => {
        throw new Error('sync');
      },
      { name: 'a' },
    );
    sup.background(() => Promise.reject(new Error('async')), { name: 'b' });
    sup.background(
      () => ({
        then() {
          throw new Error('thenable');
        },
      }),
      { name: 'c' },
    );
    sup.background(async function namedTask() {
      throw new Error('named');
    });
    sup.background(() => 'fine');
    await tick();
    stop();
    assert.deepEqual(seen.sort(), [
      ['a', 'sync'],
      ['b', 'async'],
      ['c', 'thenable'],
      ['namedTask', 'named'],
    ]);
    assert.equal(reports.length, 4);
    assert.match(reports[0]!.where, /^app: background /);
    const stats = sup.stats;
    assert.equal(stats.failures, 4);
    assert.equal(stats.backgroundCompleted, 1);
    assert.equal(stats.backgroundInFlight, 0);
  });

  it('never starts user code inside the call (Zalgo), and runs it in the caller’s async context', async () => {
    const als = new AsyncLocalStorage<string>();
    const sup = new Supervisor();
    const order: string[] = [];
    const contexts: (string | undefined)[] = [];
    als.run('request-1', () =>
      sup.background(() => {
        order.push('task');
        contexts.push(als.getStore());
      }),
    );
    order.push('after call');
    await tick();
    assert.deepEqual(order, ['after call', 'task']);
    assert.deepEqual(contexts, ['request-1']);
  });

  it('a throwing or rejecting onError, or a throwing clock, never crashes the process', async () => {
    let clockCalls = 0;
    const sup = new Supervisor({
      onError: (_e, info) => {
        if (info.name === 'x') throw new Error('onError threw');
        return Promise.reject(new Error('onError rejected'));
      },
      clock: {
        now() {
          if (++clockCalls % 2 === 0) throw new Error('clock');
          return clockCalls;
        },
      },
    });
    const { reports, stop } = captureReports('sluice:tasks:error');
    sup.background(() => Promise.reject(new Error('x1')), { name: 'x' });
    sup.background(() => Promise.reject(new Error('y1')), { name: 'y' });
    await tick();
    stop();
    assert.equal(sup.stats.failures, 2);
    assert.ok(sup.stats.callbackFailures >= 2);
    assert.ok(reports.some((r) => /onError/.test(r.where)));
  });

  it('at maxBackground throws QueueFullError synchronously and does not run the task', async () => {
    const gate = deferred();
    const sup = new Supervisor({ maxBackground: 2 });
    sup.background(() => gate.promise);
    sup.background(() => gate.promise);
    let ran = false;
    assert.throws(
      () => sup.background(() => void (ran = true), { name: 'third' }),
      (e: unknown) => e instanceof QueueFullError && /refused third/.test(e.message),
    );
    assert.equal(sup.stats.rejected, 1);
    gate.resolve();
    await tick();
    assert.equal(ran, false);
    sup.background(() => void (ran = true));
    await tick();
    assert.equal(ran, true);
  });

  it('backgroundAsync waits for room FIFO, resolves once accepted, runs in its own context', async () => {
    const als = new AsyncLocalStorage<number>();
    const gate = deferred();
    const sup = new Supervisor({ maxBackground: 1 });
    sup.background(() => gate.promise);
    const started: [number, number | undefined][] = [];
    const accepted: number[] = [];
    const calls = [1, 2, 3].map((i) =>
      als.run(i, () =>
        sup
          .backgroundAsync(() => {
            started.push([i, als.getStore()]);
          })
          .then(() => accepted.push(i)),
      ),
    );
    await tick();
    assert.equal(sup.stats.backgroundWaiting, 3);
    als.run(99, () => gate.resolve());
    await Promise.all(calls);
    await tick();
    assert.deepEqual(accepted, [1, 2, 3]);
    assert.deepEqual(started, [
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  it('backgroundAsync: maxWaiting bound, abort before and while waiting, invalid input; never throws', async () => {
    const gate = deferred();
    const sup = new Supervisor({ maxBackground: 1, maxWaiting: 1 });
    sup.background(() => gate.promise);
    const controller = new AbortController();
    let ran = false;
    const waiting = sup.backgroundAsync(() => void (ran = true), { signal: controller.signal });
    await assert.rejects(
      sup.backgroundAsync(() => undefined),
      QueueFullError,
    );
    const reason = new Error('client went away');
    controller.abort(reason);
    await assert.rejects(waiting, (e) => e === reason);
    assert.equal(sup.stats.backgroundWaiting, 0);
    await assert.rejects(
      sup.backgroundAsync(() => undefined, { signal: AbortSignal.abort(reason) }),
      (e) => e === reason,
    );
    await assert.rejects(sup.backgroundAsync(1 as never), InvalidInputError);
    await assert.rejects(
      sup.backgroundAsync(() => undefined, { signal: 1 as never }),
      InvalidInputError,
    );
    gate.resolve();
    await tick();
    assert.equal(ran, false, 'an aborted wait never runs its task');
    assert.equal(sup.stats.aborted, 2);
  });

  it('20k synchronous tasks admitted through one slot: no recursion per item', async () => {
    const sup = new Supervisor({ maxBackground: 1, maxWaiting: Infinity });
    let done = 0;
    const accepted: Promise<void>[] = [];
    for (let i = 0; i < 20_000; i++) accepted.push(sup.backgroundAsync(() => void done++));
    await Promise.all(accepted);
    const report = await sup.shutdown({ deadlineMs: 5000 });
    assert.equal(done, 20_000);
    assert.equal(report.timedOut, false);
  });

  it('re-entrancy: a task may submit more work, and background during shutdown throws ClosedError', async () => {
    const sup = new Supervisor();
    const log: string[] = [];
    sup.background(() => {
      log.push('outer');
      sup.background(() => void log.push('inner'));
    });
    await tick();
    assert.deepEqual(log, ['outer', 'inner']);
    const gate = deferred();
    sup.background(() => gate.promise);
    const closing = sup.shutdown({ deadlineMs: 1000 });
    assert.throws(() => sup.background(() => undefined), ClosedError);
    await assert.rejects(
      sup.backgroundAsync(() => undefined),
      ClosedError,
    );
    assert.throws(() => sup.spawn('x', () => undefined), ClosedError);
    assert.throws(() => sup.every('x', 10, () => undefined), ClosedError);
    assert.throws(() => sup.child(), ClosedError);
    gate.resolve();
    const report = await closing;
    assert.equal(report.timedOut, false);
    assert.equal(sup.stats.rejected, 5);
  });

  it('onError runs in the async context of the submitter, with the task name and kind', async () => {
    const als = new AsyncLocalStorage<string>();
    const infos: [TaskErrorInfo, string | undefined][] = [];
    const sup = new Supervisor({
      name: 'svc',
      onError: (_e, info) => void infos.push([info, als.getStore()]),
    });
    als.run('req-7', () => sup.background(() => Promise.reject(new Error('x')), { name: 'store-pattern' }));
    await tick();
    assert.deepEqual(infos, [[{ name: 'store-pattern', kind: 'background', supervisor: 'svc' }, 'req-7']]);
  });
});

describe('Supervisor.spawn and every: context', () => {
  it('runs spawned tasks (and their restarts) and periodic runs in the registering call’s context', async () => {
    const als = new AsyncLocalStorage<string>();
    const sup = new Supervisor({ backoff: { initialMs: 0 } });
    const seen: (string | undefined)[] = [];
    let runs = 0;
    als.run('spawner', () =>
      sup.spawn(
        't',
        () => {
          seen.push(als.getStore());
          if (++runs < 3) throw new Error('again');
          return new Promise(() => undefined);
        },
        { restart: 'transient' },
      ),
    );
    const periodic: (string | undefined)[] = [];
    als.run('scheduler', () => sup.every('p', 2, () => void periodic.push(als.getStore())));
    await new Promise((resolve) => setTimeout(resolve, 30));
    await sup.shutdown({ deadlineMs: 10 });
    assert.deepEqual(seen, ['spawner', 'spawner', 'spawner']);
    assert.ok(periodic.length > 0 && periodic.every((s) => s === 'scheduler'));
  });
});

describe('Supervisor shutdown with lingering runs', () => {
  it('a child shut down on its own with a run still going stays its parent’s: the parent waits for it', async () => {
    const parent = new Supervisor({ name: 'app' });
    const child = parent.child({ name: 'indexer' });
    const gate = deferred();
    let running = true;
    child.spawn(
      'stubborn',
      async () => {
        await gate.promise; // ignores its signal
        running = false;
      },
      { restart: 'temporary' },
    );
    await new Promise((resolve) => setTimeout(resolve, 10));
    const own = await child.shutdown({ deadlineMs: 20 });
    assert.deepEqual(
      own.unfinished.map((u) => u.name),
      ['stubborn'],
    );
    // Deadline first: the parent reports the child's run as unfinished.
    const early = await parent.shutdown({ deadlineMs: 30 });
    assert.equal(early.timedOut, true);
    assert.deepEqual(
      early.unfinished.map((u) => `${u.supervisor}/${u.name}`),
      ['app/indexer/stubborn'],
    );
    assert.equal(running, true);
    gate.resolve();

    // The run ends before the deadline: the parent resolves only then, with nothing unfinished.
    const parent2 = new Supervisor({ name: 'app2' });
    const child2 = parent2.child({ name: 'indexer2' });
    const gate2 = deferred();
    let done2 = false;
    child2.spawn(
      'stubborn',
      async () => {
        await gate2.promise;
        done2 = true;
      },
      { restart: 'temporary' },
    );
    await new Promise((resolve) => setTimeout(resolve, 10));
    await child2.shutdown({ deadlineMs: 10 });
    const pending = parent2.shutdown({ deadlineMs: 5000 });
    setTimeout(() => gate2.resolve(), 50);
    const report = await pending;
    assert.equal(done2, true, 'the parent resolved before the child’s run ended');
    assert.equal(report.timedOut, false);
    assert.deepEqual(report.unfinished, []);
  });

  it('a restart that is due keeps the process alive until it runs', async () => {
    const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timeouts();
    const sup = new Supervisor({ backoff: { initialMs: 200, jitter: false } });
    let starts = 0;
    sup.spawn(
      'consumer',
      () => {
        starts++;
        if (starts === 1) throw new Error('transient crash');
        return new Promise<void>(() => undefined);
      },
      { restart: 'transient' },
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(starts, 1);
    assert.equal(timeouts(), before + 1, 'the restart timer is referenced');
    await sup.shutdown({ deadlineMs: 50 });
    assert.equal(timeouts(), before, 'shutdown cancels it');
  });
});
