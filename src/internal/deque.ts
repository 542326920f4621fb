const MIN_CAPACITY = 16;

function emptyArrays<A, B>(capacity: number): [(A | undefined)[], (B | undefined)[], Float64Array] {
  return [new Array<A | undefined>(capacity), new Array<B | undefined>(capacity), new Float64Array(capacity)];
}

/**
 * FIFO ring buffer of `(item, aux, stamp)` triples in flat arrays: no wrapper object per entry,
 * O(1) push and shift. Entries are removed in O(1) by tombstoning: the owner marks an item dead
 * (so that `isDead(item)` holds) and calls {@link Deque.markDead}; dead entries are skipped by
 * `shift`, and the buffer is compacted (amortised O(1)) once they outnumber live ones, so a
 * storm of aborted waiters never pins memory. Capacity shrinks back when the queue drains.
 */
export class Deque<A, B> {
  #items: (A | undefined)[];
  #aux: (B | undefined)[];
  #stamps: Float64Array;
  #mask: number;
  #head = 0;
  #length = 0;
  #dead = 0;
  readonly #isDead: (item: A) => boolean;

  /** Aux value of the entry most recently returned by {@link Deque.shift}. */
  aux: B | undefined = undefined;
  /** Stamp of the entry most recently returned by {@link Deque.shift}. */
  stamp = 0;

  /** `capacity`: initial slots, a power of two (small for queues that are usually short). */
  constructor(isDead: (item: A) => boolean, capacity = MIN_CAPACITY) {
    this.#isDead = isDead;
    [this.#items, this.#aux, this.#stamps] = emptyArrays<A, B>(capacity);
    this.#mask = capacity - 1;
  }

  /** Live entries. */
  get size(): number {
    return this.#length - this.#dead;
  }

  push(item: A, aux: B | undefined, stamp: number): void {
    if (this.#length > this.#mask) this.#resize(this.#items.length * 2);
    const i = (this.#head + this.#length) & this.#mask;
    this.#items[i] = item;
    this.#aux[i] = aux;
    this.#stamps[i] = stamp;
    this.#length++;
  }

  /** Removes and returns the oldest live item (its aux and stamp land in `aux` / `stamp`). */
  shift(): A | undefined {
    while (this.#length > 0) {
      const i = this.#head;
      const item = this.#items[i] as A;
      this.aux = this.#aux[i];
      this.stamp = this.#stamps[i] as number;
      this.#items[i] = undefined;
      this.#aux[i] = undefined;
      this.#head = (i + 1) & this.#mask;
      this.#length--;
      if (this.#isDead(item)) {
        this.#dead--;
        continue;
      }
      if (this.#length === 0 && this.#items.length > 1024) this.#resize(MIN_CAPACITY);
      return item;
    }
    return undefined;
  }

  /**
   * The oldest live item, left in place (dead entries ahead of it are dropped); its aux and
   * stamp land in `aux` / `stamp`.
   */
  peek(): A | undefined {
    while (this.#length > 0) {
      const i = this.#head;
      const item = this.#items[i] as A;
      if (!this.#isDead(item)) {
        this.aux = this.#aux[i];
        this.stamp = this.#stamps[i] as number;
        return item;
      }
      this.#items[i] = undefined;
      this.#aux[i] = undefined;
      this.#head = (i + 1) & this.#mask;
      this.#length--;
      this.#dead--;
    }
    return undefined;
  }

  /** Records that one queued item has just become dead; compacts when the dead dominate. */
  markDead(): void {
    this.#dead++;
    if (this.#dead === this.#length) this.#reset();
    else if (this.#dead > 64 && this.#dead * 2 > this.#length) this.#compact();
  }

  /** Removes every entry, calling `fn` on each live one in FIFO order. */
  drain(fn: (item: A, aux: B | undefined) => void): void {
    const items = this.#items;
    const aux = this.#aux;
    const mask = this.#mask;
    const head = this.#head;
    const length = this.#length;
    [this.#items, this.#aux, this.#stamps] = emptyArrays<A, B>(MIN_CAPACITY);
    this.#mask = MIN_CAPACITY - 1;
    this.#head = 0;
    this.#length = 0;
    this.#dead = 0;
    for (let k = 0; k < length; k++) {
      const i = (head + k) & mask;
      const item = items[i] as A;
      if (!this.#isDead(item)) fn(item, aux[i]);
    }
  }

  /** Drops every entry (all are dead) and, if it grew, the buffer that held them. */
  #reset(): void {
    if (this.#items.length > MIN_CAPACITY) {
      [this.#items, this.#aux, this.#stamps] = emptyArrays<A, B>(MIN_CAPACITY);
      this.#mask = MIN_CAPACITY - 1;
    } else {
      this.#items.fill(undefined);
      this.#aux.fill(undefined);
    }
    this.#head = 0;
    this.#length = 0;
    this.#dead = 0;
    this.aux = undefined;
  }

  #compact(): void {
    const live = this.#length - this.#dead;
    let capacity = MIN_CAPACITY;
    while (capacity < live * 2) capacity *= 2;
    this.#copyInto(capacity, true);
  }

  #resize(capacity: number): void {
    this.#copyInto(capacity, false);
  }

  #copyInto(capacity: number, dropDead: boolean): void {
    const items = new Array<A | undefined>(capacity);
    const aux = new Array<B | undefined>(capacity);
    const stamps = new Float64Array(capacity);
    let n = 0;
    for (let k = 0; k < this.#length; k++) {
      const i = (this.#head + k) & this.#mask;
      const item = this.#items[i] as A;
      if (dropDead && this.#isDead(item)) continue;
      items[n] = item;
      aux[n] = this.#aux[i];
      stamps[n] = this.#stamps[i] as number;
      n++;
    }
    this.#items = items;
    this.#aux = aux;
    this.#stamps = stamps;
    this.#mask = capacity - 1;
    this.#head = 0;
    this.#length = n;
    if (dropDead) this.#dead = 0;
  }
}
