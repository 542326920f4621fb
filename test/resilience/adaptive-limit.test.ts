import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { OverloadedError } from '../../src/errors.js';
import { Limiter } from '../../src/limit/index.js';
import { AdaptiveLimit, type AdaptiveLimitChange } from '../../src/resilience/index.js';
import { deferred } from '../helpers/async.js';

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe('AdaptiveLimit', () => {
  it('validates its options eagerly, with the option and value in the message', () => {
    const cases: [object, RegExp][] = [
      [
        { algorithm: 'vegas' },
        /Expected `algorithm` to be one of 'gradient', 'aimd', got `"vegas"` \(string\)$/,
      ],
      [{ min: 0 }, /Expected `min` to be a positive integer, got `0` \(number\)$/],
      [{ min: 5, max: 4 }, /Expected `max` to be an integer ≥ min \(5\), got `4` \(number\)$/],
      [
        { min: 2, max: 10, initial: 11 },
        /Expected `initial` to be an integer in \[min, max\] = \[2, 10\], got `11`/,
      ],
      [{ windowMs: -1 }, /`windowMs`/],
      [{ minSamples: 1.5 }, /`minSamples`/],
      [{ buffer: -0.1 }, /`buffer`/],
      [{ probeIntervalMs: 0 }, /`probeIntervalMs`/],
      [{ backoff: 1 }, /Expected `backoff` to be a number in \(0, 1\), got `1` \(number\)$/],
      [{ timeoutMs: 0 }, /`timeoutMs`/],
      [{ clock: {} }, /`clock`/],
    ];
    for (const [options, message] of cases) assert.throws(() => new AdaptiveLimit(options), message);
    assert.throws(() => new AdaptiveLimit(5 as never), /`options`/);
    const defaults = new AdaptiveLimit({ algorithm: 'aimd' });
    assert.deepEqual([defaults.limit, defaults.min, defaults.max], [20, 1, 1000]);
    assert.equal(
      new AdaptiveLimit({ max: 8, algorithm: 'aimd' }).limit,
      8,
      'initial clamped into [min, max]',
    );
    assert.equal(new AdaptiveLimit({ windowMs: '1s', probeIntervalMs: '1m' }).stats.algorithm, 'gradient');
  });

  it('gradient starts by probing its no-load latency at `min`, then returns to `initial`', () => {
    const limit = new AdaptiveLimit({ min: 2, initial: 30, minSamples: 3 });
    assert.deepEqual([limit.limit, limit.stats.probing], [2, true]);
    // A sample taken above `min` in flight does not count.
    limit.sample(50, 10, false, 1);
    limit.sample(10, 2, false, 2);
    limit.sample(12, 1, false, 3);
    assert.equal(limit.stats.probing, true);
    limit.sample(14, 2, false, 4);
    assert.deepEqual([limit.limit, limit.stats.probing, limit.stats.minRttMs], [30, false, 12]);
  });

  it('gradient shrinks when latency rises past minRtt × (1 + buffer), grows (with √ headroom) when it does not', () => {
    const limit = new AdaptiveLimit({
      min: 1,
      initial: 40,
      minSamples: 1,
      windowMs: 10,
      probeIntervalMs: Infinity,
    });
    limit.sample(10, 1, false, 0); // the probe: minRtt 10
    assert.equal(limit.limit, 40);
    let now = 0;
    const window = (rtt: number, inflight: number) => {
      now += 25;
      limit.sample(rtt, inflight, false, now);
    };
    window(10, 40); // the window after a probe may shrink the limit, not grow it
    assert.equal(limit.limit, 40);
    window(22, 40); // 2.2× minRtt: gradient clamped to 0.5 → 20 + √20
    const e1 = 20 + Math.sqrt(20);
    assert.equal(limit.limit, Math.floor(e1));
    window(11, 24); // within the 10% buffer: gradient 1 → e1 + √e1
    const e2 = e1 + Math.sqrt(e1);
    assert.equal(limit.limit, Math.floor(e2));
    window(5, 28); // faster than ever: minRtt follows it down, gradient 1.1
    assert.equal(limit.stats.minRttMs, 5);
    assert.equal(limit.limit, Math.floor(e2 * 1.1 + Math.sqrt(e2 * 1.1)));
  });

  it('never grows a limit that is not in use (in flight below half the limit)', () => {
    const limit = new AdaptiveLimit({
      min: 1,
      initial: 50,
      minSamples: 1,
      windowMs: 10,
      probeIntervalMs: Infinity,
    });
    limit.sample(10, 1, false, 0);
    for (let i = 1; i <= 20; i++) limit.sample(10, 3, false, i * 20);
    assert.equal(limit.limit, 50);
  });

  it('aimd: +1 per window while in use, × backoff after a window with a drop (or a latency over timeoutMs)', () => {
    const limit = new AdaptiveLimit({
      algorithm: 'aimd',
      initial: 20,
      minSamples: 2,
      windowMs: 10,
      timeoutMs: 100,
    });
    assert.equal(limit.stats.probing, false, 'aimd never probes');
    limit.sample(5, 20, false, 0);
    limit.sample(5, 20, false, 10);
    assert.equal(limit.limit, 21);
    limit.sample(5, 20, true, 15);
    limit.sample(5, 20, false, 20);
    assert.equal(limit.limit, Math.floor(21 * 0.9));
    limit.sample(150, 20, false, 200); // over timeoutMs: a drop
    limit.sample(5, 20, false, 210);
    assert.equal(limit.limit, Math.floor(21 * 0.9 * 0.9));
    assert.equal(limit.stats.drops, 2);
  });

  it('ignores samples that are not a finite latency ≥ 0, and samples of tasks started before the window', () => {
    const limit = new AdaptiveLimit({ algorithm: 'aimd', minSamples: 1, windowMs: 10 });
    for (const bad of [Number.NaN, -1, Infinity]) limit.sample(bad, 20, true, 5);
    assert.equal(limit.stats.samples, 0);
    limit.sample(5, 20, false, 100); // opens the window at 95, closes it at 100? no: 5 ms < 10
    limit.sample(1, 20, false, 106); // 11 ms after the window opened: closes it, +1
    assert.equal(limit.limit, 21);
    limit.sample(50, 20, true, 110); // started at 60, before the window opened at 106
    assert.equal(limit.stats.samples, 2);
    assert.equal(limit.stats.drops, 0);
  });

  it('reads its clock when sample() is given no time; a throwing clock is reported, not thrown', () => {
    let now = 0;
    const limit = new AdaptiveLimit({
      algorithm: 'aimd',
      minSamples: 1,
      windowMs: 10,
      clock: { now: () => now },
    });
    limit.sample(1, 20);
    now = 20;
    limit.sample(1, 20);
    assert.equal(limit.limit, 21);
    const reports: unknown[] = [];
    const onError = (m: unknown) => reports.push(m);
    subscribe('sluice:limit:error', onError);
    try {
      const broken = new AdaptiveLimit({
        clock: {
          now: () => {
            throw new Error('clock');
          },
        },
      });
      broken.sample(1, 1);
      assert.equal(reports.length, 1);
    } finally {
      unsubscribe('sluice:limit:error', onError);
    }
  });
});

