import { grown, NIL, type Policy } from './policy.js';

/**
 * Strict least-recently-used order: one doubly linked list through two `Uint32Array`s
 * (8 bytes per slot). A hit moves the entry to the most-recent end; the victim is the least
 * recent.
 */
export class LruPolicy<K> implements Policy<K> {
  #next: Uint32Array;
  #prev: Uint32Array;
  /** Least recent. */
  #head = NIL;
  /** Most recent. */
  #tail = NIL;

  constructor(capacity: number) {
    this.#next = new Uint32Array(capacity);
    this.#prev = new Uint32Array(capacity);
  }

  insert(slot: number, _key: K): void {
    this.#append(slot);
  }

  touch(slot: number): void {
    if (slot !== this.#tail) {
      this.#unlink(slot);
      this.#append(slot);
    }
  }

  remove(slot: number, _key: K, _evicted: boolean): void {
    this.#unlink(slot);
  }

  replace(slot: number, _key: K): void {
    this.touch(slot);
  }

  victim(): number {
    return this.#head;
  }

  requeue(slot: number): void {
    this.touch(slot);
  }

  clear(): void {
    this.#head = this.#tail = NIL;
  }

  grow(capacity: number): void {
    this.#next = grown(this.#next, capacity);
    this.#prev = grown(this.#prev, capacity);
  }

  #append(slot: number): void {
    const tail = this.#tail;
    this.#prev[slot] = tail;
    this.#next[slot] = NIL;
    if (tail === NIL) this.#head = slot;
    else this.#next[tail] = slot;
    this.#tail = slot;
  }

  #unlink(slot: number): void {
    const prev = this.#prev[slot] as number;
    const next = this.#next[slot] as number;
    if (prev === NIL) this.#head = next;
    else this.#next[prev] = next;
    if (next === NIL) this.#tail = prev;
    else this.#prev[next] = prev;
  }
}
