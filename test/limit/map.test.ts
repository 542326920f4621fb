import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidInputError } from '../../src/errors.js';
import { map } from '../../src/limit/index.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('map', () => {
  it('returns results in input order with bounded concurrency (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat({ max: 3 }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        async (delays, concurrency) => {
          let active = 0;
          let max = 0;
          const out = await map(
            delays,
            async (delay, i) => {
              active++;
              max = Math.max(max, active);
              for (let k = 0; k < delay; k++) await tick();
              active--;
              return i * 10;
            },
            { concurrency },
          );
          assert.deepEqual(
            out,
            delays.map((_, i) => i * 10),
          );
          assert.ok(max <= concurrency);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('pulls an async iterable lazily: never more than `concurrency` items ahead', async () => {
    let pulled = 0;
    let done = 0;
    async function* source() {
      for (let i = 0; i < 50; i++) {
        pulled++;
        assert.ok(pulled - done <= 3, `pulled ${pulled} with ${done} done`);
        yield i;
      }
    }
    const out = await map(
      source(),
      async (x) => {
        await tick();
        done++;
        return x + 1;
      },
      { concurrency: 3 },
    );
    assert.equal(out.length, 50);
    assert.equal(out[49], 50);
  });

  it('works on an endless stream until aborted, with signal.reason', async () => {
    const controller = new AbortController();
    let finallyRan = false;
    async function* endless() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        finallyRan = true;
      }
    }
    const reason = new Error('enough');
    let seen = 0;
    const run = map(
      endless(),
      async (_x, _i, signal) => {
        if (++seen === 100) controller.abort(reason);
        await tick();
        return signal.aborted;
      },
      { concurrency: 4, signal: controller.signal },
    );
    await assert.rejects(run, (e) => e === reason);
    await tick();
    assert.ok(seen >= 100 && seen < 110, `stopped scheduling (saw ${seen})`);
    assert.equal(finallyRan, true, 'iterator was closed');
  });

  it('stops at the first error by default and aborts the fn signal', async () => {
    let started = 0;
    const signals: AbortSignal[] = [];
    await assert.rejects(
      map(
        Array.from({ length: 100 }, (_, i) => i),
        async (x, _i, signal) => {
          started++;
          signals.push(signal);
          await tick();
          if (x === 5) throw new Error('five');
          return x;
        },
        { concurrency: 2 },
      ),
      /five/,
    );
    await tick();
    assert.ok(started < 10, `kept scheduling: ${started}`);
    assert.equal(signals[0]!.aborted, true);
  });

  it('with stopOnError: false runs everything and rejects with an AggregateError in input order', async () => {
    let ran = 0;
    await assert.rejects(
      map(
        [1, 2, 3, 4, 5, 6],
        async (x) => {
          ran++;
          await new Promise((r) => setTimeout(r, 7 - x));
          if (x % 2 === 0) throw new Error(`even ${x}`);
          return x;
        },
        { concurrency: 3, stopOnError: false },
      ),
      (err: unknown) => {
        assert.ok(err instanceof AggregateError);
        assert.deepEqual(
          err.errors.map((e: Error) => e.message),
          ['even 2', 'even 4', 'even 6'],
        );
        return true;
      },
    );
    assert.equal(ran, 6);
  });

  it('handles empty input, sync throws, iterator errors and already-aborted signals', async () => {
    assert.deepEqual(await map([], () => 1, { concurrency: 1 }), []);
    assert.deepEqual(await map(new Set([3, 1, 2]), async (x) => x * 2, { concurrency: 2 }), [6, 2, 4]);
    await assert.rejects(
      map(
        [1],
        () => {
          throw new Error('sync');
        },
        { concurrency: 1 },
      ),
      /sync/,
    );
    function* broken() {
      yield 1;
      throw new Error('iterator broke');
    }
    await assert.rejects(
      map(broken(), (x) => x, { concurrency: 2 }),
      /iterator broke/,
    );
    const reason = new Error('pre');
    await assert.rejects(
      map([1], (x) => x, { concurrency: 1, signal: AbortSignal.abort(reason) }),
      (e) => e === reason,
    );
  });

  it('rejects bad input and options with InvalidInputError and never throws', async () => {
    const cases: [() => Promise<unknown>, RegExp][] = [
      [
        () => map([1], (x) => x, { concurrency: 0 }),
        /^Expected `concurrency` to be a positive integer or Infinity, got `0` \(number\)$/,
      ],
      [
        () => map([1], (x) => x, {} as never),
        /^Expected `concurrency` to be a positive integer or Infinity, got `undefined` \(undefined\)$/,
      ],
      [
        () => map([1], 'nope' as never, { concurrency: 1 }),
        /^Expected `fn` to be a function, got `"nope"` \(string\)$/,
      ],
      [
        () => map(5 as never, (x) => x, { concurrency: 1 }),
        /^Expected `input` to be an iterable or async iterable, got `5` \(number\)$/,
      ],
      [
        () => map(null as never, (x) => x, { concurrency: 1 }),
        /^Expected `input` to be an iterable or async iterable, got `null` \(null\)$/,
      ],
      [
        () => map([1], (x) => x, null as never),
        /^Expected `options` to be an object or undefined, got `null`/,
      ],
    ];
    for (const [call, message] of cases) {
      let promise: Promise<unknown> | undefined;
      assert.doesNotThrow(() => (promise = call()));
      await assert.rejects(promise!, (err: unknown) => {
        assert.ok(err instanceof InvalidInputError);
        assert.equal(err.code, 'SLUICE_INVALID_INPUT');
        assert.match(err.message, message);
        return true;
      });
    }
  });

  it('starts fn and the iterator a microtask after the call, never inside it', async () => {
    let calls = 0;
    let pulls = 0;
    function* items() {
      pulls++;
      yield 1;
    }
    const fromArray = map([1, 2], () => calls++, { concurrency: 2 });
    const fromIterator = map(items(), () => calls++, { concurrency: 2 });
    assert.equal(calls, 0);
    assert.equal(pulls, 0);
    await Promise.all([fromArray, fromIterator]);
    assert.equal(calls, 3);
  });
});

describe('map signal', () => {
  it('lets every concurrent fn listen to its signal without a MaxListenersExceededWarning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      await map(
        Array.from({ length: 32 }, (_, i) => i),
        async (x, _i, signal) => {
          signal.addEventListener('abort', () => undefined);
          await new Promise((resolve) => setTimeout(resolve, 5));
          return x;
        },
        { concurrency: 32 },
      );
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings, []);
  });
});
