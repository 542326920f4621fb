// Throttle: client-side spacing under a rate, and the shared pause on 429 / 503. Fake clocks
// (mocked setTimeout + Date) everywhere except the loopback-server tests of fetch().
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { ClosedError, InvalidInputError, QueueFullError } from '../../src/errors.js';
import { MemoryStore, Throttle, rateLimitedPause, type RateStore } from '../../src/rate/index.js';
import { captureReports } from '../helpers/async.js';

/** Mocked setTimeout and Date, and a clock reading the mocked Date. */
function fakeTime(t: TestContext, start = 1_000_000) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: start });
  const clock = { now: () => Date.now() };
  const flush = async () => {
    for (let i = 0; i < 6; i++) await Promise.resolve();
  };
  /** Advances `ms` one millisecond at a time, letting started calls run after each step. */
  const advance = async (ms: number) => {
    for (let i = 0; i < ms; i++) {
      t.mock.timers.tick(1);
      await flush();
    }
  };
  return { clock, flush, advance };
}

const limited = (status: number, headers: Record<string, string>) =>
  new Response('slow down', { status, headers });

describe('Throttle: spacing', () => {
  it('never starts more than limit + burst calls in any window, in FIFO order, losing none (property)', async (t) => {
    const { clock, flush, advance } = fakeTime(t);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 5, max: 40 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 30 }),
        async (limit, windowMs, burst, gaps) => {
          const throttle = new Throttle({ limit, window: windowMs, burst, clock });
          const starts: number[] = [];
          const order: number[] = [];
          const done: Promise<unknown>[] = [];
          for (const [i, gap] of gaps.entries()) {
            await advance(gap);
            done.push(
              throttle.run(() => {
                starts.push(clock.now());
                order.push(i);
              }),
            );
            await flush(); // a call allowed now starts now, before the clock moves
          }
          const cap = gaps.length * Math.ceil(windowMs / limit) + windowMs + 10;
          for (let k = 0; k < cap && starts.length < gaps.length; k++) await advance(1);
          await flush();
          assert.equal(starts.length, gaps.length, 'every call started');
          assert.deepEqual(
            order,
            gaps.map((_, i) => i),
            'FIFO',
          );
          for (const s of starts) {
            const inWindow = starts.filter((x) => x >= s && x < s + windowMs).length;
            assert.ok(inWindow <= limit + burst, `${inWindow} starts in [${s}, ${s + windowMs})`);
          }
          await Promise.all(done);
          await throttle.close();
        },
      ),
      { numRuns: 60 },
    );
  });

  it('fn starts asynchronously, in the AsyncLocalStorage context of its run call, fast path or queued', async (t) => {
    const { clock, advance } = fakeTime(t);
    const als = new AsyncLocalStorage<string>();
    const throttle = new Throttle({ limit: 1, window: 10, burst: 0, clock });
    const seen: (string | undefined)[] = [];
    const a = als.run('a', () => throttle.run(() => seen.push(als.getStore())));
    const b = als.run('b', () => throttle.run(() => seen.push(als.getStore())));
    assert.deepEqual(seen, [], 'nothing starts inside run');
    await advance(10);
    await Promise.all([a, b]);
    assert.deepEqual(seen, ['a', 'b']);
  });

  it('accepts sync, throwing, non-promise and re-entrant fns; bad input rejects, never throws', async (t) => {
    const { clock, advance } = fakeTime(t);
    const throttle = new Throttle({ limit: 1, window: 10, burst: 0, clock });
    const boom = new Error('sync throw');
    const inner: Promise<number>[] = [];
    const results = Promise.allSettled([
      throttle.run(() => 1),
      throttle.run(() => {
        throw boom;
      }),
      throttle.run(() => {
        inner.push(throttle.run(() => 3));
        return 2;
      }),
    ]);
    await advance(40);
    const [one, two, three] = await results;
    assert.deepEqual(one, { status: 'fulfilled', value: 1 });
    assert.deepEqual(two, { status: 'rejected', reason: boom });
    assert.deepEqual(three, { status: 'fulfilled', value: 2 });
    assert.equal(await inner[0], 3);
    await assert.rejects(throttle.run(42 as never), InvalidInputError);
    await assert.rejects(
      throttle.run(() => 1, { signal: 'x' } as never),
      InvalidInputError,
    );
  });

  it('releases 20k calls queued behind a pause in one loop (no recursion per item)', async (t) => {
    const { clock, advance } = fakeTime(t);
    const throttle = new Throttle({ limit: 100_000, window: 1000, clock, maxQueue: Infinity });
    throttle.pause(5);
    const calls = Array.from({ length: 20_000 }, (_, i) => throttle.run(() => i));
    assert.equal(throttle.stats.queued, 20_000);
    await advance(5);
    const values = await Promise.all(calls);
    assert.equal(values[19_999], 19_999);
    assert.equal(throttle.stats.started, 20_000);
  });

  it('decides through an asynchronous store (one round trip per start), in order', async (t) => {
    const { clock, flush, advance } = fakeTime(t);
    const memory = new MemoryStore();
    const store: RateStore = {
      consume: (key, policy, cost, now) => memory.consume(key, policy, cost, now).then((d) => d),
      peek: (key, policy, now) => memory.peek(key, policy, now),
      reset: (key, policy) => memory.reset(key, policy),
    };
    const throttle = new Throttle({ limit: 2, window: 20, burst: 0, clock, store });
    const starts: number[] = [];
    const calls = Array.from({ length: 4 }, () => throttle.run(() => starts.push(clock.now())));
    await flush();
    await advance(40);
    await Promise.all(calls);
    const t0 = starts[0]!;
    assert.deepEqual(
      starts.map((s) => s - t0),
      [0, 10, 20, 30],
    );
  });
});

