/**
 * `cache` benches: sluice's Cache against lru-cache, mnemonist's LRUCache, tiny-lru,
 * quick-lru and a plain `Map`, same inputs, same run; then hit ratios on three traces.
 *
 * Fairness rules (as in bench/limit.ts):
 * - every impl reads the same pre-built key strings in the same pre-drawn order (an integer
 *   LCG, so the order is the same on every machine); instances are built and filled in
 *   `setup` (untimed); each case has its own loop, so no impl pays for another's call-site
 *   polymorphism; each run checks that it did the work (every read of a get bench is a hit);
 * - "TTL on" means each impl's own TTL option with a 10-minute TTL (lru-cache `ttl`, tiny-lru's
 *   `ttl` argument, quick-lru `maxAge`); sluice's stats are always on;
 * - ratios are best-of-rounds, impls alternate (see harness.ts).
 */
import { LRUCache } from 'lru-cache';
import { LRUCache as MnemonistLRU } from 'mnemonist';
import QuickLRU from 'quick-lru';
import { lru, type LRU } from 'tiny-lru';
import { Cache } from '../src/cache/index.js';
import {
  loopTrace,
  oracle,
  recencyTrace,
  replay,
  zipfScanTrace,
  type Trace,
  type TraceCache,
} from './cache-traces.js';
import type { Case, Group } from './harness.js';

const GET_KEYS = 10_000;
const GETS = 2_000_000;
const SETS = 2_000_000;
const SET_MAX = 1_000;
const HEAP_ENTRIES = 1_000_000;
const TTL = 600_000;

function check(what: string, actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`${what}: expected ${expected}, got ${actual}`);
}

const keys: string[] = Array.from({ length: GET_KEYS }, (_, i) => `key:${i}`);

/** `n` indices in `[0, range)`, drawn by an integer LCG (exact on every machine). */
function draws(n: number, range: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0;
    out[i] = (x >>> 8) % range;
  }
  return out;
}

const getOrder = draws(GETS, GET_KEYS, 1);
const setOrder = draws(SETS, GET_KEYS, 2);

function fill(cache: { set(key: string, value: number): unknown }): void {
  for (let i = 0; i < GET_KEYS; i++) cache.set(keys[i]!, i);
}

/** `cache/get-2m-hits-10k[-ttl]`: 2M `get` hits spread over 10k keys in a full cache. */
function getGroup(ttl: boolean): Group {
  let sluice!: Cache<string, number>;
  let sluiceLru!: Cache<string, number>;
  let lruCache!: LRUCache<string, number>;
  let tiny!: LRU<number>;
  let quick!: QuickLRU<string, number>;
  let mnemonist!: MnemonistLRU<string, number>;
  let map!: Map<string, number>;
  const options = ttl ? { ttl: TTL } : {};

  const cases: Case[] = [
    {
      impl: 'sluice',
      setup: () => fill((sluice = new Cache<string, number>({ maxSize: GET_KEYS, ...options }))),
      run: async () => {
        let hits = 0;
        for (let i = 0; i < GETS; i++) if (sluice.get(keys[getOrder[i]!]!) !== undefined) hits++;
        check('sluice hits', hits, GETS);
        check('sluice stats', sluice.stats.hits, GETS);
      },
    },
    {
      impl: 'sluice (policy lru)',
      setup: () =>
        fill((sluiceLru = new Cache<string, number>({ maxSize: GET_KEYS, policy: 'lru', ...options }))),
      run: async () => {
        let hits = 0;
        for (let i = 0; i < GETS; i++) if (sluiceLru.get(keys[getOrder[i]!]!) !== undefined) hits++;
        check('sluice lru hits', hits, GETS);
      },
    },
    {
      impl: 'lru-cache',
      setup: () => fill((lruCache = new LRUCache<string, number>({ max: GET_KEYS, ...options }))),
      run: async () => {
        let hits = 0;
        for (let i = 0; i < GETS; i++) if (lruCache.get(keys[getOrder[i]!]!) !== undefined) hits++;
        check('lru-cache hits', hits, GETS);
      },
    },
    {
      impl: 'tiny-lru',
      setup: () => fill((tiny = lru<number>(GET_KEYS, ttl ? TTL : 0))),
      run: async () => {
        let hits = 0;
        for (let i = 0; i < GETS; i++) if (tiny.get(keys[getOrder[i]!]!) !== undefined) hits++;
        check('tiny-lru hits', hits, GETS);
      },
    },
    {
      impl: 'quick-lru',
      setup: () =>
        fill((quick = new QuickLRU<string, number>({ maxSize: GET_KEYS, ...(ttl ? { maxAge: TTL } : {}) }))),
      run: async () => {
        let hits = 0;
        for (let i = 0; i < GETS; i++) if (quick.get(keys[getOrder[i]!]!) !== undefined) hits++;
        check('quick-lru hits', hits, GETS);
      },
    },
  ];
  if (!ttl) {
    cases.push(
      {
        impl: 'mnemonist',
        setup: () => fill((mnemonist = new MnemonistLRU<string, number>(GET_KEYS))),
        run: async () => {
          let hits = 0;
          for (let i = 0; i < GETS; i++) if (mnemonist.get(keys[getOrder[i]!]!) !== undefined) hits++;
          check('mnemonist hits', hits, GETS);
        },
      },
      {
        impl: 'Map (unbounded, no policy)',
        setup: () => fill((map = new Map<string, number>())),
        run: async () => {
          let hits = 0;
          for (let i = 0; i < GETS; i++) if (map.get(keys[getOrder[i]!]!) !== undefined) hits++;
          check('Map hits', hits, GETS);
        },
      },
    );
  }
  return { bench: ttl ? 'cache/get-2m-hits-10k-ttl' : 'cache/get-2m-hits-10k', ops: GETS, cases };
}

