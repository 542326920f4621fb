import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { getEventListeners } from 'node:events';
import { describe, it, mock } from 'node:test';
import { ClosedError } from '../../src/errors.js';
import { BatchWriter } from '../../src/batch/index.js';
import { deferred } from '../helpers/async.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A flush function whose calls wait for the test to release them. */
function gated<T>() {
  const batches: T[][] = [];
  const gates: ReturnType<typeof deferred<void>>[] = [];
  const fn = (items: readonly T[]) => {
    batches.push([...items]);
    const gate = deferred();
    gates.push(gate);
    return gate.promise;
  };
  return { batches, gates, fn };
}

describe('BatchWriter batching', () => {
  it('flushes a batch as soon as it holds maxItems, in add order', async () => {
    const batches: number[][] = [];
    const writer = new BatchWriter<number>((items) => void batches.push([...items]), {
      maxItems: 3,
      maxWaitMs: Infinity,
    });
    for (let i = 0; i < 7; i++) await writer.add(i);
    assert.deepEqual(batches, [
      [0, 1, 2],
      [3, 4, 5],
    ]);
    assert.equal(writer.stats.buffered, 1);
    await writer.flush();
    assert.deepEqual(batches[2], [6]);
    assert.equal(writer.stats.written, 7);
    assert.equal(writer.stats.batches, 3);
  });

  it('flushes a partial batch after maxWaitMs', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const batches: number[][] = [];
      const writer = new BatchWriter<number>((items) => void batches.push([...items]), {
        maxItems: 10,
        maxWaitMs: 50,
      });
      await writer.add(1);
      mock.timers.tick(30);
      await writer.add(2);
      assert.deepEqual(batches, []);
      mock.timers.tick(20);
      await Promise.resolve(); // the flush starts a microtask after the batch is sealed
      assert.deepEqual(batches, [[1, 2]], 'the window runs from the first item of the batch');
      await writer.close();
    } finally {
      mock.timers.reset();
    }
  });

  it('keeps at most `concurrency` batches in flight', async () => {
    const { batches, gates, fn } = gated<number>();
    const writer = new BatchWriter<number>(fn, { maxItems: 1, concurrency: 2 });
    for (let i = 0; i < 5; i++) await writer.add(i);
    assert.equal(writer.stats.inFlight, 2);
    assert.deepEqual(batches, [[0], [1]]);
    gates[1]!.resolve();
    await tick();
    assert.deepEqual(batches, [[0], [1], [2]]);
    for (let i = 0; i < 10 && writer.stats.inFlight > 0; i++) {
      for (const g of gates) g.resolve();
      await tick();
    }
    assert.equal(writer.stats.written, 5);
  });
});

describe('BatchWriter backpressure and cancellation', () => {
  it('add waits once maxPending items are unwritten, and resumes FIFO when a batch completes', async () => {
    const { gates, fn } = gated<number>();
    const writer = new BatchWriter<number>(fn, { maxItems: 2, maxPending: 4, maxWaitMs: Infinity });
    for (let i = 0; i < 4; i++) await writer.add(i);
    assert.equal(writer.pending, 4);
    const order: number[] = [];
    const fifth = writer.add(4).then(() => order.push(4));
    const sixth = writer.add(5).then(() => order.push(5));
    await tick();
    assert.deepEqual(order, []);
    assert.equal(writer.stats.waiting, 2);
    gates[0]!.resolve();
    await fifth;
    await sixth;
    assert.deepEqual(order, [4, 5]);
    assert.ok(writer.pending <= 4);
    for (let i = 0; i < 10 && writer.pending > 0; i++) {
      for (const g of gates) g.resolve();
      await tick();
    }
    assert.equal(writer.stats.written, 6);
  });

  it('an add aborted while waiting rejects with signal.reason and is never enqueued', async () => {
    const { batches, gates, fn } = gated<number>();
    const writer = new BatchWriter<number>(fn, { maxItems: 1, maxPending: 1 });
    await writer.add(0);
    const controller = new AbortController();
    const waiting = writer.add(1, { signal: controller.signal });
    const reason = new Error('caller gone');
    controller.abort(reason);
    await assert.rejects(waiting, (err) => err === reason);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    await assert.rejects(writer.add(2, { signal: AbortSignal.abort(reason) }), (err) => err === reason);
    gates[0]!.resolve();
    await writer.add(3);
    await tick();
    gates[1]?.resolve();
    await writer.close();
    assert.deepEqual(batches, [[0], [3]]);
    assert.equal(writer.stats.aborted, 2);
  });

  it('addAndWait resolves when its batch is written', async () => {
    const { gates, fn } = gated<number>();
    const writer = new BatchWriter<number>(fn, { maxItems: 2 });
    let written = false;
    const p = writer.addAndWait(1).then(() => (written = true));
    await writer.add(2);
    await tick();
    assert.equal(written, false);
    gates[0]!.resolve();
    await p;
    assert.equal(written, true);
  });

  it('addAndWait rejects with the batch error, after onError got the items', async () => {
    const reported: number[][] = [];
    const boom = new Error('insert failed');
    const writer = new BatchWriter<number>(
      () => {
        throw boom;
      },
      { maxItems: 2, onError: (items) => void reported.push([...items]) },
    );
    const a = writer.addAndWait(1);
    const b = writer.add(2);
    await b;
    await assert.rejects(a, (err) => err === boom);
    assert.deepEqual(reported, [[1, 2]]);
    assert.equal(writer.stats.failedItems, 2);
    assert.equal(writer.lastError, boom);
  });

  it('flush resolves once every item accepted before it is written', async () => {
    const { gates, fn } = gated<number>();
    const writer = new BatchWriter<number>(fn, { maxItems: 2, concurrency: 2, maxWaitMs: Infinity });
    for (let i = 0; i < 3; i++) await writer.add(i);
    let flushed = false;
    const f = writer.flush().then(() => (flushed = true));
    await tick();
    assert.equal(gates.length, 2, 'the partial batch went out');
    gates[1]!.resolve();
    await tick();
    assert.equal(flushed, false, 'the first batch is still in flight');
    gates[0]!.resolve();
    await f;
    assert.equal(writer.stats.written, 3);
    await writer.flush(); // nothing pending: resolves at once
  });
});

