import { channels } from '../internal/channels.js';
import { monotonicClock, type Clock } from '../internal/clock.js';
import { reportError, watchResult } from '../internal/report.js';
import { schedule, type Timer } from '../internal/timer.js';
import * as v from '../internal/validate.js';
import { ClosedError, InvalidInputError } from '../errors.js';
import { coarseClock, NEAR_DEADLINE_MS, preciseNow } from './coarse-clock.js';
import { Flight } from './flight.js';
import { KeyIndex } from './key-index.js';
import { LruPolicy } from './lru.js';
import type {
  CacheOptions,
  CachePolicy,
  CacheStats,
  CacheEvictReason,
  CacheLoadOptions,
  CacheLoader,
  CacheSetOptions,
} from './options.js';
import { grown, NIL, type Policy } from './policy.js';
import { S3FifoPolicy, touchMeta } from './s3-fifo.js';
import { RESOLUTION, TimerWheel } from './timer-wheel.js';

const channel = channels('cache', ['evict', 'load', 'error']);

/** Slots allocated up front (or `maxSize`, if smaller); storage doubles from there. */
const INITIAL_CAPACITY = 1024;
/** Slot indices must stay below `NIL`. */
const MAX_CAPACITY = NIL - 1;
/** Bound of remembered failures when `maxSize` is `Infinity`. */
const NEGATIVE_BOUND = 10_000;
/**
 * Most expired entries one write reclaims, and one sweep-timer tick: a cohort of a million
 * entries expiring together is reclaimed in slices (the timer re-arms at once while work is
 * left) instead of stalling one call. Reads never need the sweep: they check the deadline.
 */
const WRITE_SWEEP_BUDGET = 32;
const TIMER_SWEEP_BUDGET = 2048;

interface Failure {
  readonly error: unknown;
  readonly until: number;
}

/** A per-call `ttl`: runtime input, so misuse is an `InvalidInputError`. */
function ttlInput(value: unknown): number {
  let ttl = 0;
  const invalid = v.checkInput(() => (ttl = v.positiveDuration('ttl', value)));
  if (invalid !== undefined) throw invalid;
  return ttl;
}

/** Per-call options: `undefined` or an object, else an `InvalidInputError`. */
function optionsInput(value: unknown): void {
  if (value !== undefined && (typeof value !== 'object' || value === null)) {
    throw v.invalidInput('options', 'an object or undefined', value);
  }
}

/** A duration option that may be 0. */
function windowOption(name: string, value: unknown): number {
  return v.duration(name, value, true);
}

let sweepFromTimer: (ref: WeakRef<Cache<unknown, unknown>>) => void;

/**
 * A bounded in-process cache: synchronous reads and writes, scan-resistant eviction, TTL
 * without per-entry timers, single-flight loads with cancellation, stale-while-revalidate,
 * weights, stats and diagnostics channels.
 *
 * - **Bound**: at most `maxSize` entries (and `maxWeight` total weight); a write beyond the
 *   bound evicts by `policy` — S3-FIFO by default (scan-resistant, a hit is a counter bump),
 *   or strict LRU. The entry being written is never the one evicted.
 * - **TTL**: an expired entry is never returned; it is reclaimed when read, or by an
 *   incremental timer-wheel sweep driven by writes and one `unref()`'d timer.
 * - **Single flight**: concurrent `getOrLoad` misses of one key share one load; a failed
 *   load rejects all of them and is not cached (unless `negativeTtl`); a `set`/`delete` of
 *   the key during a load wins over the load's result.
 * - **Cancellation**: a caller whose signal aborts rejects with `signal.reason` at once;
 *   the load's signal aborts only when every caller waiting for it has aborted.
 * - **Loaders are guests**: a loader always starts a microtask after the `getOrLoad` that
 *   started its load, never inside it, in that call's async context.
 * - **User callbacks**: an `onEvict` or `weigh` that throws (or an `onEvict` whose promise
 *   rejects), a clock that throws in the sweep timer, a background refresh that fails — none
 *   reaches the caller or the timer: each is counted (`callbackErrors`, `loadFailures`) and
 *   published on `sluice:cache:error` (`{ error, source, where }`).
 *
 * Publishes `sluice:cache:evict` (`{ cache, key, value, reason }`), `sluice:cache:load`
 * (`{ cache, key, ok, error?, aborted?, background, durationMs? }`) and `sluice:cache:error`
 * when someone subscribes.
 *
 * @example
 * ```ts
 * import { Cache } from 'sluice/cache';
 * const users = new Cache<string, User>({ maxSize: 10_000, ttl: '5m', staleWhileRevalidate: '30s' });
 * users.set('u1', user);
 * users.get('u1'); // user
 * const u2 = await users.getOrLoad('u2', (id, { signal }) => fetchUser(id, { signal }), { signal });
 * users.stats; // { hits: 1, misses: 1, loads: 1, hitRatio: 0.5, size: 2, ... }
 * ```
 */