describe('Throttle: pause on a rate-limited answer', () => {
  const cases: [string, (now: number) => Response, number][] = [
    ['Retry-After delta-seconds', () => limited(429, { 'retry-after': '  3 ' }), 3000],
    [
      'Retry-After HTTP-date',
      (now) => limited(429, { 'retry-after': new Date(now + 4000).toUTCString() }),
      4000,
    ],
    [
      'Retry-After HTTP-date against the server Date header (skewed server clock)',
      (now) =>
        limited(503, {
          'retry-after': new Date(now + 3_600_000 + 2000).toUTCString(),
          date: new Date(now + 3_600_000).toUTCString(),
        }),
      2000,
    ],
    ['RateLimit t', () => limited(429, { ratelimit: '"default";r=0;t=5' }), 5000],
    ['garbage Retry-After on a 429 falls back to 1 s', () => limited(429, { 'retry-after': '-5' }), 1000],
  ];
  for (const [label, make, pauseMs] of cases) {
    it(`${label}: every caller pauses ${pauseMs} ms, then resumes`, async (t) => {
      const { clock, flush, advance } = fakeTime(t, 1_700_000_000_000);
      const throttle = new Throttle({ limit: 100, window: 1000, clock });
      const starts: number[] = [];
      const first = await throttle.run(() => make(Date.now()));
      assert.equal(first.status === 429 || first.status === 503, true, 'returned to its caller');
      const t0 = clock.now();
      assert.equal(throttle.stats.pauses, 1);
      assert.equal(throttle.stats.pauseRemainingMs, pauseMs);
      const queued = Array.from({ length: 3 }, () => throttle.run(() => starts.push(clock.now() - t0)));
      await advance(pauseMs - 1);
      const late = throttle.run(() => starts.push(clock.now() - t0));
      await flush();
      assert.deepEqual(starts, [], 'nobody started during the pause, queued or new');
      await advance(1);
      await Promise.all([...queued, late]);
      assert.deepEqual(starts, [pauseMs, pauseMs, pauseMs, pauseMs]);
      assert.equal(throttle.stats.pausedUntil, 0);
    });
  }

  it('clamps absurd pauses to maxPauseMs and ignores NaN, negative and non-number answers', async (t) => {
    const { clock } = fakeTime(t);
    const throttle = new Throttle({ limit: 100, window: 1000, clock, maxPauseMs: 60_000 });
    await throttle.run(() => limited(429, { 'retry-after': '99999999999' }));
    assert.equal(throttle.stats.pauseRemainingMs, 60_000);

    const answers: unknown[] = [NaN, -1, '5', null, {}];
    for (const answer of answers) {
      const quiet = new Throttle({ limit: 100, window: 1000, clock, isRateLimited: () => answer as number });
      await quiet.run(() => 1);
      assert.equal(quiet.stats.pauses, 0, `answer ${String(answer)}`);
      assert.equal(quiet.stats.limited, 0);
    }
  });

  it('a throwing isRateLimited is reported and treated as not limited', async (t) => {
    const { clock } = fakeTime(t);
    const boom = new Error('detector bug');
    const throttle = new Throttle({
      limit: 100,
      window: 1000,
      clock,
      isRateLimited: () => {
        throw boom;
      },
    });
    const { reports, stop } = captureReports('sluice:rate:error');
    try {
      assert.equal(await throttle.run(() => 7), 7);
    } finally {
      stop();
    }
    assert.equal(reports.length, 1);
    assert.equal(reports[0]!.error, boom);
    assert.equal(throttle.stats.pauses, 0);
  });

  it('a pause beyond 2^31−1 ms neither fires early nor never (maxPauseMs: Infinity)', async (t) => {
    const { clock, flush } = fakeTime(t);
    const throttle = new Throttle({ limit: 10, window: 1000, clock, maxPauseMs: Infinity });
    const long = 2 ** 31 + 5000;
    throttle.pause(long);
    let started = false;
    const call = throttle.run(() => (started = true));
    t.mock.timers.tick(2 ** 31 - 1);
    await flush();
    assert.equal(started, false, 'Node would fire an over-long setTimeout after 1 ms');
    t.mock.timers.tick(long - (2 ** 31 - 1));
    await flush();
    await call;
    assert.equal(started, true);
  });

  it('publishes each pause on sluice:rate:throttle-pause', async (t) => {
    const { clock } = fakeTime(t);
    const { subscribe, unsubscribe } = await import('node:diagnostics_channel');
    const seen: { ms: number; name: string }[] = [];
    const listener = (m: unknown) => void seen.push(m as { ms: number; name: string });
    subscribe('sluice:rate:throttle-pause', listener);
    try {
      const throttle = new Throttle({ limit: 10, window: 1000, clock, name: 'api' });
      await throttle.run(() => limited(429, { 'retry-after': '2' }));
    } finally {
      unsubscribe('sluice:rate:throttle-pause', listener);
    }
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.ms, 2000);
    assert.equal(seen[0]!.name, 'api');
  });
});

