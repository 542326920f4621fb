import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, it } from 'node:test';
import { ClosedError, InvalidInputError, QueueFullError } from '../../src/errors.js';
import { EventBus } from '../../src/events/index.js';
import { captureReports, deferred } from '../helpers/async.js';

interface Events {
  'job.done': { id: number };
  'agent.updated': { name: string; status: string };
  tick: number;
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

class FakeClock {
  t = 0;
  now(): number {
    return this.t;
  }
}

describe('EventBus: options', () => {
  it('validates eagerly with the option name and value', () => {
    assert.throws(() => new EventBus({ maxConcurrentHandlers: 0 }), {
      name: 'RangeError',
      message: /`maxConcurrentHandlers`.*`0` \(number\)/,
    });
    assert.throws(() => new EventBus({ buffer: 1.5 }), /`buffer`/);
    assert.throws(() => new EventBus({ overflow: 'block' as never }), /`overflow`.*'wait'/);
    assert.throws(() => new EventBus({ history: -1 }), /`history`/);
    assert.throws(() => new EventBus({ dedupWindowMs: 'soon' }), /`dedupWindowMs`/);
    assert.throws(() => new EventBus({ clock: {} as never }), /`clock`/);
    const bus = new EventBus<Events>();
    assert.throws(() => bus.on('tick', 5 as never), /`handler`/);
    assert.throws(() => bus.on('tick', () => {}, { concurrency: 0 }), /`concurrency`/);
    assert.throws(() => bus.on('tick', () => {}, { buffer: 4, replay: 5 }), /`replay`.*buffer \(4\)/);
    assert.throws(() => bus.on(7 as never, () => {}), /`type`/);
  });

  it('rejects bad runtime input with InvalidInputError, never throws', async () => {
    const bus = new EventBus<Events>();
    await assert.rejects(bus.emit(3 as never, 1 as never), InvalidInputError);
    await assert.rejects(bus.emit('tick', 1, { signal: 'x' as never }), InvalidInputError);
    await assert.rejects(bus.emitBatch('tick', 'nope' as never), InvalidInputError);
    await assert.rejects(bus.once(1 as never), InvalidInputError);
  });
});

describe('EventBus: delivery', () => {
  it('delivers each event to every subscriber, in emit order, asynchronously', async () => {
    const bus = new EventBus<Events>();
    const a: number[] = [];
    const b: number[] = [];
    bus.on('tick', (n) => void a.push(n));
    bus.on('tick', async (n) => {
      await tick();
      b.push(n);
    });
    for (let i = 0; i < 50; i++) {
      const p = bus.emit('tick', i);
      assert.equal(a.length, i, 'no handler runs inside emit');
      await p;
    }
    await bus.close();
    assert.deepEqual(a, [...Array(50).keys()]);
    assert.deepEqual(b, [...Array(50).keys()]);
    assert.equal(bus.stats.delivered, 100);
  });

  it('passes the event record as the second argument; onAny gets the record', async () => {
    const bus = new EventBus<Events>();
    const seen: string[] = [];
    bus.on('job.done', (payload, event) => {
      assert.equal(event.payload, payload);
      seen.push(`${event.type}#${event.seq}`);
    });
    bus.onAny((event) => seen.push(`any:${event.type}`));
    await bus.emit('tick', 1);
    await bus.emit('job.done', { id: 1 });
    await bus.close();
    assert.deepEqual(seen.sort(), ['any:job.done', 'any:tick', 'job.done#2']);
  });

  it('a handler cannot rewrite the shared record', async () => {
    const bus = new EventBus<Events>();
    bus.on('tick', (_n, event) => {
      assert.throws(() => ((event as { type: string }).type = 'other'), TypeError);
    });
    await bus.emit('tick', 1);
    await bus.close();
    assert.equal(bus.history()[0]!.type, 'tick');
  });

  it('concurrency: 1 runs one handler at a time; concurrency n starts in order, n at once', async () => {
    const bus = new EventBus<Events>();
    let running = 0;
    let max = 0;
    const started: number[] = [];
    bus.on(
      'tick',
      async (n) => {
        started.push(n);
        max = Math.max(max, ++running);
        await tick();
        running--;
      },
      { concurrency: 3 },
    );
    for (let i = 0; i < 20; i++) await bus.emit('tick', i);
    await bus.close();
    assert.equal(max, 3);
    assert.deepEqual(started, [...Array(20).keys()]);
  });

  it('maxConcurrentHandlers bounds handlers across subscribers, and slots rotate between them', async () => {
    const bus = new EventBus<Events>({ maxConcurrentHandlers: 2 });
    let running = 0;
    let max = 0;
    const order: string[] = [];
    for (const name of ['a', 'b', 'c']) {
      bus.on(
        'tick',
        async (n) => {
          order.push(`${name}${n}`);
          max = Math.max(max, ++running);
          await tick();
          running--;
        },
        { concurrency: 4 },
      );
    }
    for (let i = 0; i < 10; i++) await bus.emit('tick', i);
    await bus.close();
    assert.equal(max, 2);
    assert.equal(order.length, 30);
    // No subscriber is starved: each has started work within the first six starts.
    for (const name of ['a', 'b', 'c'])
      assert.ok(
        order.slice(0, 6).some((s) => s.startsWith(name)),
        order.join(),
      );
  });

  it('a synchronous handler on 100k buffered events does not recurse', async () => {
    const bus = new EventBus<Events>({ buffer: 100_000 });
    let count = 0;
    bus.on('tick', () => {
      count++;
    });
    await bus.emitBatch(
      'tick',
      Array.from({ length: 100_000 }, (_, i) => i),
    );
    await bus.close();
    assert.equal(count, 100_000);
  });

  it('runs each handler in the async context of the emit', async () => {
    const als = new AsyncLocalStorage<string>();
    const bus = new EventBus<Events>();
    const seen: (string | undefined)[] = [];
    als.run('subscriber', () => bus.on('tick', () => void seen.push(als.getStore())));
    await als.run('first', () => bus.emit('tick', 1));
    await als.run('second', () => bus.emit('tick', 2));
    await bus.emitBatch('tick', [3]);
    await bus.close();
    assert.deepEqual(seen, ['first', 'second', undefined]);
  });

  it('a handler may emit, subscribe and unsubscribe re-entrantly', async () => {
    const bus = new EventBus<Events>();
    const seen: string[] = [];
    const sub = bus.on('tick', async (n) => {
      seen.push(`t${n}`);
      if (n < 3) await bus.emit('tick', n + 1);
      if (n === 3) {
        bus.on('job.done', ({ id }) => void seen.push(`j${id}`));
        await bus.emit('job.done', { id: n });
        sub.unsubscribe();
      }
    });
    const last = bus.once('job.done');
    await bus.emit('tick', 0);
    await last;
    await bus.close();
    assert.deepEqual(seen, ['t0', 't1', 't2', 't3', 'j3']);
    assert.equal(sub.disposed, true);
  });

  it('unsubscribing while an emit walks the list neither skips nor repeats others', async () => {
    const bus = new EventBus<Events>();
    const got: string[] = [];
    const onces = Array.from({ length: 5 }, () => bus.once('tick'));
    bus.on('tick', (n) => void got.push(`late${n}`));
    await bus.emit('tick', 1);
    await bus.emit('tick', 2);
    assert.deepEqual(await Promise.all(onces), [1, 1, 1, 1, 1]);
    assert.equal(bus.stats.subscribers, 1);
    await bus.close();
    assert.deepEqual(got, ['late1', 'late2']);
  });
});

describe('EventBus: errors', () => {
  it('reports every handler failure to onError and the channel, counts it, and goes on', async () => {
    const reports = captureReports('sluice:events:error');
    const errors: unknown[] = [];
    const bus = new EventBus<Events>({
      onError: (error, event, subscription) => {
        errors.push(error);
        assert.equal(event.type, 'tick');
        assert.equal(subscription, sub);
        throw new Error('onError itself fails');
      },
    });
    const ok: number[] = [];
    const sub = bus.on('tick', (n) => {
      if (n % 2 === 0) throw new Error(`sync ${n}`);
      return Promise.reject(new Error(`async ${n}`));
    });
    bus.on('tick', (n) => void ok.push(n));
    for (let i = 0; i < 4; i++) await bus.emit('tick', i);
    await bus.close();
    reports.stop();
    assert.deepEqual(ok, [0, 1, 2, 3]);
    assert.equal(errors.length, 4);
    assert.equal(sub.stats.failures, 4);
    assert.equal(bus.stats.failures, 4);
    assert.ok(reports.reports.some((r) => r.where === 'onError'));
    assert.equal(reports.reports.filter((r) => r.where.startsWith('handler')).length, 4);
  });

  it('emitAndWait rejects with an AggregateError of every failed handler', async () => {
    const bus = new EventBus<Events>();
    bus.on('tick', () => {
      throw new Error('one');
    });
    bus.on('tick', async () => {
      await tick();
      throw new Error('two');
    });
    let third = false;
    bus.on('tick', async () => {
      await tick();
      await tick();
      third = true;
    });
    const error = await bus.emitAndWait('tick', 1).then(
      () => assert.fail('should reject'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof AggregateError);
    assert.deepEqual(
      error.errors.map((e: Error) => e.message),
      ['one', 'two'],
    );
    assert.equal(third, true, 'settles only after every handler finished');
    await bus.emitAndWait('job.done', { id: 1 }); // no subscriber: resolves
    await bus.close();
  });

  it('a thenable whose then throws, or that settles twice, counts once', async () => {
    const bus = new EventBus<Events>();
    let calls = 0;
    const sub = bus.on('tick', (n) => {
      calls++;
      if (n === 0)
        return {
          then() {
            throw new Error('bad then');
          },
        };
      return {
        then(ok: () => void, fail: (e: unknown) => void) {
          ok();
          fail(new Error('late'));
          ok();
        },
      };
    });
    await bus.emitAndWait('tick', 1);
    await bus.emit('tick', 0);
    await bus.close();
    assert.equal(calls, 2);
    assert.equal(sub.stats.failures, 1);
  });
});

describe('EventBus: bounds and overflow', () => {
  it("'wait': emit waits for room, keeps per-subscriber order, and a fast subscriber is not held back", async () => {
    const bus = new EventBus<Events>({ buffer: 2 });
    const gate = deferred();
    const slow: number[] = [];
    const fast: number[] = [];
    const slowSub = bus.on('tick', async (n) => {
      await gate.promise;
      slow.push(n);
    });
    bus.on('tick', (n) => void fast.push(n), { buffer: 100 });
    const emits = Array.from({ length: 6 }, (_, i) => bus.emit('tick', i));
    await tick();
    assert.deepEqual(fast, [0, 1, 2, 3, 4, 5], 'the fast subscriber got everything');
    assert.ok(slowSub.stats.buffered <= 2, 'the slow buffer stays at its bound');
    assert.equal(slowSub.stats.waiting, 3);
    gate.resolve();
    await Promise.all(emits);
    await bus.close();
    assert.deepEqual(slow, [0, 1, 2, 3, 4, 5]);
  });

  it("'drop-oldest' and 'drop-newest' keep the bound and count drops", async () => {
    for (const overflow of ['drop-oldest', 'drop-newest'] as const) {
      const bus = new EventBus<Events>({ buffer: 3, overflow });
      const gate = deferred();
      const got: number[] = [];
      const sub = bus.on('tick', async (n) => {
        await gate.promise;
        got.push(n);
      });
      for (let i = 0; i < 10; i++) await bus.emit('tick', i);
      await tick();
      gate.resolve();
      await bus.close();
      // The first event was taken by the handler before the buffer filled.
      assert.deepEqual(got, overflow === 'drop-oldest' ? [0, 7, 8, 9] : [0, 1, 2, 3]);
      assert.equal(sub.stats.dropped, 6);
      assert.equal(bus.stats.dropped, 6);
    }
  });

  it("'error' rejects the emit with QueueFullError; subscribers with room still get it", async () => {
    const bus = new EventBus<Events>({ buffer: 1, overflow: 'error' });
    const gate = deferred();
    const other: number[] = [];
    bus.on('tick', () => gate.promise);
    bus.on('tick', (n) => void other.push(n), { buffer: 10 });
    await bus.emit('tick', 0); // taken at once
    await tick();
    await bus.emit('tick', 1); // buffered
    await assert.rejects(bus.emit('tick', 2), QueueFullError);
    gate.resolve();
    await bus.close();
    assert.deepEqual(other, [0, 1, 2]);
  });

  it('maxPendingEmits refuses one more waiting emit before any subscriber sees it', async () => {
    const bus = new EventBus<Events>({ buffer: 1, maxPendingEmits: 2 });
    const gate = deferred();
    const got: number[] = [];
    bus.on('tick', async (n) => {
      await gate.promise;
      got.push(n);
    });
    void bus.emit('tick', 0);
    await tick();
    void bus.emit('tick', 1); // buffered
    const w1 = bus.emit('tick', 2);
    const w2 = bus.emit('tick', 3);
    await assert.rejects(bus.emit('tick', 4), QueueFullError);
    assert.equal(bus.stats.waiting, 2);
    gate.resolve();
    await Promise.all([w1, w2]);
    await bus.close();
    assert.deepEqual(got, [0, 1, 2, 3]);
  });

  it('an aborted waiting emit is withdrawn from subscribers that have not taken it', async () => {
    const bus = new EventBus<Events>({ buffer: 1 });
    const gate = deferred();
    const got: number[] = [];
    bus.on('tick', async (n) => {
      await gate.promise;
      got.push(n);
    });
    void bus.emit('tick', 0);
    await tick();
    void bus.emit('tick', 1);
    const ac = new AbortController();
    const waiting = bus.emit('tick', 2, { signal: ac.signal });
    const after = bus.emit('tick', 3);
    ac.abort(new Error('stop'));
    await assert.rejects(waiting, /stop/);
    gate.resolve();
    await after;
    await bus.close();
    assert.deepEqual(got, [0, 1, 3]);
    assert.equal(bus.stats.waiting, 0);
  });
});

describe('EventBus: dedup, history, replay', () => {
  it('suppresses identical events inside the window, by canonical payload', async () => {
    const clock = new FakeClock();
    const bus = new EventBus<Events>({ dedupWindowMs: 1000, clock });
    const got: string[] = [];
    bus.on('agent.updated', ({ name, status }) => void got.push(`${name}:${status}`));
    await bus.emit('agent.updated', { name: 'a', status: 'idle' });
    await bus.emit('agent.updated', { status: 'idle', name: 'a' }); // same, other key order
    await bus.emit('agent.updated', { name: 'a', status: 'busy' });
    clock.t = 999;
    await bus.emit('agent.updated', { name: 'a', status: 'idle' });
    clock.t = 1000;
    await bus.emit('agent.updated', { name: 'a', status: 'idle' });
    await bus.close();
    assert.deepEqual(got, ['a:idle', 'a:busy', 'a:idle']);
    assert.equal(bus.stats.deduplicated, 2);
  });

  it('the dedup table stays bounded without timers, and reclaims expired keys as it goes', async () => {
    const clock = new FakeClock();
    const bus = new EventBus<Events>({ dedupWindowMs: 10, dedupMaxKeys: 100, clock });
    for (let i = 0; i < 1000; i++) await bus.emit('tick', i);
    assert.equal(bus.stats.dedupKeys, 100);
    clock.t = 100;
    for (let i = 0; i < 30; i++) await bus.emit('tick', 5000 + i);
    assert.ok(bus.stats.dedupKeys <= 100);
    await bus.close();
  });

  it('a dedupKey that throws or returns a non-string rejects that emit only', async () => {
    const bus = new EventBus<Events>({
      dedupWindowMs: 100,
      dedupKey: (_type, payload) => {
        if (payload === 1) throw new Error('no key');
        return (payload === 2 ? 2 : `k${payload as number}`) as string;
      },
    });
    await assert.rejects(bus.emit('tick', 1), InvalidInputError);
    await assert.rejects(bus.emit('tick', 2), InvalidInputError);
    await bus.emit('tick', 3);
    await bus.close();
  });

  it('history is a bounded ring, filterable by type, and a copy', async () => {
    const bus = new EventBus<Events>({ history: 3 });
    for (let i = 0; i < 5; i++) await bus.emit('tick', i);
    await bus.emit('job.done', { id: 9 });
    assert.deepEqual(
      bus.history().map((e) => e.payload),
      [3, 4, { id: 9 }],
    );
    assert.deepEqual(
      bus.history('tick').map((e) => e.payload),
      [3, 4],
    );
    const h = bus.history();
    h.length = 0;
    assert.equal(bus.history().length, 3);
    await bus.close();
  });

  it('replay delivers the latest n matching events, then live ones, with no gap or duplicate', async () => {
    const bus = new EventBus<Events>();
    for (let i = 0; i < 5; i++) await bus.emit('tick', i);
    const got: number[] = [];
    bus.on('tick', (n) => void got.push(n), { replay: 3 });
    await bus.emit('tick', 5);
    const it = bus.subscribe('tick', { replay: 2 });
    await bus.emit('tick', 6);
    const first = await Promise.all([it.next(), it.next(), it.next()]);
    await bus.close();
    assert.deepEqual(got, [2, 3, 4, 5, 6]);
    assert.deepEqual(
      first.map((r): number => r.value as number),
      [4, 5, 6],
    );
  });
});

describe('EventBus: replay and emitAndWait', () => {
  it('an emitAndWait in progress does not wait for a subscriber that joins later with replay', async () => {
    const bus = new EventBus<Events>();
    const gate = deferred();
    bus.on('tick', () => gate.promise);
    const waiting = bus.emitAndWait('tick', 1);
    await tick();
    const late = deferred();
    bus.on('tick', () => late.promise, { replay: 1 }); // replays event 1 and never finishes it
    await tick();
    gate.resolve();
    await waiting; // settles although the late subscriber still runs event 1
    late.resolve();
    await bus.close();
  });
});

describe('EventBus: subscribe, once', () => {
  it('subscribe iterates in order, with its own bounded buffer and backpressure', async () => {
    const bus = new EventBus<Events>();
    const iter = bus.subscribe('tick', { buffer: 2 });
    const emits = Array.from({ length: 5 }, (_, i) => bus.emit('tick', i));
    assert.equal(iter.stats.buffered, 2);
    assert.equal(iter.stats.waiting, 3);
    const got: number[] = [];
    for await (const n of iter) {
      got.push(n);
      if (n === 4) break;
    }
    await Promise.all(emits);
    assert.equal(iter.disposed, true, 'break unsubscribes');
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
    await bus.close();
  });

  it('an aborted iterator rejects its pending next with the reason; close ends iteration after the buffer', async () => {
    const bus = new EventBus<Events>();
    const ac = new AbortController();
    const iter = bus.subscribe('tick', { signal: ac.signal });
    const pending = iter.next();
    ac.abort(new Error('bye'));
    await assert.rejects(pending, /bye/);
    const iter2 = bus.subscribe('tick');
    await bus.emit('tick', 1);
    await bus.close();
    assert.deepEqual(await iter2.next(), { value: 1, done: false });
    assert.deepEqual(await iter2.next(), { value: undefined, done: true });
  });

  it('once resolves with the next event, rejects on abort or close, and leaves no subscriber', async () => {
    const bus = new EventBus<Events>();
    const next = bus.once('job.done');
    await bus.emit('job.done', { id: 1 });
    assert.deepEqual(await next, { id: 1 });
    const ac = new AbortController();
    const aborted = bus.once('job.done', { signal: ac.signal });
    ac.abort(new Error('no'));
    await assert.rejects(aborted, /no/);
    const closed = bus.once('job.done');
    assert.equal(bus.stats.subscribers, 1);
    await bus.close();
    await assert.rejects(closed, ClosedError);
    assert.equal(bus.stats.subscribers, 0);
  });
});

describe('EventBus: close', () => {
  it('refuses new emits, runs everything accepted, then resolves', async () => {
    const bus = new EventBus<Events>({ buffer: 2 });
    const got: number[] = [];
    bus.on('tick', async (n) => {
      await tick();
      got.push(n);
    });
    const emits = Array.from({ length: 6 }, (_, i) => bus.emit('tick', i));
    const closing = bus.close();
    await assert.rejects(bus.emit('tick', 99), ClosedError);
    await closing;
    await Promise.all(emits);
    assert.deepEqual(got, [0, 1, 2, 3, 4, 5]);
    assert.equal(bus.closed, true);
    await bus.close(); // idempotent
  });

  it('close({ signal }) bounds the wait: waiting emits reject with ClosedError, buffered events are dropped and counted', async () => {
    const bus = new EventBus<Events>({ buffer: 1 });
    let ran = 0;
    bus.on('tick', () => {
      ran++;
      return new Promise(() => {}); // never settles
    });
    void bus.emit('tick', 0);
    await tick();
    void bus.emit('tick', 1);
    const waiting = bus.emit('tick', 2);
    const ac = new AbortController();
    const closing = bus.close({ signal: ac.signal });
    ac.abort(new Error('deadline'));
    await assert.rejects(closing, /deadline/);
    await assert.rejects(waiting, ClosedError);
    assert.equal(ran, 1);
    assert.equal(bus.stats.dropped, 1);
    assert.equal(bus.stats.waiting, 0);
  });

  it('after close, subscriptions end: handlers at once, iterators once read', async () => {
    const bus = new EventBus<Events>();
    const iter = bus.subscribe('tick');
    const sub = bus.on('tick', () => undefined);
    await bus.emit('tick', 1);
    await bus.close();
    assert.equal(sub.disposed, true);
    assert.equal(iter.disposed, false, 'one event is still to be read');
    const got: number[] = [];
    for await (const n of iter) got.push(n);
    assert.deepEqual(got, [1]);
    assert.equal(iter.disposed, true);
    assert.equal(bus.stats.subscribers, 0);
    assert.equal(bus.stats.dropped, 0);
  });

  it('await using closes the bus', async () => {
    let ran = false;
    {
      await using bus = new EventBus<Events>();
      bus.on('tick', async () => {
        await tick();
        ran = true;
      });
      await bus.emit('tick', 1);
    }
    assert.equal(ran, true);
  });

  it('disposing a subscription drops its buffer (counted) and releases emits waiting for it', async () => {
    const bus = new EventBus<Events>({ buffer: 1 });
    const gate = deferred();
    let sub: ReturnType<typeof bus.on>;
    {
      using s = bus.on('tick', () => gate.promise);
      sub = s;
      void bus.emit('tick', 0);
      await tick();
      void bus.emit('tick', 1);
      const waiting = bus.emit('tick', 2);
      assert.equal(s.stats.waiting, 1);
      s[Symbol.dispose]();
      await waiting;
    }
    assert.equal(sub.disposed, true);
    assert.equal(sub.stats.dropped, 1);
    gate.resolve();
    await bus.close();
  });
});
