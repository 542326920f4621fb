import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { BatchWriter, Loader } from '../../src/batch/index.js';
import { Cache, type CacheEvictReason } from '../../src/cache/index.js';
import { InvalidInputError } from '../../src/errors.js';

/** A clock the test moves by hand. */
function fakeClock(start = 1_000) {
  return {
    t: start,
    reads: 0,
    now() {
      this.reads++;
      return this.t;
    },
  };
}

function recorder<K, V>() {
  const events: [K, V, CacheEvictReason][] = [];
  return {
    events,
    onEvict: (key: K, value: V, reason: CacheEvictReason) => void events.push([key, value, reason]),
  };
}

describe('Cache: basics', () => {
  for (const policy of ['s3-fifo', 'lru'] as const) {
    it(`${policy}: get / peek / has / set / delete / size / keys / entries`, () => {
      const cache = new Cache<string, number>({ maxSize: 10, policy });
      assert.equal(cache.policy, policy);
      assert.equal(cache.get('a'), undefined);
      assert.equal(cache.set('a', 1), cache);
      cache.set('b', 2);
      assert.equal(cache.get('a'), 1);
      assert.equal(cache.peek('b'), 2);
      assert.equal(cache.has('b'), true);
      assert.equal(cache.has('c'), false);
      assert.equal(cache.size, 2);
      assert.deepEqual([...cache.keys()], ['a', 'b']);
      assert.deepEqual([...cache.values()], [1, 2]);
      assert.deepEqual(
        [...cache.entries()],
        [
          ['a', 1],
          ['b', 2],
        ],
      );
      assert.deepEqual([...cache], [...cache.entries()]);
      cache.set('a', 3);
      assert.equal(cache.get('a'), 3);
      assert.equal(cache.size, 2);
      assert.equal(cache.delete('a'), true);
      assert.equal(cache.delete('a'), false);
      assert.equal(cache.get('a'), undefined);
      assert.equal(cache.size, 1);
      cache.clear();
      assert.equal(cache.size, 0);
      assert.equal(cache.get('b'), undefined);
      cache.set('c', 4);
      assert.equal(cache.get('c'), 4);
    });

    it(`${policy}: never holds more than maxSize; the entry just written stays`, () => {
      const cache = new Cache<number, number>({ maxSize: 5, policy });
      for (let i = 0; i < 100; i++) {
        cache.set(i, i);
        assert.ok(cache.size <= 5);
        assert.equal(cache.get(i), i);
        if (i % 3 === 0) cache.get(i - 1);
      }
      assert.equal(cache.size, 5);
      assert.equal(cache.stats.evictions, 95);
    });
  }

  it('lru: evicts exactly the least recently used', () => {
    const { events, onEvict } = recorder<string, number>();
    const cache = new Cache<string, number>({ maxSize: 3, policy: 'lru', onEvict });
    cache.set('a', 1).set('b', 2).set('c', 3);
    cache.get('a');
    cache.peek('b'); // peek does not count as use
    cache.set('d', 4);
    assert.deepEqual(events, [['b', 2, 'evicted']]);
    cache.set('e', 5);
    assert.deepEqual(events.at(-1), ['c', 3, 'evicted']);
    assert.deepEqual([...cache.keys()].sort(), ['a', 'd', 'e']);
  });

  it('s3-fifo: a scan of one-time keys does not flush keys that are read again', () => {
    const s3 = new Cache<string, number>({ maxSize: 100 });
    const lru = new Cache<string, number>({ maxSize: 100, policy: 'lru' });
    for (const cache of [s3, lru]) {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 50; i++) if (cache.get(`hot${i}`) === undefined) cache.set(`hot${i}`, i);
      }
      for (let i = 0; i < 1000; i++) cache.set(`scan${i}`, i);
    }
    const survivors = (cache: Cache<string, number>) =>
      Array.from({ length: 50 }, (_, i) => cache.has(`hot${i}`)).filter(Boolean).length;
    assert.equal(survivors(s3), 50);
    assert.equal(survivors(lru), 0);
  });

  it('onEvict reports every removal with its reason, after the entry is gone', () => {
    const clock = fakeClock();
    const seen: [string, number, CacheEvictReason, boolean][] = [];
    const cache: Cache<string, number> = new Cache<string, number>({
      maxSize: 2,
      policy: 'lru',
      clock,
      onEvict: (key, value, reason) => void seen.push([key, value, reason, cache.has(key)]),
    });
    cache.set('a', 1).set('b', 2).set('c', 3); // evicts a
    cache.set('b', 20); // replaces b
    cache.set('b', 20); // same value: not a replacement
    cache.delete('c');
    cache.set('t', 5, { ttl: 10 });
    clock.t += 10;
    cache.get('t'); // expired
    cache.set('x', 1);
    cache.clear();
    assert.deepEqual(seen, [
      ['a', 1, 'evicted', false],
      ['b', 2, 'replaced', true],
      ['c', 3, 'deleted', false],
      ['t', 5, 'expired', false],
      ['b', 20, 'cleared', false],
      ['x', 1, 'cleared', false],
    ]);
  });

  it('an onEvict callback that writes to the cache leaves it consistent', () => {
    const cache: Cache<number, number> = new Cache<number, number>({
      maxSize: 3,
      onEvict: (key, _value, reason) => {
        if (reason === 'evicted' && key < 100) cache.set(key + 100, key);
      },
    });
    for (let i = 0; i < 50; i++) {
      cache.set(i, i);
      assert.ok(cache.size <= 3);
      assert.equal(cache.get(i), i);
    }
    assert.equal([...cache.keys()].length, cache.size);
  });

  it('stats count hits, misses, evictions; resetStats zeroes counters only', () => {
    const cache = new Cache<string, number>({ maxSize: 2 });
    cache.set('a', 1);
    cache.get('a');
    cache.get('a');
    cache.get('x');
    cache.peek('x');
    cache.has('x');
    cache.set('b', 2).set('c', 3);
    const stats = cache.stats;
    assert.equal(stats.hits, 2);
    assert.equal(stats.misses, 1);
    assert.equal(stats.hitRatio, 2 / 3);
    assert.equal(stats.evictions, 1);
    assert.equal(stats.size, 2);
    assert.equal(stats.weight, 2);
    cache.resetStats();
    assert.equal(cache.stats.hits, 0);
    assert.equal(cache.stats.misses, 0);
    assert.equal(cache.stats.hitRatio, 0);
    assert.equal(cache.stats.evictions, 0);
    assert.equal(cache.stats.size, 2);
  });

  it('getOrSet: a hit returns the cached value, a miss stores the given one; both counted', () => {
    const clock = { t: 0, now: () => clock.t };
    const evicted: string[] = [];
    const cache = new Cache<string, number>({ maxSize: 2, ttl: 100, clock });
    assert.equal(cache.getOrSet('a', 1), undefined);
    assert.equal(cache.getOrSet('a', 2), 1, 'a hit keeps the cached value');
    assert.equal(cache.peek('a'), 1);
    clock.t = 100; // expired: a miss, and the new value is stored with a fresh TTL
    assert.equal(cache.getOrSet('a', 3), undefined);
    assert.equal(cache.get('a'), 3);
    assert.deepEqual(
      { hits: cache.stats.hits, misses: cache.stats.misses, expirations: cache.stats.expirations },
      { hits: 2, misses: 2, expirations: 1 },
    );
    // The plain path (no TTL, no onEvict) evicts by policy like set.
    const plain = new Cache<string, number>({ maxSize: 2 });
    for (const [i, k] of ['x', 'y', 'z'].entries()) assert.equal(plain.getOrSet(k, i), undefined);
    assert.equal(plain.size, 2);
    assert.equal(plain.stats.evictions, 1);
    assert.equal(plain.getOrSet('z', 9), 2);
    const notified = new Cache<string, number>({ maxSize: 1, onEvict: (k) => evicted.push(k) });
    notified.getOrSet('p', 1);
    notified.getOrSet('q', 2);
    assert.deepEqual(evicted, ['p']);
  });

  it('grows its storage by doubling up to maxSize and keeps every entry', () => {
    const cache = new Cache<number, string>({ maxSize: 5000, ttl: 60_000, weigh: () => 1, maxWeight: 5000 });
    for (let i = 0; i < 5000; i++) cache.set(i, `v${i}`);
    assert.equal(cache.size, 5000);
    for (let i = 0; i < 5000; i++) assert.equal(cache.get(i), `v${i}`);
    cache.set(5000, 'x');
    assert.equal(cache.size, 5000);
  });

  it('maxSize: Infinity with maxWeight bounds by weight only', () => {
    const cache = new Cache<number, string>({
      maxSize: Infinity,
      maxWeight: 100,
      weigh: (_k, v) => v.length,
    });
    for (let i = 0; i < 3000; i++) {
      cache.set(i, 'x'.repeat(1 + (i % 7)));
      assert.ok(cache.stats.weight <= 100);
    }
    assert.ok(cache.size >= 100 / 7);
  });
});

