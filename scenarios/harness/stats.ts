/** Small measuring helpers: timing, rounding, percentiles of a sample. */

/** Runs `fn` and returns its value with the wall time it took, in ms. */
export async function timed<T>(fn: () => T | PromiseLike<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

/** Rounds for display: `round(12.345) === 12.3`. */
export const round = (n: number, digits = 1): number => Number(n.toFixed(digits));

/** Resolves after `ms` (a real timer; scenarios measure real time). */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The `p`-th percentile (0–100, nearest rank) of an ascending array; `NaN` when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** A summary of a latency sample, in ms. */
export interface Summary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Summarises a sample (it is copied, not sorted in place). */
export function summarize(samples: readonly number[]): Summary {
  const sorted = Float64Array.from(samples).sort();
  const list = Array.from(sorted);
  let sum = 0;
  for (const x of list) sum += x;
  return {
    count: list.length,
    p50: percentile(list, 50),
    p99: percentile(list, 99),
    max: list.length === 0 ? NaN : (list[list.length - 1] as number),
    mean: list.length === 0 ? NaN : sum / list.length,
  };
}

/**
 * Records latencies, bounded: past `maxSamples` it keeps a uniform reservoir sample (Algorithm R,
 * deterministic seed) so memory stays flat under any load. A real histogram comes with `metrics`.
 */
export class Latencies {
  readonly #samples: number[] = [];
  readonly #max: number;
  #seen = 0;
  #rng = 0x2545f491;

  constructor(maxSamples = 100_000) {
    this.#max = maxSamples;
  }

  record(ms: number): void {
    this.#seen++;
    if (this.#samples.length < this.#max) {
      this.#samples.push(ms);
      return;
    }
    this.#rng = (Math.imul(this.#rng, 1664525) + 1013904223) >>> 0;
    const slot = this.#rng % this.#seen;
    if (slot < this.#max) this.#samples[slot] = ms;
  }

  /** Times `fn` and records how long it took (also when it rejects). */
  async time<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.record(performance.now() - start);
    }
  }

  get count(): number {
    return this.#seen;
  }

  summary(): Summary {
    return summarize(this.#samples);
  }
}