describe('Throttle: bounds, cancellation, shutdown', () => {
  it('an aborted wait rejects with signal.reason, leaves the queue and spends no quota', async (t) => {
    const { clock, flush, advance } = fakeTime(t);
    const throttle = new Throttle({ limit: 1, window: 100, burst: 0, clock });
    await throttle.run(() => 0); // spends the quota until +100
    const controllers = Array.from({ length: 1000 }, () => new AbortController());
    const waits = controllers.map((c) => throttle.run(() => 'never', { signal: c.signal }));
    assert.equal(throttle.stats.queued, 1000);
    const reason = new Error('gave up');
    for (const c of controllers) c.abort(reason);
    for (const w of waits) await assert.rejects(w, (e) => e === reason);
    assert.equal(throttle.stats.queued, 0);
    assert.equal(throttle.stats.aborted, 1000);
    assert.equal(throttle.stats.started, 1);
    await advance(100);
    let started = false;
    const next = throttle.run(() => (started = true));
    await flush();
    assert.equal(started, true, 'the aborted waits spent nothing: the next call starts on time');
    await next;
    const rejectsAtOnce = throttle.run(() => 1, { signal: AbortSignal.abort(reason) });
    await assert.rejects(rejectsAtOnce, (e) => e === reason);
  });

  it('rejects with QueueFullError beyond maxQueue', async (t) => {
    const { clock, advance } = fakeTime(t);
    const throttle = new Throttle({ limit: 1, window: 10, burst: 0, clock, maxQueue: 2 });
    const ok = [throttle.run(() => 1), throttle.run(() => 2), throttle.run(() => 3)];
    await assert.rejects(
      throttle.run(() => 4),
      QueueFullError,
    );
    assert.equal(throttle.stats.rejected, 1);
    await advance(30);
    assert.deepEqual(await Promise.all(ok), [1, 2, 3]);
  });

  it('close rejects waiting calls with ClosedError, resolves when running calls finish, refuses new ones', async (t) => {
    const { clock, flush } = fakeTime(t);
    const throttle = new Throttle({ limit: 1, window: 1000, burst: 0, clock });
    let finish!: () => void;
    const running = throttle.run(() => new Promise<string>((r) => (finish = () => r('done'))));
    const waiting = throttle.run(() => 'never');
    await flush();
    let closed = false;
    const closing = throttle.close().then(() => (closed = true));
    await assert.rejects(waiting, ClosedError);
    await assert.rejects(
      throttle.run(() => 1),
      ClosedError,
    );
    await flush();
    assert.equal(closed, false, 'waits for the running call');
    finish();
    assert.equal(await running, 'done');
    await closing;
    assert.equal(closed, true);
    await throttle[Symbol.asyncDispose]();
  });

  it('validates its options with the DESIGN message shape', () => {
    assert.throws(() => new Throttle({ limit: 0, window: 1000 }), RangeError);
    assert.throws(
      () => new Throttle({ limit: 1, window: 1000, maxQueue: -1 }),
      /Expected `maxQueue` to be a non-negative integer or Infinity, got `-1` \(number\)/,
    );
    assert.throws(() => new Throttle({ limit: 1, window: 1000, maxPauseMs: NaN }), TypeError);
    assert.throws(() => new Throttle({ policy: '5/1s', burst: 2 }), TypeError);
    assert.throws(() => new Throttle({ limit: 1, window: 1000, isRateLimited: 3 as never }), TypeError);
  });
});

