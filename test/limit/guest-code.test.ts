// How the limit module treats user code and runtime input: it starts asynchronously, in the
// caller's async context; a promise-returning call never throws; bad input is an
// InvalidInputError; a throwing injected clock costs nothing; long timeouts do not fire early.
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { InvalidInputError } from '../../src/errors.js';
import { KeyedMutex, Limiter, Mutex, map, settle } from '../../src/limit/index.js';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('user code in the limit module', () => {
  it('starts fn asynchronously whether or not a slot is free', async () => {
    const limiter = new Limiter({ concurrency: 1 });
    const mutex = new Mutex();
    const locks = new KeyedMutex<string>();
    const started: string[] = [];
    const calls = [
      limiter.run(() => started.push('free')),
      limiter.run(() => started.push('queued')),
      limiter.run(() => started.push('queued with options'), { priority: 1 }),
      new Limiter({ concurrency: 1 }).run(() => started.push('free with options'), { priority: 1 }),
      mutex.run(() => started.push('mutex')),
      locks.run('k', () => started.push('keyed')),
    ];
    assert.deepEqual(started, [], 'nothing may start inside the call that submitted it');
    await Promise.all(calls);
    assert.equal(started.length, 6);
  });

  it('runs every task in the AsyncLocalStorage context of the call that submitted it', async () => {
    const als = new AsyncLocalStorage<number>();
    const limiter = new Limiter({ concurrency: 2 });
    const mutex = new Mutex();
    const locks = new KeyedMutex<string>();
    const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
    const seen = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        als.run(i, () => {
          const task = async () => {
            const before = als.getStore();
            await tick();
            return [before, als.getStore()];
          };
          if (i % 5 === 0) return limiter.run(task);
          if (i % 5 === 1) return limiter.run(task, { priority: i % 3 });
          if (i % 5 === 2) return limiter.run(task, { signal: new AbortController().signal });
          if (i % 5 === 3) return mutex.run(task);
          return locks.run('one key', task);
        }),
      ),
    );
    seen.forEach((pair, i) => assert.deepEqual(pair, [i, i], `task ${i} ran in another request's context`));
  });

  it('a promise-returning call never throws; bad runtime input rejects with InvalidInputError', async () => {
    const limiter = new Limiter({ concurrency: 1 });
    const calls: [string, () => Promise<unknown>, RegExp][] = [
      [
        'priority NaN',
        () => limiter.run(() => 1, { priority: NaN }),
        /`priority` to be a finite number, got `NaN`/,
      ],
      ['non-function', () => limiter.run('x' as never), /`fn` to be a function, got `"x"` \(string\)/],
      ['bad signal', () => limiter.acquire({ signal: 5 as never }), /`signal` to be an AbortSignal/],
      ['options null', () => limiter.run(() => 1, null as never), /`options` to be an object/],
      ['onIdle signal', () => limiter.onIdle({ signal: {} as never }), /`signal` to be an AbortSignal/],
      ['mutex', () => new Mutex().run(() => 1, { timeout: -1 }), /`timeout` to be a non-negative number/],
      ['keyed', () => new KeyedMutex().run('k', 42 as never), /`fn` to be a function/],
      ['map null', () => map(null as never, (x) => x, { concurrency: 1 }), /`input` to be an iterable/],
      ['map fn', () => map([1], 1 as never, { concurrency: 1 }), /`fn` to be a function/],
      ['settle', () => settle(5 as never), /`items` to be an iterable, got `5` \(number\)/],
    ];
    for (const [name, call, message] of calls) {
      let promise: Promise<unknown> | undefined;
      assert.doesNotThrow(() => (promise = call()), name);
      await assert.rejects(promise!, (err: unknown) => {
        assert.ok(err instanceof InvalidInputError, `${name}: ${String(err)}`);
        assert.equal(err.code, 'SLUICE_INVALID_INPUT', name);
        assert.match(err.message, message, name);
        return true;
      });
    }
    assert.equal(limiter.running, 0);
    assert.equal(limiter.queued, 0);
  });

  it('a throwing injected clock costs no slot and is reported', async () => {
    let broken = false;
    const limiter = new Limiter({
      concurrency: 1,
      clock: {
        now: () => {
          if (broken) throw new Error('clock broke');
          return 0;
        },
      },
    });
    const reported: unknown[] = [];
    const onError = (message: unknown) => reported.push((message as { error: unknown }).error);
    subscribe('sluice:limit:error', onError);
    try {
      broken = true;
      const results = await Promise.all([
        limiter.run(() => 1),
        limiter.run(() => 2),
        limiter.run(() => 3, { priority: 2 }),
        limiter.acquire().then((permit) => permit.release()),
      ]);
      assert.deepEqual(results.slice(0, 3), [1, 2, 3]);
      assert.equal(limiter.running, 0, 'a slot leaked');
      assert.equal(await limiter.run(() => 'still usable'), 'still usable');
      assert.ok(reported.length > 0);
      assert.ok(reported.every((e) => e instanceof Error && e.message === 'clock broke'));
    } finally {
      unsubscribe('sluice:limit:error', onError);
    }
  });

  it('a queue timeout longer than 2^31-1 ms does not fire early', async () => {
    const limiter = new Limiter({ concurrency: 1 });
    const gate = deferred();
    const holder = limiter.run(() => gate.promise);
    let settled = false;
    const thirtyDays = 30 * 24 * 3_600_000;
    const waiting = limiter.run(() => 'ran', { timeout: thirtyDays }).finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(settled, false, 'a 30-day timeout fired within 30 ms');
    assert.equal(limiter.stats.timedOut, 0);
    gate.resolve();
    assert.equal(await waiting, 'ran');
    await holder;
  });
});
