// Seed 003 (validation engine): the memory cache took a lock around every read, and lookups
// queued behind each other under concurrent requests (target: < 0.5 ms). The same lookups
// through an LRU guarded by an async mutex vs a synchronous Cache.get.
import { Cache } from '../src/cache/index.js';
import { Mutex } from '../src/limit/index.js';
import { Latencies, round, summarize } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const ENTRIES = 10_000;
const REQUESTS = 200;
const LOOKUPS = 50;
const TARGET_MS = 0.5;

/** The replaced design: a Map in LRU order, every read under one async lock. */
class LockedLru<V> {
  readonly #map = new Map<string, V>();
  readonly #lock = new Mutex({ maxQueue: Infinity });

  constructor(readonly max: number) {}

  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as string);
  }

  get(key: string): Promise<V | undefined> {
    return this.#lock.run(() => {
      const value = this.#map.get(key);
      if (value !== undefined) {
        this.#map.delete(key);
        this.#map.set(key, value);
      }
      return value;
    });
  }
}

/** The keys each request looks up: seeded, so both designs see the same ones. */
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
  workload: `${REQUESTS} concurrent validation requests × ${LOOKUPS} cache lookups over ${ENTRIES} entries: LRU behind an async lock vs Cache.get`,
  async run(ctx) {
    const plan = lookups();
    const locked = new LockedLru<number>(ENTRIES);
    const cache = new Cache<string, number>({ maxSize: ENTRIES, ttl: '10m' });
    for (let i = 0; i < ENTRIES; i++) {
      locked.set(`rule:${i}`, i);
      cache.set(`rule:${i}`, i);
    }

    // Naive: each request awaits every lookup, all requests at once, so lookups queue on the lock.
    ctx.progress(0, 2, 'locked');
    const naive = new Latencies();
    let naiveSum = 0;
    const t0 = performance.now();
    await Promise.all(
      plan.map(async (keys) => {
        for (const key of keys) {
          const start = performance.now();
          const value = await locked.get(key);
          naive.record(performance.now() - start);
          naiveSum += value ?? 0;
        }
      }),
    );
    const naiveMs = performance.now() - t0;

    // sluice: the same requests, each lookup a synchronous get (nothing to wait for).
    ctx.progress(1, 2, 'sluice');
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
          sum += value ?? 0;
        }
      }),
    );
    const sluiceMs = performance.now() - t1;
    const ours = summarize(samples);
    const theirs = naive.summary();
    const ok =
      sum === naiveSum &&
      cache.stats.hits === REQUESTS * LOOKUPS &&
      ours.p99 < TARGET_MS &&
      ours.count === theirs.count;
    const us = (ms: number): string => `${round(ms * 1000, 2)} µs`;
    return {
      naive: { p50: us(theirs.p50), p99: us(theirs.p99), max: us(theirs.max), totalMs: round(naiveMs) },
      sluice: { p50: us(ours.p50), p99: us(ours.p99), max: us(ours.max), totalMs: round(sluiceMs) },
      ratio: round(theirs.p99 / Math.max(ours.p99, 1e-6), 0),
      invariant: `p99 lookup ${us(ours.p99)} < ${TARGET_MS} ms target (locked LRU p99 ${us(theirs.p99)}); same ${ours.count} values from both`,
      ok,
    };
  },
};

export default lookupLatency;
