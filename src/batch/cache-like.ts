/**
 * The part of a cache a {@link Loader} uses: a synchronous subset of `Map`. `sluice/cache`'s
 * `Cache`, `lru-cache`'s `LRUCache` and a plain `Map` (unbounded: spell it out on purpose) all
 * fit.
 *
 * @example
 * ```ts
 * import { Cache } from 'sluice/cache';
 * import { Loader, type CacheLike, type LoaderEntry } from 'sluice/batch';
 * const cache: CacheLike<number, LoaderEntry<User>> = new Cache({ maxSize: 5_000, ttl: 60_000 });
 * const users = new Loader<number, User>(fetchUsers, { cache });
 * ```
 */
export interface CacheLike<K, V> {
  /** The cached value of `key`, or `undefined`. */
  get(key: K): V | undefined;
  /** Caches `value` under `key`. */
  set(key: K, value: V): unknown;
  /** Forgets `key` (a failed load, `loader.clear(key)`). */
  delete(key: K): unknown;
  /** Forgets every key (`loader.clearAll()`). */
  clear(): unknown;
}