/** `cache/set-2m-evict-1k`: 2M `set`s of keys drawn from 10k into caches of max 1000 (~90% evict). */
function setGroup(): Group {
  let sluice!: Cache<string, number>;
  let sluiceLru!: Cache<string, number>;
  let lruCache!: LRUCache<string, number>;
  let tiny!: LRU<number>;
  let quick!: QuickLRU<string, number>;
  let mnemonist!: MnemonistLRU<string, number>;
  const cases: Case[] = [
    {
      impl: 'sluice',
      setup: () => void (sluice = new Cache<string, number>({ maxSize: SET_MAX })),
      run: async () => {
        for (let i = 0; i < SETS; i++) sluice.set(keys[setOrder[i]!]!, i);
        check('sluice size', sluice.size, SET_MAX);
      },
    },
    {
      impl: 'sluice (policy lru)',
      setup: () => void (sluiceLru = new Cache<string, number>({ maxSize: SET_MAX, policy: 'lru' })),
      run: async () => {
        for (let i = 0; i < SETS; i++) sluiceLru.set(keys[setOrder[i]!]!, i);
        check('sluice lru size', sluiceLru.size, SET_MAX);
      },
    },
    {
      impl: 'lru-cache',
      setup: () => void (lruCache = new LRUCache<string, number>({ max: SET_MAX })),
      run: async () => {
        for (let i = 0; i < SETS; i++) lruCache.set(keys[setOrder[i]!]!, i);
        check('lru-cache size', lruCache.size, SET_MAX);
      },
    },
    {
      impl: 'mnemonist',
      setup: () => void (mnemonist = new MnemonistLRU<string, number>(SET_MAX)),
      run: async () => {
        for (let i = 0; i < SETS; i++) mnemonist.set(keys[setOrder[i]!]!, i);
        check('mnemonist size', mnemonist.size, SET_MAX);
      },
    },
    {
      impl: 'tiny-lru',
      setup: () => void (tiny = lru<number>(SET_MAX)),
      run: async () => {
        for (let i = 0; i < SETS; i++) tiny.set(keys[setOrder[i]!]!, i);
        check('tiny-lru size', tiny.size, SET_MAX);
      },
    },
    {
      // quick-lru keeps up to 2 × maxSize entries (two generations): it is given the same
      // `maxSize`, as its users do, and holds more.
      impl: 'quick-lru',
      setup: () => void (quick = new QuickLRU<string, number>({ maxSize: SET_MAX })),
      run: async () => {
        for (let i = 0; i < SETS; i++) quick.set(keys[setOrder[i]!]!, i);
        if (quick.size < SET_MAX) throw new Error('quick-lru did not fill');
      },
    },
  ];
  return { bench: 'cache/set-2m-evict-1k', ops: SETS, cases };
}

