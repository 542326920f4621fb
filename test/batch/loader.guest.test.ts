import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Loader } from '../../src/batch/index.js';

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

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
});
