import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { ClosedError, QueueFullError, SluiceError, TimeoutError } from '../../src/errors.js';
import { Limiter } from '../../src/limit/index.js';
import { deferred } from '../helpers/async.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Limiter', () => {
  it('never runs more than `concurrency` tasks and returns each result', async () => {
    const limiter = new Limiter({ concurrency: 3 });
    let running = 0;
    let max = 0;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        limiter.run(async () => {
          running++;
          max = Math.max(max, running);
          await tick();
          running--;
          return i * 2;
        }),
      ),
    );
    assert.deepEqual(
      results,
      Array.from({ length: 20 }, (_, i) => i * 2),
    );
    assert.equal(max, 3);
    assert.equal(limiter.stats.completed, 20);
  });

  it('starts queued tasks FIFO within a priority and higher priority first', async () => {
    const limiter = new Limiter({ concurrency: 1 });
    const gate = deferred();
    const order: string[] = [];
    const first = limiter.run(() => gate.promise);
    const runs = [
      limiter.run(() => order.push('a0')),
      limiter.run(() => order.push('b1'), { priority: 1 }),
      limiter.run(() => order.push('c0'), { priority: 0 }),
      limiter.run(() => order.push('d5'), { priority: 5 }),
      limiter.run(() => order.push('e1'), { priority: 1 }),
      limiter.run(() => order.push('f-1'), { priority: -1 }),
    ];
    gate.resolve();
    await Promise.all([first, ...runs]);
    assert.deepEqual(order, ['d5', 'b1', 'e1', 'a0', 'c0', 'f-1']);
  });

  it('rejects with QueueFullError at once when the queue is full', async () => {
    const limiter = new Limiter({ concurrency: 1, maxQueue: 2 });
    const gate = deferred();
    const running = limiter.run(() => gate.promise);
    const queued = [limiter.run(() => 1), limiter.run(() => 2)];
    await assert.rejects(
      limiter.run(() => 3),
      (err: unknown) => {
        assert.ok(err instanceof QueueFullError);
        assert.ok(err instanceof SluiceError);
        assert.equal(err.code, 'SLUICE_QUEUE_FULL');
        return true;
      },
    );
    assert.equal(limiter.stats.rejected, 1);
    gate.resolve();
    assert.deepEqual(await Promise.all(queued), [1, 2]);
    await running;
  });

  it('propagates task errors and sync throws, and frees the slot', async () => {
    const limiter = new Limiter({ concurrency: 1 });
    await assert.rejects(
      limiter.run(() => {
        throw new Error('sync');
      }),
      /sync/,
    );
    await assert.rejects(
      limiter.run(() => Promise.reject(new Error('async'))),
      /async/,
    );
    assert.equal(await limiter.run(() => 'ok'), 'ok');
    assert.equal(limiter.stats.failed, 2);
    assert.equal(limiter.stats.running, 0);
  });

  it('an aborted waiter rejects with signal.reason, leaves the queue and never takes a slot', async () => {
    const limiter = new Limiter({ concurrency: 1 });
    const gate = deferred();
    const holder = limiter.run(() => gate.promise);
    const controller = new AbortController();
    let ran = false;
    const waiting = limiter.run(
      () => {
        ran = true;
      },
      { signal: controller.signal },
    );
    const after = limiter.run(() => 'after');
    assert.equal(limiter.stats.queued, 2);
    const reason = new Error('user went away');
    controller.abort(reason);
    await assert.rejects(waiting, (err) => err === reason);
    assert.equal(limiter.stats.queued, 1);
    assert.equal(limiter.stats.aborted, 1);
    gate.resolve();
    assert.equal(await after, 'after');
    await holder;
    assert.equal(ran, false);
    assert.equal(limiter.stats.running, 0);
  });

  it('an already-aborted signal rejects without queueing, even with a free slot', async () => {
    const limiter = new Limiter({ concurrency: 1 });
    const reason = new Error('already');
    let ran = false;
    await assert.rejects(
      limiter.run(
        () => {
          ran = true;
        },
        { signal: AbortSignal.abort(reason) },
      ),
      (err) => err === reason,
    );
    assert.equal(ran, false);
    assert.deepEqual([limiter.stats.queued, limiter.stats.running, limiter.stats.aborted], [0, 0, 1]);
  });

  it('keeps one abort listener per shared signal and removes it once no waiter needs it', async () => {
    const limiter = new Limiter({ concurrency: 1 });
    const controller = new AbortController();
    const gate = deferred();
    const holder = limiter.run(() => gate.promise);
    const tasks = Array.from({ length: 50 }, () => limiter.run(() => 1, { signal: controller.signal }));
    assert.equal(getEventListeners(controller.signal, 'abort').length, 1);
    gate.resolve();
    await Promise.all([holder, ...tasks]);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    // Aborting some waiters of a shared signal leaves the others linked until they start.
    const gate2 = deferred();
    const holder2 = limiter.run(() => gate2.promise);
    const shared = new AbortController();
    const own = new AbortController();
    const a = limiter.run(() => 'a', { signal: shared.signal });
    const b = limiter.run(() => 'b', { signal: AbortSignal.any([shared.signal, own.signal]) });
    own.abort(new Error('b only'));
    await assert.rejects(b, /b only/);
    assert.equal(getEventListeners(shared.signal, 'abort').length >= 1, true);
    gate2.resolve();
    assert.equal(await a, 'a');
    await holder2;
    assert.equal(getEventListeners(own.signal, 'abort').length, 0);
  });

  it('`timeout` bounds the queue wait, not the run', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const limiter = new Limiter({ concurrency: 1 });
    const gate = deferred();
    const holder = limiter.run(() => gate.promise, { timeout: 10 });
    const waiting = limiter.run(() => 'never', { timeout: 100 });
    const rejection = assert.rejects(waiting, (err: unknown) => err instanceof TimeoutError);
    t.mock.timers.tick(99);
    assert.equal(limiter.stats.queued, 1);
    t.mock.timers.tick(1);
    await rejection;
    assert.equal(limiter.stats.timedOut, 1);
    assert.equal(limiter.stats.queued, 0);
    // The running task outlived its own `timeout: 10` and still resolves: it only bounded the wait.
    gate.resolve();
    await holder;
    assert.equal(limiter.stats.completed, 1);
  });

  it('acquire returns a Disposable permit that releases exactly once', async () => {
    const limiter = new Limiter({ concurrency: 1 });
    {
      using permit = await limiter.acquire();
      assert.equal(limiter.stats.running, 1);
      permit.release();
      permit.release();
      assert.equal(limiter.stats.running, 0);
    }
    assert.equal(limiter.stats.running, 0);
    const a = await limiter.acquire();
    const b = limiter.acquire();
    assert.equal(limiter.stats.queued, 1);
    a[Symbol.dispose]();
    a[Symbol.dispose]();
    const permitB = await b;
    assert.equal(limiter.stats.running, 1);
    permitB.release();
    assert.equal(limiter.stats.running, 0);
    assert.equal(limiter.stats.completed, 3);
  });

  it('limit(fn) wraps a function', async () => {
    const limiter = new Limiter({ concurrency: 2 });
    const double = limiter.limit(async (x: number) => x * 2);
    assert.deepEqual(await Promise.all([double(1), double(2), double(3)]), [2, 4, 6]);
  });

  it('resize grows immediately and shrinks by letting running work finish', async () => {
    const limiter = new Limiter({ concurrency: 1 });
    const gates = Array.from({ length: 4 }, () => deferred());
    const runs = gates.map((g) => limiter.run(() => g.promise));
    assert.equal(limiter.stats.running, 1);
    limiter.resize(3);
    assert.equal(limiter.stats.running, 3);
    limiter.resize(1);
    assert.equal(limiter.stats.running, 3);
    gates[0]!.resolve();
    gates[1]!.resolve();
    await tick();
    assert.equal(limiter.stats.running, 1, 'no new start while running ≥ the new bound');
    assert.equal(limiter.stats.queued, 1);
    gates[2]!.resolve();
    await tick();
    assert.equal(limiter.stats.running, 1);
    gates[3]!.resolve();
    await Promise.all(runs);
  });

  it('onIdle resolves when nothing runs or waits, and honours a signal', async () => {
    const limiter = new Limiter({ concurrency: 1 });
    await limiter.onIdle();
    const gate = deferred();
    const task = limiter.run(() => gate.promise);
    let idle = false;
    const idlePromise = limiter.onIdle().then(() => (idle = true));
    const reason = new Error('stop waiting');
    const aborted = limiter.onIdle({ signal: AbortSignal.abort(reason) });
    await assert.rejects(aborted, (err) => err === reason);
    const controller = new AbortController();
    const later = limiter.onIdle({ signal: controller.signal });
    controller.abort(reason);
    await assert.rejects(later, (err) => err === reason);
    await tick();
    assert.equal(idle, false);
    gate.resolve();
    await task;
    await idlePromise;
    assert.equal(idle, true);
  });

  it('close rejects queued work with ClosedError, refuses new work and waits for running work', async () => {
    const limiter = new Limiter({ concurrency: 1 });
    const gate = deferred();
    let finished = false;
    const running = limiter.run(async () => {
      await gate.promise;
      finished = true;
      return 'done';
    });
    const queued = [limiter.run(() => 1), limiter.run(() => 2, { signal: new AbortController().signal })];
    const permit = limiter.acquire({ priority: 2 });
    let closed = false;
    const closing = limiter.close().then(() => (closed = true));
    for (const q of [...queued, permit]) await assert.rejects(q, (e: unknown) => e instanceof ClosedError);
    await assert.rejects(
      limiter.run(() => 3),
      (e: unknown) => e instanceof ClosedError,
    );
    await tick();
    assert.equal(closed, false, 'close waits for the running task');
    gate.resolve();
    await closing;
    assert.equal(finished, true);
    assert.equal(await running, 'done');
    assert.equal(limiter.closed, true);
    await limiter[Symbol.asyncDispose]();
    const s = limiter.stats;
    assert.equal(s.rejected, 4);
    assert.equal(s.submitted, s.completed + s.failed + s.rejected + s.aborted + s.timedOut);
  });

  it('records queue wait and run time with the injected clock', async () => {
    let now = 0;
    const limiter = new Limiter({ concurrency: 1, clock: { now: () => now } });
    const gate = deferred();
    const first = limiter.run(async () => {
      await gate.promise;
      now += 30;
    });
    const second = limiter.run(() => {
      now += 5;
    });
    now += 10;
    gate.resolve();
    await Promise.all([first, second]);
    // first ran 10 + 30 = 40 ms; second waited 40 ms and ran 5 ms.
    assert.equal(limiter.stats.runMs, 45);
    assert.equal(limiter.stats.queueWaitMs, 40);
  });

  it('publishes enqueue/start/end/reject on diagnostics_channel', async () => {
    const seen: string[] = [];
    const names = ['enqueue', 'start', 'end', 'reject'];
    const handlers = names.map((name) => {
      const handler = () => seen.push(name);
      subscribe(`sluice:limit:${name}`, handler);
      return handler;
    });
    try {
      const limiter = new Limiter({ concurrency: 1, maxQueue: 1 });
      const gate = deferred();
      const a = limiter.run(() => gate.promise);
      const b = limiter.run(() => 1);
      await assert.rejects(limiter.run(() => 2));
      gate.resolve();
      await Promise.all([a, b]);
    } finally {
      names.forEach((name, i) => unsubscribe(`sluice:limit:${name}`, handlers[i]!));
    }
    // `a` starts a microtask after `run` returns, so `b`'s enqueue and the refusal come first.
    assert.deepEqual(seen, ['enqueue', 'reject', 'start', 'end', 'start', 'end']);
  });

  it('rejects a non-function task with InvalidInputError', async () => {
    const limiter = new Limiter({ concurrency: 1 });
    await assert.rejects(limiter.run(42 as never), {
      name: 'InvalidInputError',
      code: 'SLUICE_INVALID_INPUT',
      message: 'Expected `fn` to be a function, got `42` (number)',
    });
  });

  it('validates options eagerly with the DESIGN.md message shape', async () => {
    const cases: [unknown, RegExp | string, ErrorConstructor][] = [
      [
        { concurrency: 0 },
        'Expected `concurrency` to be a positive integer or Infinity, got `0` (number)',
        RangeError,
      ],
      [
        { concurrency: 1.5 },
        'Expected `concurrency` to be a positive integer or Infinity, got `1.5` (number)',
        RangeError,
      ],
      [
        { concurrency: '4' },
        'Expected `concurrency` to be a positive integer or Infinity, got `"4"` (string)',
        TypeError,
      ],
      [
        { concurrency: NaN },
        'Expected `concurrency` to be a positive integer or Infinity, got `NaN` (number)',
        TypeError,
      ],
      [
        {},
        'Expected `concurrency` to be a positive integer or Infinity, got `undefined` (undefined)',
        TypeError,
      ],
      [
        { concurrency: 1, maxQueue: -1 },
        'Expected `maxQueue` to be a non-negative integer or Infinity, got `-1` (number)',
        RangeError,
      ],
      [
        { concurrency: 1, clock: {} },
        'Expected `clock` to be an object with a now() method, got `{}` (object)',
        TypeError,
      ],
      [
        { concurrency: 1, clock: null },
        'Expected `clock` to be an object with a now() method, got `null` (null)',
        TypeError,
      ],
      [
        { concurrency: 1, maxQueue: null },
        'Expected `maxQueue` to be a non-negative integer or Infinity, got `null` (null)',
        TypeError,
      ],
      [{ concurrency: 1, maxQueue: undefined, clock: undefined }, undefined as never, TypeError],
      [null, 'Expected `options` to be an object or undefined, got `null` (null)', TypeError],
      [
        undefined,
        'Expected `concurrency` to be a positive integer or Infinity, got `undefined` (undefined)',
        TypeError,
      ],
    ];
    for (const [options, message, type] of cases) {
      if (message === undefined) {
        // `undefined` means "the default", as exactOptionalPropertyTypes consumers write it.
        assert.equal(new Limiter(options as never).stats.concurrency, 1);
        continue;
      }
      assert.throws(
        () => new Limiter(options as never),
        (err: unknown) => {
          assert.ok(err instanceof type, `${String(message)}: wrong class`);
          assert.equal(err.message, message);
          return true;
        },
      );
    }
    const limiter = new Limiter({ concurrency: 1 });
    assert.throws(
      () => limiter.resize(-2),
      /Expected `concurrency` to be a positive integer or Infinity, got `-2`/,
    );
    await assert.rejects(
      limiter.run(() => 1, { priority: Infinity }),
      {
        code: 'SLUICE_INVALID_INPUT',
        message: /Expected `priority` to be a finite number/,
      },
    );
    await assert.rejects(
      limiter.run(() => 1, { timeout: -5 }),
      {
        code: 'SLUICE_INVALID_INPUT',
        message: /Expected `timeout` to be a non-negative number or Infinity, got `-5`/,
      },
    );
  });
});

describe('Limiter name', () => {
  it('names the limiter in its errors, stats and channel payloads', async () => {
    const limiter = new Limiter({ concurrency: 1, maxQueue: 0, name: 'db-pool' });
    assert.equal(limiter.stats.name, 'db-pool');
    const seen: unknown[] = [];
    const onStart = (message: unknown) => seen.push((message as { name: string }).name);
    subscribe('sluice:limit:start', onStart);
    try {
      const held = limiter.run(() => new Promise((r) => setTimeout(r, 5)));
      await assert.rejects(
        limiter.run(() => 1),
        {
          code: 'SLUICE_QUEUE_FULL',
          message: 'db-pool queue is full (maxQueue: 0)',
        },
      );
      await held;
    } finally {
      unsubscribe('sluice:limit:start', onStart);
    }
    assert.deepEqual(seen, ['db-pool']);
    await limiter.close();
    await assert.rejects(
      limiter.run(() => 1),
      { code: 'SLUICE_CLOSED', message: 'db-pool is closed' },
    );
    assert.throws(() => new Limiter({ concurrency: 1, name: 5 as never }), {
      name: 'TypeError',
      message: 'Expected `name` to be a string, got `5` (number)',
    });
  });
});