describe('Cache: TTL', () => {
  it('get never returns an expired value; per-entry ttl overrides the default', () => {
    const clock = fakeClock();
    const cache = new Cache<string, number>({ maxSize: 10, ttl: 1000, clock });
    cache.set('a', 1);
    cache.set('b', 2, { ttl: 5000 });
    cache.set('c', 3, { ttl: Infinity });
    clock.t += 999;
    assert.equal(cache.get('a'), 1);
    clock.t += 1;
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.has('b'), true);
    assert.equal(cache.peek('b'), 2);
    assert.deepEqual([...cache.keys()].sort(), ['b', 'c']);
    clock.t += 4000;
    assert.equal(cache.get('b'), undefined);
    assert.equal(cache.has('b'), false);
    clock.t += 1e9;
    assert.equal(cache.get('c'), 3);
    assert.equal(cache.stats.expirations, 2);
    assert.equal(cache.size, 1);
  });

  it('accepts durations as strings', () => {
    const clock = fakeClock();
    const cache = new Cache<string, number>({ maxSize: 10, ttl: '2s', clock });
    cache.set('a', 1);
    clock.t += 1999;
    assert.equal(cache.get('a'), 1);
    clock.t += 1;
    assert.equal(cache.get('a'), undefined);
  });

  it('reads the clock at most once per call, and not at all without TTL', () => {
    const clock = fakeClock();
    const plain = new Cache<string, number>({ maxSize: 10, clock });
    plain.set('a', 1);
    plain.get('a');
    plain.get('b');
    assert.equal(clock.reads, 0);
    const timed = new Cache<string, number>({ maxSize: 10, ttl: 1000, clock });
    for (const op of [
      () => timed.set('a', 1),
      () => timed.get('a'),
      () => timed.has('a'),
      () => timed.peek('a'),
      () => timed.set('a', 2),
      () => timed.getOrLoad('a', () => 0),
    ]) {
      const before = clock.reads;
      void op();
      assert.ok(clock.reads - before <= 1, `${op.toString()} read the clock ${clock.reads - before} times`);
    }
  });

  it('a key whose TTL passed and is never read again is reclaimed by the sweep (prune)', () => {
    const clock = fakeClock();
    const { events, onEvict } = recorder<string, object>();
    const cache = new Cache<string, object>({ maxSize: 100, ttl: 1000, clock, onEvict });
    for (let i = 0; i < 50; i++) cache.set(`k${i}`, { i });
    cache.set('long', {}, { ttl: 3_600_000 });
    clock.t += 1000 + 300; // past the TTL plus the sweep's 256 ms resolution
    assert.equal(cache.prune(), 50);
    assert.equal(cache.size, 1);
    assert.equal(cache.stats.expirations, 50);
    assert.ok(events.every(([, , reason]) => reason === 'expired'));
    clock.t += 3_600_000;
    assert.equal(cache.prune(), 1);
    assert.equal(cache.size, 0);
  });

  it('writes sweep expired keys incrementally, without any read of them', () => {
    const clock = fakeClock();
    const cache = new Cache<string, number>({ maxSize: 1000, clock });
    for (let i = 0; i < 100; i++) cache.set(`short${i}`, i, { ttl: 500 + i });
    clock.t += 2000;
    cache.set('other', 1); // one write reclaims a bounded slice (32)
    assert.equal(cache.size, 100 - 32 + 1);
    for (let i = 0; i < 3; i++) cache.set(`other${i}`, 1);
    assert.equal(cache.size, 4);
    assert.equal(cache.stats.expirations, 100);
  });

  it('the unref’d sweep timer reclaims expired keys with no traffic at all', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const clock = fakeClock(0);
    const cache = new Cache<string, number>({ maxSize: 100, ttl: 10_000, clock });
    cache.set('a', 1);
    cache.set('b', 2, { ttl: 100_000 });
    clock.t = 10_400;
    t.mock.timers.tick(10_400);
    assert.equal(cache.size, 1);
    clock.t = 100_400;
    t.mock.timers.tick(90_000);
    assert.equal(cache.size, 0);
    assert.equal(cache.stats.expirations, 2);
  });

  it('a 30-day TTL neither expires early nor arms a timer past 2^31-1 ms; the sweep timer still reclaims it', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const delays: number[] = [];
    const real = globalThis.setTimeout;
    t.mock.method(
      globalThis,
      'setTimeout',
      (fn: (...args: unknown[]) => void, ms: number, ...args: unknown[]) => {
        delays.push(ms);
        return real(fn, ms, ...args);
      },
    );
    const day = 86_400_000;
    const clock = fakeClock(0);
    const cache = new Cache<string, number>({ maxSize: 10, ttl: 30 * day, clock });
    cache.set('a', 1);
    for (let d = 1; d < 30; d++) {
      clock.t = d * day;
      t.mock.timers.tick(day);
      assert.equal(cache.peek('a'), 1, `day ${d}`);
      assert.equal(cache.size, 1, `day ${d}`);
    }
    clock.t = 30 * day + 1000;
    t.mock.timers.tick(day + 1000);
    assert.equal(cache.size, 0);
    assert.ok(delays.length > 0);
    assert.ok(
      delays.every((ms) => ms <= 2 ** 31 - 1),
      `delays: ${delays.join(', ')}`,
    );
  });

  it('long TTLs cascade through the wheel levels and still expire', () => {
    const clock = fakeClock(0);
    const cache = new Cache<number, number>({ maxSize: 1000, clock });
    const ttls = [300, 20_000, 2_000_000, 100_000_000, 6_000_000_000];
    ttls.forEach((ttl, i) => cache.set(i, i, { ttl }));
    for (const [i, ttl] of ttls.entries()) {
      clock.t = ttl - 1;
      cache.prune();
      assert.equal(cache.size, ttls.length - i, `before ${ttl}`);
      clock.t = ttl + 256;
      cache.prune();
      assert.equal(cache.size, ttls.length - i - 1, `after ${ttl}`);
    }
  });

  it('re-setting a key reschedules it; set with ttl Infinity stops it expiring', () => {
    const clock = fakeClock();
    const cache = new Cache<string, number>({ maxSize: 10, ttl: 1000, clock });
    cache.set('a', 1);
    clock.t += 900;
    cache.set('a', 2);
    clock.t += 900;
    assert.equal(cache.get('a'), 2);
    cache.set('a', 3, { ttl: Infinity });
    clock.t += 1e7;
    cache.prune();
    assert.equal(cache.get('a'), 3);
  });
});

