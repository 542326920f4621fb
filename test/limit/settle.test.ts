import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { settle } from '../../src/limit/index.js';

describe('settle', () => {
  it('reports every outcome in input order, promises and thunks alike', async () => {
    const boom = new Error('boom');
    const [a, b, c, d] = await settle([
      Promise.resolve(1),
      () => Promise.reject(boom),
      async () => 'three',
      () => {
        throw new Error('sync');
      },
    ] as const);
    assert.deepEqual(a, { ok: true, value: 1 });
    assert.deepEqual(b, { ok: false, error: boom });
    assert.deepEqual(c, { ok: true, value: 'three' });
    assert.equal(d.ok, false);
  });

  it('limits thunks to `concurrency` and never leaves a rejection unhandled', async () => {
    let active = 0;
    let max = 0;
    const thunk = (i: number) => async () => {
      active++;
      max = Math.max(max, active);
      await new Promise((r) => setTimeout(r, 2));
      active--;
      if (i === 3) throw new Error('three');
      return i;
    };
    const early = Promise.reject(new Error('already failed'));
    const outcomes = await settle([early, ...Array.from({ length: 10 }, (_, i) => thunk(i))], {
      concurrency: 2,
    });
    assert.equal(max, 2);
    assert.equal(outcomes.length, 11);
    assert.equal(outcomes.filter((o) => o.ok).length, 9);
  });

  it('takes about one call when operations are concurrent', async () => {
    const started = performance.now();
    const outcomes = await settle(
      Array.from({ length: 10 }, () => () => new Promise((r) => setTimeout(r, 20))),
    );
    assert.equal(outcomes.length, 10);
    assert.ok(performance.now() - started < 150);
  });
});