export class Cache<K, V> implements Iterable<[K, V]> {
  readonly #maxSize: number;
  readonly #name: string;
  readonly #maxWeight: number;
  readonly #ttl: number;
  readonly #swr: number;
  readonly #negativeTtl: number;
  readonly #clock: Clock;
  /** The default coarse clock: re-read precisely near a deadline (see `#fresh`). */
  readonly #coarse: boolean;
  readonly #weigh: ((key: K, value: V) => number) | undefined;
  readonly #onEvict: ((key: K, value: V, reason: CacheEvictReason) => void) | undefined;
  readonly #loader: CacheLoader<K, V> | undefined;
  readonly #policyName: CachePolicy;
  readonly #policy: Policy<K>;
  /**
   * S3-FIFO's per-slot counters, so that a hit is inlined here (a byte bump) instead of a
   * call through the policy; `undefined` under another policy.
   */
  #meta: Uint8Array | undefined;
  /** No `weigh`, `onEvict` or default TTL (see `#writesPlain`). */
  readonly #plain: boolean;

  /** Key → slot (int32 keys in an open-addressing table, others in a `Map`). */
  readonly #map = new KeyIndex<K>();
  /** Keys and values by slot; allocated at capacity (as lru-cache does), so never grown by V8. */
  #keys: (K | undefined)[];
  #values: (V | undefined)[];
  /** Stack of freed slots below `#top`. */
  #free: Uint32Array;
  #freeTop = 0;
  /** Slots ever handed out since the last `clear`. */
  #top = 0;
  #capacity: number;
  #weights: Float64Array | undefined;
  #weight = 0;
  /** Expiry time per slot (`Infinity`: none); allocated by the first entry that can expire. */
  #expires: Float64Array | undefined;
  #wheel: TimerWheel | undefined;
  #timer: Timer | undefined;
  #timerAt = Infinity;
  /** The sweep timer's callback; holds the cache only weakly, so a pending timer never pins it. */
  #onTimer: (() => void) | undefined;

  readonly #flights = new Map<K, Flight<K, V>>();
  /** Loads started and not yet settled (detached ones included): what `close()` waits for. */
  #live = 0;
  #drained: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #failures: Map<K, Failure> | undefined;

  #hits = 0;
  #misses = 0;
  #staleHits = 0;
  #loads = 0;
  #loadFailures = 0;
  #loadsAborted = 0;
  #evictions = 0;
  #expirations = 0;
  #callbackErrors = 0;