describe('Cache: weights', () => {
  it('keeps the sum of weights ≤ maxWeight; an entry heavier than maxWeight is not stored', () => {
    const { events, onEvict } = recorder<string, string>();
    const cache = new Cache<string, string>({
      maxSize: 100,
      maxWeight: 10,
      weigh: (_k, v) => v.length,
      onEvict,
    });
    cache.set('a', 'xxxx').set('b', 'xxxx');
    assert.equal(cache.stats.weight, 8);
    cache.set('c', 'xxxx');
    assert.ok(cache.stats.weight <= 10);
    assert.equal(cache.get('c'), 'xxxx');
    cache.set('c', 'xxxxxxxxxxx'); // 11 > 10
    assert.equal(cache.has('c'), false);
    assert.deepEqual(events.slice(-2), [
      ['c', 'xxxx', 'replaced'],
      ['c', 'xxxxxxxxxxx', 'evicted'],
    ]);
    cache.set('d', 'xxxxxxxxx'); // 9: others go, d stays
    assert.equal(cache.get('d'), 'xxxxxxxxx');
    assert.ok(cache.stats.weight <= 10);
  });

  it('growing an entry in place evicts others, never the entry itself', () => {
    for (const policy of ['s3-fifo', 'lru'] as const) {
      const cache = new Cache<number, number>({ maxSize: 100, maxWeight: 20, weigh: (_k, v) => v, policy });
      for (let i = 0; i < 10; i++) cache.set(i, 2);
      cache.set(3, 15);
      assert.equal(cache.get(3), 15, policy);
      assert.ok(cache.stats.weight <= 20, policy);
    }
  });
});

