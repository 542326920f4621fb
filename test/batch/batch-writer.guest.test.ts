import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, it } from 'node:test';
import { BatchWriter } from '../../src/batch/index.js';
import { InvalidInputError } from '../../src/errors.js';
import { captureReports } from '../helpers/async.js';

describe('BatchWriter with user code that is synchronous, throws or mutates', () => {
  it('admits thousands of waiting adds through a synchronous flush without deep recursion', async () => {
    const written: number[] = [];
    let calls = 0;
    const writer = new BatchWriter<number>(
      (items) => {
        if (++calls === 1) throw new Error('transient');
        written.push(...items);
      },
      { maxItems: 1, maxPending: 1, maxWaitMs: Infinity, retry: { attempts: 2, delayMs: 1, jitter: 'none' } },
    );
    const adds: Promise<void>[] = [];
    for (let i = 0; i < 20_000; i++) adds.push(writer.add(i));
    await Promise.all(adds);
    await writer.close();
    assert.equal(written.length, 20_000);
    assert.deepEqual(written.slice(0, 3), [0, 1, 2]);
    assert.equal(writer.stats.written, 20_000);
    assert.equal(writer.stats.pending, 0);
  });

  it('retries the whole batch even when a failed try emptied the array it was given', async () => {
    const attempts: number[][] = [];
    const writer = new BatchWriter<number>(
      (items) => {
        const mine = items as number[];
        attempts.push([...mine]);
        if (attempts.length === 1) {
          mine.splice(0);
          throw new Error('transient');
        }
      },
      { maxItems: 3, maxWaitMs: Infinity, retry: { attempts: 2, delayMs: 0, jitter: 'none' } },
    );
    for (let i = 0; i < 3; i++) await writer.add(i);
    await writer.close();
    assert.deepEqual(attempts, [
      [0, 1, 2],
      [0, 1, 2],
    ]);
    assert.equal(writer.stats.written, 3);
  });

  it('counts every item of a batch the flush function consumed in chunks, and close() resolves', async () => {
    const chunks: number[][] = [];
    const writer = new BatchWriter<number>(
      (items) => {
        const mine = items as number[];
        while (mine.length > 0) chunks.push(mine.splice(0, 2));
      },
      { maxItems: 5, maxWaitMs: Infinity },
    );
    for (let i = 0; i < 5; i++) await writer.add(i);
    const closed = await Promise.race([
      writer.close().then(() => 'closed'),
      new Promise((resolve) => setTimeout(resolve, 200, 'stuck')),
    ]);
    assert.equal(closed, 'closed');
    assert.deepEqual(chunks, [[0, 1], [2, 3], [4]]);
    assert.equal(writer.stats.written, 5);
    assert.equal(writer.stats.pending, 0);
  });

  it('reports a failed batch to onError with all its items although the flush function emptied its array', async () => {
    const reported: number[][] = [];
    const writer = new BatchWriter<number>(
      (items) => {
        (items as number[]).length = 0;
        throw new Error('down');
      },
      { maxItems: 2, maxWaitMs: Infinity, onError: (items) => void reported.push([...items]) },
    );
    await writer.add(1);
    await writer.add(2);
    await writer.close();
    assert.deepEqual(reported, [[1, 2]]);
    assert.equal(writer.stats.failedItems, 2);
  });
});

const THIRTY_DAYS = 30 * 24 * 3_600_000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('BatchWriter delays beyond 2^31-1 ms', () => {
  it('does not flush early when maxWaitMs is 30 days', async () => {
    const batches: number[][] = [];
    const writer = new BatchWriter<number>((items) => void batches.push([...items]), {
      maxWaitMs: THIRTY_DAYS,
    });
    await writer.add(1);
    await sleep(30);
    assert.deepEqual(batches, []);
    await writer.close();
    assert.deepEqual(batches, [[1]]);
  });

  it('does not retry early when the retry delay is 30 days', async (t) => {
    const original = globalThis.setTimeout;
    const long: ReturnType<typeof setTimeout>[] = [];
    t.mock.method(globalThis, 'setTimeout', (fn: () => void, ms?: number) => {
      const handle = original(fn, ms);
      if ((ms ?? 0) > 1e9) long.push(handle);
      return handle;
    });
    let tries = 0;
    const writer = new BatchWriter<number>(
      () => {
        tries++;
        throw new Error('down');
      },
      {
        maxItems: 1,
        retry: { attempts: 2, delayMs: THIRTY_DAYS, maxDelayMs: THIRTY_DAYS, jitter: 'none' },
      },
    );
    await writer.add(1);
    await sleep(30);
    assert.equal(tries, 1);
    assert.equal(writer.stats.inFlight, 1, 'the batch waits for its retry');
    assert.ok(long.length > 0, 'the retry is armed as a long timer');
    for (const handle of long) clearTimeout(handle); // lets the test process exit
  });
});

describe('BatchWriter async context', () => {
  it('runs the flush function (and its retries) in the context of the add that opened the batch', async () => {
    const als = new AsyncLocalStorage<string>();
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    const writer = new BatchWriter<number>(
      async (items, { attempt }) => {
        seen.push(`${items[0]}:${attempt}:${als.getStore()}`);
        calls++;
        if (calls === 1) await gate;
        if (calls === 2) throw new Error('transient');
      },
      { maxItems: 1, maxPending: 1, retry: { attempts: 2, delayMs: 1, jitter: 'none' } },
    );
    await als.run('a', () => writer.add(1));
    const waiting = als.run('b', () => writer.add(2)); // waits for room; admitted by batch 1's completion
    als.run('releaser', () => release());
    await waiting;
    await als.run('closer', () => writer.close());
    assert.deepEqual(seen, ['1:1:a', '2:1:b', '2:2:b']);
  });
});

