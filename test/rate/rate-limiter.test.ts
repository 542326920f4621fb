import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { ClosedError, InvalidInputError } from '../../src/errors.js';
import { MemoryStore, RateLimiter, Tiers, type RateDecision, type RateStore } from '../../src/rate/index.js';
import { captureReports, deferred } from '../helpers/async.js';

function fakeClock(start = 0) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

/** A store that fails in a chosen way on every call. */
function failingStore(how: 'throw' | 'reject' | 'hang'): RateStore & { calls: number } {
  const store = {
    calls: 0,
    consume(): Promise<RateDecision> {
      store.calls++;
      if (how === 'throw') throw new Error('sync boom');
      if (how === 'reject') return Promise.reject(new Error('connection refused'));
      return new Promise<RateDecision>(() => undefined);
    },
    peek(): Promise<RateDecision> {
      return store.consume();
    },
    reset(): Promise<void> {
      return Promise.reject(new Error('down'));
    },
  };
  return store;
}

describe('RateLimiter', () => {
  it('accepts a policy string or limit + window, and names itself after the policy', async () => {
    const a = new RateLimiter({ policy: '5/1m' });
    const b = new RateLimiter({ limit: 5, window: 60_000 });
    const c = new RateLimiter({ policy: { limit: 10, window: '1s', algorithm: 'fixed-window' } });
    assert.equal(a.policy.name, '5/1m');
    assert.equal(b.policy.name, '5/60000ms');
    assert.equal(c.policy.name, '10/1s:fixed-window');
    assert.equal(a.policy.windowMs, 60_000);
    assert.equal(new RateLimiter({ policy: '10/s' }).policy.windowMs, 1000);
    const d = await a.consume('k');
    assert.deepEqual([d.allowed, d.limit, d.remaining, d.retryAfterMs], [true, 5, 4, 0]);
    assert.equal(d.policy, a.policy);
  });

  it('validates options eagerly with the DESIGN message shape', () => {
    const cases: [unknown, string | RegExp, ErrorConstructor][] = [
      [
        { limit: 0, window: 1000 },
        'Expected `options.limit` to be a positive integer, got `0` (number)',
        RangeError,
      ],
      [{ limit: 5 }, /^Expected `options\.window` to be a positive duration/, TypeError],
      [
        { limit: 5, window: '0s' },
        /^Expected `options\.window` to be a positive duration.*got `"0s"` \(string\)$/,
        RangeError,
      ],
      [
        { policy: '5 per minute' },
        "Expected `policy` to be a policy like '5/1m', '120/60s' or '10/s', got `\"5 per minute\"` (string)",
        TypeError,
      ],
      [{ policy: '5/1m', limit: 5 }, /^Expected `limit` to be undefined when `policy` is given/, TypeError],
      [
        { limit: 5, window: 1000, algorithm: 'leaky' },
        /^Expected `options\.algorithm` to be one of 'gcra'/,
        RangeError,
      ],
      [
        { limit: 5, window: 1000, algorithm: 'fixed-window', burst: 2 },
        /burst applies to 'gcra' and 'token-bucket'/,
        TypeError,
      ],
      [
        { limit: 5, window: 1000, burst: -1 },
        /^Expected `options\.burst` to be a non-negative integer/,
        RangeError,
      ],
      [{ limit: 5, window: 1000, segments: 4 }, /segments apply to 'sliding-window'/, TypeError],
      [{ limit: 2_000_000, window: 1000 }, /^Expected `options\.limit` to be at most one per µs/, RangeError],
      [
        { limit: 5, window: 1000, mode: 'dry-run' },
        /^Expected `mode` to be one of 'enforce', 'shadow'/,
        RangeError,
      ],
      [
        { limit: 5, window: 1000, onStoreError: 'ignore' },
        /^Expected `onStoreError` to be 'fail-open', 'fail-closed' or \{ fallback: RateStore \}/,
        TypeError,
      ],
      [{ limit: 5, window: 1000, store: {} }, /^Expected `store` to be a RateStore/, TypeError],
      [
        { limit: 5, window: 1000, clock: Date },
        /^Expected `clock` to be an object with a now\(\) method/,
        TypeError,
      ],
      [{ limit: 5, window: 1000, name: 7 }, 'Expected `name` to be a string, got `7` (number)', TypeError],
    ];
    for (const [options, message, type] of cases) {
      assert.throws(
        () => new RateLimiter(options as never),
        (err: Error) => {
          assert.ok(err instanceof type, `${String(message)}: got ${err.name}: ${err.message}`);
          if (typeof message === 'string') assert.equal(err.message, message);
          else assert.match(err.message, message);
          return true;
        },
      );
    }
    assert.throws(() => new RateLimiter(undefined as never), TypeError);
  });

  it('rejects bad runtime input with InvalidInputError, never throwing from consume', async () => {
    const limiter = new RateLimiter({ limit: 5, window: 1000 });
    await assert.rejects(limiter.consume(5 as never), {
      code: 'SLUICE_INVALID_INPUT',
      message: 'Expected `key` to be a string, got `5` (number)',
    });
    await assert.rejects(
      limiter.consume('k', { cost: 6 }),
      /Expected `cost` to be an integer from 0 to the policy's capacity 5, got `6`/,
    );
    await assert.rejects(limiter.consume('k', { cost: 1.5 }), InvalidInputError);
    await assert.rejects(limiter.consume('k', null as never), InvalidInputError);
    await assert.rejects(limiter.consume('k', { signal: 'x' as never }), InvalidInputError);
    assert.throws(() => limiter.tryConsume('k', -1), InvalidInputError);
    assert.equal((await limiter.consume('k', { cost: 0 })).allowed, true);
  });

  it('tryConsume decides synchronously on a MemoryStore and refuses other stores', () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ limit: 2, window: 1000, clock });
    assert.equal(limiter.tryConsume('k').allowed, true);
    assert.equal(limiter.tryConsume('k').allowed, true);
    const denied = limiter.tryConsume('k');
    assert.deepEqual([denied.allowed, denied.remaining, denied.retryAfterMs], [false, 0, 500]);
    clock.t = 500;
    assert.equal(limiter.tryConsume('k').allowed, true);
    const remote = new RateLimiter({ limit: 2, window: 1000, store: failingStore('reject') });
    assert.throws(() => remote.tryConsume('k'), /tryConsume needs a synchronous store/);
  });

  it('peek spends nothing; reset forgets', async () => {
    const limiter = new RateLimiter({ limit: 1, window: '1h', clock: fakeClock() });
    assert.equal((await limiter.peek('k')).allowed, true);
    assert.equal((await limiter.peek('k')).allowed, true);
    assert.equal((await limiter.consume('k')).allowed, true);
    const peeked = await limiter.peek('k');
    assert.deepEqual([peeked.allowed, peeked.retryAfterMs], [false, 3_600_000]);
    await limiter.reset('k');
    assert.equal((await limiter.consume('k')).allowed, true);
  });

  it('shadow mode decides and reports like enforce, but always allows', async () => {
    const published: unknown[] = [];
    const onLimited = (m: unknown) => published.push(m);
    subscribe('sluice:rate:limited', onLimited);
    try {
      const clock = fakeClock();
      const shadow = new RateLimiter({ limit: 2, window: 1000, mode: 'shadow', clock, name: 'shadow' });
      const enforce = new RateLimiter({ limit: 2, window: 1000, clock, name: 'enforce' });
      for (let i = 0; i < 5; i++) {
        const s = shadow.tryConsume('k');
        const e = enforce.tryConsume('k');
        assert.equal(s.allowed, true);
        assert.equal(s.shadowed === true, !e.allowed);
        assert.equal(s.remaining, e.remaining);
      }
      assert.deepEqual(shadow.stats, {
        name: 'shadow',
        allowed: 5,
        denied: 0,
        shadowDenied: 3,
        storeErrors: 0,
      });
      assert.deepEqual(enforce.stats, {
        name: 'enforce',
        allowed: 2,
        denied: 3,
        shadowDenied: 0,
        storeErrors: 0,
      });
      const shadows = published.filter((m) => (m as { shadow: boolean }).shadow);
      assert.equal(shadows.length, 3);
      assert.equal(published.length, 6);
      assert.equal((shadows[0] as { decision: RateDecision }).decision.allowed, false);
    } finally {
      unsubscribe('sluice:rate:limited', onLimited);
    }
  });

  for (const how of ['throw', 'reject'] as const) {
    it(`a store that ${how}s: fail-open, fail-closed and fallback decide, and the error is reported`, async () => {
      const { reports, stop } = captureReports('sluice:rate:error');
      try {
        const open = new RateLimiter({ limit: 1, window: 1000, store: failingStore(how) });
        const d1 = await open.consume('k');
        assert.equal(d1.allowed, true);
        assert.ok(d1.storeError instanceof Error);
        const closed = new RateLimiter({
          limit: 1,
          window: 1000,
          store: failingStore(how),
          onStoreError: 'fail-closed',
        });
        const d2 = await closed.consume('k');
        assert.deepEqual([d2.allowed, d2.retryAfterMs, d2.remaining], [false, 1000, 0]);
        const fallback = new MemoryStore();
        const fb = new RateLimiter({
          limit: 1,
          window: 1000,
          store: failingStore(how),
          onStoreError: { fallback },
        });
        assert.equal((await fb.consume('k')).allowed, true);
        const d3 = await fb.consume('k');
        assert.equal(d3.allowed, false, 'the fallback store limits');
        assert.ok(d3.storeError instanceof Error);
        assert.equal(fb.stats.storeErrors, 2);
        assert.equal(reports.length, 4);
        assert.ok(reports.every((r) => r.where === 'store'));
        await assert.rejects(open.reset('k'), /down/);
      } finally {
        stop();
      }
    });
  }

  it('a signal abandons a hung store: rejects with signal.reason, not a store error', async () => {
    const limiter = new RateLimiter({ limit: 1, window: 1000, store: failingStore('hang') });
    const controller = new AbortController();
    const pending = limiter.consume('k', { signal: controller.signal });
    const reason = new Error('client went away');
    controller.abort(reason);
    await assert.rejects(pending, (err) => err === reason);
    await assert.rejects(
      limiter.consume('k', { signal: AbortSignal.abort(reason) }),
      (err) => err === reason,
    );
    assert.equal(limiter.stats.storeErrors, 0);
  });

  it('close refuses further calls with ClosedError and closes only an owned store', async () => {
    const shared = new MemoryStore();
    const clock = fakeClock();
    const borrowed = new RateLimiter({ limit: 1, window: 1000, store: shared, clock });
    borrowed.tryConsume('k');
    await borrowed.close();
    assert.equal(shared.stats.size, 1, 'a store passed in stays open');
    await assert.rejects(borrowed.consume('k'), ClosedError);
    assert.throws(() => borrowed.tryConsume('k'), ClosedError);
    const owned = new RateLimiter({ limit: 1, window: 1000 });
    await owned[Symbol.asyncDispose]();
    await assert.rejects(owned.consume('k'), ClosedError);
  });

  it('a slow store does not hold up the memory fast path of another limiter', async () => {
    const gate = deferred<RateDecision>();
    const slow: RateStore = {
      consume: () => gate.promise,
      peek: () => gate.promise,
      reset: () => Promise.resolve(),
    };
    const a = new RateLimiter({ limit: 1, window: 1000, store: slow });
    const b = new RateLimiter({ limit: 1, window: 1000 });
    const pending = a.consume('k');
    assert.equal((await b.consume('k')).allowed, true);
    gate.resolve({ allowed: true, limit: 1, remaining: 0, resetMs: 1000, retryAfterMs: 0, policy: a.policy });
    assert.equal((await pending).allowed, true);
  });
});