describe('Cache: option validation', () => {
  const cases: [unknown, ErrorConstructor, string][] = [
    [{ maxSize: 0 }, RangeError, 'Expected `maxSize` to be a positive integer or Infinity, got `0` (number)'],
    [
      { maxSize: -3 },
      RangeError,
      'Expected `maxSize` to be a positive integer or Infinity, got `-3` (number)',
    ],
    [
      { maxSize: 1.5 },
      RangeError,
      'Expected `maxSize` to be a positive integer or Infinity, got `1.5` (number)',
    ],
    [{}, TypeError, 'Expected `maxSize` to be a positive integer or Infinity, got `undefined` (undefined)'],
    [
      { maxSize: '10' },
      TypeError,
      'Expected `maxSize` to be a positive integer or Infinity, got `"10"` (string)',
    ],
    [
      { maxSize: 10, ttl: -1 },
      RangeError,
      `Expected \`ttl\` to be a positive duration in ms (a number, Infinity, or a string like '500ms', '1s', '1m', '1h', '1d'), got \`-1\` (number)`,
    ],
    [
      { maxSize: 10, ttl: 0 },
      RangeError,
      `Expected \`ttl\` to be a positive duration in ms (a number, Infinity, or a string like '500ms', '1s', '1m', '1h', '1d'), got \`0\` (number)`,
    ],
    [
      { maxSize: 10, ttl: '0ms' },
      RangeError,
      `Expected \`ttl\` to be a positive duration in ms (a number, Infinity, or a string like '500ms', '1s', '1m', '1h', '1d'), got \`"0ms"\` (string)`,
    ],
    [
      { maxSize: 10, ttl: '5 minutes' },
      RangeError,
      `Expected \`ttl\` to be a positive duration in ms (a number, Infinity, or a string like '500ms', '1s', '1m', '1h', '1d'), got \`"5 minutes"\` (string)`,
    ],
    [
      { maxSize: 10, ttl: null },
      TypeError,
      `Expected \`ttl\` to be a positive duration in ms (a number, Infinity, or a string like '500ms', '1s', '1m', '1h', '1d'), got \`null\` (null)`,
    ],
    [
      { maxSize: 10, maxWeight: null, weigh: () => 1 },
      TypeError,
      'Expected `maxWeight` to be a positive number or Infinity, got `null` (null)',
    ],
    [
      { maxSize: 10, policy: null },
      TypeError,
      "Expected `policy` to be one of 's3-fifo', 'lru', got `null` (null)",
    ],
    [
      { maxSize: 10, staleWhileRevalidate: null },
      TypeError,
      'Expected `staleWhileRevalidate` to be a non-negative number or Infinity, got `null` (null)',
    ],
    [
      { maxSize: 10, clock: null },
      TypeError,
      "Expected `clock` to be 'coarse', 'exact' or an object with a now() method, got `null` (null)",
    ],
    [
      { maxSize: 10, staleWhileRevalidate: -5 },
      RangeError,
      'Expected `staleWhileRevalidate` to be a non-negative number or Infinity, got `-5` (number)',
    ],
    [
      { maxSize: 10, negativeTtl: NaN },
      TypeError,
      'Expected `negativeTtl` to be a non-negative number or Infinity, got `NaN` (number)',
    ],
    [
      { maxSize: 10, maxWeight: 100 },
      TypeError,
      'Expected `weigh` to be a function, got `undefined` (undefined)',
    ],
    [
      { maxSize: 10, maxWeight: 0, weigh: () => 1 },
      RangeError,
      'Expected `maxWeight` to be a positive number or Infinity, got `0` (number)',
    ],
    [
      { maxSize: 10, weigh: 5 },
      TypeError,
      'Expected `weigh` to be a function or undefined, got `5` (number)',
    ],
    [
      { maxSize: 10, policy: 'lfu' },
      RangeError,
      "Expected `policy` to be one of 's3-fifo', 'lru', got `\"lfu\"` (string)",
    ],
    [
      { maxSize: 10, clock: {} },
      TypeError,
      'Expected `clock.now` to be a function, got `undefined` (undefined)',
    ],
    [
      { maxSize: 10, loader: 'x' },
      TypeError,
      'Expected `loader` to be a function or undefined, got `"x"` (string)',
    ],
    [
      { maxSize: 10, onEvict: 1 },
      TypeError,
      'Expected `onEvict` to be a function or undefined, got `1` (number)',
    ],
  ];
  for (const [options, type, message] of cases) {
    it(`throws ${type.name}: ${message}`, () => {
      assert.throws(
        () => new Cache(options as never),
        (error: unknown) => error instanceof type && error.message === message,
      );
    });
  }

  it('set: runtime misuse (a bad ttl, a bad options bag, a weigh returning NaN) throws InvalidInputError', () => {
    const cache = new Cache<string, number>({ maxSize: 10, weigh: (_k, v) => v });
    const invalid = (message: string) => (error: unknown) =>
      error instanceof InvalidInputError &&
      error.code === 'SLUICE_INVALID_INPUT' &&
      error.message === message;
    assert.throws(
      () => cache.set('a', 1, { ttl: -1 }),
      invalid(
        `Expected \`ttl\` to be a positive duration in ms (a number, Infinity, or a string like '500ms', '1s', '1m', '1h', '1d'), got \`-1\` (number)`,
      ),
    );
    assert.throws(
      () => cache.set('a', 1, 5 as never),
      invalid('Expected `options` to be an object or undefined, got `5` (number)'),
    );
    assert.throws(
      () => cache.set('a', 0),
      invalid('Expected `weigh(key, value)` to return a positive finite number, got `0` (number)'),
    );
    assert.throws(
      () => cache.set('a', NaN),
      invalid('Expected `weigh(key, value)` to return a positive finite number, got `NaN` (number)'),
    );
    assert.throws(() => cache.set('a', -2), InvalidInputError);
    assert.equal(cache.size, 0);
  });

  it('getOrLoad: runtime misuse rejects (never throws) with InvalidInputError and the message shape', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const calls: [string, () => Promise<number>][] = [
      ['Expected `loader` to be a function, got `undefined` (undefined)', () => cache.getOrLoad('a')],
      ['Expected `loader` to be a function, got `5` (number)', () => cache.getOrLoad('a', 5 as never)],
      [
        `Expected \`ttl\` to be a positive duration in ms (a number, Infinity, or a string like '500ms', '1s', '1m', '1h', '1d'), got \`-1\` (number)`,
        () => cache.getOrLoad('a', () => 1, { ttl: -1 }),
      ],
      [
        'Expected `signal` to be an AbortSignal or undefined, got `"x"` (string)',
        () => cache.getOrLoad('a', () => 1, { signal: 'x' as never }),
      ],
      [
        'Expected `options` to be an object or undefined, got `7` (number)',
        () => cache.getOrLoad('a', () => 1, 7 as never),
      ],
    ];
    for (const [message, call] of calls) {
      let promise: Promise<number> | undefined;
      assert.doesNotThrow(() => (promise = call()), message);
      await assert.rejects(
        promise!,
        (error: unknown) => error instanceof InvalidInputError && error.message === message,
        message,
      );
    }
  });

  it('getOrLoad: a weigh returning NaN rejects the callers with InvalidInputError', async () => {
    const cache = new Cache<string, number>({ maxSize: 10, weigh: () => NaN });
    await assert.rejects(
      cache.getOrLoad('a', async () => 1),
      InvalidInputError,
    );
    assert.equal(cache.has('a'), false);
  });

  it('getOrLoad never throws synchronously, even when an onEvict or clock throws', async () => {
    let broken = false;
    const clock = {
      t: 0,
      now() {
        if (broken) throw new Error('clock failed');
        return this.t;
      },
    };
    const cache = new Cache<string, number>({ maxSize: 10, ttl: 10, clock });
    cache.set('a', 1);
    broken = true;
    let promise: Promise<number> | undefined;
    assert.doesNotThrow(() => (promise = cache.getOrLoad('a', () => 2)));
    await assert.rejects(promise!, /clock failed/);
  });
});

