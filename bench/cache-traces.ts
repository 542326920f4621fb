/**
 * Hit-ratio traces for `bench/cache.ts`: seeded, exact-integer generators (`Math.imul`), so a
 * trace is the same sequence of keys on every machine and every run.
 */

/** Mulberry32: a 32-bit state advanced with integer arithmetic only. Returns `[0, 2^32)`. */
export function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * Zipf(`s`) over keys `0 … n-1` (key 0 most popular). The CDF is a table of `2^32`-scaled
 * integers, so drawing a key is an integer comparison against an integer draw.
 */
export function zipf(n: number, s: number, next: () => number): () => number {
  const weights = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) total += weights[i] = 1 / Math.pow(i + 1, s);
  const cdf = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    acc += weights[i]!;
    cdf[i] = Math.min(Math.floor((acc / total) * 2 ** 32), 2 ** 32 - 1);
  }
  cdf[n - 1] = 2 ** 32;
  return () => {
    const u = next();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}

/** A trace: the keys requested, in order. */
export interface Trace {
  readonly name: string;
  readonly keys: Int32Array;
  readonly size: number;
}

/**
 * 500k requests of Zipf(0.9) over 100k keys, with a one-pass scan of 20k never-seen keys
 * after every 50k requests (700k requests in all), cache size 2000.
 */
export function zipfScanTrace(seed = 42): Trace {
  const next = rng(seed);
  const draw = zipf(100_000, 0.9, next);
  const keys = new Int32Array(700_000);
  let k = 0;
  let cold = 1_000_000;
  for (let block = 0; block < 10; block++) {
    for (let i = 0; i < 50_000; i++) keys[k++] = draw();
    for (let i = 0; i < 20_000; i++) keys[k++] = cold++;
  }
  return { name: 'zipf(0.9)+scan', keys, size: 2000 };
}

/** A loop over 3000 keys, 100 times (300k requests), cache size 2000: LRU's worst case. */
export function loopTrace(): Trace {
  const keys = new Int32Array(300_000);
  for (let i = 0; i < keys.length; i++) keys[i] = i % 3000;
  return { name: 'loop 3000', keys, size: 2000 };
}

/**
 * Recency-biased: 70% of requests repeat the key requested `d` requests ago, with `d` skewed
 * towards small distances (`d = 1 + ⌊u³ · 20 000⌋`); the other 30% are keys never seen
 * before. 500k requests, cache size 2000: what LRU is best at.
 */
export function recencyTrace(seed = 7): Trace {
  const next = rng(seed);
  const n = 500_000;
  const keys = new Int32Array(n);
  let fresh = 0;
  for (let i = 0; i < n; i++) {
    const r = next();
    if (i > 0 && r % 10 < 7) {
      const u = next() / 2 ** 32;
      const d = Math.min(i, 1 + Math.floor(u * u * u * 20_000));
      keys[i] = keys[i - d]!;
    } else {
      keys[i] = fresh++;
    }
  }
  return { name: 'recency-biased', keys, size: 2000 };
}

/** What a cache needs to replay a trace. */
export interface TraceCache {
  get(key: number): unknown;
  set(key: number, value: unknown): unknown;
}

/** Replays `trace` as a read-through cache: `get`, and `set` on a miss. Returns the hit ratio. */
export function replay(trace: Trace, cache: TraceCache): number {
  const keys = trace.keys;
  let hits = 0;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (cache.get(key) !== undefined) hits++;
    else cache.set(key, true);
  }
  return hits / keys.length;
}

/** The static oracle: the `trace.size` most frequent keys of the trace, always held. */
export function oracle(trace: Trace): number {
  const counts = new Map<number, number>();
  for (const key of trace.keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  const top = [...counts.values()].sort((a, b) => b - a).slice(0, trace.size);
  return top.reduce((a, b) => a + b, 0) / trace.keys.length;
}
