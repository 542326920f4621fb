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

/**
 * S3-FIFO's ghost queue: the hashes of the last `limit` keys evicted from the small queue,
 * without the keys themselves (no reference kept to an evicted key). One slot per hash in a
 * power-of-two table of `(hash, sequence)` pairs, 8 bytes a slot, allocated on the first
 * eviction; a newer hash landing on the same slot replaces the older one, which only makes
 * the ghost forget early. A hash is a ghost while fewer than `limit` evictions followed it.
 */
export class Ghost {
  #hashes: Uint32Array | undefined;
  #seqs = new Uint32Array(0);
  #mask = 0;
  #seq = 0;
  #limit = 1;

  /** Whether anything was ever added (before that, `take` is always false). */
  get active(): boolean {
    return this.#hashes !== undefined;
  }

  /** Remembers `hash` as the newest ghost; the ghost window is the last `limit` additions. */
  add(hash: number, limit: number): void {
    if (hash === 0) return;
    this.#limit = limit;
    let hashes = this.#hashes;
    if (hashes === undefined || limit > hashes.length) hashes = this.#resize(limit);
    const i = hash & this.#mask;
    hashes[i] = hash;
    this.#seq = (this.#seq + 1) >>> 0;
    this.#seqs[i] = this.#seq;
  }

  /** Whether `hash` is a ghost; if so it stops being one. */
  take(hash: number): boolean {
    const hashes = this.#hashes;
    if (hashes === undefined || hash === 0) return false;
    const i = hash & this.#mask;
    if (hashes[i] !== hash || (this.#seq - (this.#seqs[i] as number)) >>> 0 >= this.#limit) return false;
    hashes[i] = 0;
    return true;
  }

  clear(): void {
    this.#hashes?.fill(0);
  }

  #resize(limit: number): Uint32Array {
    let size = 16;
    while (size < limit) size *= 2;
    const hashes = new Uint32Array(size);
    this.#hashes = hashes;
    this.#seqs = new Uint32Array(size);
    this.#mask = size - 1;
    return hashes;
  }
}
