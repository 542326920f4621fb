import { grown, NIL } from './policy.js';

/** Bucket span of each level in ms: 256 ms, 16.4 s, 17.5 min, 18.6 h, then one overflow bucket. */
const SPANS = [2 ** 8, 2 ** 14, 2 ** 20, 2 ** 26, 2 ** 32] as const;
const SPAN0 = SPANS[0];
/** Level-0 bucket span: how late after its deadline the sweep may reclaim an entry, in ms. */
export const RESOLUTION = SPAN0;
const PER_LEVEL = 64;
const OVERFLOW = 4 * PER_LEVEL;
/** Entries taken out of passed buckets, waiting to be expired or re-placed. */
const PENDING = OVERFLOW + 1;
const NONE = 0xffff;

/**
 * A hierarchical timer wheel (as in Caffeine and the Linux kernel) over slot indices: no timer
 * and no object per entry, 10 bytes per slot (two `Uint32Array` links and a `Uint16Array`
 * bucket id). Level `l` has 64 buckets of `SPANS[l]` ms; an entry goes to the coarsest level
 * its remaining time needs and cascades to finer levels as time passes. Scheduling and
 * unscheduling are O(1); `advance(now)` visits only the buckets whose time has passed, so the
 * sweep is incremental, and reclaims an entry at most one level-0 span (256 ms) after its
 * deadline. Deadlines are read from the owner's `Float64Array` plus a constant offset (the
 * stale-while-revalidate window), so the wheel stores no time per entry.
 */
export class TimerWheel {
  #next: Uint32Array;
  #prev: Uint32Array;
  #bucket: Uint16Array;
  #times: Float64Array;
  readonly #offset: number;
  readonly #heads = new Uint32Array(PENDING + 1).fill(NIL);
  /**
   * Last entry of each list, so that a passed bucket is spliced onto the pending list in O(1).
   * Entries so spliced keep their old bucket id: only `#unlink` reads it, and it checks the
   * pending list's own head and tail first.
   */
  readonly #tails = new Uint32Array(PENDING + 1).fill(NIL);
  /** Time up to which the wheel has been advanced. */
  #now: number;
  #size = 0;
  #advancing = false;
  /** `advance` has nothing to do before this time. */
  nextTick: number;

  constructor(capacity: number, times: Float64Array, offset: number, now: number) {
    this.#next = new Uint32Array(capacity);
    this.#prev = new Uint32Array(capacity);
    this.#bucket = new Uint16Array(capacity).fill(NONE);
    this.#times = times;
    this.#offset = offset;
    this.#now = now;
    this.nextTick = (Math.floor(now / SPAN0) + 1) * SPAN0;
  }

  /** Entries scheduled. */
  get size(): number {
    return this.#size;
  }

  /** Slots now range over `[0, capacity)`; `times` is the owner's (possibly new) deadline array. */
  grow(capacity: number, times: Float64Array): void {
    this.#next = grown(this.#next, capacity);
    this.#prev = grown(this.#prev, capacity);
    this.#bucket = grown(this.#bucket, capacity, NONE);
    this.#times = times;
  }