describe('BatchWriter option validation', () => {
  it('throws the option TypeError at construction for an option given as null', () => {
    const fn = () => undefined;
    for (const name of ['maxItems', 'maxWaitMs', 'maxPending', 'concurrency', 'retry', 'onError']) {
      assert.throws(
        () => new BatchWriter(fn, { [name]: null }),
        (e: unknown) => e instanceof TypeError && e.message.includes('got `null` (null)'),
        name,
      );
    }
    for (const name of ['attempts', 'delayMs', 'maxDelayMs', 'factor', 'jitter', 'random', 'retryIf']) {
      assert.throws(
        () => new BatchWriter(fn, { retry: { [name]: null } }),
        (e: unknown) => e instanceof TypeError && e.message.includes('got `null` (null)'),
        `retry.${name}`,
      );
    }
  });
});

describe('BatchWriter runtime misuse', () => {
  it('rejects (never throws) add, addAndWait, flush and close with bad options with InvalidInputError', async () => {
    const writer = new BatchWriter<number>(() => undefined);
    const calls: (() => Promise<void>)[] = [
      () => writer.add(1, { signal: 5 } as never),
      () => writer.addAndWait(1, 5 as never),
      () => writer.flush({ signal: {} } as never),
      () => writer.close({ signal: 'x' } as never),
    ];
    for (const call of calls) {
      let result!: Promise<void>;
      assert.doesNotThrow(() => {
        result = call();
      });
      await assert.rejects(result, (e: unknown) => {
        assert.ok(e instanceof InvalidInputError, String(e));
        assert.match(
          (e as Error).message,
          /^Expected `(signal|options)` to be an (AbortSignal|object) or undefined, got /,
        );
        return true;
      });
    }
    assert.equal(writer.stats.items, 0);
    assert.equal(writer.closed, false, 'a close with bad options did not close');
    await writer.close();
  });
});

describe('BatchWriter user callbacks that throw', () => {
  it('retries with a fallback delay when retry.random throws, loses nothing and reports it', async () => {
    const { reports, stop } = captureReports('sluice:batch:error');
    try {
      const boom = new Error('no entropy');
      let tries = 0;
      const writer = new BatchWriter<number>(
        async () => {
          if (++tries === 1) throw new Error('transient');
        },
        {
          maxItems: 1,
          retry: {
            attempts: 2,
            delayMs: 1,
            random: () => {
              throw boom;
            },
          },
        },
      );
      await writer.add(1);
      await writer.close();
      assert.equal(writer.stats.written, 1);
      assert.equal(writer.stats.callbackFailures, 1);
      assert.deepEqual(reports, [{ error: boom, where: 'retry.random' }]);
    } finally {
      stop();
    }
  });

  it('reports a batch failed when retry.retryIf throws, and reports the throw', async () => {
    const { reports, stop } = captureReports('sluice:batch:error');
    try {
      const boom = new Error('bad predicate');
      const failed: number[][] = [];
      const writer = new BatchWriter<number>(
        () => {
          throw new Error('down');
        },
        {
          maxItems: 1,
          retry: {
            attempts: 3,
            delayMs: 1,
            retryIf: () => {
              throw boom;
            },
          },
          onError: (items) => void failed.push([...items]),
        },
      );
      await writer.add(1);
      await writer.close();
      assert.deepEqual(failed, [[1]]);
      assert.equal(writer.stats.callbackFailures, 1);
      assert.deepEqual(reports, [{ error: boom, where: 'retry.retryIf' }]);
    } finally {
      stop();
    }
  });

  it('counts and reports an onError that throws or rejects', async () => {
    const { reports, stop } = captureReports('sluice:batch:error');
    try {
      let calls = 0;
      const writer = new BatchWriter<number>(
        () => {
          throw new Error('down');
        },
        {
          maxItems: 1,
          onError: () => {
            if (++calls === 1) throw new Error('sync');
            return Promise.reject(new Error('async'));
          },
        },
      );
      await writer.add(1);
      await writer.add(2);
      await writer.close();
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.equal(writer.stats.onErrorFailures, 2);
      assert.deepEqual(
        reports.map((r) => `${r.where}:${(r.error as Error).message}`),
        ['onError:sync', 'onError:async'],
      );
    } finally {
      stop();
    }
  });
});

describe('BatchWriter flush timing', () => {
  it('never runs the flush function inside the add, flush or close that sealed its batch', async () => {
    let calls = 0;
    const writer = new BatchWriter<number>(
      () => {
        calls++;
      },
      { maxItems: 2 },
    );
    const first = writer.add(1);
    const second = writer.add(2); // fills the batch
    assert.equal(calls, 0, 'flushed inside add()');
    await Promise.all([first, second]);
    void writer.add(3);
    const flushed = writer.flush();
    assert.equal(calls, 1, 'flushed inside flush()');
    await flushed;
    assert.equal(calls, 2);
    await writer.close();
  });
});
