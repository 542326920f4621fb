import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClosedError, InvalidInputError, QueueFullError } from '../../src/errors.js';
import { WorkQueue } from '../../src/tasks/index.js';
import { captureReports, deferred } from '../helpers/async.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('WorkQueue options', () => {
  it('validates eagerly with the DESIGN message shape', () => {
    const h = () => undefined;
    assert.throws(() => new WorkQueue(h, { concurrency: 0 }), {
      name: 'RangeError',
      message: 'Expected `concurrency` to be a positive integer or Infinity, got `0` (number)',
    });
    assert.throws(() => new WorkQueue(h, {} as never), /`concurrency` to be a positive integer/);
    assert.throws(() => new WorkQueue(h, undefined as never), /`options` to be an object/);
    assert.throws(() => new WorkQueue(1 as never, { concurrency: 1 }), /`handler` to be a function/);
    assert.throws(() => new WorkQueue(h, { concurrency: 1, maxPending: 0 }), /`maxPending`/);
    assert.throws(() => new WorkQueue(h, { concurrency: 1, orderBy: 'path' as never }), /`orderBy`/);
    assert.throws(() => new WorkQueue(h, { concurrency: 1, retry: 3 as never }), /`retry` to be an object/);
    assert.throws(
      () => new WorkQueue(h, { concurrency: 1, retry: { jitter: 'some' as never } }),
      /`retry.jitter` to be one of 'full', 'none'/,
    );
    assert.throws(() => new WorkQueue(h, { concurrency: 1, onError: null as never }), /`onError`/);
  });

  it('rejects (never throws) bad per-call options with InvalidInputError', async () => {
    const queue = new WorkQueue(() => undefined, { concurrency: 1 });
    for (const call of [
      () => queue.add(1, 5 as never),
      () => queue.addAndWait(1, { signal: {} as never }),
      () => queue.onIdle(null as never),
    ]) {
      let p: Promise<unknown> | undefined;
      assert.doesNotThrow(() => (p = call()));
      await assert.rejects(p!, InvalidInputError);
    }
    assert.equal(queue.stats.accepted, 0);
  });
});

describe('WorkQueue order and concurrency', () => {
  it('runs one key at a time in FIFO order, keys in parallel up to concurrency', async () => {
    const log: string[] = [];
    let running = 0;
    let max = 0;
    const queue = new WorkQueue(
      async (op: { path: string; n: number }) => {
        running++;
        max = Math.max(max, running);
        await tick();
        log.push(`${op.path}${op.n}`);
        running--;
      },
      { concurrency: 2, orderBy: (op) => op.path },
    );
    for (let n = 0; n < 5; n++) for (const path of ['a', 'b', 'c']) await queue.add({ path, n });
    await queue.close();
    for (const path of ['a', 'b', 'c'])
      assert.deepEqual(
        log.filter((l) => l.startsWith(path)),
        [0, 1, 2, 3, 4].map((n) => `${path}${n}`),
      );
    assert.equal(max, 2);
    assert.equal(queue.stats.completed, 15);
    assert.equal(queue.stats.keys, 0);
  });

  it("a busy key's waiting ops hold no slot: other keys run past them", async () => {
    const gate = deferred();
    const log: string[] = [];
    const queue = new WorkQueue(
      async (op: { key: string; n: number }) => {
        if (op.key === 'slow' && op.n === 0) await gate.promise;
        log.push(`${op.key}${op.n}`);
      },
      { concurrency: 2, orderBy: (op) => op.key },
    );
    for (let n = 0; n < 100; n++) await queue.add({ key: 'slow', n });
    for (let n = 0; n < 10; n++) await queue.add({ key: `fast${n}`, n });
    await tick();
    await tick();
    assert.equal(log.length, 10, 'every other key ran while slow0 held its key');
    assert.equal(queue.stats.running, 1);
    gate.resolve();
    await queue.close();
    assert.equal(log.length, 110);
  });

  it('add resolves on acceptance and waits (FIFO) at maxPending; addAndWait returns the result', async () => {
    const gates: (() => void)[] = [];
    const queue = new WorkQueue((n: number) => new Promise<number>((r) => gates.push(() => r(n * 2))), {
      concurrency: 1,
      maxPending: 2,
    });
    await queue.add(1);
    const r = queue.addAndWait(2);
    let third = false;
    const add3 = queue.add(3).then(() => (third = true));
    await tick();
    assert.equal(third, false);
    assert.equal(queue.stats.waiting, 1);
    assert.equal(queue.stats.pending, 2);
    gates.shift()?.();
    await add3;
    assert.equal(queue.stats.pending, 2);
    while (gates.length > 0 || queue.pending > 0) {
      gates.shift()?.();
      await tick();
    }
    assert.equal(await r, 4);
  });

  it('keeps the key across retries: the next op of the key waits for them', async () => {
    const log: string[] = [];
    let tries = 0;
    const queue = new WorkQueue(
      (op: string) => {
        log.push(op);
        if (op === 'a1' && ++tries < 3) throw new Error('flaky');
      },
      { concurrency: 4, orderBy: (op) => op[0], retry: { attempts: 3, delayMs: 1, jitter: 'none' } },
    );
    await queue.add('a1');
    await queue.add('a2');
    await queue.add('b1');
    await queue.close();
    assert.deepEqual(
      log.filter((l) => l.startsWith('a')),
      ['a1', 'a1', 'a1', 'a2'],
    );
    assert.equal(queue.stats.retried, 2);
    assert.equal(queue.stats.completed, 3);
  });
});

