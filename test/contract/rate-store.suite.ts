/**
 * The contract every `RateStore` keeps, as node:test tests: `rateStoreContract(label, open)`
 * registers a `describe(label)` whose tests run concurrently (each on its own limiter name, so
 * its own keys). Time is real (the store may use its own clock, as Redis `TIME` does): windows
 * are 300 ms and the tests sleep `retryAfterMs` where the contract promises it.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { RateLimiter, type RateAlgorithm, type RatePolicy, type RateStore } from '../../src/rate/index.js';

/** A store under test, and optional ways to look inside it. */
export interface StoreFixture {
  readonly store: RateStore;
  /**
   * The remaining time to live in ms of the state under `storeKey` (`<limiter name>:<key>`),
   * `-2` when there is none, `-1` when it never expires. Stores without expiry omit it.
   */
  readonly ttlMs?: (storeKey: string) => Promise<number>;
  /** Releases the fixture (closes the store and its client). */
  readonly close: () => Promise<void>;
}

const ALGORITHMS: readonly RateAlgorithm[] = ['gcra', 'token-bucket', 'fixed-window', 'sliding-window'];
const LIMIT = 4;
const WINDOW_MS = 300;
let names = 0;

/** The longest a key's state can take to become a fresh key's again, in ms. */
export function stateLifetimeMs(policy: RatePolicy): number {
  switch (policy.algorithm) {
    case 'gcra':
    case 'token-bucket':
      return Math.ceil((policy.capacity * policy.intervalUs) / 1000);
    case 'fixed-window':
      return policy.windowMs;
    case 'sliding-window':
      return Math.ceil(((policy.segments + 1) * policy.segmentUs) / 1000);
  }
}

/**
 * Registers the contract tests for the store `open()` gives. The key-expiry test is registered
 * only with `expiry: true` (the fixture then has `ttlMs`); an in-process store reclaims expired
 * state its own way, tested in test/rate/memory-store.test.ts.
 */
export function rateStoreContract(
  label: string,
  open: () => Promise<StoreFixture>,
  { expiry = true }: { readonly expiry?: boolean } = {},
): void {
  describe(label, { concurrency: true }, () => {
    let fixture: StoreFixture;
    before(async () => {
      fixture = await open();
    });
    after(async () => {
      await fixture.close();
    });

    const limiter = (algorithm: RateAlgorithm): RateLimiter =>
      new RateLimiter({
        limit: LIMIT,
        window: WINDOW_MS,
        algorithm,
        store: fixture.store,
        name: `contract-${process.pid}-${++names}-${algorithm}`,
        onStoreError: 'fail-closed',
      });

    /** Fixed windows: start the test early in a window, so a burst does not straddle two. */
    async function earlyInWindow(l: RateLimiter, key: string): Promise<void> {
      if (l.policy.algorithm !== 'fixed-window') return;
      const d = await l.peek(key);
      if (d.resetMs < WINDOW_MS / 2) await sleep(d.resetMs + 2);
    }

    for (const algorithm of ALGORITHMS) {
      test(`${algorithm}: the limit is honoured, a denial spends nothing, retryAfterMs is honoured`, async () => {
        const l = limiter(algorithm);
        const key = 'user 42 ✓';
        await earlyInWindow(l, key);
        for (let i = 0; i < LIMIT; i++) {
          const d = await l.consume(key);
          assert.equal(d.storeError, undefined);
          assert.equal(d.allowed, true, `request ${i + 1} of ${LIMIT}`);
          assert.equal(d.limit, LIMIT);
          assert.equal(d.remaining, LIMIT - i - 1);
          assert.equal(d.retryAfterMs, 0);
          assert.ok(d.resetMs > 0 && d.resetMs <= stateLifetimeMs(l.policy), `resetMs ${d.resetMs}`);
        }
        const denied = await l.consume(key);
        assert.equal(denied.allowed, false);
        assert.equal(denied.remaining, 0);
        assert.ok(denied.retryAfterMs > 0, 'a denial says when to retry');
        assert.ok(denied.retryAfterMs <= denied.resetMs, 'retry no later than the reset');
        assert.ok(denied.resetMs <= stateLifetimeMs(l.policy));
        // Denials spend nothing: a second one asks for no longer a wait.
        const again = await l.consume(key);
        assert.equal(again.allowed, false);
        assert.ok(again.retryAfterMs <= denied.retryAfterMs);
        await sleep(again.retryAfterMs + 2);
        const retried = await l.consume(key);
        assert.equal(retried.allowed, true, `allowed after sleeping retryAfterMs ${again.retryAfterMs}`);
        assert.equal(l.stats.denied, 2);
      });

      test(`${algorithm}: peek spends nothing; reset forgets; keys are independent`, async () => {
        const l = limiter(algorithm);
        const key = 'k';
        await earlyInWindow(l, key);
        for (let i = 0; i < 3; i++) {
          const p = await l.peek(key);
          assert.equal(p.allowed, true);
          assert.equal(p.remaining, LIMIT - 1);
        }
        for (let i = 0; i < LIMIT; i++) assert.equal((await l.consume(key)).allowed, true);
        const exhausted = await l.peek(key);
        assert.equal(exhausted.allowed, false);
        assert.ok(exhausted.retryAfterMs > 0);
        assert.equal((await l.consume(key)).allowed, false);
        // Another key, and the same key under another limiter name, are untouched.
        assert.equal((await l.consume('other')).remaining, LIMIT - 1);
        assert.equal((await limiter(algorithm).consume(key)).remaining, LIMIT - 1);
        await l.reset(key);
        const fresh = await l.consume(key);
        assert.equal(fresh.allowed, true);
        assert.equal(fresh.remaining, LIMIT - 1);
        assert.equal(l.stats.allowed, LIMIT + 2);
      });

      test(`${algorithm}: cost > 1 spends several units, all or nothing`, async () => {
        const l = limiter(algorithm);
        const key = 'bulk';
        await earlyInWindow(l, key);
        const three = await l.consume(key, { cost: 3 });
        assert.equal(three.allowed, true);
        assert.equal(three.remaining, LIMIT - 3);
        const two = await l.consume(key, { cost: 2 });
        assert.equal(two.allowed, false);
        assert.equal(two.remaining, LIMIT - 3, 'a denied cost spends nothing');
        const one = await l.consume(key, { cost: 1 });
        assert.equal(one.allowed, true);
        assert.equal(one.remaining, 0);
        const zero = await l.consume(key, { cost: 0 });
        assert.equal(zero.allowed, true);
        assert.equal(zero.remaining, 0);
      });

      if (!expiry) continue;
      test(`${algorithm}: keys expire once their state is a fresh key's`, async () => {
        const ttlMs = fixture.ttlMs;
        assert.ok(ttlMs !== undefined, 'a fixture with expiry: true gives ttlMs');
        const l = limiter(algorithm);
        const storeKey = `${l.policy.name}:ttl`;
        assert.equal(await ttlMs(storeKey), -2, 'a peek writes nothing');
        await l.peek('ttl');
        assert.equal(await ttlMs(storeKey), -2, 'a peek writes nothing');
        await l.consume('ttl');
        const ttl = await ttlMs(storeKey);
        assert.ok(ttl > 0 && ttl <= stateLifetimeMs(l.policy), `TTL ${ttl} ms`);
        await l.reset('ttl');
        assert.equal(await ttlMs(storeKey), -2, 'reset deletes the key');
      });
    }
  });
}