describe('Tiers', () => {
  it('keeps independent key spaces: exhausting auth leaves health answering', async () => {
    const tiers = new Tiers(
      { auth: '5/1m', write: '30/1m', read: '120/1m', health: '300/1m' },
      { clock: fakeClock() },
    );
    assert.deepEqual(tiers.names, ['auth', 'write', 'read', 'health']);
    for (let i = 0; i < 5; i++) assert.equal((await tiers.consume('auth', 'ip')).allowed, true);
    const sixth = await tiers.consume('auth', 'ip');
    assert.equal(sixth.allowed, false);
    assert.equal(sixth.retryAfterMs, 12_000);
    assert.equal(sixth.policy.name, 'auth');
    const health = tiers.tryConsume('health', 'ip');
    assert.deepEqual([health.allowed, health.remaining, health.policy.name], [true, 299, 'health']);
    assert.equal(tiers.get('read').policy.limit, 120);
  });

  it('one request consumes from exactly the tier it names, once', async () => {
    const store = new MemoryStore();
    const tiers = new Tiers({ read: '3/1m', write: '3/1m' }, { store, clock: fakeClock() });
    await tiers.consume('read', 'u');
    assert.equal(store.stats.size, 1);
    assert.equal(tiers.tryConsume('read', 'u').remaining, 1);
    assert.equal(tiers.tryConsume('write', 'u').remaining, 2);
  });

  it('rejects an unknown tier and validates its policies by name', async () => {
    const tiers = new Tiers({ read: '3/1m' });
    await assert.rejects(tiers.consume('nope' as 'read', 'u'), {
      code: 'SLUICE_INVALID_INPUT',
      message: 'Expected `tier` to be one of \'read\', got `"nope"` (string)',
    });
    assert.throws(() => tiers.get('nope' as 'read'), TypeError);
    assert.throws(() => new Tiers({ read: '3 per minute' }), /Expected `policy` to be a policy like/);
    assert.throws(() => new Tiers({}), RangeError);
    await tiers.close();
    await assert.rejects(tiers.consume('read', 'u'), ClosedError);
  });

  it('prefixes tier key spaces so two services can share one store', async () => {
    const store = new MemoryStore();
    const clock = fakeClock();
    const a = new Tiers({ auth: '1/1m' }, { store, clock, prefix: 'svc-a:' });
    const b = new Tiers({ auth: '1/1m' }, { store, clock, prefix: 'svc-b:' });
    assert.equal((await a.consume('auth', 'ip')).allowed, true);
    assert.equal((await b.consume('auth', 'ip')).allowed, true);
    assert.equal((await a.consume('auth', 'ip')).allowed, false);
  });
});

