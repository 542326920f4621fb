/**
 * The latencies of the last `size` successful calls, in a ring, with a cached percentile that is
 * recomputed (a copy and a typed-array sort of at most `size` numbers) once every `size / 8`
 * new samples: bounded memory, amortised O(log size) per sample.
 */
export class LatencySample {
  readonly #ring: Float64Array;
  readonly #scratch: Float64Array;
  readonly #every: number;
  readonly #quantile: number;
  #count = 0;
  #next = 0;
  #sinceSort = 0;
  #cached = NaN;

  constructor(size: number, percentile: number) {
    this.#ring = new Float64Array(size);
    this.#scratch = new Float64Array(size);
    this.#every = Math.max(1, size >> 3);
    this.#quantile = percentile / 100;
  }

  /** Samples held (at most `size`). */
  get count(): number {
    return this.#count;
  }

  /** Records one latency in ms. */
  record(ms: number): void {
    this.#ring[this.#next] = ms;
    this.#next = this.#next + 1 === this.#ring.length ? 0 : this.#next + 1;
    if (this.#count < this.#ring.length) this.#count++;
    this.#sinceSort++;
  }

  /** The percentile of the samples held (nearest rank), `NaN` when there are none. */
  percentile(): number {
    if (this.#count === 0) return NaN;
    if (this.#sinceSort < this.#every && this.#cached === this.#cached) return this.#cached;
    const n = this.#count;
    const sorted = this.#scratch.subarray(0, n);
    sorted.set(this.#ring.subarray(0, n));
    sorted.sort();
    const rank = Math.min(n, Math.max(1, Math.ceil(this.#quantile * n)));
    this.#cached = sorted[rank - 1]!;
    this.#sinceSort = 0;
    return this.#cached;
  }
}