/** `cache/heap-1m`: bytes retained by 1M entries (number values, distinct string keys). */
function heapGroup(): Group {
  let heapKeys: string[] = [];
  const setup = (): void => {
    heapKeys = Array.from({ length: HEAP_ENTRIES }, (_, i) => `entry:${i}`);
  };
  const cases: Case[] = [
    {
      impl: 'sluice',
      setup,
      run: async (probe) => {
        const cache = new Cache<string, number>({ maxSize: HEAP_ENTRIES });
        for (let i = 0; i < HEAP_ENTRIES; i++) cache.set(heapKeys[i]!, i);
        probe.alive();
        check('sluice size', cache.size, HEAP_ENTRIES);
      },
    },
    {
      impl: 'sluice (ttl)',
      setup,
      run: async (probe) => {
        const cache = new Cache<string, number>({ maxSize: HEAP_ENTRIES, ttl: TTL });
        for (let i = 0; i < HEAP_ENTRIES; i++) cache.set(heapKeys[i]!, i);
        probe.alive();
        check('sluice ttl size', cache.size, HEAP_ENTRIES);
      },
    },
    {
      impl: 'lru-cache',
      setup,
      run: async (probe) => {
        const cache = new LRUCache<string, number>({ max: HEAP_ENTRIES });
        for (let i = 0; i < HEAP_ENTRIES; i++) cache.set(heapKeys[i]!, i);
        probe.alive();
        check('lru-cache size', cache.size, HEAP_ENTRIES);
      },
    },
    {
      impl: 'lru-cache (ttl)',
      setup,
      run: async (probe) => {
        const cache = new LRUCache<string, number>({ max: HEAP_ENTRIES, ttl: TTL });
        for (let i = 0; i < HEAP_ENTRIES; i++) cache.set(heapKeys[i]!, i);
        probe.alive();
        check('lru-cache ttl size', cache.size, HEAP_ENTRIES);
      },
    },
    {
      impl: 'Map (unbounded)',
      setup,
      run: async (probe) => {
        const map = new Map<string, number>();
        for (let i = 0; i < HEAP_ENTRIES; i++) map.set(heapKeys[i]!, i);
        probe.alive();
        check('Map size', map.size, HEAP_ENTRIES);
      },
    },
  ];
  return { bench: 'cache/heap-1m', ops: HEAP_ENTRIES, heap: true, rounds: 3, cases };
}

interface Row {
  readonly trace: string;
  readonly size: number;
  readonly sluice: number;
  readonly sluiceLru: number;
  readonly lruCache: number;
  readonly oracle: number;
}

/** Hit ratios of a read-through cache (get, set on miss) replaying each trace. */
export function hitRatios(): Row[] {
  return [zipfScanTrace(), loopTrace(), recencyTrace()].map((trace: Trace) => ({
    trace: trace.name,
    size: trace.size,
    sluice: replay(trace, new Cache<number, unknown>({ maxSize: trace.size })),
    sluiceLru: replay(trace, new Cache<number, unknown>({ maxSize: trace.size, policy: 'lru' })),
    lruCache: replay(trace, new LRUCache<number, object>({ max: trace.size }) as TraceCache),
    oracle: oracle(trace),
  }));
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
const pts = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}`;

export function formatHitRatios(rows: readonly Row[]): string {
  return [
    'Read-through replay (get, set on miss); oracle = the `size` most frequent keys of the trace, held throughout.',
    '',
    '| trace | size | sluice (s3-fifo) | sluice (lru) | lru-cache | most-frequent oracle | s3-fifo − LRU | oracle − s3-fifo |',
    '|---|--:|--:|--:|--:|--:|--:|--:|',
    ...rows.map(
      (r) =>
        `| ${r.trace} | ${r.size} | ${pct(r.sluice)} | ${pct(r.sluiceLru)} | ${pct(r.lruCache)} | ${pct(r.oracle)} | ${pts(r.sluice - r.lruCache)} | ${pts(r.oracle - r.sluice)} |`,
    ),
  ].join('\n');
}

export default (): Group[] => [getGroup(true), getGroup(false), setGroup(), heapGroup()];

/**
 * The hit-ratio table, run after the timed groups (its number-keyed caches would otherwise
 * shape the JIT feedback the string-keyed speed benches then run on). Not a speed measurement.
 */
export const report = {
  name: 'cache/hit-ratio',
  run(): string {
    return formatHitRatios(hitRatios());
  },
};
