import { Cache } from '../cache/index.js';
import { IntTable, isInt32 } from '../internal/int-table.js';
import { BatchResultError, ClosedError, QueueFullError } from '../errors.js';
import { channels } from '../internal/channels.js';
import { reportError } from '../internal/report.js';
import { captureContext, type ContextRunner } from '../internal/context.js';
import { monotonicClock, type Clock } from '../internal/clock.js';
import { Deque } from '../internal/deque.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import { schedule, type Timer } from '../internal/timer.js';
import * as v from '../internal/validate.js';
import type { Outcome } from '../limit/settle.js';
import type { CacheLike } from './cache-like.js';

/** What a batch function may return: values aligned with the keys, or a `Map` keyed by them. */
export type BatchResult<K, V> = ReadonlyArray<V | Error> | ReadonlyMap<K, V | Error>;

/** Context passed to a batch function. */
export interface BatchContext {
  /** Aborts when every load waiting on this batch has aborted (see {@link LoaderLoadOptions.signal}). */
  readonly signal: AbortSignal;
}

/**
 * Loads many keys in one call. Return an array aligned with `keys` (an `Error` at a position
 * rejects only that key) or a `Map` from key to value (a key missing from the map rejects with
 * `BatchResultError`). An array of the wrong length, a throw or a rejection fails every key.
 * `keys` is a fresh array per call that the Loader never reads again: sorting or emptying it
 * is harmless (an array result still aligns with the order the keys were sent in).
 * It runs in the async context (`AsyncLocalStorage`) of the load that opened the batch — also
 * when the batch waited behind `maxConcurrentBatches` and another batch's completion starts it.
 */
export type BatchFn<K, V> = (
  keys: readonly K[],
  context: BatchContext,
) => BatchResult<K, V> | PromiseLike<BatchResult<K, V>>;

/** Options of {@link Loader}. */
export interface LoaderOptions<K, V, C = K> {
  /**
   * Names this loader in its errors' messages, its `stats` and its channel payloads (a service
   * has many).
   * @default 'Loader'
   */
  readonly name?: string | undefined;
  /**
   * Most keys sent to one call of the batch function; a full batch is dispatched at once and
   * later keys start a new one.
   * @default 1000
   */
  readonly maxBatch?: number | undefined;
  /**
   * Most batch-function calls in flight at once. Further batches wait, FIFO, until one settles.
   * @default Infinity
   */
  readonly maxConcurrentBatches?: number | undefined;
  /**
   * Bound on keys waiting undispatched while `maxConcurrentBatches` is finite; a load that
   * would exceed it rejects with `QueueFullError` (`SLUICE_QUEUE_FULL`). Ignored when
   * `maxConcurrentBatches` is `Infinity` (batches then never wait beyond the current tick).
   * @default 10_000
   */
  readonly maxQueue?: number | undefined;
  /**
   * When a batch is dispatched. `'microtask'`: once the current tick's promise jobs have run
   * (DataLoader's schedule), so loads issued across `await`s of already-resolved promises
   * still share a batch. `{ waitMs }`: a window of `waitMs` after the batch's first key (one
   * timer per batch; kept referenced because callers are awaiting it). A full batch never waits.
   * @default 'microtask'
   */
  readonly schedule?:
    | 'microtask'
    | {
        /** How long the first load of a batch waits for more, in ms. */
        readonly waitMs: number;
      }
    | undefined;
  /**
   * Per-key entries, keyed by `cacheKey(key)`: a key's entry is stored when its load joins a
   * batch, so later loads share it while in flight, and keep it once fulfilled; a rejected key's
   * entry is removed (errors are never cached). `true`: a bounded `sluice/cache` `Cache` of
   * `cacheSize` entries (and `cacheTtl`). `false`: no cache; duplicate keys within one batch
   * are still sent once, but a key in flight is not shared with a later batch. Or any
   * {@link CacheLike} (it holds opaque {@link LoaderEntry} objects).
   * Cost: with a sluice `Cache`, one `getOrSet` per load (one key lookup; on a miss the key's
   * entry is stored at once); with another {@link CacheLike}, one `get` per load and one `set`
   * per key sent.
   * @default true
   */
  readonly cache?: boolean | CacheLike<C, LoaderEntry<V>> | undefined;
  /**
   * Entries of the default cache (`cache: true`). Each holds a settled promise and its value.
   * @default 10_000
   */
  readonly cacheSize?: number | undefined;
  /**
   * Time to live of the default cache's entries, in ms.
   * @default Infinity (entries leave only by eviction or `clear`)
   */
  readonly cacheTtl?: number | undefined;
  /**
   * Maps a key to its cache and deduplication identity, e.g. `(k) => k.id` for object keys.
   * Cost: one call per load.
   * @default the key itself
   */
  readonly cacheKey?: ((key: K) => C) | undefined;
  /**
   * Time source for `stats.batchMs`, in ms. Read twice per batch.
   * @default monotonic `performance.now()`
   */
  readonly clock?: Clock | undefined;
}

