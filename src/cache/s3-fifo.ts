import { Ghost, hashKey } from './ghost.js';
import { grown, NIL, type Policy } from './policy.js';

/** `meta` bits: a 2-bit read counter, and whether the entry is in the main queue. */
const FREQ = 0b011;
const MAIN = 0b100;
/** Reads an entry needs while in the small queue to be moved to main instead of evicted. */
const PROMOTE = 1;

/** A hit: the slot's 2-bit read counter goes up by one, capped at 3. */
export function touchMeta(meta: Uint8Array, slot: number): void {
  const m = meta[slot] as number;
  if ((m & FREQ) !== FREQ) meta[slot] = m + 1;
}

/**
 * S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction", SOSP 2023): a
 * small FIFO holding about 10% of the entries, a main FIFO with 2-bit "reinsertion" counters,
 * and a ghost table of the hashes of keys recently evicted from the small FIFO.
 *
 * - insert: a ghost key goes to main, any other to small;
 * - hit: the entry's counter goes up by one, capped at 3 — one byte read and written, no
 *   list move (this is why a hit costs about a `Map.get`);
 * - victim: while small holds ≥ 10% of the entries, its oldest entry either moves to main
 *   (read at least `PROMOTE` times) or is the victim (and becomes a ghost); otherwise main's
 *   oldest entry either goes round again with its counter decremented, or is the victim.
 *
 * One-hit wonders (a scan) pass through small without disturbing main: scan resistance. Both
 * queues are doubly linked lists through shared `Uint32Array`s (so `delete` and expiry unlink
 * in O(1)), plus one byte of counter and four of key hash per slot.
 */
export class S3FifoPolicy<K> implements Policy<K> {
  #next: Uint32Array;
  #prev: Uint32Array;
  #meta: Uint8Array;
  /** Each entry's key hash, taken once on insert and used again if it becomes a ghost. */
  #hashes: Uint32Array;
  #smallHead = NIL;
  #smallTail = NIL;
  #small = 0;
  #mainHead = NIL;
  #mainTail = NIL;
  #main = 0;
  readonly #ghost: Ghost;

  constructor(capacity: number) {
    this.#next = new Uint32Array(capacity);
    this.#prev = new Uint32Array(capacity);
    this.#meta = new Uint8Array(capacity);
    this.#hashes = new Uint32Array(capacity);
    this.#ghost = new Ghost(capacity);
  }

  /**
   * The per-slot byte `touch` bumps, for a cache that inlines the hit path (see
   * {@link touchMeta}). Replaced by `grow`: read it again after growing.
   */
  get meta(): Uint8Array {
    return this.#meta;
  }

  insert(slot: number, key: K): void {
    const hash = hashKey(key);
    this.#hashes[slot] = hash;
    if (this.#ghost.take(hash)) {
      this.#meta[slot] = MAIN;
      this.#appendMain(slot);
    } else {
      this.#meta[slot] = 0;
      this.#appendSmall(slot);
    }
  }

  touch(slot: number): void {
    touchMeta(this.#meta, slot);
  }

  remove(slot: number, _key: K, evicted: boolean): void {
    if (((this.#meta[slot] as number) & MAIN) !== 0) {
      this.#unlinkMain(slot);
    } else {
      this.#unlinkSmall(slot);
      if (evicted) this.#ghost.add(this.#hashes[slot] as number, this.#main + this.#small || 1);
    }
  }

  replace(slot: number, key: K): void {
    this.remove(slot, undefined as K, true);
    this.insert(slot, key);
  }

  victim(): number {
    const meta = this.#meta;
    for (;;) {
      if (this.#small > 0 && (this.#main === 0 || this.#small * 10 >= this.#small + this.#main)) {
        const slot = this.#smallHead;
        if (((meta[slot] as number) & FREQ) < PROMOTE) return slot;
        this.#unlinkSmall(slot);
        meta[slot] = MAIN;
        this.#appendMain(slot);
        continue;
      }
      const slot = this.#mainHead;
      if (slot === NIL) return NIL;
      const m = meta[slot] as number;
      if ((m & FREQ) === 0) return slot;
      meta[slot] = m - 1;
      this.#unlinkMain(slot);
      this.#appendMain(slot);
    }
  }

  requeue(slot: number): void {
    this.remove(slot, undefined as K, false);
    this.#meta[slot] = MAIN | 1;
    this.#appendMain(slot);
  }

  clear(): void {
    this.#smallHead = this.#smallTail = this.#mainHead = this.#mainTail = NIL;
    this.#small = this.#main = 0;
    this.#ghost.clear();
  }

  grow(capacity: number): void {
    this.#next = grown(this.#next, capacity);
    this.#prev = grown(this.#prev, capacity);
    this.#meta = grown(this.#meta, capacity);
    this.#hashes = grown(this.#hashes, capacity);
    this.#ghost.grow(capacity);
  }

  #appendSmall(slot: number): void {
    const tail = this.#smallTail;
    this.#prev[slot] = tail;
    this.#next[slot] = NIL;
    if (tail === NIL) this.#smallHead = slot;
    else this.#next[tail] = slot;
    this.#smallTail = slot;
    this.#small++;
  }

  #appendMain(slot: number): void {
    const tail = this.#mainTail;
    this.#prev[slot] = tail;
    this.#next[slot] = NIL;
    if (tail === NIL) this.#mainHead = slot;
    else this.#next[tail] = slot;
    this.#mainTail = slot;
    this.#main++;
  }

  #unlinkSmall(slot: number): void {
    const prev = this.#prev[slot] as number;
    const next = this.#next[slot] as number;
    if (prev === NIL) this.#smallHead = next;
    else this.#next[prev] = next;
    if (next === NIL) this.#smallTail = prev;
    else this.#prev[next] = prev;
    this.#small--;
  }

  #unlinkMain(slot: number): void {
    const prev = this.#prev[slot] as number;
    const next = this.#next[slot] as number;
    if (prev === NIL) this.#mainHead = next;
    else this.#next[prev] = next;
    if (next === NIL) this.#mainTail = prev;
    else this.#prev[next] = prev;
    this.#main--;
  }
}