describe('rateLimitedPause', () => {
  it('reads Retry-After, RateLimit and ignores garbage', () => {
    const now = Date.parse('Sun, 06 Nov 1994 08:49:37 GMT');
    const r = (status: number, h: Record<string, string>) => rateLimitedPause(limited(status, h), now);
    assert.equal(r(429, { 'retry-after': ' 120 ' }), 120_000);
    assert.equal(r(429, { 'retry-after': 'Sun, 06 Nov 1994 08:49:47 GMT' }), 10_000);
    assert.equal(r(429, { 'retry-after': 'Sunday, 06-Nov-94 08:49:47 GMT' }), 10_000);
    assert.equal(r(429, { 'retry-after': 'Sun Nov  6 08:49:47 1994' }), 10_000);
    assert.equal(r(429, { 'retry-after': 'Sun, 06 Nov 1994 08:40:00 GMT' }), 0, 'a date in the past');
    assert.equal(r(429, { 'retry-after': '1e9' }), 1000, 'garbage → the 429 default');
    assert.equal(r(429, { 'retry-after': '5', ratelimit: '"d";r=0;t=9' }), 5000, 'Retry-After first');
    assert.equal(r(429, { ratelimit: '"a";r=4;t=2, "b";r=0;t=12' }), 12_000, 'the exhausted item');
    assert.equal(r(429, { ratelimit: 'limit=10, remaining=0, reset=7' }), 7000, 'draft-07 form');
    assert.equal(r(503, {}), undefined, 'a bare 503 is an outage, not a rate limit');
    assert.equal(r(200, { 'retry-after': '5' }), undefined);
    assert.equal(rateLimitedPause({ status: 429 }), undefined);
    assert.equal(rateLimitedPause('429'), undefined);
  });
});