describe('WorkQueue failures', () => {
  it('reports a failed op to onError and stats.failed, rejects addAndWait, never unhandled', async () => {
    const errors: [number, string][] = [];
    const queue = new WorkQueue(
      (n: number) => {
        if (n % 2 === 1) throw new Error(`bad ${n}`);
        return Promise.reject(new Error(`async bad ${n}`));
      },
      {
        concurrency: 2,
        retry: { attempts: 2, delayMs: 0 },
        onError: (n, e) => errors.push([n, (e as Error).message]),
      },
    );
    await queue.add(1);
    await queue.add(2);
    await assert.rejects(queue.addAndWait(3), /bad 3/);
    await queue.close();
    assert.deepEqual(errors.sort(), [
      [1, 'bad 1'],
      [2, 'async bad 2'],
      [3, 'bad 3'],
    ]);
    assert.equal(queue.stats.failed, 3);
    assert.equal(queue.stats.retried, 3);
    assert.match((queue.lastError as Error).message, /bad/);
  });

  it('does not retry errors retryIf refuses; a throwing onError or retryIf is reported, never crashes', async () => {
    const { reports, stop } = captureReports('sluice:tasks:error');
    try {
      let tries = 0;
      const queue = new WorkQueue(
        (n: number) => {
          tries++;
          throw new Error(`e${n}`);
        },
        {
          concurrency: 1,
          retry: {
            attempts: 5,
            delayMs: 0,
            retryIf: (e) => {
              if ((e as Error).message === 'e2') throw new Error('retryIf broke');
              return false;
            },
          },
          onError: (n) => {
            if (n === 1) throw new Error('onError broke');
            return Promise.reject(new Error('onError rejected'));
          },
        },
      );
      await queue.add(1);
      await queue.add(2);
      await queue.close();
      await tick();
      assert.equal(tries, 2);
      assert.equal(queue.stats.failed, 2);
      assert.equal(queue.stats.callbackFailures, 3);
      assert.deepEqual(reports.map((r) => r.where).sort(), ['onError', 'onError', 'retry.retryIf']);
    } finally {
      stop();
    }
  });

  it('rejects an add whose orderBy throws, accepting nothing', async () => {
    const queue = new WorkQueue(() => undefined, {
      concurrency: 1,
      orderBy: (): string => {
        throw new Error('no key');
      },
    });
    await assert.rejects(queue.add(1), /no key/);
    assert.equal(queue.stats.accepted, 0);
    assert.equal(queue.stats.rejected, 1);
  });
});

describe('WorkQueue cancellation', () => {
  it('an abort while waiting for room rejects with signal.reason and accepts nothing', async () => {
    const gate = deferred();
    const queue = new WorkQueue(() => gate.promise, { concurrency: 1, maxPending: 1 });
    await queue.add(1);
    const c = new AbortController();
    const p = queue.add(2, { signal: c.signal });
    const reason = new Error('stop');
    c.abort(reason);
    await assert.rejects(p, (e) => e === reason);
    assert.equal(queue.stats.waiting, 0);
    assert.equal(queue.stats.aborted, 1);
    gate.resolve();
    await queue.close();
    assert.equal(queue.stats.accepted, 1);
  });

  it('an abort after acceptance, before start, removes the op (behind its key and waiting for a slot)', async () => {
    const gate = deferred();
    const ran: string[] = [];
    const queue = new WorkQueue(
      async (op: string) => {
        ran.push(op);
        if (op === 'a1') await gate.promise;
      },
      { concurrency: 1, orderBy: (op) => op[0] },
    );
    const behindKey = new AbortController();
    const waitingSlot = new AbortController();
    await queue.add('a1');
    await queue.add('a2', { signal: behindKey.signal });
    const b1 = queue.addAndWait('b1', { signal: waitingSlot.signal });
    await tick();
    behindKey.abort(new Error('x'));
    waitingSlot.abort(new Error('y'));
    await assert.rejects(b1, /y/);
    gate.resolve();
    await queue.close();
    assert.deepEqual(ran, ['a1']);
    assert.equal(queue.stats.cancelled, 2);
    assert.equal(queue.stats.completed, 1);
    assert.equal(queue.stats.keys, 0);
  });

  it('an abort between retries stops them; once started the handler gets the signal', async () => {
    const c = new AbortController();
    let tries = 0;
    const queue = new WorkQueue(
      (_: number, { signal }) => {
        tries++;
        assert.equal(signal, c.signal);
        throw new Error('down');
      },
      { concurrency: 1, retry: { attempts: 10, delayMs: 50, jitter: 'none' }, onError: () => assert.fail() },
    );
    const p = queue.addAndWait(1, { signal: c.signal });
    await new Promise((r) => setTimeout(r, 10));
    c.abort(new Error('cancel'));
    await assert.rejects(p, /cancel/);
    await queue.close();
    assert.equal(tries, 1);
    assert.equal(queue.stats.cancelled, 1);
    assert.equal(queue.stats.failed, 0);
  });
});

