// Seed 003 (validation engine): the memory cache took a lock around every read, so lookups
// queued behind each other under concurrent requests (target: < 0.5 ms per lookup, with 1000+
// concurrent requests). The same lookups through an LRU guarded by an async mutex vs Cache.get.
import { Cache } from '../src/cache/index.js';
import { Mutex } from '../src/limit/index.js';
import { Latencies, round, summarize } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const ENTRIES = 10_000;
const REQUESTS = 1000;
const LOOKUPS = 10;
const BATCH = 200_000;
const TARGET_MS = 0.5;

interface ValidationResult {
  readonly rule: number;
  readonly valid: boolean;
}

/** The replaced design (the report's AsyncLRUCache): an LRU-ordered Map, every read under one async lock. */
class LockedLru<V> {
  readonly #map = new Map<string, V>();
  readonly #lock = new Mutex({ maxQueue: Infinity });
  #waiting = 0;
  /** The longest the lock's queue got. */
  maxWaiting = 0;

  constructor(readonly max: number) {}

  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as string);
  }

  get(key: string): Promise<V | undefined> {
    if (++this.#waiting > this.maxWaiting) this.maxWaiting = this.#waiting;
    return this.#lock.run(() => {
      this.#waiting--;
      const value = this.#map.get(key);
      if (value !== undefined) {
        this.#map.delete(key);
        this.#map.set(key, value);
      }
      return value;
    });
  }
}

/** The rule keys each request looks up: seeded, so both designs see the same ones. */
function lookups(): string[][] {
  let x = 3;
  return Array.from({ length: REQUESTS }, () =>
    Array.from({ length: LOOKUPS }, () => {
      x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0;
      return `rule:${(x >>> 8) % ENTRIES}`;
    }),
  );
}

const lookupLatency: Scenario = {
  seed: '003',
  name: 'lookup-latency',
  api: null,
  pattern: 'no lock around a synchronous read; Cache.get here, any in-memory LRU would do',
  workload: `${REQUESTS} concurrent validation requests × ${LOOKUPS} cache lookups over ${ENTRIES} entries: LRU behind an async lock vs Cache.get (TTL on)`,
  async run(ctx) {
    const plan = lookups();
    const locked = new LockedLru<ValidationResult>(ENTRIES);
    const cache = new Cache<string, ValidationResult>({ maxSize: ENTRIES, ttl: '10m' });
    for (let i = 0; i < ENTRIES; i++) {
      const result = { rule: i, valid: i % 7 !== 0 };
      locked.set(`rule:${i}`, result);
      cache.set(`rule:${i}`, result);
    }
    const check = (r: ValidationResult | undefined): number => (r === undefined ? -1e9 : r.rule);

    // Naive: all requests at once, each awaiting its lookups in turn, so lookups queue on the lock.
    ctx.progress(0, 3, 'locked');
    const naive = new Latencies();
    let naiveSum = 0;
    const t0 = performance.now();
    await Promise.all(
      plan.map(async (keys) => {
        for (const key of keys) {
          const start = performance.now();
          const value = await locked.get(key);
          naive.record(performance.now() - start);
          naiveSum += check(value);
        }
      }),
    );
    const naiveMs = performance.now() - t0;

    // sluice: the same requests, each lookup a synchronous get: nothing to wait for.
    ctx.progress(1, 3, 'sluice');
    const samples: number[] = [];
    let sum = 0;
    const t1 = performance.now();
    await Promise.all(
      plan.map(async (keys) => {
        await Promise.resolve(); // requests arrive as separate jobs, as they would from a server
        for (const key of keys) {
          const start = performance.now();
          const value = cache.get(key);
          samples.push(performance.now() - start);
          sum += check(value);
        }
      }),
    );
    const sluiceMs = performance.now() - t1;

    // Cross-check without per-lookup timer overhead: one timed batch of lookups, mean per get.
    ctx.progress(2, 3, 'batch');
    const flat = plan.flat();
    let batchSum = 0;
    const t2 = performance.now();
    for (let i = 0; i < BATCH; i++) batchSum += check(cache.get(flat[i % flat.length] as string));
    const batchMeanMs = (performance.now() - t2) / BATCH;

    const ours = summarize(samples);
    const theirs = naive.summary();
    const expected = flat.reduce((s, k) => s + Number(k.slice(5)), 0);
    const ok =
      sum === expected &&
      naiveSum === expected &&
      batchSum === expected * (BATCH / flat.length) &&
      cache.stats.hits === REQUESTS * LOOKUPS + BATCH &&
      ours.count === theirs.count &&
      ours.p99 < TARGET_MS &&
      ours.mean < TARGET_MS;
    const us = (ms: number): string => `${round(ms * 1000, 2)} µs`;
    return {
      naive: {
        mean: us(theirs.mean),
        p50: us(theirs.p50),
        p99: us(theirs.p99),
        max: us(theirs.max),
        lockQueue: locked.maxWaiting,
        totalMs: round(naiveMs),
      },
      sluice: {
        mean: us(ours.mean),
        p50: us(ours.p50),
        p99: us(ours.p99),
        max: us(ours.max),
        batchMean: `${round(batchMeanMs * 1e6)} ns`,
        totalMs: round(sluiceMs),
      },
      headline: {
        measure: 'p99 lookup',
        unit: 'µs',
        naive: round(theirs.p99 * 1000, 2),
        sluice: round(ours.p99 * 1000, 2),
        better: 'lower',
      },
      invariant: `p99 lookup ${us(ours.p99)} (mean ${us(ours.mean)}) < ${TARGET_MS} ms target; locked LRU p99 ${us(theirs.p99)} with up to ${locked.maxWaiting} readers queued; same ${ours.count} values from both`,
      ok,
    };
  },
};

export default lookupLatency;
