import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, it } from 'node:test';
import { Loader } from '../../src/batch/index.js';
import { InvalidInputError } from '../../src/errors.js';
import { deferred, captureReports } from '../helpers/async.js';

describe('Loader with user code that is synchronous, throws or mutates', () => {
  it('runs thousands of batches queued behind a slow one through a synchronous batch function without deep recursion', async () => {
    const slow = deferred<readonly number[]>();
    let calls = 0;
    const loader = new Loader<number, number>(
      (keys) => (++calls === 1 ? slow.promise : keys.map((k) => k * 2)),
      { maxBatch: 1, maxConcurrentBatches: 1, maxQueue: Infinity, cache: false },
    );
    const first = loader.load(-1);
    await new Promise<void>((resolve) => setImmediate(resolve));
    const loads: Promise<number>[] = [];
    for (let i = 0; i < 20_000; i++) loads.push(loader.load(i));
    await new Promise<void>((resolve) => setImmediate(resolve));
    slow.resolve([-2]);
    assert.equal(await first, -2);
    const values = await Promise.all(loads);
    assert.equal(values.length, 20_000);
    assert.equal(values[19_999], 39_998);
    assert.equal(loader.stats.batches, 20_001);
  });

  it('maps a Map result to the right loads although the batch function sorted its keys in place', async () => {
    const users = new Map([1, 2, 3].map((id) => [id, { id }]));
    const loader = new Loader<number, { id: number }>((keys) => {
      (keys as number[]).sort((a, b) => a - b);
      return new Map(keys.map((k) => [k, users.get(k) as { id: number }]));
    });
    const [three, one, two] = await Promise.all([loader.load(3), loader.load(1), loader.load(2)]);
    assert.deepEqual([three.id, one.id, two.id], [3, 1, 2]);
    assert.equal((await loader.load(3)).id, 3, 'and caches each value under its own key');
  });

  it('maps an array result by the order the keys were sent although the batch function emptied its array', async () => {
    const loader = new Loader<number, number>((keys) => {
      const values = keys.map((k) => k * 10);
      (keys as number[]).length = 0;
      return values;
    });
    assert.deepEqual(await Promise.all([loader.load(2), loader.load(1)]), [20, 10]);
  });

  it('answers every load of equal object keys from a Map keyed by the key that was sent (cacheKey, no cache)', async () => {
    const sent: { id: number }[][] = [];
    const loader = new Loader<{ id: number }, string, number>(
      (keys) => {
        sent.push([...keys]);
        return new Map(keys.map((k) => [k, `user ${k.id}`]));
      },
      { cache: false, cacheKey: (k) => k.id },
    );
    const values = await Promise.all([
      loader.load({ id: 1 }),
      loader.load({ id: 1 }),
      loader.load({ id: 2 }),
    ]);
    assert.deepEqual(values, ['user 1', 'user 1', 'user 2']);
    assert.equal(sent.length, 1);
    assert.deepEqual(
      sent[0]?.map((k) => k.id),
      [1, 2],
    );
  });
});

describe('Loader bound after aborts', () => {
  it('frees the queue room of loads that aborted while their batch waited behind a slow one', async () => {
    const slow = deferred<readonly number[]>();
    let calls = 0;
    const loader = new Loader<number, number>(
      async (keys) => (++calls === 1 ? slow.promise : keys.map((k) => k * 2)),
      { maxConcurrentBatches: 1, maxQueue: 10, maxBatch: 5 },
    );
    const first = loader.load(-1);
    await new Promise<void>((resolve) => setImmediate(resolve));
    const controller = new AbortController();
    const aborted = Array.from({ length: 10 }, (_, i) =>
      loader.load(i, { signal: controller.signal }).catch((e: unknown) => e),
    );
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(loader.stats.queued, 10);
    controller.abort(new Error('gone'));
    for (const outcome of await Promise.all(aborted)) assert.equal((outcome as Error).message, 'gone');
    assert.equal(loader.stats.queued, 0);
    const later = loader.load(100);
    slow.resolve([-2]);
    assert.equal(await first, -2);
    assert.equal(await later, 200);
    assert.equal(calls, 2, 'the aborted batches were never sent');
  });

  it('frees the queue room of loads that aborted while their batch was still collecting', async () => {
    const slow = deferred<readonly number[]>();
    const loader = new Loader<number, number>(async () => slow.promise, {
      maxConcurrentBatches: 1,
      maxQueue: 3,
      schedule: { waitMs: 60_000 },
    });
    const controller = new AbortController();
    const aborted = [1, 2, 3].map((k) =>
      loader.load(k, { signal: controller.signal }).catch(() => 'aborted'),
    );
    assert.equal(loader.stats.queued, 3);
    controller.abort();
    assert.deepEqual(await Promise.all(aborted), ['aborted', 'aborted', 'aborted']);
    assert.equal(loader.stats.queued, 0);
    const later = loader.load(4);
    assert.equal(loader.stats.queued, 1);
    const closed = loader.close();
    slow.resolve([8]);
    assert.equal(await later, 8);
    await closed;
  });
});

