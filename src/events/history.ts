import type { EventRecord } from './event.js';

/** The latest `capacity` events, in a ring (the oldest is overwritten). */
export class History {
  readonly #ring: (EventRecord | undefined)[];
  readonly #capacity: number;
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
    this.#ring = new Array<EventRecord | undefined>(Math.min(capacity, 1024));
  }

  push(record: EventRecord): void {
    const capacity = this.#capacity;
    if (capacity === 0) return;
    const ring = this.#ring;
    // The ring grows to `capacity` in steps, so a large bound costs memory only once used.
    if (this.#size === ring.length && ring.length < capacity) {
      ring.length = Math.min(capacity, ring.length * 2);
      this.#next = this.#size;
    }
    ring[this.#next] = record;
    this.#next = this.#next + 1 === ring.length ? 0 : this.#next + 1;
    if (this.#size < ring.length) this.#size++;
  }

  /** Up to `limit` latest records of `type` (all types when `undefined`), oldest first. */
  list(type: string | undefined, limit: number): EventRecord[] {
    const ring = this.#ring;
    const out: EventRecord[] = [];
    let i = this.#next;
    for (let n = 0; n < this.#size && out.length < limit; n++) {
      i = i === 0 ? ring.length - 1 : i - 1;
      const record = ring[i] as EventRecord;
      if (type === undefined || record.type === type) out.push(record);
    }
    return out.reverse();
  }
}