describe('a broken clock', () => {
  it('a NaN reading is a reported store error (fail-open by default), and tryConsume throws', async () => {
    const { reports, stop } = captureReports('sluice:rate:error');
    try {
      const limiter = new RateLimiter({ limit: 1, window: 1000, clock: { now: () => NaN } });
      const d = await limiter.consume('k');
      assert.equal(d.allowed, true);
      assert.ok(d.storeError instanceof InvalidInputError);
      assert.equal(reports.length, 1);
      assert.throws(
        () => limiter.tryConsume('k'),
        /Expected `clock.now\(\)` to be a finite reading in ms, got `NaN`/,
      );
      const closed = new RateLimiter({
        limit: 1,
        window: 1000,
        clock: { now: () => Infinity },
        onStoreError: 'fail-closed',
      });
      assert.equal((await closed.consume('k')).allowed, false);
    } finally {
      stop();
    }
  });
});

describe('policy arithmetic', () => {
  it('refuses a burst whose time span would leave exact integer arithmetic', () => {
    assert.throws(
      () => new RateLimiter({ limit: 1, window: '366d', burst: 1_000_000 }),
      /Expected `options\.burst` to be at most 34 with this limit and window/,
    );
    assert.equal(new RateLimiter({ limit: 1, window: '366d', burst: 34 }).policy.capacity, 35);
  });
});