describe('WorkQueue lifecycle', () => {
  it('close() refuses new adds, admits waiting ones, drains everything', async () => {
    const done: number[] = [];
    const queue = new WorkQueue(
      async (n: number) => {
        await tick();
        done.push(n);
      },
      { concurrency: 1, maxPending: 2 },
    );
    const adds = [1, 2, 3, 4].map((n) => queue.add(n));
    const closing = queue.close();
    await assert.rejects(queue.add(5), ClosedError);
    assert.throws(() => queue.tryAdd(6), ClosedError);
    await Promise.all(adds);
    await closing;
    assert.deepEqual(done, [1, 2, 3, 4]);
    assert.equal(queue.stats.pending, 0);
    await queue[Symbol.asyncDispose]();
  });

  it('onIdle resolves when nothing is pending and takes a signal', async () => {
    const gate = deferred();
    const queue = new WorkQueue(() => gate.promise, { concurrency: 1 });
    await queue.onIdle();
    await queue.add(1);
    const c = new AbortController();
    const aborted = queue.onIdle({ signal: c.signal });
    c.abort(new Error('later'));
    await assert.rejects(aborted, /later/);
    const idle = queue.onIdle();
    gate.resolve();
    await idle;
    assert.equal(queue.stats.completed, 1);
  });

  it('publishes start / end / retry / failed on sluice:tasks:*', async () => {
    const { subscribe, unsubscribe } = await import('node:diagnostics_channel');
    const seen: string[] = [];
    const listeners = ['start', 'end', 'retry', 'failed'].map((event) => {
      const fn = () => seen.push(event);
      subscribe(`sluice:tasks:${event}`, fn);
      return () => unsubscribe(`sluice:tasks:${event}`, fn);
    });
    try {
      const queue = new WorkQueue(
        () => {
          throw new Error('x');
        },
        { concurrency: 1, retry: { attempts: 2, delayMs: 0 } },
      );
      await queue.add(1);
      await queue.close();
      assert.deepEqual(seen, ['start', 'end', 'retry', 'start', 'end', 'failed']);
    } finally {
      for (const stop of listeners) stop();
    }
  });
});

describe('WorkQueue re-entrancy', () => {
  it('a synchronous add inside a handler at the bound rejects with QueueFullError instead of deadlocking', async () => {
    const outcomes: string[] = [];
    const queue: WorkQueue<number> = new WorkQueue<number>(
      async (n) => {
        if (n < 3) {
          const child = queue.add(n + 10);
          await child.then(
            () => outcomes.push(`accepted ${n + 10}`),
            (e: unknown) => outcomes.push(e instanceof QueueFullError ? `full ${n + 10}` : String(e)),
          );
        }
      },
      { concurrency: 1, maxPending: 1 },
    );
    await queue.add(1);
    await queue.close();
    assert.deepEqual(outcomes, ['full 11']);
  });

  it('tryAdd from a handler never waits', async () => {
    let refused = 0;
    const queue: WorkQueue<number> = new WorkQueue<number>(
      async (n) => {
        await tick();
        if (n < 50 && !queue.tryAdd(n + 1)) refused++;
        if (n < 50 && !queue.tryAdd(n + 100)) refused++;
      },
      { concurrency: 2, maxPending: 3 },
    );
    await queue.add(0);
    await queue.onIdle();
    assert.ok(queue.stats.completed > 1);
    assert.equal(queue.stats.completed, queue.stats.accepted);
    assert.ok(refused > 0);
  });
});
