/**
 * A 32-bit hash of a string or number key, never 0; 0 for keys of other types (objects,
 * symbols, …), which the ghost table does not track. A string hashes its length, its last 12
 * and its first 2 characters (ids differ at the end; a hash per insert must stay cheap): a
 * collision only admits a key to the main queue a little early.
 */
export function hashKey(key: unknown): number {
  let h: number;
  if (typeof key === 'string') {
    const n = key.length;
    h = Math.imul(n, 0x9e3779b1);
    // Two characters per step: the multiply chain's latency is the cost.
    let i = n > 12 ? n - 12 : 0;
    for (; i + 1 < n; i += 2)
      h = Math.imul(h ^ (key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16)), 0x01000193);
    if (i < n) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    if (n > 12) h = Math.imul(h ^ (key.charCodeAt(0) | (key.charCodeAt(1) << 16)), 0x01000193);
  } else if (typeof key === 'number') {
    h = Math.imul((key | 0) ^ ((key / 4294967296) | 0), 0x9e3779b1);
  } else {
    return 0;
  }
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0 || 1;
}

/** Sequence numbers wrap within the small-integer range, so V8 keeps them unboxed. */
const SEQ_MASK = 0x3fff_ffff;
/** The table of a ghost that never had an eviction: all zeros, never written. */
const NONE = new Uint32Array(16);

/**
 * S3-FIFO's ghost queue: the hashes of the keys most recently evicted from the small queue,
 * without the keys themselves (no reference kept to an evicted key). One slot per hash in a
 * power-of-two table of `(hash, sequence)` pairs, 8 bytes a slot, sized with the cache's
 * capacity and allocated at the first eviction (a cache that never evicts pays nothing); a
 * newer hash landing on the same slot replaces the older one, which only makes the ghost
 * forget early. A hash is a ghost while fewer than `limit` evictions followed it, `limit`
 * being the cache's size at the latest `add` (one window for every ghost).
 */
export class Ghost {
  #hashes = NONE;
  #seqs = NONE;
  #mask = NONE.length - 1;
  /** Table size for the cache's current capacity. */
  #size: number;
  #seq = 0;
  #limit = 1;

  constructor(capacity: number) {
    this.#size = tableSize(capacity);
  }

  /** Remembers `hash` as the newest ghost; the ghost window is the last `limit` additions. */
  add(hash: number, limit: number): void {
    if (hash === 0) return; // an untracked key (see hashKey)
    if (this.#hashes === NONE) this.#allocate();
    this.#limit = limit;
    const i = hash & this.#mask;
    this.#hashes[i] = hash;
    const seq = (this.#seq + 1) & SEQ_MASK;
    this.#seq = seq;
    this.#seqs[i] = seq;
  }

  /** Whether `hash` is a ghost; if so it stops being one. */
  take(hash: number): boolean {
    const hashes = this.#hashes;
    const i = hash & this.#mask;
    if (
      hash === 0 ||
      hashes[i] !== hash ||
      ((this.#seq - (this.#seqs[i] as number)) & SEQ_MASK) >= this.#limit
    ) {
      return false;
    }
    hashes[i] = 0;
    return true;
  }

  clear(): void {
    if (this.#hashes !== NONE) this.#hashes.fill(0);
  }

  /** The cache can now hold `capacity` entries: widen the table (forgetting the current ghosts). */
  grow(capacity: number): void {
    this.#size = tableSize(capacity);
    if (this.#hashes !== NONE && this.#size > this.#hashes.length) this.#allocate();
  }

  #allocate(): void {
    this.#hashes = new Uint32Array(this.#size);
    this.#seqs = new Uint32Array(this.#size);
    this.#mask = this.#size - 1;
  }
}

function tableSize(capacity: number): number {
  let size = 16;
  while (size < capacity) size *= 2;
  return size;
}
