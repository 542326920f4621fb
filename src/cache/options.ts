import type { Clock } from '../internal/clock.js';

/**
 * Eviction policy of a {@link Cache}:
 * - `'s3-fifo'` (default): scan-resistant. New keys enter a small FIFO (10% of the entries);
 *   keys read while there move to the main FIFO, others leave and are remembered in a ghost
 *   table of hashes, so a key that comes back soon goes straight to main. Main evicts in FIFO
 *   order but gives each entry read since its last pass another round (up to 3). A hit only
 *   bumps a 2-bit counter: no list move, no sketch update. (Yang et al., SOSP 2023.)
 * - `'lru'`: strict least-recently-used; a hit moves the entry to the most-recent end.
 *
 * @example
 * ```ts
 * import { Cache } from 'sluice/cache';
 * const sessions = new Cache<string, Session>({ maxSize: 10_000, policy: 'lru' });
 * ```
 */
export type CachePolicy = 's3-fifo' | 'lru';

/**
 * Why an entry left the cache, as passed to `onEvict` and published on `sluice:cache:evict`:
 * `'evicted'` (the size or weight bound), `'expired'` (its TTL and stale window passed),
 * `'deleted'` (`delete`), `'replaced'` (`set` of another value), `'cleared'` (`clear`).
 *
 * @example
 * ```ts
 * const reason: CacheEvictReason = 'expired';
 * ```
 */
export type CacheEvictReason = 'evicted' | 'expired' | 'deleted' | 'replaced' | 'cleared';

/** What a loader receives besides the key. */
export interface CacheLoadContext {
  /**
   * Aborted when every caller waiting for this load has aborted (a background refresh is
   * never aborted this way). Pass it to `fetch` and friends.
   */
  readonly signal: AbortSignal;
}

/**
 * Loads the value of a missing key for {@link Cache.getOrLoad}.
 *
 * @example
 * ```ts
 * const loader: CacheLoader<string, User> = (id, { signal }) => fetchUser(id, { signal });
 * ```
 */
export type CacheLoader<K, V> = (key: K, context: CacheLoadContext) => V | PromiseLike<V>;

/** Options of {@link Cache}. */
export interface CacheOptions<K, V> {
  /**
   * Names this cache in its errors' messages, its `stats` and its channel payloads (a service
   * has many).
   * @default 'Cache'
   */
  readonly name?: string | undefined;
  /**
   * Most entries held at once: a positive integer, or `Infinity` spelled out (then bound the
   * cache with `maxWeight`). Storage grows by doubling up to it.
   * Cost: about 25 bytes per slot in arrays, plus the key's index entry (a dictionary slot
   * for a string key, a `Map` entry otherwise): ~79 bytes per entry in all for 1M string keys
   * (lru-cache: ~57), besides the keys and values themselves.
   */
  readonly maxSize: number;
  /**
   * Default time to live of an entry, in ms (or a string like `'5m'`); `Infinity` means none.
   * A per-entry `ttl` given to `set` / `getOrLoad` overrides it. Expired entries are never
   * returned; they are reclaimed on read, or by an incremental sweep (a timer wheel advanced
   * by writes and one `unref()`'d timer), so an entry nobody reads again still goes.
   * Cost: 18 bytes per slot and one clock read per hit on an entry that can expire.
   * @default Infinity
   */
  readonly ttl?: number | string | undefined;
  /**
   * How long after expiry an entry may still be served by `getOrLoad` (in ms, or `'30s'`): the
   * stale value is returned at once and one background load refreshes it. `get`, `peek` and
   * `has` never see stale entries. Expired entries are kept that much longer before reclaim.
   * @default 0
   */
  readonly staleWhileRevalidate?: number | string | undefined;
  /**
   * How long a failed load is remembered, in ms (or `'10s'`): meanwhile `getOrLoad` of that
   * key rejects with the same error without loading. `0` remembers nothing. Remembered
   * failures are bounded by `maxSize` (or 10 000 when `maxSize` is `Infinity`).
   * @default 0
   */
  readonly negativeTtl?: number | string | undefined;
  /**
   * Weight of an entry, called once per `set`; must return a positive finite number (anything
   * else is an `InvalidInputError`). If it throws, the value is not stored, the key's old value
   * is removed, and the error is counted in `stats.callbackErrors` and published on
   * `sluice:cache:error` (`where: 'weigh'`); the write itself does not throw. With
   * `maxWeight`, bounds the cache by the sum of weights (bytes, say) instead of only by count.
   * An entry heavier than `maxWeight` is not stored. Cost: 8 bytes per entry and one call per set.
   * @default every entry weighs 1
   */
  readonly weigh?: ((key: K, value: V) => number) | undefined;
  /**
   * Largest sum of weights held at once; requires `weigh`.
   * @default Infinity
   */
  readonly maxWeight?: number | undefined;
  /**
   * Admission and eviction policy, see {@link CachePolicy}.
   * @default 's3-fifo'
   */
  readonly policy?: CachePolicy | undefined;
  /**
   * Default loader of {@link Cache.getOrLoad}, used when a call passes none.
   * @default none: `getOrLoad` then needs a loader argument
   */
  readonly loader?: CacheLoader<K, V> | undefined;
  /**
   * Called synchronously after an entry has left the cache (it is already gone; the callback
   * may use the cache). An error it throws (or a promise it returns that rejects) never reaches
   * the caller of the operation, nor the sweep timer: it is counted in `stats.callbackErrors`
   * and published on `sluice:cache:error` as `{ error, source, where: 'onEvict' }`.
   * Cost: nothing when absent.
   * @default none
   */
  readonly onEvict?: ((key: K, value: V, reason: CacheEvictReason) => void) | undefined;
  /**
   * Time source in ms:
   * - `'coarse'` (default): `performance.now()` cached and reused — dropped every millisecond
   *   of event-loop time and after 256 reads, and always re-read precisely when an entry is
   *   within 1 s of its deadline. A hit far from its deadline costs no clock read. Staleness
   *   bound: `get`/`has`/`peek`/`getOrLoad` never serve an expired value unless the cached
   *   reading lags real time by 1 s or more, which takes 256 cache calls spread over more than
   *   a second without the event loop turning (≥ 4 ms of synchronous work between calls).
   *   Writes and the sweep may use a lagging reading: an entry can then expire early, never late.
   * - `'exact'`: `performance.now()` on every call that needs the time (one read per call).
   * - an object `{ now(): number }` (a fake clock in tests): read at most once per call, exact.
   * @default 'coarse'
   */
  readonly clock?: Clock | 'coarse' | 'exact' | undefined;
}

