import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchWriter } from '../../src/batch/index.js';

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
});