/** What a {@link Loader} keeps in its cache per key: opaque, but its `promise` may be read. */
export interface LoaderEntry<V> {
  /** The key's load: pending while its batch is in flight, fulfilled once cached for good. */
  readonly promise: Promise<V>;
}

/** Per-call options of {@link Loader.load} and {@link Loader.loadMany}. */
export interface LoaderLoadOptions {
  /**
   * Aborting rejects this load with `signal.reason` at once (other loads of the same key are
   * unaffected). When every load waiting on a batch has aborted, the batch is dropped before
   * dispatch, or its batch-function `signal` aborts if it is already in flight.
   */
  readonly signal?: AbortSignal | undefined;
}

/** Counters and gauges of a {@link Loader}; reading them is free. */
export interface LoaderStats {
  /** The `name` option. */
  readonly name: string;
  /** Calls to `load` (including those made by `loadMany`). */
  readonly loads: number;
  /** Loads answered from the cache. */
  readonly cacheHits: number;
  /** Loads that joined a key already pending in a batch (not sent again). */
  readonly dedups: number;
  /** Batch-function calls made. */
  readonly batches: number;
  /** Keys sent to the batch function. */
  readonly keys: number;
  /** `keys / batches` (0 before the first batch). */
  readonly meanBatchSize: number;
  /** Batch-function calls that threw, rejected or returned a malformed result. */
  readonly failedBatches: number;
  /** Batches dropped or aborted because every waiting load aborted. */
  readonly abortedBatches: number;
  /** Loads whose signal aborted. */
  readonly aborted: number;
  /** Loads refused: `QueueFullError`, `ClosedError`, `InvalidInputError`. */
  readonly rejected: number;
  /** Batch-function calls in flight now. */
  readonly inFlight: number;
  /** Keys collected but not yet dispatched now. */
  readonly queued: number;
  /** Total time batch-function calls took, in ms. */
  readonly batchMs: number;
  /**
   * Calls of `cacheKey` or of a user-supplied cache's methods that threw; each is published on
   * `sluice:batch:error` as `{ error, source, where }`, and the load it belonged to (if any)
   * rejects with the error. Never breaks the Loader or another load.
   */
  readonly callbackFailures: number;
}

type Resolve = (value: unknown) => void;

const OPEN = 0;
const SEALED = 1;
const IN_FLIGHT = 2;
const DONE = 3;

/**
 * A cached key: its promise and, while it is collected or in flight, its resolver and batch;
 * once settled, its value (or, for a primed error, the error with `failed` set), so that a
 * cache hit can be answered without adopting the promise.
 */
class Entry<V, K, C> implements LoaderEntry<V> {
  value: unknown = undefined;
  failed = false;
  constructor(
    public promise: Promise<V>,
    public resolve: Resolve | undefined,
    public batch: Batch<K, C, V> | undefined,
  ) {}
}

/** One batch: keys, and in parallel their cache entries or (without a cache) their resolvers. */
class Batch<K, C, V> {
  readonly keys: K[] = [];
  /** Cache keys, only when a `cacheKey` function is set (otherwise `keys`). */
  readonly ckeys: C[] | undefined;
  /** Without a cache: each key's resolver (a load then needs no object but its promise). */
  readonly resolves: Resolve[] | undefined;
  /** With a cache: each key's entry, which holds its resolver. */
  readonly entries: Entry<V, K, C>[] | undefined;
  /** Loads still waiting on this batch (aborted ones leave). */
  live = 0;
  state = OPEN;
  /** Created when the batch function first reads `context.signal` (most never do). */
  controller: AbortController | undefined = undefined;
  /** Every load waiting on the batch aborted while it was in flight. */
  abandoned = false;
  timer: Timer | undefined = undefined;
  reason: unknown = undefined;
  startedAt = 0;
  /** Position of each entry's key in the deduplicated key list; only when there were duplicates. */
  positions: number[] | undefined = undefined;
  /** The keys sent, each once (`keys` itself when there were no duplicates); never handed out. */
  sent: readonly K[] | undefined = undefined;
  /** Cache hits answered when this batch settles, and their entries (allocated on first hit). */
  hits: Resolve[] | undefined = undefined;
  hitEntries: Entry<V, K, C>[] | undefined = undefined;
  /** The async context of the load that opened the batch: the batch function runs in it. */
  readonly context: ContextRunner = captureContext();

  constructor(withCacheKeys: boolean, withEntries: boolean) {
    this.ckeys = withCacheKeys ? [] : undefined;
    this.entries = withEntries ? [] : undefined;
    this.resolves = withEntries ? undefined : [];
  }
}

/** The batch function's context; its signal is allocated on first read. */
class Context<K, C, V> implements BatchContext {
  readonly #batch: Batch<K, C, V>;