describe('BatchWriter retry and errors', () => {
  it('retries a failed batch with exponential backoff, then succeeds', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const attempts: number[] = [];
      const writer = new BatchWriter<number>(
        (_items, { attempt }) => {
          attempts.push(attempt);
          if (attempt < 3) return Promise.reject(new Error(`try ${attempt}`));
          return Promise.resolve();
        },
        { maxItems: 1, retry: { attempts: 3, delayMs: 100, jitter: 'none' } },
      );
      const done = writer.addAndWait(1);
      await tick();
      assert.deepEqual(attempts, [1]);
      mock.timers.tick(99);
      await tick();
      assert.deepEqual(attempts, [1]);
      mock.timers.tick(1);
      await tick();
      assert.deepEqual(attempts, [1, 2]);
      mock.timers.tick(199);
      await tick();
      assert.deepEqual(attempts, [1, 2]);
      mock.timers.tick(1);
      await done;
      assert.deepEqual(attempts, [1, 2, 3]);
      assert.equal(writer.stats.retries, 2);
      assert.equal(writer.stats.written, 1);
      assert.equal(writer.stats.failedItems, 0);
    } finally {
      mock.timers.reset();
    }
  });

  it('full jitter scales each delay by the injected random source', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const attempts: number[] = [];
      const draws = [0.25, 0.5];
      const writer = new BatchWriter<number>(
        (_items, { attempt }) => {
          attempts.push(attempt);
          return attempt < 3 ? Promise.reject(new Error(`try ${attempt}`)) : Promise.resolve();
        },
        { maxItems: 1, retry: { attempts: 3, delayMs: 100, random: () => draws.shift() ?? 0 } },
      );
      const done = writer.addAndWait(1);
      await tick();
      mock.timers.tick(24); // first delay: 0.25 × 100
      await tick();
      assert.deepEqual(attempts, [1]);
      mock.timers.tick(1);
      await tick();
      assert.deepEqual(attempts, [1, 2]);
      mock.timers.tick(99); // second delay: 0.5 × 200
      await tick();
      assert.deepEqual(attempts, [1, 2]);
      mock.timers.tick(1);
      await done;
      assert.deepEqual(attempts, [1, 2, 3]);
    } finally {
      mock.timers.reset();
    }
  });

  it('after the last try the batch goes to onError and stats.failedItems; retryIf can refuse', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const reported: [number[], unknown][] = [];
      let calls = 0;
      const writer = new BatchWriter<number>(
        async () => {
          calls++;
          throw new Error(calls === 3 ? 'fatal' : 'transient');
        },
        {
          maxItems: 2,
          retry: {
            attempts: 5,
            delayMs: 10,
            maxDelayMs: 15,
            jitter: 'none',
            retryIf: (e) => (e as Error).message === 'transient',
          },
          onError: (items, error) => void reported.push([[...items], error]),
        },
      );
      await writer.add(1);
      await writer.add(2);
      for (let i = 0; i < 5; i++) {
        await tick();
        mock.timers.tick(15);
      }
      await writer.close();
      assert.equal(calls, 3, 'retryIf stopped the retries at the fatal error');
      assert.equal(reported.length, 1);
      assert.deepEqual(reported[0]![0], [1, 2]);
      assert.equal((reported[0]![1] as Error).message, 'fatal');
      assert.equal(writer.stats.failedItems, 2);
      assert.equal(writer.stats.failedBatches, 1);
      assert.equal(writer.stats.pending, 0);
    } finally {
      mock.timers.reset();
    }
  });

  it('an onError that throws is counted and does not break the writer', async () => {
    let fail = true;
    const writer = new BatchWriter<number>(
      () => {
        if (fail) throw new Error('x');
      },
      {
        maxItems: 1,
        onError: () => {
          throw new Error('handler bug');
        },
      },
    );
    await writer.add(1);
    fail = false;
    await writer.add(2);
    await writer.close();
    assert.equal(writer.stats.onErrorFailures, 1);
    assert.equal(writer.stats.written, 1);
  });
});

