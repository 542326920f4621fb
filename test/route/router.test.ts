import assert from 'node:assert/strict';
import { channel } from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import {
  ClosedError,
  InvalidInputError,
  NoTargetError,
  SluiceError,
  TargetLoadError,
} from '../../src/errors.js';
import { Router, type RouteStrategy } from '../../src/route/index.js';

const STRATEGIES: RouteStrategy[] = ['least-loaded', 'p2c', 'round-robin', 'peak-ewma'];

/** A deterministic PRNG (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Router options', () => {
  it('validates eagerly with the DESIGN message shape', () => {
    assert.throws(() => new Router([], { strategy: 'random' as RouteStrategy }), {
      name: 'RangeError',
      message:
        /^Expected `strategy` to be one of 'least-loaded', 'p2c', 'round-robin', 'peak-ewma', got `"random"` \(string\)$/,
    });
    assert.throws(
      () => new Router([], { maxWaiting: -1 }),
      /Expected `maxWaiting` to be a non-negative integer/,
    );
    assert.throws(() => new Router([], { decayMs: 0 }), /Expected `decayMs` to be a positive finite number/);
    assert.throws(
      () => new Router([], { load: 1 as never }),
      /Expected `load` to be a function or undefined/,
    );
    assert.throws(
      () => new Router([], { clock: {} as never }),
      /Expected `clock` to be an object with a now\(\)/,
    );
    assert.throws(() => new Router(42 as never), /Expected `targets` to be an iterable, got `42` \(number\)/);
  });

  it('a target added twice is a clear error, for objects and primitives alike', () => {
    const a = { id: 'a' };
    const router = new Router<unknown>([a, 'b', 1]);
    assert.throws(
      () => router.add(a),
      (err: unknown) => {
        assert.ok(err instanceof InvalidInputError);
        assert.match(err.message, /^Router: target `\{"id":"a"\}` \(object\) was already added$/);
        return true;
      },
    );
    assert.throws(() => router.add('b'), /target `"b"` \(string\) was already added/);
    assert.throws(() => new Router([1, 1]), /target `1` \(number\) was already added/);
    // An equal-looking object is another target.
    router.add({ id: 'a' });
    assert.equal(router.size, 4);
  });
});

describe('least-loaded', () => {
  it('picks the minimum load and re-orders on update', () => {
    const load = new Map([
      ['a', 3],
      ['b', 1],
      ['c', 2],
    ]);
    const router = new Router(load.keys(), { load: (t) => load.get(t) ?? 0 });
    assert.equal(router.pick(), 'b');
    load.set('b', 10);
    assert.equal(router.pick(), 'b', 'stale until update: the load callback is read on update only');
    router.update('b');
    assert.equal(router.pick(), 'c');
    load.set('a', 0);
    router.update('a');
    assert.equal(router.pick(), 'a');
    assert.equal(router.loadOf('a'), 0);
    assert.equal(router.update('zzz'), false);
  });

  it('breaks ties round robin: equal targets take turns, deterministically', () => {
    const router = new Router(['a', 'b', 'c']);
    const picks = Array.from({ length: 9 }, () => router.pick());
    assert.deepEqual(picks, ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c']);
    assert.equal(router.stats.picks, 9);
  });

  it('without a load callback, load = in-flight permits, counted by acquire and release', async () => {
    const router = new Router(['a', 'b']);
    const p1 = await router.acquire();
    const p2 = await router.acquire();
    assert.deepEqual([p1.target, p2.target].sort(), ['a', 'b']);
    p1.release();
    const p3 = router.tryAcquire();
    assert.equal(p3?.target, p1.target, 'the released target is the least loaded');
    assert.equal(router.inFlight(p1.target), 1);
    assert.equal(router.stats.inFlight, 2);
    p2[Symbol.dispose]();
    p3?.release();
    assert.equal(router.stats.inFlight, 0);
    assert.deepEqual(
      { acquired: router.stats.acquired, released: router.stats.released },
      { acquired: 3, released: 3 },
    );
  });

  it('double dispose of a permit is idempotent', () => {
    const router = new Router(['a']);
    const permit = router.tryAcquire();
    assert.ok(permit !== undefined);
    permit.release();
    permit.release();
    permit[Symbol.dispose]();
    assert.equal(permit.released, true);
    assert.equal(router.inFlight('a'), 0);
    assert.equal(router.stats.released, 1);
  });
});

describe('load callback failures', () => {
  it('a throwing load is a TargetLoadError with the cause; the router is unchanged', () => {
    let fail = false;
    const cause = new Error('metrics down');
    const load = new Map([
      ['a', 1],
      ['b', 2],
    ]);
    const router = new Router(load.keys(), {
      load: (t) => {
        if (fail) throw cause;
        return load.get(t) ?? 0;
      },
    });
    fail = true;
    assert.throws(
      () => router.update('a'),
      (err: unknown) =>
        err instanceof TargetLoadError && err.code === 'SLUICE_TARGET_LOAD' && err.cause === cause,
    );
    assert.throws(() => router.add('c'), TargetLoadError);
    assert.equal(router.has('c'), false);
    assert.equal(router.size, 2);
    assert.equal(router.loadOf('a'), 1);
    assert.equal(router.pick(), 'a');
    assert.equal(router.stats.loadErrors, 2);
  });

  it('a NaN (or non-number) load is rejected with a clear error', () => {
    let value: unknown = 1;
    const router = new Router(['a', 'b'], { load: () => value as number });
    value = Number.NaN;
    assert.throws(() => router.update('a'), {
      name: 'InvalidInputError',
      message: 'Expected `load(target)` to be a number other than NaN, got `NaN` (number)',
    });
    value = '3';
    assert.throws(() => router.add('c'), /got `"3"` \(string\)/);
    assert.equal(router.loadOf('a'), 1);
    assert.equal(router.size, 2);
    value = Infinity;
    router.update('a');
    assert.equal(router.pick(), 'b', 'Infinity is a valid load: the target is avoided');
  });

  it('a load callback that re-enters (removes its own target) leaves the router consistent', () => {
    let armed = false;
    const router: Router<string> = new Router(['a', 'b'], {
      load: (t) => {
        if (armed && t === 'a') router.remove('a');
        return 0;
      },
    });
    armed = true;
    router.update('a');
    assert.equal(router.has('a'), false);
    assert.deepEqual([router.pick(), router.pick()], ['b', 'b']);
  });
});

describe('no targets', () => {
  it('pick throws NoTargetError, tryAcquire returns undefined', () => {
    const router = new Router<string>();
    assert.throws(
      () => router.pick(),
      (err: unknown) =>
        err instanceof NoTargetError && err instanceof SluiceError && err.code === 'SLUICE_NO_TARGET',
    );
    assert.equal(router.tryAcquire(), undefined);
  });

  it('acquire waits FIFO until a target is added', async () => {
    const router = new Router<string>();
    const order: string[] = [];
    const first = router.acquire().then((p) => order.push(`1:${p.target}`));
    const second = router.acquire().then((p) => order.push(`2:${p.target}`));
    assert.equal(router.stats.waiting, 2);
    router.add('a');
    await Promise.all([first, second]);
    assert.deepEqual(order, ['1:a', '2:a']);
    assert.equal(router.inFlight('a'), 2);
  });

  it('a waiting acquire is cancellable: rejects with signal.reason unchanged, leaves in O(1)', async () => {
    const router = new Router<string>();
    const controller = new AbortController();
    const reason = { not: 'an error' };
    const waiting = router.acquire({ signal: controller.signal });
    const other = router.acquire();
    controller.abort(reason);
    await assert.rejects(waiting, (err) => err === reason);
    assert.equal(router.stats.waiting, 1);
    assert.equal(router.stats.aborted, 1);
    router.add('a');
    assert.equal((await other).target, 'a');
    assert.equal(router.inFlight('a'), 1, 'the aborted wait took nothing');
    // An already-aborted signal rejects even when a target is free.
    await assert.rejects(router.acquire({ signal: AbortSignal.abort('gone') }), (err) => err === 'gone');
  });

  it('beyond maxWaiting (and with 0) acquire rejects with NoTargetError', async () => {
    const none = new Router<string>([], { maxWaiting: 0 });
    await assert.rejects(none.acquire(), NoTargetError);
    const one = new Router<string>([], { maxWaiting: 1 });
    const waiting = one.acquire();
    await assert.rejects(one.acquire(), /has no targets \(maxWaiting: 1 already waiting\)/);
    assert.equal(one.stats.rejected, 1);
    one.add('x');
    assert.equal((await waiting).target, 'x');
  });

  it('rejects bad options instead of throwing', async () => {
    const router = new Router(['a']);
    await assert.rejects(router.acquire({ signal: 'nope' as never }), InvalidInputError);
    await assert.rejects(router.acquire(null as never), InvalidInputError);
  });
});

describe('removal', () => {
  it('a removed target is never picked; its outstanding permits release safely', () => {
    for (const strategy of STRATEGIES) {
      const router = new Router(['a', 'b', 'c'], { strategy });
      const held = [router.tryAcquire(), router.tryAcquire(), router.tryAcquire()];
      assert.equal(router.remove('b'), true);
      assert.equal(router.remove('b'), false);
      for (let i = 0; i < 50; i++) assert.notEqual(router.pick(), 'b', strategy);
      for (const p of held) p?.release();
      assert.equal(router.stats.inFlight, 0, strategy);
      assert.equal(router.inFlight('b'), 0);
      // Re-adding starts afresh; the old permits belonged to the old entry.
      router.add('b');
      assert.equal(router.loadOf('b'), 0);
    }
  });
});

describe('strategies', () => {
  it('round-robin visits every target in turn, ignoring load', () => {
    const router = new Router(['a', 'b', 'c'], { strategy: 'round-robin' });
    const held = router.tryAcquire();
    assert.equal(held?.target, 'a');
    assert.deepEqual(
      Array.from({ length: 6 }, () => router.pick()),
      ['b', 'c', 'a', 'b', 'c', 'a'],
    );
  });

  it('p2c picks the less loaded of two random targets; ties go to the one picked longest ago', () => {
    const load = new Map([
      ['a', 5],
      ['b', 1],
    ]);
    const router = new Router(load.keys(), {
      strategy: 'p2c',
      load: (t) => load.get(t) ?? 0,
      random: seeded(1),
    });
    for (let i = 0; i < 20; i++) assert.equal(router.pick(), 'b');
    const even = new Router(['x', 'y'], { strategy: 'p2c', random: () => 0 });
    assert.deepEqual(
      Array.from({ length: 4 }, () => even.pick()),
      ['x', 'y', 'x', 'y'],
    );
  });

  it('peak-ewma steers away from a slow target once latencies are measured', () => {
    let now = 0;
    const router = new Router(['fast', 'slow'], {
      strategy: 'peak-ewma',
      clock: { now: () => now },
      random: seeded(7),
    });
    // One sample each: fast answers in 1 ms, slow in 50 ms.
    const a = router.tryAcquire();
    const b = router.tryAcquire();
    assert.deepEqual([a?.target, b?.target].sort(), ['fast', 'slow']);
    now += 1;
    (a?.target === 'fast' ? a : b)?.release();
    now += 49;
    (a?.target === 'slow' ? a : b)?.release();
    // With 2 targets p2c compares both: fast wins until it has ~50 in flight.
    const held = Array.from({ length: 20 }, () => router.tryAcquire());
    assert.ok(held.every((p) => p?.target === 'fast'));
  });

  it('peak-ewma: an unsampled target gets one probe, not a flood', () => {
    const now = 0;
    const router = new Router(['new', 'known'], { strategy: 'peak-ewma', clock: { now: () => now } });
    const probe = router.tryAcquire();
    assert.ok(probe !== undefined);
    const next = router.tryAcquire();
    assert.notEqual(next?.target, probe.target);
  });

  it('a throwing random or clock cannot break a pick; it is reported on sluice:route:error', () => {
    const errors: unknown[] = [];
    const onError = (m: unknown): void => void errors.push((m as { error: unknown }).error);
    channel('sluice:route:error').subscribe(onError);
    try {
      const router = new Router(['a', 'b', 'c'], {
        strategy: 'peak-ewma',
        random: () => {
          throw new Error('rng');
        },
        clock: {
          now: () => {
            throw new Error('clock');
          },
        },
      });
      const permit = router.tryAcquire();
      assert.ok(router.has(permit?.target as string));
      permit?.release();
      const odd = new Router(['a', 'b'], { strategy: 'p2c', random: () => 7 });
      assert.ok(['a', 'b'].includes(odd.pick()));
      assert.ok(errors.length > 0);
    } finally {
      channel('sluice:route:error').unsubscribe(onError);
    }
  });
});

describe('close', () => {
  it('rejects waiters with ClosedError, refuses new work, resolves when permits are released', async () => {
    const router = new Router<string>();
    const waiting = router.acquire();
    const closing = router.close();
    await assert.rejects(waiting, ClosedError);
    assert.equal(router.stats.waiting, 0);
    await closing;

    const busy = new Router(['a']);
    const permit = busy.tryAcquire();
    let closed = false;
    const done = busy.close().then(() => (closed = true));
    assert.equal(busy.close(), busy.close(), 'idempotent');
    await assert.rejects(busy.acquire(), ClosedError);
    assert.throws(() => busy.pick(), ClosedError);
    assert.throws(() => busy.tryAcquire(), ClosedError);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closed, false);
    permit?.release();
    await done;
    assert.equal(closed, true);
  });

  it('targets() is a copy; stats names the strategy', () => {
    const router = new Router(['a', 'b'], { strategy: 'p2c', name: 'pools' });
    const list = router.targets();
    list.push('zzz');
    assert.equal(router.size, 2);
    assert.equal(router.stats.strategy, 'p2c');
    assert.equal(router.stats.name, 'pools');
    assert.throws(
      () => new Router<string>([], { name: 'pools' }).pick(),
      /^NoTargetError: pools has no targets$/,
    );
  });
});
