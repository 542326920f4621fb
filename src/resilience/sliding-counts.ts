/** `a mod b` for any integer `a` (epochs of a fake clock may be negative). */
function mod(a: number, b: number): number {
  const r = a % b;
  return r < 0 ? r + b : r;
}

/**
 * Counters over a sliding time window, kept in `buckets` time buckets of `windowMs / buckets`
 * each (plus one older bucket, see {@link SlidingCounts.older}). Bounded memory, O(1) per
 * update: a bucket that the clock has left behind is cleared when the window next moves, at
 * most `buckets + 1` clears however long the clock jumped. No timer.
 *
 * `sum(c)` covers the newest `buckets` buckets: between `windowMs − bucketMs` and `windowMs` of
 * the most recent time. `sumWithOlder(c)` adds the bucket before those, and so covers at least
 * the last `windowMs`.
 */
export class SlidingCounts {
  readonly bucketMs: number;
  readonly #slots: number;
  readonly #counters: number;
  /** `#slots × #counters` counts; slot `epoch % #slots`. */
  readonly #counts: Float64Array;
  /** Sums over the newest `#slots − 1` buckets, per counter. */
  readonly #sums: Float64Array;
  /** Epoch (`floor(now / bucketMs)`) of the newest bucket. */
  #epoch = -Infinity;

  constructor(windowMs: number, buckets: number, counters: number) {
    this.bucketMs = windowMs / buckets;
    this.#slots = buckets + 1;
    this.#counters = counters;
    this.#counts = new Float64Array(this.#slots * counters);
    this.#sums = new Float64Array(counters);
  }

  /** Moves the window to `now` (ms). Time that runs backwards leaves the window where it is. */
  advance(now: number): void {
    const epoch = Math.floor(now / this.bucketMs);
    if (epoch <= this.#epoch) return;
    const slots = this.#slots;
    const k = this.#counters;
    const counts = this.#counts;
    const sums = this.#sums;
    if (epoch - this.#epoch >= slots || this.#epoch === -Infinity) {
      counts.fill(0);
      sums.fill(0);
      this.#epoch = epoch;
      return;
    }
    while (this.#epoch < epoch) {
      const next = this.#epoch + 1;
      // The bucket leaving the newest `slots − 1` becomes the older one: out of the sums.
      const leaving = mod(next - (slots - 1), slots) * k;
      // The slot of the new bucket held the previous older bucket: cleared.
      const reused = mod(next, slots) * k;
      for (let c = 0; c < k; c++) {
        sums[c]! -= counts[leaving + c]!;
        counts[reused + c] = 0;
      }
      this.#epoch = next;
    }
  }

  /** Adds `n` to counter `c` in the newest bucket; call {@link advance} first. */
  add(c: number, n = 1): void {
    this.#counts[mod(this.#epoch, this.#slots) * this.#counters + c]! += n;
    this.#sums[c]! += n;
  }

  /** Counter `c` over the newest `buckets` buckets. */
  sum(c: number): number {
    return this.#sums[c]!;
  }

  /** Counter `c` in the bucket just before the newest `buckets`. */
  older(c: number): number {
    const slots = this.#slots;
    return this.#counts[mod(this.#epoch + 1, slots) * this.#counters + c]!;
  }

  /** Counter `c` over the newest `buckets` buckets and the one before them. */
  sumWithOlder(c: number): number {
    return this.#sums[c]! + this.older(c);
  }

  /** Zeroes every count (the window stays where it is). */
  clear(): void {
    this.#counts.fill(0);
    this.#sums.fill(0);
  }
}
