// How EventBus treats user code: handlers that are synchronous over huge backlogs, that throw,
// re-enter, mutate what they were given or never settle; dedupKey and onError that fail;
// foreign thenables; the async context handlers run in; and that no handler (and no other
// user code that could re-enter) ever runs inside an emit.
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, it } from 'node:test';
import { ClosedError, InvalidInputError, QueueFullError } from '../../src/errors.js';
import { EventBus } from '../../src/events/index.js';
import { captureReports, deferred } from '../helpers/async.js';

interface Events {
  tick: number;
  other: string;
  obj: { n: number; tags?: string[] };
  any: unknown;
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const N = 100_000;

describe('EventBus: synchronous handlers over large backlogs', () => {
  it('drains 100k events buffered behind a slow first one, with 100k emits waiting for room, without recursion', async () => {
    const bus = new EventBus<Events>({ buffer: N, maxPendingEmits: Infinity });
    const gate = deferred();
    let count = 0;
    let last = -1;
    bus.on('tick', (n) => {
      count++;
      assert.equal(n, last + 1);
      last = n;
      return n === 0 ? gate.promise : undefined;
    });
    await bus.emit('tick', 0);
    await tick();
    // N buffered, N more waiting for room: each handler call admits one waiting emit.
    const batch = bus.emitBatch(
      'tick',
      Array.from({ length: 2 * N }, (_, i) => i + 1),
    );
    assert.equal(bus.stats.buffered, N);
    assert.equal(bus.stats.waiting, N);
    gate.resolve();
    await batch;
    await bus.close();
    assert.equal(count, 2 * N + 1);
  });

  it('rotates the only bus slot between two synchronous subscribers over 100k events without recursion', async () => {
    const bus = new EventBus<Events>({ maxConcurrentHandlers: 1, buffer: N });
    const counts = [0, 0];
    bus.on('tick', () => void counts[0]!++);
    bus.on('tick', () => void counts[1]!++);
    await bus.emitBatch(
      'tick',
      Array.from({ length: N }, (_, i) => i),
    );
    await bus.close();
    assert.deepEqual(counts, [N, N]);
  });

  it('a synchronous handler that emits the next event itself, 100k times, does not recurse', async () => {
    const bus = new EventBus<Events>();
    let count = 0;
    bus.on('tick', (n) => {
      count++;
      if (n < N) void bus.emit('tick', n + 1);
    });
    await bus.emit('tick', 1);
    await bus.close();
    assert.equal(count, N);
  });

  it('an iterator reads 100k buffered events', async () => {
    const bus = new EventBus<Events>({ buffer: N });
    const iterator = bus.subscribe('tick');
    await bus.emitBatch(
      'tick',
      Array.from({ length: N }, (_, i) => i),
    );
    await bus.close();
    let sum = 0;
    for await (const n of iterator) sum += n;
    assert.equal(sum, (N * (N - 1)) / 2);
  });
});

describe('EventBus: handlers that throw or never settle', () => {
  it('counts and reports sync throws, rejections and non-Error throws; others go on; emitAndWait gets every one', async () => {
    const reports = captureReports('sluice:events:error');
    const seen: unknown[] = [];
    const bus = new EventBus<Events>({ onError: (error) => void seen.push(error) });
    const ok: number[] = [];
    bus.on('tick', (n) => {
      if (n === 0) throw undefined; // eslint-disable-line @typescript-eslint/only-throw-error
      if (n === 1) throw null; // eslint-disable-line @typescript-eslint/only-throw-error
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(n === 2 ? 'a string' : new Error('async'));
    });
    bus.on('tick', (n) => void ok.push(n));
    const results = await Promise.allSettled([0, 1, 2, 3].map((n) => bus.emitAndWait('tick', n)));
    await bus.close();
    reports.stop();
    assert.deepEqual(ok, [0, 1, 2, 3]);
    assert.equal(bus.stats.failures, 4);
    assert.deepEqual(seen.slice(0, 3), [undefined, null, 'a string']);
    assert.equal(reports.reports.length, 4);
    for (const [i, r] of results.entries()) {
      assert.equal(r.status, 'rejected');
      const errors = (r.reason as AggregateError).errors;
      assert.equal(errors.length, 1);
      assert.equal(errors[0], seen[i]);
    }
  });

  it("emitAndWait under overflow 'error' waits for the handlers that took the event, then rejects with an AggregateError", async () => {
    const bus = new EventBus<Events>({ overflow: 'error', buffer: 1 });
    const gate = deferred();
    bus.on('tick', () => gate.promise); // full after two events: refuses the third
    let slowDone = false;
    bus.on(
      'tick',
      async (n) => {
        if (n !== 2) return;
        await tick();
        await tick();
        slowDone = true;
      },
      { buffer: 10 },
    );
    await bus.emit('tick', 0);
    await tick();
    await bus.emit('tick', 1);
    const error: unknown = await bus.emitAndWait('tick', 2).catch((e: unknown) => e);
    assert.equal(slowDone, true, 'settled only after the handler that took the event finished');
    assert.ok(error instanceof AggregateError);
    assert.ok(error.errors.every((e) => e instanceof QueueFullError));
    gate.resolve();
    await bus.close();
  });

  it('onError that throws or rejects (also through a foreign thenable) is reported, never unhandled', async () => {
    const reports = captureReports('sluice:events:error');
    let calls = 0;
    const bus = new EventBus<Events>({
      // An onError that returns a promise (not the declared void) is exactly the case tested.
      // eslint-disable-next-line @typescript-eslint/no-misused-promises
      onError: () => {
        calls++;
        if (calls === 1) throw new Error('onError throws');
        if (calls === 2) return Promise.reject(new Error('onError rejects'));
        return {
          then(_ok: unknown, fail: (e: unknown) => void) {
            fail(new Error('thenable rejects'));
          },
        };
      },
    });
    bus.on('tick', () => {
      throw new Error('handler');
    });
    for (let i = 0; i < 3; i++) await bus.emit('tick', i);
    await bus.close();
    await tick();
    reports.stop();
    const where = reports.reports.map((r) => r.where);
    assert.equal(calls, 3);
    assert.equal(where.filter((w) => w === 'onError').length, 3, where.join());
  });

  it('a handler that never settles: close({ signal }) gives up, refuses waiting emits, drops the buffer', async () => {
    const bus = new EventBus<Events>({ buffer: 2 });
    let started = 0;
    const sub = bus.on('tick', () => {
      started++;
      return new Promise(() => {});
    });
    const fast: number[] = [];
    bus.on('tick', (n) => void fast.push(n), { buffer: 100 });
    await bus.emit('tick', 0);
    await tick();
    await bus.emit('tick', 1);
    await bus.emit('tick', 2);
    const waiting = bus.emit('tick', 3);
    const deadline = new AbortController();
    setTimeout(() => deadline.abort(new Error('deadline')), 20); // (AbortSignal.timeout is unref'd)
    const closing = bus.close({ signal: deadline.signal });
    await assert.rejects(bus.emit('tick', 4), ClosedError);
    await assert.rejects(closing, /deadline/);
    await assert.rejects(waiting, ClosedError);
    assert.equal(started, 1);
    assert.equal(sub.disposed, true);
    assert.equal(sub.stats.dropped, 2);
    assert.deepEqual(fast, [0, 1, 2, 3], 'the other subscriber had taken event 3 and ran it');
    assert.equal(bus.stats.running, 1, 'the stuck handler is left to finish on its own');
  });
});

describe('EventBus: foreign thenables', () => {
  it('a handler thenable that throws from then, settles twice, synchronously or never, counts once (or stays running)', async () => {
    const bus = new EventBus<Events>({ maxConcurrentHandlers: 10 });
    const kinds = ['then throws', 'twice', 'sync ok', 'getter throws', 'never'] as const;
    const sub = bus.on(
      'other',
      (kind) => {
        switch (kind as (typeof kinds)[number]) {
          case 'then throws':
            return {
              then() {
                throw new Error('bad then');
              },
            };
          case 'twice':
            return {
              then(ok: () => void, fail: (e: unknown) => void) {
                fail(new Error('first'));
                ok();
                fail(new Error('third'));
              },
            };
          case 'sync ok':
            return { then: (ok: () => void) => ok() };
          case 'getter throws':
            return Object.defineProperty({}, 'then', {
              get() {
                throw new Error('then getter');
              },
            });
          case 'never':
            return { then() {} };
        }
      },
      { concurrency: 5 },
    );
    for (const kind of kinds) await bus.emit('other', kind);
    await tick();
    await tick();
    assert.equal(sub.stats.delivered, 5);
    assert.equal(sub.stats.failures, 2, 'then throws, twice (first settle wins)');
    assert.equal(sub.stats.running, 1, 'the thenable that never calls back');
  });

  it('a payload whose then getter emits runs outside the fan-out: every subscriber still gets its own event', async () => {
    const bus = new EventBus<Events>();
    let inside = false;
    const log: string[] = [];
    let nested = false;
    const payload = {
      get then() {
        log.push(`then read inside emit: ${inside}`);
        if (!nested) {
          nested = true;
          void bus.emit('tick', 99);
        }
        return undefined;
      },
    };
    const once = bus.once('any');
    bus.on('any', (_p, e) => void log.push(`any#${e.seq}:${e.type}`));
    bus.on('tick', (n, e) => void log.push(`tick#${e.seq}:${n}`));
    inside = true;
    const emitted = bus.emit('any', payload);
    inside = false;
    await emitted;
    assert.equal(await once, payload);
    await bus.close();
    assert.deepEqual(log.sort(), ['any#1:any', 'then read inside emit: false', 'tick#2:99']);
  });
});

describe('EventBus: re-entrant handlers', () => {
  it('a handler may emit, emitAndWait another type, subscribe, unsubscribe itself and close the bus', async () => {
    const bus = new EventBus<Events>();
    const log: string[] = [];
    const self = bus.on('tick', async (n) => {
      log.push(`tick ${n}`);
      if (n === 0) {
        bus.on('other', (s) => void log.push(`late ${s}`));
        await bus.emitAndWait('other', 'x');
        await bus.emit('tick', 1);
        await bus.emit('tick', 2);
        self.unsubscribe(); // drops tick 1 and 2, already buffered
        void bus.close(); // from inside a running handler: resolves after it returns
      }
    });
    bus.on('other', (s) => void log.push(`early ${s}`));
    await bus.emitAndWait('tick', 0);
    await bus.close();
    assert.deepEqual(log, ['tick 0', 'early x', 'late x']);
    assert.equal(self.stats.dropped, 2);
    assert.equal(bus.closed, true);
  });

  it('a handler that unsubscribes another subscriber drops only its buffer; the rest neither skip nor repeat', async () => {
    const bus = new EventBus<Events>();
    const got: string[] = [];
    const subs = Array.from({ length: 5 }, (_, i) =>
      bus.on('tick', (n) => {
        got.push(`${i}:${n}`);
        if (i === 0 && n === 1) subs[2]!.unsubscribe();
      }),
    );
    await bus.emit('tick', 1);
    await bus.emit('tick', 2);
    await bus.close();
    // Subscriber 2 had event 1 buffered when it was unsubscribed: dropped, counted.
    assert.deepEqual(got.sort(), ['0:1', '0:2', '1:1', '1:2', '3:1', '3:2', '4:1', '4:2']);
    assert.equal(subs[2]!.stats.dropped, 1);
  });
});

describe('EventBus: mutation of what user code was handed', () => {
  it('mutating the emitBatch array after the call or the history array changes nothing', async () => {
    const bus = new EventBus<Events>({ history: 10 });
    const got: number[] = [];
    bus.on('tick', (n) => void got.push(n));
    const payloads = [1, 2, 3];
    const batch = bus.emitBatch('tick', payloads);
    payloads.length = 0;
    payloads.push(9);
    await batch;
    const history = bus.history();
    history.reverse().pop();
    await bus.close();
    assert.deepEqual(got, [1, 2, 3]);
    assert.deepEqual(
      bus.history().map((e) => e.payload),
      [1, 2, 3],
    );
  });

  it('a handler that mutates the shared payload is seen by later subscribers (documented), never by dedup of past events', async () => {
    const bus = new EventBus<Events>({ dedupWindowMs: 1000 });
    const seen: number[] = [];
    bus.on('obj', (p) => {
      p.n = 100;
    });
    bus.on('obj', (p) => void seen.push(p.n));
    const payload = { n: 1 };
    await bus.emit('obj', payload);
    await tick();
    await bus.emit('obj', { n: 1 }); // the key was taken at emit time: a duplicate
    await bus.close();
    assert.deepEqual(seen, [100]);
    assert.equal(bus.stats.deduplicated, 1);
  });
});

describe('EventBus: dedup keys from user code', () => {
  it('a throwing dedupKey, a throwing toJSON or getter, or a cyclic payload reject that emit only, never throw', async () => {
    const bus = new EventBus<Events>({ dedupWindowMs: 100 });
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    const bad = [
      { toJSON: () => assert.fail('no') },
      Object.defineProperty({}, 'x', {
        enumerable: true,
        get() {
          throw new Error('getter');
        },
      }),
      cyclic,
    ];
    for (const payload of bad) {
      let p: Promise<void> | undefined;
      assert.doesNotThrow(() => (p = bus.emit('any', payload)));
      await assert.rejects(p!, InvalidInputError);
    }
    await bus.emit('any', { fine: true });
    await bus.close();
    assert.equal(bus.stats.emitted, 1);

    const custom = new EventBus<Events>({
      dedupWindowMs: 100,
      dedupKey: () => {
        throw undefined; // eslint-disable-line @typescript-eslint/only-throw-error
      },
    });
    await assert.rejects(custom.emit('tick', 1), InvalidInputError);
    await custom.close();
  });

  it('an emit refused by maxPendingEmits is not remembered as seen: a retry is delivered', async () => {
    const bus = new EventBus<Events>({ buffer: 1, maxPendingEmits: 1, dedupWindowMs: 1000 });
    const gate = deferred();
    const got: number[] = [];
    bus.on('tick', async (n) => {
      got.push(n);
      await gate.promise;
    });
    await bus.emit('tick', 0);
    await tick();
    await bus.emit('tick', 1); // buffered
    const waiting = bus.emit('tick', 2); // waits for room
    await assert.rejects(bus.emit('tick', 3), QueueFullError);
    gate.resolve();
    await waiting;
    await bus.emit('tick', 3); // the retry
    await bus.close();
    assert.deepEqual(got, [0, 1, 2, 3]);
  });
});

describe('EventBus: async context and Zalgo', () => {
  it('each handler runs in the context of its emit, also when admitted from waiting or woken by another subscriber', async () => {
    const als = new AsyncLocalStorage<string>();
    const bus = new EventBus<Events>({ buffer: 1, maxConcurrentHandlers: 1 });
    const gate = deferred();
    const seen: string[] = [];
    bus.on('tick', async (n) => {
      seen.push(`a${n}:${als.getStore()}`);
      if (n === 0) await gate.promise;
    });
    bus.on('tick', (n) => void seen.push(`b${n}:${als.getStore()}`), { concurrency: 2 });
    const emits = [0, 1, 2, 3].map((n) => als.run(`emit${n}`, () => bus.emit('tick', n)));
    als.run('releaser', () => gate.resolve());
    await Promise.all(emits);
    await bus.close();
    for (const entry of seen) {
      const [, n, store] = /^[ab](\d):(.*)$/.exec(entry)!;
      assert.equal(store, `emit${n}`, entry);
    }
    assert.equal(seen.length, 8);
  });

  it('no handler runs inside emit, emitBatch, emitAndWait, on (with replay) or subscribe', async () => {
    const bus = new EventBus<Events>({ maxConcurrentHandlers: 2 });
    let inside = false;
    const violations: string[] = [];
    const handler = (label: string) => () => {
      if (inside) violations.push(label);
    };
    const call = <T>(fn: () => T): T => {
      inside = true;
      try {
        return fn();
      } finally {
        inside = false;
      }
    };
    call(() => bus.on('tick', handler('first')));
    await call(() => bus.emit('tick', 1));
    await call(() => bus.emitBatch('tick', [2, 3]));
    await call(() => bus.emitAndWait('tick', 4));
    call(() => bus.on('tick', handler('replayed'), { replay: 3 }));
    call(() => bus.onAny(handler('any'), { replay: 2 }));
    // A running synchronous handler emits: the subscribers it wakes start after it returns.
    bus.on('other', () => call(() => void bus.emit('tick', 5)));
    await call(() => bus.emit('other', 'go'));
    await bus.close();
    assert.deepEqual(violations, []);
  });
});