describe('Cache: diagnostics channels', () => {
  it('publishes evictions on sluice:cache:evict only while subscribed, with the cache name', () => {
    const cache = new Cache<string, number>({ maxSize: 1, name: 'sessions' });
    const got: unknown[] = [];
    const listener = (message: unknown) => void got.push(message);
    cache.set('a', 1).set('b', 2);
    subscribe('sluice:cache:evict', listener);
    try {
      cache.set('c', 3);
    } finally {
      unsubscribe('sluice:cache:evict', listener);
    }
    cache.set('d', 4);
    assert.equal(got.length, 1);
    assert.deepEqual(
      { ...(got[0] as object), cache: null },
      { cache: null, name: 'sessions', key: 'b', value: 2, reason: 'evicted' },
    );
  });

  it('publishes load outcomes on sluice:cache:load', async () => {
    const cache = new Cache<string, number>({ maxSize: 10 });
    const got: { key: string; ok: boolean; background: boolean; error?: unknown }[] = [];
    const listener = (message: unknown) => void got.push(message as (typeof got)[number]);
    subscribe('sluice:cache:load', listener);
    try {
      await cache.getOrLoad('a', async () => 1);
      const boom = new Error('boom');
      await assert.rejects(
        cache.getOrLoad('b', async () => {
          throw boom;
        }),
        boom,
      );
      assert.deepEqual(
        got.map(({ key, ok, background, error }) => ({ key, ok, background, error })),
        [
          { key: 'a', ok: true, background: false, error: undefined },
          { key: 'b', ok: false, background: false, error: boom },
        ],
      );
    } finally {
      unsubscribe('sluice:cache:load', listener);
    }
  });
});

