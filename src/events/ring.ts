const MIN_CAPACITY = 8;

/**
 * A FIFO of `(item, aux)` pairs in two ring arrays: O(1) push and shift, no object per entry.
 * A subscriber's buffer: events leave only from the head, so unlike the shared `Deque` it needs
 * no tombstones and no time stamps, which keeps the per-event path short. It grows by doubling
 * and goes back to a small array once drained.
 */
export class Ring<A, B> {
  #items: (A | undefined)[] = new Array<A | undefined>(MIN_CAPACITY);
  #aux: (B | undefined)[] = new Array<B | undefined>(MIN_CAPACITY);
  #mask = MIN_CAPACITY - 1;
  #head = 0;
  #size = 0;
  /** Aux value of the entry most recently returned by {@link Ring.shift}. */
  aux: B | undefined = undefined;

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  push(item: A, aux: B | undefined): void {
    if (this.#size > this.#mask) this.#grow();
    const i = (this.#head + this.#size) & this.#mask;
    this.#items[i] = item;
    this.#aux[i] = aux;
    this.#size++;
  }

  /** Removes and returns the oldest item (its aux lands in `aux`). */
  shift(): A | undefined {
    if (this.#size === 0) return undefined;
    const i = this.#head;
    const item = this.#items[i];
    this.aux = this.#aux[i];
    this.#items[i] = undefined;
    this.#aux[i] = undefined;
    this.#head = (i + 1) & this.#mask;
    if (--this.#size === 0 && this.#items.length > 1024) {
      this.#items = new Array<A | undefined>(MIN_CAPACITY);
      this.#aux = new Array<B | undefined>(MIN_CAPACITY);
      this.#mask = MIN_CAPACITY - 1;
      this.#head = 0;
    }
    return item;
  }

  #grow(): void {
    const capacity = this.#items.length * 2;
    const items = new Array<A | undefined>(capacity);
    const aux = new Array<B | undefined>(capacity);
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) & this.#mask;
      items[k] = this.#items[i];
      aux[k] = this.#aux[i];
    }
    this.#items = items;
    this.#aux = aux;
    this.#mask = capacity - 1;
    this.#head = 0;
  }
}
