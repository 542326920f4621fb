import { IntTable, isInt32 } from '../internal/int-table.js';

/**
 * A cache's key → slot index: int32 number keys in an {@link IntTable}, every other key in a
 * `Map` (SameValueZero, as a `Map` alone: `-0` and `0` are one key, `NaN` is one key).
 * Iteration yields the `Map`'s keys in insertion order, then the integer keys in table order.
 */
export class KeyIndex<K> {
  #ints = new IntTable();
  readonly #others = new Map<K, number>();

  get size(): number {
    return this.#ints.size + this.#others.size;
  }

  get(key: K): number | undefined {
    return isInt32(key) ? this.#ints.get(key) : this.#others.get(key);
  }

  /** Indexes `key` at `slot` (replacing its slot if indexed). */
  set(key: K, slot: number): void {
    if (isInt32(key)) this.#ints.set(key, slot);
    else this.#others.set(key, slot);
  }

  delete(key: K): boolean {
    return isInt32(key) ? this.#ints.delete(key) : this.#others.delete(key);
  }

  clear(): void {
    // A large table is dropped rather than zeroed: clear() should give memory back.
    if (this.#ints.buckets > 64) this.#ints = new IntTable();
    else this.#ints.clear();
    this.#others.clear();
  }

  /** Every slot in use. */
  *slots(): IterableIterator<number> {
    for (const [, slot] of this.entries()) yield slot;
  }

  *entries(): IterableIterator<[K, number]> {
    yield* this.#others.entries();
    yield* this.#ints.entries() as IterableIterator<[K, number]>;
  }
}