describe('Limiter with an adaptive concurrency', () => {
  it("accepts 'adaptive' or an AdaptiveLimit; its limit is the limiter's concurrency; resize throws", () => {
    const limiter = new Limiter({ concurrency: 'adaptive' });
    assert.ok(limiter.adaptive instanceof AdaptiveLimit);
    assert.equal(limiter.concurrency, 1, 'probing at min first');
    assert.equal(limiter.stats.concurrency, limiter.adaptive.limit);
    assert.throws(() => limiter.resize(4), /^TypeError: Limiter has an adaptive concurrency/);
    assert.equal(new Limiter({ concurrency: 3 }).adaptive, undefined);
  });

  it('an AdaptiveLimit drives one Limiter only; a limiter with invalid options does not take it', () => {
    const limit = new AdaptiveLimit();
    assert.throws(() => new Limiter({ concurrency: limit, maxQueue: -1 }), /`maxQueue`/);
    const limiter = new Limiter({ concurrency: limit });
    assert.equal(limiter.adaptive, limit);
    assert.throws(() => new Limiter({ concurrency: limit }), /AdaptiveLimit no other Limiter uses/);
  });

  it('feeds every task latency, in-flight count and failure to the limit, on its clock; follows each change', async () => {
    let now = 0;
    const clock = { now: () => now };
    const limit = new AdaptiveLimit({ algorithm: 'aimd', initial: 2, minSamples: 2, windowMs: 10 });
    const changes: AdaptiveLimitChange[] = [];
    const onChange = (m: unknown) => changes.push(m as AdaptiveLimitChange);
    subscribe('sluice:limit:adaptive', onChange);
    try {
      const limiter = new Limiter({ concurrency: limit, clock, maxQueue: Infinity });
      const gates = Array.from({ length: 5 }, () => deferred());
      const runs = gates.map((g) => limiter.run(() => g.promise).catch(() => 'failed'));
      await flush();
      assert.equal(limiter.stats.running, 2);
      now = 4;
      gates[0]!.resolve();
      await flush();
      now = 12;
      gates[1]!.resolve(); // window closes at 12 ms with 2 samples, 2 in flight: +1 → 3
      await flush();
      assert.equal(limit.stats.samples, 2);
      assert.equal(limiter.concurrency, 3);
      assert.equal(limiter.stats.running, 3, 'the new slot was filled at once');
      now = 30;
      // The third task started at 4 ms, before the window that opened at 12: not a sample of
      // the current limit, ignored. The fourth failed: a drop.
      gates[2]!.resolve();
      gates[3]!.reject(new Error('boom'));
      gates[4]!.resolve();
      await Promise.all(runs);
      assert.equal(limit.stats.drops, 1);
      assert.equal(limiter.concurrency, 2, '3 × 0.9 after the failure');
      assert.deepEqual(
        changes.map((c) => [c.previous, c.limit, c.reason]),
        [
          [2, 3, 'window'],
          [3, 2, 'window'],
        ],
      );
      // Permits are samples too.
      const permit = await limiter.acquire();
      now = 31;
      permit.release();
      assert.equal(limit.stats.samples, 5);
    } finally {
      unsubscribe('sluice:limit:adaptive', onChange);
    }
  });

  it('composes with maxQueueWaitMs: what the limit cannot admit in time is shed', async () => {
    const limiter = new Limiter({
      concurrency: new AdaptiveLimit({ algorithm: 'aimd', initial: 1, max: 1 }),
      maxQueueWaitMs: 20,
    });
    // A real timer holds the slot (and keeps the process alive: the shedding timer is unref'd).
    const first = limiter.run(() => new Promise((resolve) => setTimeout(resolve, 60)));
    await assert.rejects(
      limiter.run(() => 'late'),
      OverloadedError,
    );
    await first;
    assert.equal(limiter.stats.shed, 1);
  });
});