describe('limiters that share a store', () => {
  it('unnamed limiters that decide differently get different names; same-named ones share state and are never reset by each other', () => {
    const store = new MemoryStore();
    const clock = fakeClock();
    const a = new RateLimiter({ limit: 5, window: '1m', store, clock });
    const b = new RateLimiter({ limit: 5, window: '1m', burst: 0, store, clock });
    const c = new RateLimiter({
      limit: 5,
      window: '1m',
      algorithm: 'sliding-window',
      segments: 20,
      store,
      clock,
    });
    assert.deepEqual(
      [a.policy.name, b.policy.name, c.policy.name],
      ['5/1m', '5/1m;burst=0', '5/1m:sliding-window;segments=20'],
    );
    // Same name, different burst (a rolling deploy): alternating calls never hand out a fresh quota.
    const x = new RateLimiter({ limit: 5, window: '1m', store, clock, name: 'login' });
    const y = new RateLimiter({ limit: 5, window: '1m', burst: 0, store, clock, name: 'login' });
    let allowed = 0;
    for (let i = 0; i < 100; i++) if ((i % 2 === 0 ? x : y).tryConsume('alice').allowed) allowed++;
    assert.ok(allowed <= 5, `${allowed} of 100 allowed`);
  });
});

describe('a fractional clock', () => {
  it('retrying after exactly retryAfterMs succeeds for any fractional start time', () => {
    // Readings like 3194.06 and 3345.06: floor(x × 1000) made ~1 in 4000 retries 1 µs early.
    let t = 0;
    const clock = { now: () => t };
    let early = 0;
    for (let trial = 0; trial < 200_000; trial++) {
      const limiter = new RateLimiter({ limit: 1, window: 1000, burst: 0, clock });
      t = Math.floor(Math.random() * 10_000) + Math.floor(Math.random() * 100) / 100;
      limiter.tryConsume('k');
      t = t + Math.floor(Math.random() * 100_000) / 100;
      const denied = limiter.tryConsume('k');
      if (denied.allowed) continue;
      t = t + denied.retryAfterMs;
      if (!limiter.tryConsume('k').allowed) early++;
    }
    assert.equal(early, 0);
  });
});

describe('key length', () => {
  it('refuses keys longer than maxKeyLength (default 256), so the key table is bounded in bytes too', async () => {
    const limiter = new RateLimiter({ limit: 5, window: '1m' });
    assert.equal(limiter.tryConsume('k'.repeat(256)).allowed, true);
    assert.throws(() => limiter.tryConsume('k'.repeat(257)), {
      code: 'SLUICE_INVALID_INPUT',
      message: /^Expected `key` to be a string of at most 256 characters \(maxKeyLength\), got `"kkk/,
    });
    await assert.rejects(limiter.consume('x'.repeat(1_000_000)), InvalidInputError);
    const long = new RateLimiter({ limit: 5, window: '1m', maxKeyLength: Infinity });
    assert.equal(long.tryConsume('k'.repeat(10_000)).allowed, true);
    assert.throws(() => new RateLimiter({ limit: 5, window: '1m', maxKeyLength: 0 }), RangeError);
  });
});
