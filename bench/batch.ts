/**
 * `batch` benches: sluice's Loader against DataLoader and its BatchWriter against a hand-written
 * array buffer, same inputs, same run (fairness rules as in bench/limit.ts).
 *
 * - Every Loader impl calls the same batch function object (it returns the keys as values), and
 *   every run checks the values it got back, so no impl can skip work.
 * - DataLoader runs with its *default* options (unbounded cache, no batch size limit), because
 *   that is what its users run; sluice's Loader with its defaults (bounded cache of 10 000,
 *   `maxBatch` 1000). With `cache: false` DataLoader is faster; both no-cache variants are shown
 *   too, so the effect of caching is visible, not hidden.
 */
import DataLoader from 'dataloader';
import { BatchWriter, Loader } from '../src/batch/index.js';
import type { Case, Group } from './harness.js';

const LOADS = 200_000;
const BURST = 1000;
const WRITES = 200_000;
const WRITE_BATCH = 100;
const HEAP_KEYS = 1_000_000;

/** Throws unless `actual === expected`: a bench that skipped work must not report a number. */
function check(what: string, actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`${what}: expected ${expected}, got ${actual}`);
}

/** The one batch function every Loader impl uses: each key's value is the key. */
let batchCalls = 0;
const batchFn = (keys: readonly number[]): Promise<readonly number[]> => {
  batchCalls++;
  return Promise.resolve(keys);
};

/** Runs never repeat keys, so a cache from an earlier run can never answer. */
let offset = 0;

/*
 * The burst loop is written out once per impl (as bench/limit.ts does): one shared loop would
 * make its `load` call site megamorphic, and every impl would pay for the others' types.
 * Each loop loads `total` distinct keys in bursts of BURST concurrent loads, awaiting each burst.
 */

async function burstsSluice(loader: Loader<number, number>, total: number): Promise<number> {
  let sum = 0;
  const promises = new Array<Promise<number>>(BURST);
  for (let start = offset; start < offset + total; start += BURST) {
    for (let i = 0; i < BURST; i++) promises[i] = loader.load(start + i);
    const values = await Promise.all(promises);
    sum += values[BURST - 1]! - values[0]!;
  }
  offset += total;
  return sum;
}

async function burstsDataLoader(loader: DataLoader<number, number>, total: number): Promise<number> {
  let sum = 0;
  const promises = new Array<Promise<number>>(BURST);
  for (let start = offset; start < offset + total; start += BURST) {
    for (let i = 0; i < BURST; i++) promises[i] = loader.load(start + i);
    const values = await Promise.all(promises);
    sum += values[BURST - 1]! - values[0]!;
  }
  offset += total;
  return sum;
}

function verify(impl: string, sum: number, total: number): void {
  check(`${impl} values`, sum, (BURST - 1) * (total / BURST));
  check(`${impl} batch calls`, batchCalls, total / BURST);
}

/**
 * `batch/load-200k-burst1000`: 200k loads in bursts of 1000 distinct keys, each burst awaited
 * with `Promise.all` (a GraphQL layer resolving a list field).
 */
function loadGroup(): Group {
  let sluice!: Loader<number, number>;
  let dataloader!: DataLoader<number, number>;
  const reset = (): void => {
    batchCalls = 0;
  };
  const cases: Case[] = [
    {
      impl: 'sluice',
      setup: () => {
        reset();
        sluice = new Loader<number, number>(batchFn);
      },
      run: async () => verify('sluice', await burstsSluice(sluice, LOADS), LOADS),
    },
    {
      impl: 'dataloader (default options)',
      setup: () => {
        reset();
        dataloader = new DataLoader<number, number>(batchFn);
      },
      run: async () => verify('dataloader', await burstsDataLoader(dataloader, LOADS), LOADS),
    },
    {
      impl: 'sluice (cache: false)',
      setup: () => {
        reset();
        sluice = new Loader<number, number>(batchFn, { cache: false });
      },
      run: async () => verify('sluice (cache: false)', await burstsSluice(sluice, LOADS), LOADS),
    },
    {
      impl: 'dataloader (cache: false)',
      setup: () => {
        reset();
        dataloader = new DataLoader<number, number>(batchFn, { cache: false });
      },
      run: async () => verify('dataloader (cache: false)', await burstsDataLoader(dataloader, LOADS), LOADS),
    },
  ];
  return { bench: `batch/load-200k-burst${BURST}`, ops: LOADS, cases };
}

const HOT_KEYS = 10_000;

async function hotSluice(loader: Loader<number, number>, total: number): Promise<number> {
  let sum = 0;
  const promises = new Array<Promise<number>>(BURST);
  for (let start = 0; start < total; start += BURST) {
    for (let i = 0; i < BURST; i++) promises[i] = loader.load((start + i * 7) % HOT_KEYS);
    for (const value of await Promise.all(promises)) sum += value;
  }
  return sum;
}

