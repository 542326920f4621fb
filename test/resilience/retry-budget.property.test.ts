import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RetryBudget } from '../../src/resilience/index.js';

describe('RetryBudget', () => {
  it('never grants more than floor·window + ratio·successes within the trailing window (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 2, noNaN: true }),
        fc.double({ min: 0, max: 20, noNaN: true }),
        fc.integer({ min: 100, max: 20_000 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 3000 }) }),
            fc.record({ op: fc.constant('deposit' as const), n: fc.integer({ min: 1, max: 20 }) }),
            fc.record({ op: fc.constant('withdraw' as const), n: fc.integer({ min: 1, max: 20 }) }),
          ),
          { maxLength: 200 },
        ),
        (ratio, minPerSecond, windowMs, buckets, ops) => {
          let now = 5_000;
          const budget = new RetryBudget({
            ratio,
            minPerSecond,
            windowMs,
            buckets,
            clock: { now: () => now },
          });
          const deposits: number[] = [];
          const retries: number[] = [];
          const within = (list: number[], t: number) => list.filter((x) => x > t - windowMs && x <= t).length;
          let granted = 0;
          for (const o of ops) {
            if (o.op === 'advance') now += o.ms;
            else if (o.op === 'deposit') {
              for (let i = 0; i < o.n; i++) {
                budget.deposit();
                deposits.push(now);
              }
            } else {
              for (let i = 0; i < o.n; i++) {
                if (!budget.tryWithdraw()) continue;
                granted++;
                retries.push(now);
                const bound = (minPerSecond * windowMs) / 1000 + ratio * within(deposits, now);
                assert.ok(
                  within(retries, now) <= bound + 1e-9,
                  `${within(retries, now)} retries in the window > ${bound}`,
                );
              }
            }
          }
          assert.equal(budget.stats.withdrawals, granted);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('grants the floor with no successes, and ratio × successes on top; refusals are counted', () => {
    let now = 0;
    const budget = new RetryBudget({
      ratio: 0.5,
      minPerSecond: 1,
      windowMs: 2000,
      clock: { now: () => now },
    });
    assert.equal(budget.tryWithdraw(), true);
    assert.equal(budget.tryWithdraw(), true);
    assert.equal(budget.tryWithdraw(), false, 'floor = 1/s × 2 s = 2');
    for (let i = 0; i < 10; i++) budget.deposit();
    let more = 0;
    while (budget.tryWithdraw()) more++;
    assert.equal(more, 5, '0.5 × 10 successes');
    assert.equal(budget.stats.denied, 2);
    now += 2500; // everything slid out of the window
    assert.equal(budget.stats.available, 2);
    assert.throws(() => new RetryBudget({ ratio: -1 }), RangeError);
    assert.throws(() => new RetryBudget({ windowMs: 0 }), RangeError);
  });
});