describe('Cache: staleness of the default clock', () => {
  const spin = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };

  for (const mode of ['synchronous', 'microtask-only'] as const) {
    it(`get never returns a value past its TTL inside a long ${mode} loop (default coarse clock)`, async () => {
      const cache = new Cache<string, number>({ maxSize: 10, ttl: 50 });
      cache.set('k', 1);
      const setAt = performance.now();
      const late: number[] = [];
      const end = setAt + 200;
      while (performance.now() < end) {
        const before = performance.now();
        if (cache.get('k') !== undefined && before >= setAt + 50) late.push(before - setAt);
        spin(0.3);
        if (mode === 'microtask-only') await Promise.resolve();
      }
      assert.deepEqual(late, [], 'hits after the deadline (ms after set)');
    });
  }

  it("clock: 'exact' reads the real clock on every call; 'coarse' is the default, spelled out", () => {
    const exact = new Cache<string, number>({ maxSize: 10, ttl: 20, clock: 'exact' });
    const coarse = new Cache<string, number>({ maxSize: 10, ttl: 20, clock: 'coarse' });
    exact.set('k', 1);
    coarse.set('k', 1);
    const setAt = performance.now();
    while (performance.now() < setAt + 30) {
      const before = performance.now();
      const hit = exact.get('k') !== undefined;
      if (hit) assert.ok(before < setAt + 20);
    }
    assert.equal(exact.get('k'), undefined);
    assert.equal(coarse.get('k'), undefined);
    assert.throws(() => new Cache({ maxSize: 1, clock: 'fast' as never }), TypeError);
  });
});