async function hotDataLoader(loader: DataLoader<number, number>, total: number): Promise<number> {
  let sum = 0;
  const promises = new Array<Promise<number>>(BURST);
  for (let start = 0; start < total; start += BURST) {
    for (let i = 0; i < BURST; i++) promises[i] = loader.load((start + i * 7) % HOT_KEYS);
    for (const value of await Promise.all(promises)) sum += value;
  }
  return sum;
}

/**
 * `batch/load-200k-burst1000-hot10k`: the same bursts, but over 10 000 ids, so keys repeat
 * across bursts (a long-lived loader in front of a hot set): most loads are cache hits. Both
 * caches can hold the whole set.
 */
function hotGroup(): Group {
  let expected = 0;
  for (let start = 0; start < LOADS; start += BURST) {
    for (let i = 0; i < BURST; i++) expected += (start + i * 7) % HOT_KEYS;
  }
  let sluice!: Loader<number, number>;
  let dataloader!: DataLoader<number, number>;
  return {
    bench: `batch/load-200k-burst${BURST}-hot10k`,
    ops: LOADS,
    cases: [
      {
        impl: 'sluice',
        setup: () => {
          sluice = new Loader<number, number>(batchFn);
        },
        run: async () => check('sluice sum', await hotSluice(sluice, LOADS), expected),
      },
      {
        impl: 'dataloader (default options)',
        setup: () => {
          dataloader = new DataLoader<number, number>(batchFn);
        },
        run: async () => check('dataloader sum', await hotDataLoader(dataloader, LOADS), expected),
      },
    ],
  };
}

/**
 * `batch/loader-1m-keys-heap`: a long-lived loader after 1M distinct keys (bursts of 1000):
 * what it still retains. DataLoader's default cache keeps every key and promise; sluice's
 * default cache keeps at most 10 000.
 */
function heapGroup(): Group {
  let sluice: Loader<number, number> | undefined;
  let dataloader: DataLoader<number, number> | undefined;
  return {
    bench: 'batch/loader-1m-keys-heap',
    ops: HEAP_KEYS,
    heap: true,
    rounds: 3,
    cases: [
      {
        impl: 'sluice',
        setup: () => {
          batchCalls = 0;
          sluice = new Loader<number, number>(batchFn);
        },
        run: async (probe) => {
          const sum = await burstsSluice(sluice!, HEAP_KEYS);
          probe.alive(); // the loader is still referenced: its cache is what is measured
          verify('sluice', sum, HEAP_KEYS);
          sluice = undefined;
        },
      },
      {
        impl: 'dataloader (default options)',
        setup: () => {
          batchCalls = 0;
          dataloader = new DataLoader<number, number>(batchFn);
        },
        run: async (probe) => {
          const sum = await burstsDataLoader(dataloader!, HEAP_KEYS);
          probe.alive();
          verify('dataloader', sum, HEAP_KEYS);
          dataloader = undefined;
        },
      },
    ],
  };
}

/**
 * `batch/write-200k-i100`: 200k items written in batches of 100, each `add` awaited (the
 * backpressured producer pattern). The baseline is the hand-written buffer services start from:
 * push into an array, await the flush when it holds 100 — no bound across producers, no timer,
 * no retry, no shutdown story.
 */
function writeGroup(): Group {
  let written = 0;
  const flush = async (items: readonly number[]): Promise<void> => {
    written += items.length;
  };

  class ArrayBuffer {
    #items: number[] = [];
    async add(item: number): Promise<void> {
      this.#items.push(item);
      if (this.#items.length >= WRITE_BATCH) {
        const batch = this.#items;
        this.#items = [];
        await flush(batch);
      }
    }
    async close(): Promise<void> {
      if (this.#items.length > 0) await flush(this.#items);
      this.#items = [];
    }
  }

  let writer!: BatchWriter<number>;
  let buffer!: ArrayBuffer;
  return {
    bench: `batch/write-200k-i${WRITE_BATCH}`,
    ops: WRITES,
    cases: [
      {
        impl: 'sluice',
        setup: () => {
          written = 0;
          writer = new BatchWriter<number>(flush, { maxItems: WRITE_BATCH, maxWaitMs: 10 });
        },
        run: async () => {
          for (let i = 0; i < WRITES; i++) await writer.add(i);
          await writer.close();
          check('sluice written', written, WRITES);
        },
      },
      {
        impl: 'hand-written array buffer',
        setup: () => {
          written = 0;
          buffer = new ArrayBuffer();
        },
        run: async () => {
          for (let i = 0; i < WRITES; i++) await buffer.add(i);
          await buffer.close();
          check('array buffer written', written, WRITES);
        },
      },
    ],
  };
}

export default (): Group[] => [loadGroup(), hotGroup(), writeGroup(), heapGroup()];