describe('Throttle.fetch against a loopback server', () => {
  async function serve(
    handler: (req: IncomingMessage, res: ServerResponse) => void,
  ): Promise<{ server: Server; url: string }> {
    const server = createServer(handler);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
  }
  const stop = async (server: Server) => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };

  it('pauses every caller on 429 + Retry-After, retries after the pause, frees the limited body', async () => {
    let n = 0;
    const arrivals: number[] = [];
    const { server, url } = await serve((_req, res) => {
      arrivals.push(performance.now());
      if (++n === 1) {
        res.writeHead(429, { 'retry-after': '1', 'content-type': 'text/plain' });
        res.end('x'.repeat(64 * 1024)); // a body the client must consume or cancel
      } else res.end('ok');
    });
    // Retry-After: 1 s, clamped to 60 ms to keep the test fast (the clamp is part of the contract).
    const throttle = new Throttle({ limit: 100, window: 1000, maxPauseMs: 60 });
    try {
      const first = throttle.fetch(url);
      while (throttle.stats.pauses === 0) await new Promise((r) => setTimeout(r, 2));
      // The 429 has arrived and paused the throttle: the retry and the others must wait.
      const others = Array.from({ length: 4 }, () => throttle.fetch(url));
      const all = await Promise.all([first, ...others]);
      for (const res of all) {
        assert.equal(res.status, 200);
        assert.equal(await res.text(), 'ok');
      }
      assert.equal(n, 6, 'one 429, its retry, four others');
      for (const at of arrivals.slice(1)) {
        assert.ok(at - arrivals[0]! >= 55, `a request ${at - arrivals[0]!} ms after the 429`);
      }
      assert.equal(throttle.stats.retried, 1);
      assert.equal(throttle.stats.pauses, 1);
    } finally {
      await throttle.close();
      await stop(server);
    }
  });

  it('returns the 429 once retries are spent, and honours init.signal while paused', async () => {
    let n = 0;
    const { server, url } = await serve((_req, res) => {
      n++;
      res.writeHead(429, { 'retry-after': '1' }).end('no');
    });
    const throttle = new Throttle({ limit: 100, window: 1000, maxPauseMs: 20, retries: 1 });
    try {
      const res = await throttle.fetch(url);
      assert.equal(res.status, 429);
      assert.equal(await res.text(), 'no', 'the returned response keeps its body');
      assert.equal(n, 2, 'first try and one retry');
      const reason = new Error('caller gone');
      const controller = new AbortController();
      const pending = throttle.fetch(url, { signal: controller.signal });
      controller.abort(reason);
      await assert.rejects(pending, (e) => e === reason);
      assert.equal(throttle.stats.queued, 0);
    } finally {
      await throttle.close();
      await stop(server);
    }
  });

  it('does not retry a request whose body is a one-shot stream', async () => {
    let n = 0;
    const { server, url } = await serve((req, res) => {
      n++;
      req.resume();
      req.on('end', () => {
        res.writeHead(429, { 'retry-after': '1' }).end();
      });
    });
    const throttle = new Throttle({ limit: 100, window: 1000, maxPauseMs: 10 });
    try {
      const body = new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode('payload'));
          c.close();
        },
      });
      const res = await throttle.fetch(url, { method: 'POST', body, duplex: 'half' });
      assert.equal(res.status, 429);
      assert.equal(n, 1);
      await res.body?.cancel();
    } finally {
      await throttle.close();
      await stop(server);
    }
  });
});

describe('rateLimitedPause: HTTP-dates are GMT whatever the local zone', () => {
  it('reads an asctime Retry-After as GMT under TZ=America/New_York and Asia/Tokyo', () => {
    const before = process.env['TZ'];
    const now = Date.UTC(1994, 10, 6, 8, 49, 0);
    try {
      for (const tz of ['America/New_York', 'Asia/Tokyo', 'UTC']) {
        process.env['TZ'] = tz;
        for (const value of [
          'Sun Nov  6 08:49:37 1994',
          'Sunday, 06-Nov-94 08:49:37 GMT',
          'Sun, 06 Nov 1994 08:49:37 GMT',
        ]) {
          const res = new Response(null, { status: 429, headers: { 'retry-after': value } });
          assert.equal(rateLimitedPause(res, now), 37_000, `${tz}: ${value}`);
        }
      }
    } finally {
      if (before === undefined) delete process.env['TZ'];
      else process.env['TZ'] = before;
    }
  });
});

describe('Throttle: an async store decision that outlives its last waiter', () => {
  it('a denial that arrives after the last waiter aborted arms no timer', async () => {
    const memory = new MemoryStore();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const store: RateStore = {
      consume: async (key, policy, cost, now) => {
        await gate;
        return memory.consume(key, policy, cost, now);
      },
      peek: (key, policy, now) => memory.peek(key, policy, now),
      reset: (key, policy) => memory.reset(key, policy),
    };
    const throttle = new Throttle({ limit: 1, window: '1h', burst: 0, store });
    // Spend the quota first, so the next decision is a denial.
    release();
    await throttle.run(() => 'first');
    const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timeouts();
    const controller = new AbortController();
    const waiting = throttle.run(() => 'second', { signal: controller.signal });
    controller.abort(new Error('gone'));
    await assert.rejects(waiting, /gone/);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(throttle.stats.queued, 0);
    assert.equal(timeouts(), before, 'no timer holds the process for the hour of retryAfterMs');
    await throttle.close();
  });
});
