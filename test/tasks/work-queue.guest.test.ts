// User code in WorkQueue is a guest: it starts asynchronously, in the async context of its add,
// may be synchronous or throw synchronously, and a deep queue of synchronous ops never recurses.
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, it } from 'node:test';
import { WorkQueue } from '../../src/tasks/index.js';

describe('WorkQueue guest code', () => {
  it('never starts the handler inside add (Zalgo), with or without a free slot', async () => {
    const started: number[] = [];
    const queue = new WorkQueue((n: number) => void started.push(n), {
      concurrency: 1,
      orderBy: (n) => n % 2,
    });
    const adds = [queue.add(1), queue.add(2), queue.addAndWait(3)];
    assert.deepEqual(started, []);
    await Promise.all(adds);
    await queue.close();
    assert.deepEqual(started, [1, 2, 3]);
  });

  it('handles 20k queued synchronous ops on one key without recursion per op', async () => {
    let n = 0;
    const queue = new WorkQueue(() => void n++, {
      concurrency: 4,
      maxPending: Infinity,
      orderBy: () => 'one key',
    });
    for (let i = 0; i < 20_000; i++) void queue.add(i);
    await queue.close();
    assert.equal(n, 20_000);
  });

  it('admits 20k waiting adds through synchronous handlers without deep recursion', async () => {
    let n = 0;
    const queue = new WorkQueue(() => void n++, { concurrency: 2, maxPending: 1 });
    const adds: Promise<void>[] = [];
    for (let i = 0; i < 20_000; i++) adds.push(queue.add(i));
    await Promise.all(adds);
    await queue.close();
    assert.equal(n, 20_000);
  });

  it('a synchronous throw fails the try like a rejection (retried, then reported)', async () => {
    let tries = 0;
    const failed: unknown[] = [];
    const queue = new WorkQueue(
      () => {
        tries++;
        throw new Error('sync');
      },
      { concurrency: 1, retry: { attempts: 3, delayMs: 0 }, onError: (_, e) => failed.push(e) },
    );
    await queue.add(1);
    await queue.close();
    assert.equal(tries, 3);
    assert.equal(failed.length, 1);
  });

  it('runs every try, retryIf and onError in the AsyncLocalStorage context of the add', async () => {
    const als = new AsyncLocalStorage<number>();
    const seen = new Map<number, Set<string>>();
    const note = (n: number, where: string) => {
      const set = seen.get(n) ?? new Set<string>();
      set.add(`${where}:${String(als.getStore())}`);
      seen.set(n, set);
    };
    const queue = new WorkQueue(
      async (n: number, { attempt }) => {
        note(n, 'handler');
        await new Promise((r) => setImmediate(r));
        note(n, 'handler');
        if (attempt === 1 && n % 3 === 0) throw new Error('retry me');
        if (n % 5 === 0) throw new Error('fail');
      },
      {
        concurrency: 2,
        maxPending: 4,
        orderBy: (n) => n % 4,
        retry: {
          attempts: 2,
          delayMs: 0,
          retryIf: () => {
            const n = als.getStore() as number;
            note(n, 'retryIf');
            return true;
          },
        },
        onError: (n) => note(n, 'onError'),
      },
    );
    await Promise.all(Array.from({ length: 30 }, (_, i) => als.run(i, () => queue.add(i))));
    await queue.close();
    for (const [n, set] of seen) {
      for (const entry of set) assert.ok(entry.endsWith(`:${n}`), `op ${n} ran with ${entry}`);
    }
    assert.equal(seen.size, 30);
  });

  it('retries with exponential backoff on a fake clock (mock.timers)', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const tries: number[] = [];
    let now = 0;
    const queue = new WorkQueue(
      () => {
        tries.push(now);
        throw new Error('down');
      },
      { concurrency: 1, retry: { attempts: 4, delayMs: 100, factor: 2, maxDelayMs: 300, jitter: 'none' } },
    );
    await queue.add(1);
    const flush = async () => {
      for (let i = 0; i < 5; i++) await Promise.resolve();
    };
    await flush();
    assert.deepEqual(tries, [0]);
    for (const step of [99, 1, 199, 1, 299, 1]) {
      now += step;
      t.mock.timers.tick(step);
      await flush();
    }
    assert.deepEqual(tries, [0, 100, 300, 600]);
    assert.equal(queue.stats.retried, 3);
    assert.equal(queue.stats.failed, 1);
    await queue.close();
  });

  it('jitter stays within [0, delay] and a throwing random falls back and is reported', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const queue = new WorkQueue(
      () => {
        throw new Error('down');
      },
      {
        concurrency: 1,
        retry: {
          attempts: 2,
          delayMs: 100,
          random: () => {
            throw new Error('rng');
          },
        },
      },
    );
    await queue.add(1);
    for (let i = 0; i < 5; i++) await Promise.resolve();
    assert.equal(queue.stats.retried, 1);
    t.mock.timers.tick(50); // 0.5 × 100
    await queue.close();
    assert.equal(queue.stats.failed, 1);
    assert.equal(queue.stats.callbackFailures, 1);
  });

  it('a handler may mutate its op: the retry and onError see the same object', async () => {
    const seen: number[] = [];
    const queue = new WorkQueue(
      (op: { tries: number }) => {
        op.tries++;
        throw new Error('x');
      },
      { concurrency: 1, retry: { attempts: 3, delayMs: 0 }, onError: (op) => seen.push(op.tries) },
    );
    await queue.add({ tries: 0 });
    await queue.close();
    assert.deepEqual(seen, [3]);
  });
});