/** Per-call options of {@link Cache.set}. */
export interface CacheSetOptions {
  /** Time to live of this entry in ms (`Infinity`: never expires); overrides the default. */
  readonly ttl?: number | undefined;
}

/** Per-call options of {@link Cache.getOrLoad}. */
export interface CacheLoadOptions {
  /**
   * Stops this caller's wait: it rejects with `signal.reason` while the load goes on for the
   * other callers; the load's own signal aborts only once every caller has aborted.
   */
  readonly signal?: AbortSignal | undefined;
  /** Time to live of the loaded value (set by the call that started the load). */
  readonly ttl?: number | undefined;
}

/** Counters and gauges of a {@link Cache}; reading them is free. */
export interface CacheStats {
  /** The `name` option. */
  readonly name: string;
  /** Reads (`get`, `getOrLoad`) that found a fresh value. */
  readonly hits: number;
  /** Reads that found nothing fresh (a stale value served by `getOrLoad` counts here too). */
  readonly misses: number;
  /** Stale values served by `getOrLoad` while a background refresh runs. */
  readonly staleHits: number;
  /** Loads started (foreground and background). */
  readonly loads: number;
  /** Loads that threw or rejected, background refreshes included (aborted loads are not). */
  readonly loadFailures: number;
  /** Loads aborted because every caller waiting for them aborted. */
  readonly loadsAborted: number;
  /** Entries removed to respect `maxSize` / `maxWeight`. */
  readonly evictions: number;
  /** Entries removed because they expired (on read or by the sweep). */
  readonly expirations: number;
  /**
   * User callbacks that threw (or rejected) where nobody awaits them: `onEvict`, `weigh`, a
   * clock read by the sweep timer. Each is also published on `sluice:cache:error`.
   */
  readonly callbackErrors: number;
  /** `hits / (hits + misses)`, or 0 before any read. */
  readonly hitRatio: number;
  /** Entries held now (expired entries not yet reclaimed included). */
  readonly size: number;
  /** Sum of the weights of the entries held now (their count without `weigh`). */
  readonly weight: number;
  /** Loads in flight now. */
  readonly inFlight: number;
}
