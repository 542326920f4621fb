/** An empty bucket of {@link IntTable} (slots are stored plus one). */
const EMPTY = 0;
const MIN_BUCKETS = 16;

/** Whether `key` is indexed by the integer table: a number `(key | 0) === key` (so -0 is 0). */
function isInt(key: unknown): key is number {
  return typeof key === 'number' && (key | 0) === key;
}

/**
 * An open-addressing hash table from int32 keys to slot numbers: linear probing, deletion by
 * backward shift (no tombstones), at most half full. Two typed arrays, 8 bytes a bucket; a
 * lookup reads a bucket or a few neighbours. Why: a `Map` that churns (a full cache deletes a
 * key and adds another on every write) rehashes often, and number keys — database ids, mostly
 * — cost several times more there than here.
 */
class IntTable {
  #keys = new Int32Array(MIN_BUCKETS);
  /** `slot + 1` per bucket; `EMPTY` marks a free bucket. */
  #slots = new Uint32Array(MIN_BUCKETS);
  #mask = MIN_BUCKETS - 1;
  /** `32 - log2(buckets)`: a key's home bucket is the top bits of its Fibonacci hash. */
  #shift = 32 - Math.log2(MIN_BUCKETS);
  size = 0;

  #home(key: number): number {
    return Math.imul(key, 0x9e37_79b1) >>> this.#shift;
  }

  get(key: number): number | undefined {
    const keys = this.#keys;
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = this.#home(key); ; i = (i + 1) & mask) {
      const s = slots[i] as number;
      if (s === EMPTY) return undefined;
      if (keys[i] === key) return s - 1;
    }
  }

  set(key: number, slot: number): void {
    const keys = this.#keys;
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = this.#home(key); ; i = (i + 1) & mask) {
      const s = slots[i] as number;
      if (s === EMPTY) {
        keys[i] = key;
        slots[i] = slot + 1;
        if (++this.size * 2 > mask + 1) this.#resize((mask + 1) * 2);
        return;
      }
      if (keys[i] === key) {
        slots[i] = slot + 1;
        return;
      }
    }
  }

  delete(key: number): boolean {
    const keys = this.#keys;
    const slots = this.#slots;
    const mask = this.#mask;
    let i = this.#home(key);
    for (; ; i = (i + 1) & mask) {
      const s = slots[i] as number;
      if (s === EMPTY) return false;
      if (keys[i] === key) break;
    }
    // Backward shift: move later keys of the probe run into the hole when their home allows.
    for (let j = (i + 1) & mask; slots[j] !== EMPTY; j = (j + 1) & mask) {
      const home = this.#home(keys[j] as number);
      // `j`'s key may fill hole `i` unless its home lies cyclically in (i, j].
      if (((j - home) & mask) >= ((j - i) & mask)) {
        keys[i] = keys[j] as number;
        slots[i] = slots[j] as number;
        i = j;
      }
    }
    slots[i] = EMPTY;
    this.size--;
    return true;
  }

  clear(): void {
    if (this.size === 0) return;
    this.size = 0;
    if (this.#slots.length > MIN_BUCKETS * 4) this.#resize(MIN_BUCKETS);
    else this.#slots.fill(EMPTY);
  }

  *entries(): IterableIterator<[number, number]> {
    const keys = this.#keys;
    const slots = this.#slots;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i] as number;
      if (s !== EMPTY) yield [keys[i] as number, s - 1];
    }
  }

  #resize(buckets: number): void {
    const keys = this.#keys;
    const slots = this.#slots;
    this.#keys = new Int32Array(buckets);
    this.#slots = new Uint32Array(buckets);
    this.#mask = buckets - 1;
    this.#shift = 32 - Math.log2(buckets);
    this.size = 0;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i] as number;
      if (s !== EMPTY) this.set(keys[i] as number, s - 1);
    }
  }
}

/**
 * A cache's key → slot index: int32 number keys in an {@link IntTable}, every other key in a
 * `Map` (SameValueZero, as a `Map` alone: `-0` and `0` are one key, `NaN` is one key).
 * Iteration yields the `Map`'s keys in insertion order, then the integer keys in table order.
 */
export class KeyIndex<K> {
  readonly #ints = new IntTable();
  readonly #others = new Map<K, number>();

  get size(): number {
    return this.#ints.size + this.#others.size;
  }

  get(key: K): number | undefined {
    return isInt(key) ? this.#ints.get(key) : this.#others.get(key);
  }

  /** Indexes `key` at `slot` (replacing its slot if indexed). */
  set(key: K, slot: number): void {
    if (isInt(key)) this.#ints.set(key, slot);
    else this.#others.set(key, slot);
  }

  delete(key: K): boolean {
    return isInt(key) ? this.#ints.delete(key) : this.#others.delete(key);
  }

  clear(): void {
    this.#ints.clear();
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