  constructor(batch: Batch<K, C, V>) {
    this.#batch = batch;
  }

  get signal(): AbortSignal {
    const batch = this.#batch;
    if (batch.controller === undefined) {
      batch.controller = new AbortController();
      if (batch.abandoned) batch.controller.abort(batch.reason);
    }
    return batch.controller.signal;
  }
}

const resolved = Promise.resolve();
/** The promise of a spare entry (see `Loader#spare`) until a load fills it in; never awaited. */
const unfilled: Promise<unknown> = resolved;
const channel = channels('batch', ['dispatch', 'settle', 'error']);

/**
 * Coalesces individual `load(key)` calls made in the same tick into calls of a batch function,
 * deduplicates keys and caches fulfilled results in a bounded cache: the N+1 query killer.
 *
 * - **Batching**: keys loaded in one tick (or one `waitMs` window) go to the batch function
 *   together, each distinct key once, at most `maxBatch` per call; results map back by position
 *   (or by key from a `Map`), so each load receives its own value or error.
 * - **Caching**: each key's entry (its promise) goes into a bounded `Cache` (default 10 000
 *   entries) when the key is first loaded, so a key in flight is shared by later loads while
 *   the cache holds it; a rejected key's entry is removed (errors are never cached). A cache
 *   hit resolves together with the batch open at the time (or, with none open, on the schedule
 *   a batch would use), so loads chained off hits and off misses of one tick share the next
 *   batch instead of splitting into two.
 * - **Bound**: at most `maxConcurrentBatches` calls in flight; beyond, batches wait FIFO and at
 *   most `maxQueue` keys wait (then `QueueFullError`).
 * - **Cancellation**: a load's `signal` rejects that load with `signal.reason`; a batch every
 *   load of which aborted is dropped, or aborted through the batch function's `signal`.
 * - **Shutdown**: `close()` dispatches what is collected, refuses new loads with `ClosedError`
 *   and resolves when no batch is in flight.
 *
 * @example
 * ```ts
 * import { Loader } from 'sluice/batch';
 * const users = new Loader<number, User>(async (ids) => {
 *   const { rows } = await db.query('SELECT * FROM users WHERE id = ANY($1)', [ids]);
 *   return new Map(rows.map((u) => [u.id, u]));
 * });
 * const [a, b] = await Promise.all([users.load(1), users.load(2)]); // one query
 * ```
 */
export class Loader<K, V, C = K> implements AsyncDisposable {
  readonly #batchFn: BatchFn<K, V>;
  readonly #name: string;
  readonly #maxBatch: number;
  readonly #maxConcurrent: number;
  readonly #maxQueue: number;
  /** `maxQueue`, or `Infinity` when batches never wait (`maxConcurrentBatches: Infinity`). */
  readonly #maxQueued: number;
  readonly #waitMs: number | undefined;
  readonly #cache: CacheLike<C, Entry<V, K, C>> | undefined;
  /** `#cache` when it is a sluice `Cache`: looked up and filled with one `getOrSet`. */
  readonly #sluiceCache: Cache<C, Entry<V, K, C>> | undefined;
  /** An entry `getOrSet` may store on a miss; kept for the next load after a hit. */
  #spare: Entry<V, K, C> | undefined = undefined;
  readonly #cacheKey: ((key: K) => C) | undefined;
  readonly #clock: Clock;
  /** Sealed batches waiting for a slot; a batch every load of which aborted is dropped (dead). */
  readonly #waiting = new Deque<Batch<K, C, V>, undefined>(isDone);
  #open: Batch<K, C, V> | undefined = undefined;
  #inFlight = 0;
  #queued = 0;
  #closed = false;
  /** `#afterBatch` is running (see there). */
  #starting = false;
  #idle: (() => void)[] = [];

  #loads = 0;
  #cacheHits = 0;
  #dedups = 0;
  #batches = 0;
  #keys = 0;
  #failedBatches = 0;
  #abortedBatches = 0;
  #aborted = 0;
  #rejected = 0;
  #batchMs = 0;
  #callbackFailures = 0;