describe('BatchWriter shutdown', () => {
  it('close flushes everything, admits adds already waiting, and resolves only when all is written', async () => {
    const { batches, gates, fn } = gated<number>();
    const writer = new BatchWriter<number>(fn, { maxItems: 2, maxPending: 3, maxWaitMs: Infinity });
    for (let i = 0; i < 3; i++) await writer.add(i);
    const waiting = writer.add(3);
    let closed = false;
    const closing = writer.close().then(() => (closed = true));
    await assert.rejects(writer.add(99), ClosedError);
    await assert.rejects(writer.addAndWait(99), ClosedError);
    for (let i = 0; i < 10 && !closed; i++) {
      for (const g of gates) g.resolve();
      await tick();
    }
    await waiting;
    await closing;
    assert.deepEqual(batches.flat(), [0, 1, 2, 3]);
    assert.equal(writer.stats.rejected, 2);
    assert.equal(writer.stats.pending, 0);
    assert.equal(closed, true);
  });

  it('close is idempotent and Symbol.asyncDispose closes', async () => {
    const batches: number[][] = [];
    {
      await using writer = new BatchWriter<number>((items) => void batches.push([...items]));
      await writer.add(1);
    }
    assert.deepEqual(batches, [[1]]);
    const writer = new BatchWriter<number>(() => undefined);
    const a = writer.close();
    assert.equal(writer.close(), a);
    await a;
  });

  it('close({ signal }) stops waiting without stopping the drain', async () => {
    const { gates, fn } = gated<number>();
    const writer = new BatchWriter<number>(fn);
    await writer.add(1);
    const reason = new Error('deadline');
    const controller = new AbortController();
    const closing = writer.close({ signal: controller.signal });
    controller.abort(reason);
    await assert.rejects(closing, (err) => err === reason);
    gates[0]!.resolve();
    await writer.close();
    assert.equal(writer.stats.written, 1);
  });
});

describe('BatchWriter observability and input', () => {
  it('publishes flush, retry and failed on sluice:batch:* to subscribers', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const seen: string[] = [];
    const handlers = {
      'sluice:batch:flush': (m: unknown) => seen.push(`flush ${(m as { attempt: number }).attempt}`),
      'sluice:batch:retry': (m: unknown) => seen.push(`retry ${(m as { delay: number }).delay}`),
      'sluice:batch:failed': (m: unknown) => seen.push(`error ${(m as { items: number[] }).items.length}`),
    };
    for (const [name, fn] of Object.entries(handlers)) subscribe(name, fn);
    try {
      const writer = new BatchWriter<number>(() => Promise.reject(new Error('no')), {
        maxItems: 1,
        retry: { attempts: 2, delayMs: 5, jitter: 'none' },
      });
      await writer.add(1);
      await tick();
      mock.timers.tick(5);
      await writer.close();
      assert.deepEqual(seen, ['flush 1', 'retry 5', 'flush 2', 'error 1']);
    } finally {
      for (const [name, fn] of Object.entries(handlers)) unsubscribe(name, fn);
      mock.timers.reset();
    }
  });

  it('rejects bad options with the documented message shape', async () => {
    const fn = () => undefined;
    assert.throws(() => new BatchWriter(undefined as never), {
      name: 'TypeError',
      message: 'Expected `flushFn` to be a function, got `undefined` (undefined)',
    });
    assert.throws(() => new BatchWriter(fn, { maxItems: 0 }), {
      name: 'RangeError',
      message: 'Expected `maxItems` to be a positive integer, got `0` (number)',
    });
    assert.throws(() => new BatchWriter(fn, { maxPending: -1 }), {
      name: 'RangeError',
      message: 'Expected `maxPending` to be a positive integer or Infinity, got `-1` (number)',
    });
    assert.throws(() => new BatchWriter(fn, { maxWaitMs: '10' as never }), {
      name: 'TypeError',
      message: 'Expected `maxWaitMs` to be a non-negative number or Infinity, got `"10"` (string)',
    });
    assert.throws(() => new BatchWriter(fn, { retry: { attempts: 0 } }), {
      message: 'Expected `retry.attempts` to be a positive integer or Infinity, got `0` (number)',
    });
    assert.throws(() => new BatchWriter(fn, { retry: { jitter: 'some' as never } }), {
      name: 'RangeError',
      message: "Expected `retry.jitter` to be one of 'full', 'none', got `\"some\"` (string)",
    });
    assert.throws(() => new BatchWriter(fn, { onError: 'log' as never }), {
      message: 'Expected `onError` to be a function or undefined, got `"log"` (string)',
    });
    const writer = new BatchWriter(fn);
    await assert.rejects(writer.add(1, { signal: {} as never }), {
      name: 'InvalidInputError',
      message: 'Expected `signal` to be an AbortSignal or undefined, got `{}` (object)',
    });
  });
});