  /** (Re)schedules `slot` at its deadline, `times[slot] + offset`. */
  schedule(slot: number): void {
    if (this.#bucket[slot] !== NONE) this.#unlink(slot);
    else this.#size++;
    this.#place(slot, (this.#times[slot] as number) + this.#offset);
  }

  /** Stops tracking `slot`; a no-op if it is not scheduled. */
  unschedule(slot: number): void {
    if (this.#bucket[slot] === NONE) return;
    this.#unlink(slot);
    this.#bucket[slot] = NONE;
    this.#size--;
  }

  /** Whether entries taken out of passed buckets still wait to be expired or re-placed. */
  get pending(): boolean {
    return this.#heads[PENDING] !== NIL;
  }

  /**
   * Moves the wheel to `now`: every entry in a passed bucket whose deadline is ≤ `now` is
   * unscheduled and passed to `expire` (which may use the wheel); the others move to finer
   * buckets. At most `budget` such entries are handled per call: the rest stay pending (and
   * `nextTick` stays passed, `nextDeadline` is now) until the next calls. Returns how many
   * expired. Re-entrant calls (from `expire`) do nothing.
   */
  advance(now: number, expire: (slot: number) => void, budget = Infinity): number {
    if (now < this.nextTick || this.#advancing) return 0;
    if (now < this.#now) now = this.#now;
    const prev = this.#now;
    this.#now = now;
    for (let level = 0; level < SPANS.length; level++) {
      const span = SPANS[level] as number;
      const from = Math.floor(prev / span);
      const to = Math.floor(now / span);
      if (to === from) break;
      if (level === SPANS.length - 1) {
        this.#collect(OVERFLOW);
      } else {
        const passed = Math.min(to - from, PER_LEVEL - 1);
        for (let k = 0; k <= passed; k++) this.#collect(level * PER_LEVEL + ((from + k) & (PER_LEVEL - 1)));
      }
    }
    let expired = 0;
    let work = 0;
    this.#advancing = true;
    try {
      const heads = this.#heads;
      for (let slot = heads[PENDING] as number; slot !== NIL; slot = heads[PENDING] as number) {
        if (work++ >= budget) break;
        this.#unlink(slot);
        const deadline = (this.#times[slot] as number) + this.#offset;
        if (deadline <= now) {
          this.#bucket[slot] = NONE;
          this.#size--;
          expired++;
          expire(slot);
        } else {
          this.#place(slot, deadline);
        }
      }
    } finally {
      this.#advancing = false;
      // Work left: the next call (a write, the timer) goes on with it whatever the time.
      this.nextTick = this.#heads[PENDING] !== NIL ? -Infinity : (Math.floor(now / SPAN0) + 1) * SPAN0;
    }
    return expired;
  }

  /**
   * When `advance` next has something to do: the end of the earliest non-empty level-0
   * bucket, or the start of the earliest non-empty coarser one (to cascade it). `Infinity`
   * when empty.
   */
  nextDeadline(): number {
    if (this.#size === 0) return Infinity;
    const heads = this.#heads;
    if (heads[PENDING] !== NIL) return this.#now;
    let best = Infinity;
    for (let level = 0; level < SPANS.length - 1; level++) {
      const span = SPANS[level] as number;
      const current = Math.floor(this.#now / span);
      for (let k = 0; k < PER_LEVEL; k++) {
        const tick = current + k;
        if (heads[level * PER_LEVEL + (tick & (PER_LEVEL - 1))] === NIL) continue;
        const at = level === 0 ? (tick + 1) * span : Math.max(tick, current + 1) * span;
        if (at < best) best = at;
        break;
      }
    }
    if (heads[OVERFLOW] !== NIL) {
      const span = SPANS[SPANS.length - 1] as number;
      best = Math.min(best, (Math.floor(this.#now / span) + 1) * span);
    }
    return best;
  }

  /** Unschedules everything. */
  clear(): void {
    this.#heads.fill(NIL);
    this.#tails.fill(NIL);
    this.#bucket.fill(NONE);
    this.#size = 0;
    this.nextTick = (Math.floor(this.#now / SPAN0) + 1) * SPAN0;
  }

  #place(slot: number, deadline: number): void {
    const delta = deadline - this.#now;
    let bucket: number;
    if (delta < SPANS[1]) bucket = Math.floor(deadline / SPANS[0]) & (PER_LEVEL - 1);
    else if (delta < SPANS[2]) bucket = PER_LEVEL + (Math.floor(deadline / SPANS[1]) & (PER_LEVEL - 1));
    else if (delta < SPANS[3]) bucket = 2 * PER_LEVEL + (Math.floor(deadline / SPANS[2]) & (PER_LEVEL - 1));
    else if (delta < SPANS[4]) bucket = 3 * PER_LEVEL + (Math.floor(deadline / SPANS[3]) & (PER_LEVEL - 1));
    else bucket = OVERFLOW;
    this.#push(slot, bucket);
  }

  #push(slot: number, bucket: number): void {
    const head = this.#heads[bucket] as number;
    this.#bucket[slot] = bucket;
    this.#prev[slot] = NIL;
    this.#next[slot] = head;
    if (head !== NIL) this.#prev[head] = slot;
    else this.#tails[bucket] = slot;
    this.#heads[bucket] = slot;
  }

  #unlink(slot: number): void {
    const prev = this.#prev[slot] as number;
    const next = this.#next[slot] as number;
    if (prev !== NIL) this.#next[prev] = next;
    else if (this.#heads[PENDING] === slot) this.#heads[PENDING] = next;
    else this.#heads[this.#bucket[slot] as number] = next;
    if (next !== NIL) this.#prev[next] = prev;
    else if (this.#tails[PENDING] === slot) this.#tails[PENDING] = prev;
    else this.#tails[this.#bucket[slot] as number] = prev;
  }

  /** Moves a bucket's whole list onto the end of the pending list, in O(1). */
  #collect(bucket: number): void {
    const heads = this.#heads;
    const tails = this.#tails;
    const head = heads[bucket] as number;
    if (head === NIL) return;
    const last = tails[PENDING] as number;
    if (last === NIL) heads[PENDING] = head;
    else {
      this.#next[last] = head;
      this.#prev[head] = last;
    }
    tails[PENDING] = tails[bucket] as number;
    heads[bucket] = tails[bucket] = NIL;
  }
}
