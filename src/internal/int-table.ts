/** An empty bucket of {@link IntTable} (slots are stored plus one). */
const EMPTY = 0;
const MIN_BUCKETS = 16;
/**
 * Longest probe an insert may take before the table gives up hashing and falls back to a
 * `Map`. With a random seed, runs this long at most half full do not happen by chance.
 */
const MAX_PROBE = 64;
/** Per-process random hash seed: colliding ids cannot be precomputed (hash flooding). */
const SEED = globalThis.crypto.getRandomValues(new Uint32Array(1))[0] as number;

/** Whether `key` is an int32 number (`(key | 0) === key`, so -0 counts, as 0). */
export function isInt32(key: unknown): key is number {
  return typeof key === 'number' && (key | 0) === key;
}

/**
 * An open-addressing hash table from int32 keys to non-negative integers (slot numbers):
 * linear probing, deletion by backward shift (no tombstones), at most half full. Keys are
 * hashed with a per-process random seed, and an insert whose probe run grows past 64 buckets
 * moves every key into a `Map` for the rest of the table's life (until `clear`), so crafted
 * ids cannot make it quadratic (hash flooding). Two typed
 * arrays, 8 bytes a bucket; a lookup reads a bucket or a few neighbours. Why: a `Map` that
 * churns (a full cache deletes a key and adds another on every write) rehashes often, and
 * number keys — database ids, mostly — cost several times more there than here; a per-batch
 * duplicate check costs about a third of building a `Set`.
 */
export class IntTable {
  #keys: Int32Array;
  /** `value + 1` per bucket; `EMPTY` marks a free bucket. */
  #slots: Uint32Array;
  #mask: number;
  /** `32 - log2(buckets)`: a key's home bucket is the top bits of its Fibonacci hash. */
  #shift: number;
  /** Set once a probe run grew past `#maxProbe`: every key then lives here instead. */
  #fallback: Map<number, number> | undefined;
  readonly #maxProbe: number;
  size = 0;

  /**
   * `expected`: keys it should hold without growing. `maxProbe`: longest insert probe before
   * falling back to a `Map` (tests lower it).
   */
  constructor(expected = 0, maxProbe = MAX_PROBE) {
    this.#maxProbe = maxProbe;
    let buckets = MIN_BUCKETS;
    while (buckets < 2 * expected) buckets *= 2;
    this.#keys = new Int32Array(buckets);
    this.#slots = new Uint32Array(buckets);
    this.#mask = buckets - 1;
    this.#shift = 32 - Math.log2(buckets);
  }

  /** Buckets allocated. */
  get buckets(): number {
    return this.#slots.length;
  }

  /** Whether a flood of colliding keys made the table fall back to a `Map`. */
  get degraded(): boolean {
    return this.#fallback !== undefined;
  }

  #home(key: number): number {
    // Seeded, and mixed so that high key bits reach the (top) bits that pick the bucket.
    const h = Math.imul(key ^ SEED, 0x9e37_79b1);
    return Math.imul(h ^ (h >>> 16), 0x85eb_ca6b) >>> this.#shift;
  }

  get(key: number): number | undefined {
    if (this.#fallback !== undefined) return this.#fallback.get(key | 0);
    const keys = this.#keys;
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = this.#home(key); ; i = (i + 1) & mask) {
      const s = slots[i] as number;
      if (s === EMPTY) return undefined;
      if (keys[i] === key) return s - 1;
    }
  }

  /** Maps `key` to `slot`; returns whether `key` was new. */
  set(key: number, slot: number): boolean {
    const fallback = this.#fallback;
    if (fallback !== undefined) {
      const size = fallback.size;
      fallback.set(key | 0, slot);
      this.size = fallback.size;
      return fallback.size !== size;
    }
    const keys = this.#keys;
    const slots = this.#slots;
    const mask = this.#mask;
    const home = this.#home(key);
    for (let i = home; ; i = (i + 1) & mask) {
      const s = slots[i] as number;
      if (s === EMPTY) {
        keys[i] = key;
        slots[i] = slot + 1;
        this.size++;
        if (((i - home) & mask) > this.#maxProbe) this.#degrade();
        else if (this.size * 2 > mask + 1) this.#resize((mask + 1) * 2);
        return true;
      }
      if (keys[i] === key) {
        slots[i] = slot + 1;
        return false;
      }
    }
  }

  delete(key: number): boolean {
    const fallback = this.#fallback;
    if (fallback !== undefined) {
      const deleted = fallback.delete(key | 0);
      this.size = fallback.size;
      return deleted;
    }
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

  /** Forgets every key; keeps the buckets. */
  clear(): void {
    this.#fallback = undefined;
    if (this.size === 0) return;
    this.size = 0;
    this.#slots.fill(EMPTY);
  }

  *entries(): IterableIterator<[number, number]> {
    if (this.#fallback !== undefined) {
      yield* this.#fallback.entries();
      return;
    }
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
      // A probe run too long while re-inserting: `set` moved everything so far to the Map.
      if (this.#fallback !== undefined) {
        for (let j = i + 1; j < slots.length; j++) {
          const t = slots[j] as number;
          if (t !== EMPTY) this.#fallback.set(keys[j] as number, t - 1);
        }
        this.size = this.#fallback.size;
        return;
      }
    }
  }

  /** Moves every key into a `Map` and drops the buckets. */
  #degrade(): void {
    const fallback = new Map<number, number>();
    const keys = this.#keys;
    const slots = this.#slots;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i] as number;
      if (s !== EMPTY) fallback.set(keys[i] as number, s - 1);
    }
    this.#fallback = fallback;
    this.size = fallback.size;
    this.#keys = new Int32Array(MIN_BUCKETS);
    this.#slots = new Uint32Array(MIN_BUCKETS);
    this.#mask = MIN_BUCKETS - 1;
    this.#shift = 32 - Math.log2(MIN_BUCKETS);
  }
}