  constructor(options: CacheOptions<K, V>) {
    v.options('options', options);
    const o: Partial<CacheOptions<K, V>> = options ?? {};
    this.#maxSize = v.positiveInteger('maxSize', o.maxSize, true);
    this.#name = o.name === undefined ? 'Cache' : v.string('name', o.name);
    this.#ttl = v.positiveDuration('ttl', o.ttl === undefined ? Infinity : o.ttl);
    this.#swr = windowOption(
      'staleWhileRevalidate',
      o.staleWhileRevalidate === undefined ? 0 : o.staleWhileRevalidate,
    );
    this.#negativeTtl = windowOption('negativeTtl', o.negativeTtl === undefined ? 0 : o.negativeTtl);
    v.optionalFunction('weigh', o.weigh);
    this.#maxWeight = v.positiveNumber('maxWeight', o.maxWeight === undefined ? Infinity : o.maxWeight, true);
    if (this.#maxWeight !== Infinity) v.isFunction('weigh', o.weigh);
    this.#weigh = o.weigh;
    this.#policyName = v.oneOf('policy', o.policy === undefined ? 's3-fifo' : o.policy, [
      's3-fifo',
      'lru',
    ] as const);
    v.optionalFunction('loader', o.loader);
    this.#loader = o.loader;
    v.optionalFunction('onEvict', o.onEvict);
    this.#onEvict = o.onEvict;
    this.#plain = o.weigh === undefined && o.onEvict === undefined && this.#ttl === Infinity;
    const clock: unknown = o.clock;
    if (clock !== undefined && clock !== 'coarse' && clock !== 'exact') {
      if (typeof clock !== 'object' || clock === null) {
        throw new TypeError(
          v.expectation('clock', "'coarse', 'exact' or an object with a now() method", clock),
        );
      }
      v.isFunction('clock.now', (clock as { now?: unknown }).now);
    }
    this.#coarse = clock === undefined || clock === 'coarse';
    this.#clock = this.#coarse ? coarseClock : clock === 'exact' ? monotonicClock : (clock as Clock);

    this.#capacity = Math.min(this.#maxSize, INITIAL_CAPACITY);
    this.#free = new Uint32Array(this.#capacity);
    if (this.#policyName === 'lru') {
      this.#policy = new LruPolicy<K>(this.#capacity);
    } else {
      const policy = new S3FifoPolicy<K>(this.#capacity);
      this.#policy = policy;
      this.#meta = policy.meta;
    }
    this.#keys = new Array<K | undefined>(this.#capacity);
    this.#values = new Array<V | undefined>(this.#capacity);
    if (this.#weigh !== undefined) this.#weights = new Float64Array(this.#capacity);
  }

  static {
    sweepFromTimer = (ref) => {
      const cache = ref.deref();
      if (cache === undefined) return;
      cache.#timer = undefined;
      cache.#timerAt = Infinity;
      try {
        const now = cache.#clock.now();
        cache.#wheel?.advance(now, cache.#expire, TIMER_SWEEP_BUDGET);
        cache.#sweepFailures(now);
        cache.#armTimer(now);
      } catch (error) {
        // Only user code throws here (an injected clock): nobody awaits a timer.
        cache.#callbackError(error, 'sweep');
      }
    };
  }

  /** Entries held, expired ones not yet reclaimed included. */
  get size(): number {
    return this.#map.size;
  }

  /** The eviction policy in use. */
  get policy(): CachePolicy {
    return this.#policyName;
  }

  /** The `name` option. */
  get name(): string {
    return this.#name;
  }

  /** A snapshot of the counters and gauges. */
  get stats(): CacheStats {
    const reads = this.#hits + this.#misses;
    return {
      name: this.#name,
      hits: this.#hits,
      misses: this.#misses,
      staleHits: this.#staleHits,
      loads: this.#loads,
      loadFailures: this.#loadFailures,
      loadsAborted: this.#loadsAborted,
      evictions: this.#evictions,
      expirations: this.#expirations,
      callbackErrors: this.#callbackErrors,
      hitRatio: reads === 0 ? 0 : this.#hits / reads,
      size: this.#map.size,
      weight: this.#weigh === undefined ? this.#map.size : this.#weight,
      inFlight: this.#flights.size,
    };
  }

  /** Zeroes the counters (`hits`, `misses`, `loads`, …); gauges are unaffected. */
  resetStats(): void {
    this.#hits = this.#misses = this.#staleHits = 0;
    this.#loads = this.#loadFailures = this.#loadsAborted = 0;
    this.#evictions = this.#expirations = this.#callbackErrors = 0;
  }

  /**
   * The fresh value of `key`, or `undefined`. Counts a hit or a miss and marks the entry as
   * used for the policy. An expired entry is reclaimed here (kept, unreturned, while it is in
   * its stale-while-revalidate window).
   */
  get(key: K): V | undefined {
    const slot = this.#map.get(key);
    if (slot !== undefined) return this.#read(key, slot);
    this.#misses++;
    return undefined;
  }

  /** `get` of a key found at `slot`. */
  #read(key: K, slot: number): V | undefined {
    const expires = this.#expires;
    if (expires !== undefined) {
      const at = expires[slot] as number;
      if (at !== Infinity) {
        let now = this.#clock.now();
        if (at - now < NEAR_DEADLINE_MS && at > now && this.#coarse) now = preciseNow();
        if (at <= now) return this.#readExpired(key, slot, at, now);
      }
    }
    const meta = this.#meta;
    if (meta !== undefined) touchMeta(meta, slot);
    else this.#policy.touch(slot);
    this.#hits++;
    return this.#values[slot];
  }

  /**
   * `get(key)`, and on a miss `set(key, value)`, with one key lookup: returns the fresh value
   * (a hit), or stores `value` and returns `undefined` (a miss). For a read-through layer that
   * has its value (or a promise of it) in hand before it knows whether the key is cached. As
   * with `get`, a stored `undefined` reads as a miss (and is replaced by `value`).
   *
   * @example
   * ```ts
   * const pending = new Cache<number, Promise<User>>({ maxSize: 10_000 });
   * const p = fetchUser(7);
   * const shared = pending.getOrSet(7, p) ?? p; // one request per key while cached
   * ```
   */
  getOrSet(key: K, value: V): V | undefined {
    const slot = this.#map.get(key);
    if (slot !== undefined) {
      const found = this.#read(key, slot);
      if (found === undefined) this.set(key, value); // expired
      return found;
    }
    this.#misses++;
    if (this.#writesPlain()) this.#storePlain(key, value, true);
    else this.set(key, value);
    return undefined;
  }

  /** The fresh value of `key`, or `undefined`, without counting or marking anything. */
  peek(key: K): V | undefined {
    const slot = this.#map.get(key);
    if (slot === undefined || this.#isExpired(slot)) return undefined;
    return this.#values[slot];
  }

  /** Whether `key` has a fresh value; counts and marks nothing. */
  has(key: K): boolean {
    const slot = this.#map.get(key);
    return slot !== undefined && !this.#isExpired(slot);
  }

  /**
   * Stores `value` under `key`, evicting by policy if the cache is full, and returns the cache.
   * `options.ttl` overrides the default TTL. A load of `key` in flight is detached: its result
   * will not overwrite this value. A value heavier than `maxWeight` is not stored (and any old
   * value of `key` is removed). Throws `InvalidInputError` on misuse (a `ttl` that is not a
   * positive duration, a `weigh` that returns anything but a positive finite number); the
   * cache is then unchanged.
   */
  set(key: K, value: V, options?: CacheSetOptions): this {
    if (options === undefined && this.#writesPlain()) {
      this.#storePlain(key, value);
      return this;
    }
    let ttl = this.#ttl;
    if (options !== undefined) {
      optionsInput(options);
      if (options.ttl !== undefined) ttl = ttlInput(options.ttl);
    }
    if (this.#flights.size > 0) this.#flights.delete(key);
    if (this.#failures !== undefined) this.#failures.delete(key);
    this.#store(key, value, ttl);
    return this;
  }

  /**
   * Removes `key`; returns whether an entry was there. A load of `key` in flight is detached:
   * its result will not be stored, and the next `getOrLoad` starts a new load.
   */
  delete(key: K): boolean {
    if (this.#flights.size > 0) this.#flights.delete(key);
    if (this.#failures !== undefined) this.#failures.delete(key);
    const slot = this.#map.get(key);
    if (slot === undefined) return false;
    this.#remove(slot, key, 'deleted');
    return true;
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Stops intake for shutdown: `getOrLoad` rejects with `ClosedError` from now on, the sweep
   * timer stops (entries still expire on read), and the returned promise resolves once every
   * load already started — background refreshes included — has settled, so nothing the cache
   * started outlives it (close it before the pool its loaders use). `get`, `set` and `delete`
   * keep working on memory. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    if (this.#timer !== undefined) {
      this.#timer.cancel();
      this.#timer = undefined;
      this.#timerAt = Infinity;
    }
    this.#closing =
      this.#live === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.#drained = resolve));
    return this.#closing;
  }

  /** Same as {@link Cache.close}: `await using cache = new Cache(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Removes every entry (each reported to `onEvict` as `'cleared'`) and detaches every load. */
  clear(): void {
    this.#flights.clear();
    this.#failures?.clear();
    const notify = this.#onEvict !== undefined || channel.evict.hasSubscribers;
    const keys = this.#keys;
    const values = this.#values;
    const slots = notify ? Array.from(this.#map.slots()) : [];
    this.#map.clear();
    this.#keys = new Array<K | undefined>(this.#capacity);
    this.#values = new Array<V | undefined>(this.#capacity);
    this.#freeTop = 0;
    this.#top = 0;
    this.#weight = 0;
    this.#policy.clear();
    this.#wheel?.clear();
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#timerAt = Infinity;
    for (const slot of slots) this.#notify(keys[slot] as K, values[slot] as V, 'cleared');
  }

  /**
   * The fresh value of `key`, or the result of loading it. Concurrent misses of one key share
   * one load (single flight). `loader` defaults to the constructor's.
   *
   * - The loader never runs inside this call: it starts a microtask after the call that started
   *   the load (a miss, or a stale hit that starts a background refresh) returns, in that
   *   call's `AsyncLocalStorage` context. A load whose every caller aborted before then never
   *   starts.
   * - A failed load rejects every waiting caller with the loader's error and is not cached
   *   (unless `negativeTtl`: then callers within it get the same rejection without a load).
   * - `signal`: this caller stops waiting with `signal.reason`; the load goes on for the others
   *   and is aborted (its own signal) only when every caller has aborted.
   * - Within `staleWhileRevalidate` after expiry, resolves to the stale value at once and starts
   *   one background refresh; its failure is counted (`loadFailures`) and published on
   *   `sluice:cache:load`, never thrown.
   * - `ttl`: time to live of the loaded value.
   * - Misuse (no loader, a bad `ttl`, `signal` or options bag) rejects with `InvalidInputError`;
   *   this method never throws.
   */
  getOrLoad(key: K, options?: CacheLoadOptions): Promise<V>;
  getOrLoad(key: K, loader: CacheLoader<K, V> | undefined, options?: CacheLoadOptions): Promise<V>;
  getOrLoad(
    key: K,
    loaderOrOptions?: CacheLoader<K, V> | CacheLoadOptions,
    maybeOptions?: CacheLoadOptions,
  ): Promise<V> {
    // A function that returns a promise never throws: misuse, and anything user code (a
    // clock) throws on the way, becomes the rejection.
    try {
      return this.#getOrLoad(key, loaderOrOptions, maybeOptions);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #getOrLoad(
    key: K,
    loaderOrOptions: CacheLoader<K, V> | CacheLoadOptions | undefined,
    maybeOptions: CacheLoadOptions | undefined,
  ): Promise<V> {
    if (this.#closing !== undefined) throw new ClosedError(`${this.#name} is closed`);
    let loader = this.#loader;
    let options: CacheLoadOptions | undefined = maybeOptions;
    if (typeof loaderOrOptions === 'function') loader = loaderOrOptions;
    else if (typeof loaderOrOptions === 'object' && loaderOrOptions !== null) options = loaderOrOptions;
    else if (loaderOrOptions !== undefined) throw v.invalidInput('loader', 'a function', loaderOrOptions);
    if (loader === undefined) throw v.invalidInput('loader', 'a function', loader);
    let signal: AbortSignal | undefined;
    let ttl: number | undefined;
    if (options !== undefined) {
      optionsInput(options);
      signal = options.signal;
      if (signal !== undefined && !(signal instanceof AbortSignal)) {
        throw v.invalidInput('signal', 'an AbortSignal or undefined', signal);
      }
      if (options.ttl !== undefined) ttl = ttlInput(options.ttl);
    }
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);

    let now = NaN;
    const slot = this.#map.get(key);
    if (slot !== undefined) {
      const at = this.#expires === undefined ? Infinity : (this.#expires[slot] as number);
      if (at !== Infinity) now = this.#now(at);
      if (at === Infinity || at > now) {
        this.#policy.touch(slot);
        this.#hits++;
        return Promise.resolve(this.#values[slot] as V);
      }
      if (now < at + this.#swr) {
        this.#misses++;
        this.#staleHits++;
        if (!this.#flights.has(key)) {
          this.#runLoad(this.#startLoad(key, ttl, true, now), loader);
        }
        return Promise.resolve(this.#values[slot] as V);
      }
      this.#expirations++;
      this.#remove(slot, key, 'expired');
    }
    this.#misses++;
    const flight = this.#flights.get(key);
    if (flight !== undefined) return flight.wait(signal);
    if (Number.isNaN(now)) now = this.#clock.now();
    const failure = this.#failures?.get(key);
    if (failure !== undefined) {
      if (failure.until > now) return Promise.reject(failure.error);
      this.#failures?.delete(key);
    }
    // The loader starts a microtask later: a caller whose signal aborts before then rejects
    // and, as the last caller, abandons the load, which then never starts.
    const started = this.#startLoad(key, ttl, false, now);
    const waiting = started.wait(signal);
    this.#runLoad(started, loader);
    return waiting;
  }

  /**
   * Reclaims every entry whose TTL (and stale window) has passed, up to the sweep's 256 ms
   * resolution, and returns how many went — all of them at once, however many. The cache
   * also reclaims by itself, in bounded slices: at most 32 entries per write and 2048 per tick
   * of its `unref()`'d timer (which re-arms at once while work is left). Call it to reclaim
   * memory at a moment of your choosing.
   */
  prune(): number {
    const now = this.#clock.now();
    const expired = this.#wheel === undefined ? 0 : this.#wheel.advance(now, this.#expire);
    this.#sweepFailures(now);
    this.#armTimer(now);
    return expired;
  }

  /** Keys with a fresh value: other than int32 numbers in insertion order, then int32 keys. */
  *keys(): IterableIterator<K> {
    for (const [key] of this.entries()) yield key;
  }

  /** Fresh values, in the order of `keys()`. */
  *values(): IterableIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  /** `[key, value]` pairs with a fresh value, in the order of `keys()`; marks nothing. */
  *entries(): IterableIterator<[K, V]> {
    const now = this.#expires === undefined ? 0 : this.#coarse ? preciseNow() : this.#clock.now();
    for (const [key, slot] of this.#map.entries()) {
      if (this.#expires !== undefined && (this.#expires[slot] as number) <= now) continue;
      yield [key, this.#values[slot] as V];
    }
  }

  /** Same as {@link Cache.entries}: `for (const [key, value] of cache)`. */
  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  #isExpired(slot: number): boolean {
    const expires = this.#expires;
    if (expires === undefined) return false;
    const at = expires[slot] as number;
    return at !== Infinity && at <= this.#now(at);
  }

  /**
   * The time to judge deadline `at` by: the clock's reading, except that the coarse default
   * clock is re-read precisely when the deadline is near, so a lagging coarse reading never
   * serves an expired value (it could only if it lagged by `NEAR_DEADLINE_MS` or more).
   */
  #now(at: number): number {
    const now = this.#clock.now();
    return at - now < NEAR_DEADLINE_MS && at > now && this.#coarse ? preciseNow() : now;
  }

  #readExpired(key: K, slot: number, at: number, now: number): undefined {
    this.#misses++;
    if (now < at + this.#swr) return undefined;
    this.#expirations++;
    this.#remove(slot, key, 'expired');
    return undefined;
  }

  /**
   * Whether a write may take `#storePlain`: no weights, TTL, `onEvict` or channel subscriber —
   * nothing to time, weigh or notify.
   */
  #writesPlain(): boolean {
    return this.#plain && this.#expires === undefined && !channel.evict.hasSubscribers;
  }

  /**
   * `#store` for the common case (see `#writesPlain`), inlined by hand. `absent`: the caller
   * has just looked the key up and not found it.
   */
  #storePlain(key: K, value: V, absent = false): void {
    const map = this.#map;
    if (this.#flights.size > 0 || (this.#failures !== undefined && this.#failures.size > 0)) {
      this.#flights.delete(key);
      this.#failures?.delete(key);
    }
    if (!absent) {
      const existing = map.get(key);
      if (existing !== undefined) {
        this.#values[existing] = value;
        this.#policy.touch(existing);
        return;
      }
    }
    const keys = this.#keys;
    if (map.size >= this.#maxSize) {
      // Evict in place: the new entry takes the victim's slot.
      const policy = this.#policy;
      const slot = policy.victim();
      map.delete(keys[slot] as K);
      map.set(key, slot);
      keys[slot] = key;
      this.#values[slot] = value;
      policy.replace(slot, key);
      this.#evictions++;
      return;
    }
    const slot = this.#allocate();
    map.set(key, slot);
    this.#keys[slot] = key;
    this.#values[slot] = value;
    this.#policy.insert(slot, key);
  }

  #store(key: K, value: V, ttl: number): void {
    let weight = 1;
    if (this.#weigh !== undefined) {
      let weighed: unknown;
      try {
        weighed = this.#weigh(key, value);
      } catch (error) {
        // The value cannot be stored without a weight; the old one must not outlive the write.
        this.#callbackError(error, 'weigh');
        const stale = this.#map.get(key);
        if (stale !== undefined) this.#remove(stale, key, 'replaced');
        return;
      }
      if (typeof weighed !== 'number' || !(weighed > 0) || weighed === Infinity) {
        throw new InvalidInputError(
          `Expected \`weigh(key, value)\` to return a positive finite number, got ${v.describe(weighed)}`,
        );
      }
      weight = weighed;
    }
    const wheel = this.#wheel;
    const now = ttl !== Infinity || (wheel !== undefined && wheel.size > 0) ? this.#clock.now() : 0;
    const existing = this.#map.get(key);
    if (weight > this.#maxWeight) {
      if (existing !== undefined) this.#remove(existing, key, 'replaced');
      this.#evictions++;
      this.#notify(key, value, 'evicted');
      return;
    }
    if (existing !== undefined) {
      const old = this.#values[existing] as V;
      this.#values[existing] = value;
      const weights = this.#weights;
      if (weights !== undefined) {
        this.#weight += weight - (weights[existing] as number);
        weights[existing] = weight;
      }
      this.#setExpiry(existing, ttl, now);
      this.#policy.touch(existing);
      if (this.#weight > this.#maxWeight) this.#evictOthers(existing);
      if (old !== value) this.#notify(key, old, 'replaced');
    } else {
      if (this.#map.size >= this.#maxSize || this.#weight + weight > this.#maxWeight) {
        this.#evict(weight);
        // An `onEvict` callback (or channel subscriber) may have stored `key` meanwhile.
        if (this.#onEvict !== undefined || channel.evict.hasSubscribers) {
          const again = this.#map.get(key);
          if (again !== undefined) this.#remove(again, key, 'replaced');
        }
      }
      const slot = this.#allocate();
      this.#map.set(key, slot);
      this.#keys[slot] = key;
      this.#values[slot] = value;
      if (this.#weights !== undefined) {
        this.#weights[slot] = weight;
        this.#weight += weight;
      }
      if (this.#expires !== undefined || ttl !== Infinity) this.#setExpiry(slot, ttl, now);
      this.#policy.insert(slot, key);
    }
    if (wheel !== undefined && now >= wheel.nextTick) this.#sweep(now);
  }

  /** Makes room for a new entry of `weight`. */
  #evict(weight: number): void {
    const map = this.#map;
    while (map.size > 0 && (map.size >= this.#maxSize || this.#weight + weight > this.#maxWeight)) {
      const slot = this.#policy.victim();
      if (slot === NIL) return;
      this.#evictions++;
      this.#remove(slot, this.#keys[slot] as K, 'evicted');
    }
  }

  /** Brings the weight under `maxWeight` after `keep` grew, evicting others than `keep`. */
  #evictOthers(keep: number): void {
    while (this.#weight > this.#maxWeight && this.#map.size > 1) {
      const slot = this.#policy.victim();
      if (slot === NIL) return;
      if (slot === keep) {
        this.#policy.requeue(slot);
        continue;
      }
      this.#evictions++;
      this.#remove(slot, this.#keys[slot] as K, 'evicted');
    }
  }

  #allocate(): number {
    if (this.#freeTop > 0) return this.#free[--this.#freeTop] as number;
    if (this.#top === this.#capacity) this.#grow();
    return this.#top++;
  }

  #grow(): void {
    const capacity = Math.min(this.#capacity * 2, this.#maxSize, MAX_CAPACITY);
    this.#capacity = capacity;
    this.#free = grown(this.#free, capacity);
    const keys = new Array<K | undefined>(capacity);
    const values = new Array<V | undefined>(capacity);
    for (let i = 0; i < this.#top; i++) {
      keys[i] = this.#keys[i];
      values[i] = this.#values[i];
    }
    this.#keys = keys;
    this.#values = values;
    this.#policy.grow(capacity);
    if (this.#meta !== undefined) this.#meta = (this.#policy as S3FifoPolicy<K>).meta;
    if (this.#weights !== undefined) this.#weights = grown(this.#weights, capacity);
    if (this.#expires !== undefined) {
      this.#expires = grown(this.#expires, capacity, Infinity);
      this.#wheel?.grow(capacity, this.#expires);
    }
  }

  #remove(slot: number, key: K, reason: CacheEvictReason): void {
    const value = this.#values[slot] as V;
    this.#map.delete(key);
    this.#policy.remove(slot, key, reason === 'evicted');
    this.#wheel?.unschedule(slot);
    if (this.#weights !== undefined) this.#weight -= this.#weights[slot] as number;
    this.#keys[slot] = undefined;
    this.#values[slot] = undefined;
    this.#free[this.#freeTop++] = slot;
    this.#notify(key, value, reason);
  }

  #notify(key: K, value: V, reason: CacheEvictReason): void {
    if (channel.evict.hasSubscribers)
      channel.evict.publish({ cache: this, name: this.#name, key, value, reason });
    const onEvict = this.#onEvict;
    if (onEvict === undefined) return;
    let result: unknown;
    try {
      result = onEvict(key, value, reason);
    } catch (error) {
      this.#callbackError(error, 'onEvict');
      return;
    }
    if (result !== undefined) watchResult(result, channel.error, this, 'onEvict', this.#countCallbackError);
  }

  /**
   * A user callback (`onEvict`, `weigh`, a clock read by the sweep timer) threw where nobody
   * awaits it: counted in `callbackErrors` and published on `sluice:cache:error`, never rethrown.
   */
  #callbackError(error: unknown, where: string): void {
    this.#callbackErrors++;
    reportError(channel.error, error, this, where);
  }

  readonly #countCallbackError = (): void => {
    this.#callbackErrors++;
  };

  #setExpiry(slot: number, ttl: number, now: number): void {
    let expires = this.#expires;
    if (ttl === Infinity) {
      if (expires !== undefined) {
        expires[slot] = Infinity;
        this.#wheel?.unschedule(slot);
      }
      return;
    }
    if (expires === undefined) {
      expires = this.#expires = new Float64Array(this.#capacity).fill(Infinity);
      if (this.#swr !== Infinity) this.#wheel = new TimerWheel(this.#capacity, expires, this.#swr, now);
    }
    const at = now + ttl;
    expires[slot] = at;
    const wheel = this.#wheel;
    if (wheel === undefined) return;
    if (at === Infinity) {
      wheel.unschedule(slot);
      return;
    }
    wheel.schedule(slot);
    if (at + this.#swr + RESOLUTION < this.#timerAt) this.#armTimer(now);
  }

  readonly #expire = (slot: number): void => {
    this.#expirations++;
    this.#remove(slot, this.#keys[slot] as K, 'expired');
  };

  #sweep(now: number): void {
    this.#wheel?.advance(now, this.#expire, WRITE_SWEEP_BUDGET);
    this.#armTimer(now);
  }

  /** Keeps one unref'd timer set for the wheel's next deadline, and none when it is empty. */
  #armTimer(now: number): void {
    if (this.#closing !== undefined) return;
    const at = this.#wheel === undefined ? Infinity : this.#wheel.nextDeadline();
    if (this.#timer !== undefined) {
      if (at !== Infinity && this.#timerAt <= at) return;
      this.#timer.cancel();
      this.#timer = undefined;
      this.#timerAt = Infinity;
    }
    if (at === Infinity) return;
    if (this.#onTimer === undefined) {
      const ref = new WeakRef(this as Cache<unknown, unknown>);
      this.#onTimer = () => sweepFromTimer(ref);
    }
    this.#timerAt = at;
    // Through Timer: a deadline past 2^31-1 ms is reached by a chain of timers, never early.
    this.#timer = schedule(this.#onTimer, Math.max(at - now, 1));
  }

  #startLoad(key: K, ttl: number | undefined, background: boolean, now: number): Flight<K, V> {
    const flight = new Flight<K, V>(key, ttl, background, now, this.#abandon);
    this.#flights.set(key, flight);
    this.#loads++;
    return flight;
  }

  /**
   * Starts `loader` for `flight` one microtask later, never inside the calling `getOrLoad`:
   * user code always starts asynchronously. A promise reaction runs in the async context that
   * was current when `then` was called (with Node 20's async_hooks `AsyncLocalStorage` and
   * Node 24's AsyncContextFrame alike), so the loader runs in the context of the call that
   * started the load. The flight carries the loader, so this costs no closure per load.
   */
  #runLoad(flight: Flight<K, V>, loader: CacheLoader<K, V>): void {
    flight.loader = loader;
    this.#live++;
    void Promise.resolve(flight).then(this.#callLoader);
  }

  /** Runs the loader of `flight`, unless every caller abandoned the load before it started. */
  readonly #callLoader = (flight: Flight<K, V>): void => {
    const loader = flight.loader as CacheLoader<K, V>;
    flight.loader = undefined;
    if (flight.aborted) {
      this.#loadDone();
      return;
    }
    const key = flight.key;
    let result: V | PromiseLike<V>;
    try {
      result = loader(key, { signal: flight.controller.signal });
    } catch (error) {
      result = Promise.reject(error);
    }
    void Promise.resolve(result).then(
      (value) => {
        try {
          this.#loaded(flight, value);
        } finally {
          this.#loadDone();
        }
      },
      (error: unknown) => {
        try {
          this.#failed(flight, error, true);
        } finally {
          this.#loadDone();
        }
      },
    );
  };

  /** A started load settled (or never ran); the last one lets a pending `close()` resolve. */
  #loadDone(): void {
    if (--this.#live > 0 || this.#drained === undefined) return;
    const drained = this.#drained;
    this.#drained = undefined;
    drained();
  }

  #loaded(flight: Flight<K, V>, value: V): void {
    if (flight.aborted) return;
    const key = flight.key;
    if (this.#flights.get(key) === flight) {
      this.#flights.delete(key);
      try {
        this.#store(key, value, flight.ttl ?? this.#ttl);
      } catch (error) {
        // `weigh` or `onEvict` threw while storing the value: the callers hear about it.
        this.#failed(flight, error, false);
        return;
      }
    }
    if (channel.load.hasSubscribers) {
      channel.load.publish({
        cache: this,
        name: this.#name,
        key,
        ok: true,
        background: flight.background,
        durationMs: this.#clock.now() - flight.startedAt,
      });
    }
    flight.resolve(value);
  }

  #failed(flight: Flight<K, V>, error: unknown, remember: boolean): void {
    if (flight.aborted) return;
    const key = flight.key;
    this.#loadFailures++;
    if (this.#flights.get(key) === flight) {
      this.#flights.delete(key);
      if (remember && this.#negativeTtl > 0) this.#remember(key, error);
    }
    if (channel.load.hasSubscribers) {
      channel.load.publish({
        cache: this,
        name: this.#name,
        key,
        ok: false,
        error,
        background: flight.background,
        durationMs: this.#clock.now() - flight.startedAt,
      });
    }
    // Nobody awaits a background refresh: its failure is reported, not thrown.
    if (flight.background) reportError(channel.error, error, this, 'refresh');
    flight.reject(error);
  }

  readonly #abandon = (flight: Flight<K, V>): void => {
    this.#loadsAborted++;
    if (this.#flights.get(flight.key) === flight) this.#flights.delete(flight.key);
    if (channel.load.hasSubscribers) {
      channel.load.publish({
        cache: this,
        name: this.#name,
        key: flight.key,
        ok: false,
        aborted: true,
        error: flight.controller.signal.reason as unknown,
        background: flight.background,
      });
    }
  };

  /** Caches a load failure for `negativeTtl`; bounded like the cache, oldest first out. */
  #remember(key: K, error: unknown): void {
    const now = this.#clock.now();
    const failures = (this.#failures ??= new Map());
    failures.delete(key);
    failures.set(key, { error, until: now + this.#negativeTtl });
    const bound = this.#maxSize === Infinity ? NEGATIVE_BOUND : this.#maxSize;
    for (const first of failures.keys()) {
      if (failures.size <= bound) break;
      failures.delete(first);
    }
    this.#sweepFailures(now);
  }

  /** Failures are stored in expiry order (one `negativeTtl`), so expired ones are at the front. */
  #sweepFailures(now: number): void {
    const failures = this.#failures;
    if (failures === undefined) return;
    for (const [key, failure] of failures) {
      if (failure.until > now) break;
      failures.delete(key);
    }
  }
}
