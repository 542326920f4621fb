/** "No slot": the end of a list, or an empty policy's victim. */
export const NIL = 0xffff_ffff;

/**
 * An eviction policy over slot indices. The cache owns keys, values and the key → slot map;
 * a policy keeps only its own per-slot bookkeeping (typed arrays indexed by slot), so a hit
 * costs whatever `touch` costs and nothing else.
 */
export interface Policy<K> {
  /** A new entry took `slot`. */
  insert(slot: number, key: K): void;
  /** A read found the entry at `slot` (the hot path). */
  touch(slot: number): void;
  /** The entry at `slot` left; `evicted` when the bound pushed it out (as chosen by `victim`). */
  remove(slot: number, key: K, evicted: boolean): void;
  /**
   * The entry at `slot`, chosen by `victim()`, was evicted and a new entry with `key` took its
   * slot: `remove(slot, old, true)` then `insert(slot, key)`, in one call.
   */
  replace(slot: number, key: K): void;
  /** The slot to evict next, still in place (the cache removes it), or `NIL` when empty. */
  victim(): number;
  /** `victim()` chose a slot that must stay (the entry being written): queue it as most recent. */
  requeue(slot: number): void;
  /** Forget every entry. */
  clear(): void;
  /** Slots now range over `[0, capacity)`. */
  grow(capacity: number): void;
}

/** Copies `from` into a new array of the same kind with `capacity` elements. */
export function grown<T extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(
  from: T,
  capacity: number,
  fill?: number,
): T {
  const to = new (from.constructor as new (n: number) => T)(capacity);
  to.set(from);
  if (fill !== undefined) to.fill(fill, from.length);
  return to;
}