  constructor(batchFn: BatchFn<K, V>, options: LoaderOptions<K, V, C> = {}) {
    v.isFunction('batchFn', batchFn);
    v.options('options', options);
    this.#batchFn = batchFn;
    this.#name = options.name === undefined ? 'Loader' : v.string('name', options.name);
    // `=== undefined`, not `??`: an option given as null is a mistake, not the default.
    this.#maxBatch = v.positiveInteger('maxBatch', orDefault(options.maxBatch, 1000), true);
    this.#maxConcurrent = v.positiveInteger(
      'maxConcurrentBatches',
      orDefault(options.maxConcurrentBatches, Infinity),
      true,
    );
    this.#maxQueue = v.nonNegativeInteger('maxQueue', orDefault(options.maxQueue, 10_000), true);
    this.#maxQueued = this.#maxConcurrent === Infinity ? Infinity : this.#maxQueue;
    const schedule: unknown = orDefault(options.schedule, 'microtask');
    if (schedule === 'microtask') this.#waitMs = undefined;
    else if (typeof schedule === 'object' && schedule !== null && 'waitMs' in schedule) {
      this.#waitMs = v.nonNegativeNumber('schedule.waitMs', schedule.waitMs);
    } else {
      throw new TypeError(
        `Expected \`schedule\` to be 'microtask' or { waitMs }, got ${v.describe(schedule)}`,
      );
    }
    v.optionalFunction('cacheKey', options.cacheKey);
    this.#cacheKey = options.cacheKey;
    const cache: unknown = orDefault(options.cache, true);
    const cacheSize = v.positiveInteger('cacheSize', orDefault(options.cacheSize, 10_000), true);
    const cacheTtl = v.positiveNumber('cacheTtl', orDefault(options.cacheTtl, Infinity), true);
    if (cache === true) {
      this.#cache = new Cache<C, Entry<V, K, C>>(
        cacheTtl === Infinity ? { maxSize: cacheSize } : { maxSize: cacheSize, ttl: cacheTtl },
      );
    } else if (cache === false) {
      this.#cache = undefined;
    } else if (isCacheLike(cache)) {
      this.#cache = cache as CacheLike<C, Entry<V, K, C>>;
    } else {
      throw new TypeError(
        `Expected \`cache\` to be a boolean or an object with get, set, delete and clear, got ${v.describe(cache)}`,
      );
    }
    // Exactly a sluice Cache (not a subclass, whose get/set overrides getOrSet would bypass).
    this.#sluiceCache =
      this.#cache !== undefined && Object.getPrototypeOf(this.#cache) === Cache.prototype
        ? (this.#cache as Cache<C, Entry<V, K, C>>)
        : undefined;
    const clock: unknown = options.clock;
    if (
      clock !== undefined &&
      (typeof clock !== 'object' || clock === null || typeof (clock as { now?: unknown }).now !== 'function')
    ) {
      throw new TypeError(v.expectation('clock', 'an object with a now() method or undefined', clock));
    }
    this.#clock = options.clock ?? monotonicClock;
  }

  /** The `name` option. */
  get name(): string {
    return this.#name;
  }

  /** A snapshot of the counters and gauges; cheap, synchronous. */
  get stats(): LoaderStats {
    return {
      name: this.#name,
      loads: this.#loads,
      cacheHits: this.#cacheHits,
      dedups: this.#dedups,
      batches: this.#batches,
      keys: this.#keys,
      meanBatchSize: this.#batches === 0 ? 0 : this.#keys / this.#batches,
      failedBatches: this.#failedBatches,
      abortedBatches: this.#abortedBatches,
      aborted: this.#aborted,
      rejected: this.#rejected,
      inFlight: this.#inFlight,
      queued: this.#queued,
      batchMs: this.#batchMs,
      callbackFailures: this.#callbackFailures,
    };
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Loads one key: from the cache, from a batch already carrying it, or in the next batch.
   * Rejects with the key's error, the batch's error, `BatchResultError`, `QueueFullError`,
   * `ClosedError`, `signal.reason`, or `InvalidInputError` for an `undefined` or `null` key (or
   * bad options); it never throws.
   */
  load(key: K, options?: LoaderLoadOptions): Promise<V> {
    this.#loads++;
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      const invalid = v.invalidCallOptions(options);
      if (invalid !== undefined) {
        this.#rejected++;
        return Promise.reject(invalid);
      }
      signal = options.signal;
      if (signal !== undefined) {
        if (signal.aborted) {
          this.#aborted++;
          return Promise.reject(signal.reason as Error);
        }
      }
    }
    if (this.#closed) {
      this.#rejected++;
      return Promise.reject(new ClosedError(`${this.#name} is closed`));
    }
    if (key === undefined || key === null) {
      this.#rejected++;
      return Promise.reject(v.invalidInput('key', 'a value other than undefined or null', key));
    }
    let ck: C;
    if (this.#cacheKey === undefined) ck = key as unknown as C;
    else {
      try {
        ck = this.#cacheKey(key);
      } catch (error) {
        return this.#refuseFailed(error, 'cacheKey');
      }
    }
    const cache = this.#cache;
    let batch: Batch<K, C, V> | undefined;
    let promise: Promise<V>;
    let hit: Entry<V, K, C> | undefined;
    /** On a miss through `getOrSet`: the entry it already stored, to be filled in below. */
    let stored: Entry<V, K, C> | undefined;
    if (cache !== undefined) {
      const sluiceCache = this.#sluiceCache;
      // getOrSet stores on a miss, so only while a miss can join a batch (not refused below).
      if (sluiceCache !== undefined && this.#queued < this.#maxQueued) {
        // Taken out first: an onEvict that loads re-entrantly must not get the same spare.
        const spare = this.#spare ?? new Entry<V, K, C>(unfilled as Promise<V>, undefined, undefined);
        this.#spare = undefined;
        try {
          hit = sluiceCache.getOrSet(ck, spare);
        } catch (error) {
          // A throwing onEvict: never leave the unfilled spare cached.
          try {
            if (sluiceCache.peek(ck) === spare) sluiceCache.delete(ck);
          } catch (again) {
            this.#callbackFailed(again, 'cache.delete');
          }
          return this.#refuseFailed(error, 'cache.getOrSet');
        }
        if (hit === undefined) stored = spare;
        else this.#spare = spare;
      } else {
        try {
          hit = cache.get(ck);
        } catch (error) {
          return this.#refuseFailed(error, 'cache.get');
        }
      }
    }
    if (hit !== undefined) {
      batch = hit.batch;
      if (batch === undefined) {
        this.#cacheHits++;
        return this.#hit(hit, signal);
      }
      // In flight (or collected): share it.
      this.#dedups++;
      promise = hit.promise;
    } else {
      if (this.#queued >= this.#maxQueued) return this.#refuseFull();
      batch = this.#open ?? this.#openBatch();
      // An executor written inline: optimised code inlines it and never creates the unused
      // reject function (about 57 bytes less per load than a shared executor, measured).
      let captured!: Resolve;
      promise = new Promise<V>((resolve) => {
        captured = resolve as Resolve;
      });
      const keys = batch.keys;
      keys.push(key);
      batch.ckeys?.push(ck);
      if (stored !== undefined) {
        stored.promise = promise;
        stored.resolve = captured;
        stored.batch = batch;
        (batch.entries as Entry<V, K, C>[]).push(stored);
      } else if (cache !== undefined) {
        const entry = new Entry<V, K, C>(promise, captured, batch);
        (batch.entries as Entry<V, K, C>[]).push(entry);
        try {
          cache.set(ck, entry);
        } catch (error) {
          // The load still joins the batch; the key is just not shared or cached.
          this.#callbackFailed(error, 'cache.set');
        }
      } else {
        (batch.resolves as Resolve[]).push(captured);
      }
      this.#queued++;
      if (keys.length >= this.#maxBatch) this.#seal(batch);
    }
    batch.live++;
    if (signal === undefined) return promise;
    return this.#withSignal(batch, promise, signal) as Promise<V>;
  }

  /**
   * Loads many keys (batched like `load`) and reports each outcome in input order; never
   * rejects because one key failed.
   */
  loadMany(keys: Iterable<K>, options?: LoaderLoadOptions): Promise<Outcome<V>[]> {
    if (keys === null || typeof (keys as { [Symbol.iterator]?: unknown })?.[Symbol.iterator] !== 'function') {
      return Promise.reject(v.invalidInput('keys', 'an iterable', keys));
    }
    if (options !== undefined) {
      const invalid = v.invalidCallOptions(options);
      if (invalid !== undefined) return Promise.reject(invalid);
    }
    const loads: Promise<Outcome<V>>[] = [];
    try {
      for (const key of keys) loads.push(this.load(key, options).then(fulfilled, rejected));
    } catch (error) {
      // The iterable threw: the loads already made still settle on their own.
      return Promise.reject(error);
    }
    return Promise.all(loads);
  }

  /**
   * Puts a value in the cache unless the key is already cached; returns `this`. No effect
   * without a cache. An `Error` value makes later loads of the key reject with it (as an
   * `Error` from the batch function does), until the key is cleared or evicted.
   */
  prime(key: K, value: V | Error): this {
    const cache = this.#cache;
    if (cache === undefined) return this;
    const ck = this.#cacheKey === undefined ? (key as unknown as C) : this.#cacheKey(key);
    if (cache.get(ck) === undefined) {
      const failed = value instanceof Error;
      const promise: Promise<V> = failed ? Promise.reject(value) : Promise.resolve(value);
      if (failed) promise.catch(noop); // handled by whoever loads the key; none may ever do
      const entry = new Entry<V, K, C>(promise, undefined, undefined);
      entry.value = value;
      entry.failed = failed;
      cache.set(ck, entry);
    }
    return this;
  }

  /**
   * Forgets a key: removes it from the cache, so the next load fetches it again (a batch
   * already in flight still answers the loads that joined it, but is not cached). Returns
   * `this`.
   */
  clear(key: K): this {
    const ck = this.#cacheKey === undefined ? (key as unknown as C) : this.#cacheKey(key);
    this.#cache?.delete(ck);
    return this;
  }

  /** Empties the cache, as `clear` does for one key. Returns `this`. */
  clearAll(): this {
    this.#cache?.clear();
    return this;
  }

  /**
   * Stops intake: later loads reject with `ClosedError`. Keys already collected are
   * dispatched now; resolves once no batch is waiting or in flight. Idempotent.
   */
  close(): Promise<void> {
    this.#closed = true;
    const open = this.#open;
    if (open !== undefined) this.#seal(open);
    if (this.#queued === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Same as {@link Loader.close}: `await using loader = new Loader(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * A cache hit resolves when the batch open now settles (or, with none open, on the schedule
   * a batch would use): loads chained off a hit then land in the same batch as loads chained
   * off the misses made alongside it, as with DataLoader — instead of one batch sooner.
   */
  #hit(entry: Entry<V, K, C>, signal: AbortSignal | undefined): Promise<V> {
    const batch = this.#open ?? this.#openBatch();
    let captured!: Resolve;
    const promise = new Promise<V>((resolve) => {
      captured = resolve as Resolve;
    });
    (batch.hits ??= []).push(captured);
    (batch.hitEntries ??= []).push(entry);
    if (signal === undefined) return promise;
    return this.#withSignal(undefined, promise, signal) as Promise<V>;
  }

  /** Removes `entry` from the cache if it is still the key's; a throwing cache is reported. */
  #forget(cache: CacheLike<C, Entry<V, K, C>>, ck: C, entry: Entry<V, K, C>): void {
    try {
      if (cache.get(ck) === entry) cache.delete(ck);
    } catch (error) {
      this.#callbackFailed(error, 'cache.delete');
    }
  }

  #callbackFailed(error: unknown, where: string): void {
    this.#callbackFailures++;
    reportError(channel.error, error, this, where);
  }

  /** A user callback threw during a load: counted, reported, and the load rejects with it. */
  #refuseFailed(error: unknown, where: string): Promise<never> {
    this.#callbackFailed(error, where);
    this.#rejected++;
    return Promise.reject(error);
  }

  #refuseFull(): Promise<never> {
    this.#rejected++;
    return Promise.reject(
      new QueueFullError(
        `${this.#name} queue is full (maxQueue: ${this.#maxQueue} keys waiting for a batch slot)`,
      ),
    );
  }

  #openBatch(): Batch<K, C, V> {
    const batch = new Batch<K, C, V>(this.#cacheKey !== undefined, this.#cache !== undefined);
    this.#open = batch;
    if (this.#waitMs === undefined) this.#scheduleSoon(batch);
    else batch.timer = schedule(() => this.#dispatch(batch), this.#waitMs, true);
    return batch;
  }

  #scheduleSoon(batch: Batch<K, C, V>): void {
    // After the promise jobs of this tick, then after the ticks they queue: DataLoader's timing.
    void resolved.then(() => process.nextTick(() => this.#dispatch(batch)));
  }

  /** The batch takes no more keys; in `waitMs` mode it no longer waits for its window. */
  #seal(batch: Batch<K, C, V>): void {
    if (this.#open === batch) this.#open = undefined;
    if (batch.timer !== undefined) {
      batch.timer.cancel();
      batch.timer = undefined;
      this.#scheduleSoon(batch);
    }
  }

  #dispatch(batch: Batch<K, C, V>): void {
    if (batch.state !== OPEN) return;
    if (this.#open === batch) this.#open = undefined;
    batch.timer = undefined;
    if (batch.keys.length === 0) {
      // Only cache hits: nothing to send.
      batch.state = DONE;
      resolveHits(batch);
      return;
    }
    batch.state = SEALED;
    if (this.#inFlight < this.#maxConcurrent) this.#run(batch);
    else this.#waiting.push(batch, undefined, 0);
  }

  #run(batch: Batch<K, C, V>): void {
    const keys = batch.keys;
    const n = keys.length;
    this.#queued -= n;
    if (batch.live === 0) {
      // Every load waiting on this batch aborted: nobody wants it, do not call the batch function.
      this.#abortedBatches++;
      batch.state = DONE;
      this.#finish(batch, undefined, batch.reason, false);
      this.#afterBatch();
      return;
    }
    batch.state = IN_FLIGHT;
    this.#inFlight++;
    this.#batches++;
    const sent = n > 1 ? dedupe(batch) : keys;
    batch.sent = sent;
    this.#keys += sent.length;
    this.#dedups += n - sent.length;
    batch.startedAt = this.#clock.now();
    if (channel.dispatch.hasSubscribers)
      channel.dispatch.publish({ loader: this, name: this.#name, size: sent.length });
    let result: BatchResult<K, V> | PromiseLike<BatchResult<K, V>>;
    try {
      // A copy: the batch function may sort or empty its keys; results map back through ours.
      const batchFn = this.#batchFn;
      const copy = sent.slice();
      const context = new Context(batch);
      result = batch.context(() => batchFn(copy, context));
    } catch (error) {
      this.#settle(batch, undefined, error, false);
      return;
    }
    if (isThenable(result)) {
      void Promise.resolve(result).then(
        (value) => this.#settle(batch, value, undefined, true),
        (error: unknown) => this.#settle(batch, undefined, error, false),
      );
    } else {
      this.#settle(batch, result, undefined, true);
    }
  }

  #settle(batch: Batch<K, C, V>, result: BatchResult<K, V> | undefined, error: unknown, ok: boolean): void {
    batch.state = DONE;
    this.#inFlight--;
    this.#batchMs += this.#clock.now() - batch.startedAt;
    const positions = batch.positions;
    const n = positions === undefined ? batch.keys.length : uniqueCount(positions);
    if (ok) {
      if (Array.isArray(result)) {
        if (result.length !== n) {
          ok = false;
          error = new BatchResultError(
            `The batch function returned ${result.length} values for ${n} keys; return one value (or Error) per key, in key order, or a Map`,
          );
        }
      } else if (!(result instanceof Map)) {
        ok = false;
        error = new BatchResultError(
          `Expected the batch function to return an array aligned with the keys or a Map, got ${v.describe(result)}`,
        );
      }
    }
    if (!ok) this.#failedBatches++;
    this.#finish(batch, ok ? result : undefined, error, ok);
    if (channel.settle.hasSubscribers)
      channel.settle.publish({ loader: this, name: this.#name, size: n, ok, error });
    this.#afterBatch();
  }

  /** Settles every entry of a batch; rejected keys leave the cache. */
  #finish(batch: Batch<K, C, V>, result: BatchResult<K, V> | undefined, error: unknown, ok: boolean): void {
    resolveHits(batch); // first, as DataLoader answers hits before the batch's keys
    const { keys, resolves, entries, positions } = batch;
    const sent = batch.sent ?? keys;
    const ckeys = batch.ckeys ?? (keys as unknown as C[]);
    const cache = this.#cache;
    const byKey = ok && !Array.isArray(result) ? (result as ReadonlyMap<K, V | Error>) : undefined;
    const byPosition = ok && byKey === undefined ? (result as ReadonlyArray<V | Error>) : undefined;
    const n = entries === undefined ? (resolves as Resolve[]).length : entries.length;
    for (let i = 0; i < n; i++) {
      let resolve: Resolve;
      if (entries === undefined) resolve = (resolves as Resolve[])[i] as Resolve;
      else {
        const entry = entries[i] as Entry<V, K, C>;
        resolve = entry.resolve as Resolve;
        entry.resolve = undefined;
        entry.batch = undefined;
      }
      let value: V | Error | undefined;
      if (!ok) value = error as Error;
      else if (byPosition !== undefined)
        value = byPosition[positions === undefined ? i : (positions[i] as number)];
      else {
        // The key as sent: with a `cacheKey`, a duplicate may be another object equal to it.
        const key = sent[positions === undefined ? i : (positions[i] as number)] as K;
        const map = byKey as ReadonlyMap<K, V | Error>;
        value = map.get(key);
        if (value === undefined && !map.has(key)) {
          value = new BatchResultError(`The batch function's Map has no entry for key ${v.describe(key)}`);
        }
      }
      if (!ok || value instanceof Error) {
        const reason: unknown = value;
        resolve(Promise.reject(reason));
        if (cache !== undefined && entries !== undefined) {
          this.#forget(cache, ckeys[i] as C, entries[i] as Entry<V, K, C>);
        }
      } else {
        if (entries !== undefined) (entries[i] as Entry<V, K, C>).value = value;
        resolve(value);
      }
    }
    // Drop references so a settled batch held by a slow caller pins nothing.
    if (resolves !== undefined) resolves.length = 0;
    if (entries !== undefined) entries.length = 0;
    batch.sent = undefined;
  }

  /**
   * Starts waiting batches while there is room, then wakes `close()` callers when idle. Not
   * re-entrant: a synchronous batch function settles inside `#run`, and the nested call returns
   * at once so this loop starts the next batch — one stack frame chain, not one per queued batch.
   */
  #afterBatch(): void {
    if (this.#starting) return;
    this.#starting = true;
    try {
      while (this.#inFlight < this.#maxConcurrent && this.#waiting.size > 0) {
        this.#run(this.#waiting.shift() as Batch<K, C, V>);
      }
    } finally {
      this.#starting = false;
    }
    if (this.#queued === 0 && this.#inFlight === 0 && this.#idle.length > 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
  }

  /**
   * Drops a batch not yet sent whose every load aborted: its keys stop counting against
   * `maxQueue` now, not when the batches ahead of it finish.
   */
  #drop(batch: Batch<K, C, V>, reason: unknown): void {
    const queued = batch.state === SEALED; // in `#waiting`
    if (this.#open === batch) this.#open = undefined;
    if (batch.timer !== undefined) {
      batch.timer.cancel();
      batch.timer = undefined;
    }
    batch.state = DONE;
    if (queued) this.#waiting.markDead();
    this.#queued -= batch.keys.length;
    this.#abortedBatches++;
    this.#finish(batch, undefined, reason, false);
    this.#afterBatch();
  }

  /** `batch`: the batch whose `live` count the load is part of; `undefined` for a cache hit. */
  #withSignal(
    batch: Batch<K, C, V> | undefined,
    shared: Promise<unknown>,
    signal: AbortSignal,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let done = false;
      const listener = linkSignal(signal, () => {
        if (done) return;
        done = true;
        this.#aborted++;
        reject(signal.reason as Error);
        if (batch !== undefined && --batch.live === 0) this.#abandon(batch, signal.reason);
      });
      shared.then(
        (value) => {
          if (done) return;
          done = true;
          unlinkSignal(signal, listener);
          resolve(value);
        },
        (error: unknown) => {
          if (done) return;
          done = true;
          unlinkSignal(signal, listener);
          reject(error);
        },
      );
    });
  }

  /** Every load waiting on `batch` aborted. */
  #abandon(batch: Batch<K, C, V>, reason: unknown): void {
    batch.reason = reason;
    if (batch.state === OPEN || batch.state === SEALED) {
      this.#drop(batch, reason);
      return;
    }
    if (batch.state !== IN_FLIGHT) return;
    this.#abortedBatches++;
    batch.abandoned = true;
    // Later loads of these keys must not join an aborted call.
    const cache = this.#cache;
    const entries = batch.entries;
    if (cache !== undefined && entries !== undefined) {
      const ckeys = batch.ckeys ?? (batch.keys as unknown as C[]);
      for (let i = 0; i < entries.length; i++) {
        this.#forget(cache, ckeys[i] as C, entries[i] as Entry<V, K, C>);
      }
    }
    batch.controller?.abort(reason);
  }
}

/** Answers the cache hits that waited for `batch`. */
function resolveHits<K, C, V>(batch: Batch<K, C, V>): void {
  const hits = batch.hits;
  if (hits === undefined) return;
  const entries = batch.hitEntries as Entry<V, K, C>[];
  batch.hits = undefined;
  batch.hitEntries = undefined;
  for (let i = 0; i < hits.length; i++) {
    const entry = entries[i] as Entry<V, K, C>;
    (hits[i] as Resolve)(entry.failed ? entry.promise : entry.value);
  }
}

/** Whether a batch has settled or was dropped (a dead entry of the waiting queue). */
function isDone(batch: { state: number }): boolean {
  return batch.state === DONE;
}

/**
 * The keys to send, each once. Without duplicates (the common case: the cache already shares
 * pending keys) this is the batch's own array, checked by {@link hasDuplicateInts} or one
 * natively built `Set`; with them, the unique keys plus each entry's position among them.
 */
function dedupe<K, C, V>(batch: Batch<K, C, V>): readonly K[] {
  const keys = batch.keys;
  const ckeys = batch.ckeys ?? (keys as unknown as C[]);
  const ints = hasDuplicateInts(ckeys);
  if (ints === 0 || (ints === -1 && new Set(ckeys).size === keys.length)) return keys;
  const index = new Map<C, number>();
  const unique: K[] = [];
  const positions = new Array<number>(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const ck = ckeys[i] as C;
    let at = index.get(ck);
    if (at === undefined) {
      at = unique.length;
      index.set(ck, at);
      unique.push(keys[i] as K);
    }
    positions[i] = at;
  }
  batch.positions = positions;
  return unique;
}

/**
 * Whether integer keys repeat: 1 if so, 0 if not, -1 if some key is not an int32 and the caller
 * must check with a `Set`. Integer ids are the common key, and an {@link IntTable} costs about a
 * third of building a `Set`. Equality is `Set`'s for integers (`-0` and `0` are one key).
 */
function hasDuplicateInts(keys: readonly unknown[]): -1 | 0 | 1 {
  const seen = new IntTable(keys.length);
  for (const key of keys) {
    if (!isInt32(key)) return -1;
    if (!seen.set(key, 0)) return 1;
  }
  return 0;
}

function uniqueCount(positions: readonly number[]): number {
  let max = -1;
  for (const p of positions) if (p > max) max = p;
  return max + 1;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}

function isCacheLike(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const c = value as Record<string, unknown>;
  return (
    typeof c['get'] === 'function' &&
    typeof c['set'] === 'function' &&
    typeof c['delete'] === 'function' &&
    typeof c['clear'] === 'function'
  );
}

function noop(): void {}

/** An option's value, or its default when omitted (`undefined`; a `null` stays, to be refused). */
function orDefault<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value;
}

function fulfilled<V>(value: V): Outcome<V> {
  return { ok: true, value };
}

function rejected(error: unknown): Outcome<never> {
  return { ok: false, error };
}