describe('Cache options given as undefined', () => {
  it('mean the default for every optional option (exactOptionalPropertyTypes consumers)', () => {
    const cache = new Cache<string, number>({
      maxSize: 10,
      ttl: undefined,
      staleWhileRevalidate: undefined,
      negativeTtl: undefined,
      weigh: undefined,
      maxWeight: undefined,
      policy: undefined,
      loader: undefined,
      onEvict: undefined,
      clock: undefined,
    });
    cache.set('a', 1, { ttl: undefined });
    assert.equal(cache.get('a'), 1);
  });
});

describe('names', () => {
  it('Cache, Loader and BatchWriter carry their name in stats and errors', async () => {
    const cache = new Cache<string, number>({ maxSize: 1, name: 'sessions' });
    assert.equal(cache.stats.name, 'sessions');
    assert.equal(new Cache({ maxSize: 1 }).stats.name, 'Cache');
    const loader = new Loader<number, number>(async (ids) => ids, { name: 'users' });
    const writer = new BatchWriter<number>(async () => undefined, { name: 'audit' });
    assert.equal(loader.stats.name, 'users');
    assert.equal(writer.stats.name, 'audit');
    await loader.close();
    await writer.close();
    await assert.rejects(loader.load(1), { code: 'SLUICE_CLOSED', message: 'users is closed' });
    await assert.rejects(writer.add(1), { code: 'SLUICE_CLOSED', message: 'audit is closed' });
    assert.throws(() => new Cache({ maxSize: 1, name: 1 as never }), {
      name: 'TypeError',
      message: 'Expected `name` to be a string, got `1` (number)',
    });
  });
});