describe('Loader delays beyond 2^31-1 ms', () => {
  it('does not dispatch early when waitMs is 30 days', async () => {
    const calls: number[][] = [];
    const loader = new Loader<number, number>(
      async (keys) => {
        calls.push([...keys]);
        return keys;
      },
      { schedule: { waitMs: 30 * 24 * 3_600_000 } },
    );
    const load = loader.load(1);
    await new Promise<void>((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(calls, []);
    await loader.close();
    assert.equal(await load, 1);
    assert.deepEqual(calls, [[1]]);
  });
});

describe('Loader prime', () => {
  it('makes load reject when the primed value is an Error, without calling the batch function', async () => {
    let calls = 0;
    const loader = new Loader<number, number>(async (keys) => {
      calls++;
      return keys;
    });
    const error = new Error('no such user');
    loader.prime(1, error);
    await assert.rejects(loader.load(1), (e) => e === error);
    assert.equal(calls, 0);
    loader.clear(1);
    assert.equal(await loader.load(1), 1, 'clear forgets the primed error');
  });
});

describe('Loader cache hits', () => {
  it('resolves a cache hit with the batch open at the time, so loads chained off hits and misses share one batch', async () => {
    const calls: number[][] = [];
    const loader = new Loader<number, number>(async (keys) => {
      calls.push([...keys]);
      await new Promise<void>((resolve) => setImmediate(resolve));
      return keys;
    });
    await loader.load(1); // cached from now on
    calls.length = 0;
    const [a, b] = await Promise.all([
      loader.load(1).then((v) => loader.load(v + 100)), // hit
      loader.load(2).then((v) => loader.load(v + 100)), // miss
    ]);
    assert.deepEqual([a, b], [101, 102]);
    assert.deepEqual(calls, [[2], [101, 102]]);
    assert.equal(loader.stats.cacheHits, 1);
  });

  it('resolves a hit made when no batch is open on the schedule a batch would use', async () => {
    const calls: number[][] = [];
    const loader = new Loader<number, number>(async (keys) => {
      calls.push([...keys]);
      return keys;
    });
    loader.prime(1, 1);
    const [a, b] = await Promise.all([
      loader.load(1).then((v) => loader.load(v + 100)), // hit first
      loader.load(2).then((v) => loader.load(v + 100)), // then a miss in the same tick
    ]);
    assert.deepEqual([a, b], [101, 102]);
    assert.deepEqual(calls, [[2], [101, 102]]);
  });

  it('a hit with a signal rejects with its reason when aborted before the batch settles', async () => {
    const loader = new Loader<number, number>(async (keys) => keys);
    loader.prime(1, 1);
    const controller = new AbortController();
    const hit = loader.load(1, { signal: controller.signal });
    controller.abort(new Error('gone'));
    await assert.rejects(hit, { message: 'gone' });
    assert.equal(await loader.load(1), 1);
  });
});

describe('Loader async context', () => {
  it('runs the batch function in the context of the load that opened the batch, also when it was queued', async () => {
    const als = new AsyncLocalStorage<string>();
    const slow = deferred<readonly number[]>();
    const seen: (string | undefined)[] = [];
    let calls = 0;
    const loader = new Loader<number, number>(
      (keys) => {
        seen.push(als.getStore());
        return ++calls === 1 ? slow.promise : keys;
      },
      { maxConcurrentBatches: 1 },
    );
    const first = als.run('first', () => loader.load(1));
    await new Promise<void>((resolve) => setImmediate(resolve));
    const second = als.run('second', () => loader.load(2));
    const joiner = als.run('joiner', () => loader.load(3));
    await new Promise<void>((resolve) => setImmediate(resolve));
    als.run('releaser', () => slow.resolve([1]));
    assert.deepEqual(await Promise.all([first, second, joiner]), [1, 2, 3]);
    assert.deepEqual(seen, ['first', 'second']);
  });
});

describe('Loader input validation', () => {
  it('rejects load(undefined) and load(null) with InvalidInputError without calling the batch function', async () => {
    let calls = 0;
    const loader = new Loader<number | null | undefined, number>(async (keys) => {
      calls++;
      return keys.map(() => 0);
    });
    let undefinedLoad!: Promise<number>;
    let nullLoad!: Promise<number>;
    assert.doesNotThrow(() => {
      undefinedLoad = loader.load(undefined);
      nullLoad = loader.load(null);
    });
    await assert.rejects(undefinedLoad, (e) => {
      assert.ok(e instanceof InvalidInputError);
      assert.equal(e.code, 'SLUICE_INVALID_INPUT');
      assert.equal(
        e.message,
        'Expected `key` to be a value other than undefined or null, got `undefined` (undefined)',
      );
      return true;
    });
    await assert.rejects(nullLoad, InvalidInputError);
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(calls, 0);
  });

  it('throws the option TypeError at construction for an option given as null', () => {
    const fn = async (keys: readonly number[]) => keys;
    for (const name of [
      'maxBatch',
      'maxConcurrentBatches',
      'maxQueue',
      'cacheSize',
      'cacheTtl',
      'schedule',
      'cache',
    ]) {
      assert.throws(
        () => new Loader(fn, { [name]: null }),
        (e: unknown) => e instanceof TypeError && e.message.includes('got `null` (null)'),
        name,
      );
    }
  });
});

describe('Loader runtime misuse', () => {
  const isInvalid = (message: string) => (e: unknown) => {
    assert.ok(e instanceof InvalidInputError, String(e));
    assert.equal((e as Error).message, message);
    return true;
  };

  it('rejects (never throws) a load with bad options with InvalidInputError', async () => {
    const loader = new Loader<number, number>(async (keys) => keys);
    let badSignal!: Promise<number>;
    let badOptions!: Promise<number>;
    assert.doesNotThrow(() => {
      badSignal = loader.load(1, { signal: 5 } as never);
      badOptions = loader.load(1, 5 as never);
    });
    await assert.rejects(
      badSignal,
      isInvalid('Expected `signal` to be an AbortSignal or undefined, got `5` (number)'),
    );
    await assert.rejects(
      badOptions,
      isInvalid('Expected `options` to be an object or undefined, got `5` (number)'),
    );
  });

  it('rejects loadMany of a non-iterable, or with bad options, with InvalidInputError', async () => {
    const loader = new Loader<number, number>(async (keys) => keys);
    await assert.rejects(
      loader.loadMany(5 as never),
      isInvalid('Expected `keys` to be an iterable, got `5` (number)'),
    );
    await assert.rejects(
      loader.loadMany([1], { signal: 'x' } as never),
      isInvalid('Expected `signal` to be an AbortSignal or undefined, got `"x"` (string)'),
    );
  });

  it('throws a TypeError in the DESIGN shape for clock: null', () => {
    assert.throws(
      () => new Loader(async (keys: readonly number[]) => keys, { clock: null } as never),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message === 'Expected `clock` to be an object with a now() method or undefined, got `null` (null)',
    );
  });
});

describe('Loader user callbacks that throw', () => {
  it('rejects (never throws) a load whose cacheKey throws, and reports it', async () => {
    const { reports, stop } = captureReports('sluice:batch:error');
    try {
      const boom = new Error('bad key');
      const loader = new Loader<{ id?: number }, number, number>(async (keys) => keys.map((k) => k.id ?? 0), {
        cacheKey: (k) => {
          if (k.id === undefined) throw boom;
          return k.id;
        },
      });
      let load!: Promise<number>;
      assert.doesNotThrow(() => {
        load = loader.load({});
      });
      await assert.rejects(load, (e) => e === boom);
      assert.equal(await loader.load({ id: 4 }), 4);
      assert.equal(loader.stats.callbackFailures, 1);
      assert.deepEqual(reports, [{ error: boom, where: 'cacheKey' }]);
    } finally {
      stop();
    }
  });

  it('settles every load of a batch although the user cache throws while forgetting a failed key', async () => {
    const { reports, stop } = captureReports('sluice:batch:error');
    try {
      const map = new Map<number, unknown>();
      const cache = {
        get: (k: number) => map.get(k),
        set: (k: number, v: unknown) => map.set(k, v),
        delete: (): boolean => {
          throw new Error('cache down');
        },
        clear: () => map.clear(),
      };
      const loader = new Loader<number, number>(
        async (keys) => keys.map((k) => (k === 1 ? new Error('no 1') : k)),
        {
          cache: cache as never,
        },
      );
      const [one, two] = await Promise.allSettled([loader.load(1), loader.load(2)]);
      assert.equal(one.status, 'rejected');
      assert.deepEqual(two, { status: 'fulfilled', value: 2 });
      assert.equal(loader.stats.callbackFailures, 1);
      assert.equal(reports[0]?.where, 'cache.delete');
    } finally {
      stop();
    }
  });

  it('rejects (never throws) a load whose user cache get throws', async () => {
    const loader = new Loader<number, number>(async (keys) => keys, {
      cache: {
        get: () => {
          throw new Error('cache down');
        },
        set: () => undefined,
        delete: () => undefined,
        clear: () => undefined,
      },
    });
    let load!: Promise<number>;
    assert.doesNotThrow(() => {
      load = loader.load(1);
    });
    await assert.rejects(load, { message: 'cache down' });
  });
});
