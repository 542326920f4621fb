import { summarize, type Summary } from './stats.js';

/** Event-loop lag over a window, in ms: how late timers fired. `blocked` is the sum of all lag. */
export interface LoopLag extends Summary {
  readonly blocked: number;
}

/**
 * Samples event-loop lag with a timer-drift probe: a `setTimeout(resolution)` that re-arms itself
 * and records how much later than asked it fired. (`perf_hooks.monitorEventLoopDelay` misses a
 * block that starts in the same tick it is enabled, which is exactly what scenarios do.) The timer
 * is `unref()`'d, so a forgotten sampler never keeps the process alive.
 *
 * @example
 * ```ts
 * const lag = new LoopLagSampler().start();
 * await serveRequests();
 * const { p99, max } = lag.stop();
 * ```
 */
export class LoopLagSampler {
  readonly #resolution: number;
  readonly #samples: number[] = [];
  readonly #maxSamples: number;
  #timer: NodeJS.Timeout | undefined;
  #due = 0;
  #blocked = 0;
  #max = 0;

  constructor(options: { resolutionMs?: number; maxSamples?: number } = {}) {
    this.#resolution = options.resolutionMs ?? 5;
    this.#maxSamples = options.maxSamples ?? 100_000;
  }

  start(): this {
    if (this.#timer !== undefined) return this;
    this.#arm();
    return this;
  }

  #arm(): void {
    this.#due = performance.now() + this.#resolution;
    this.#timer = setTimeout(() => {
      this.#record(performance.now() - this.#due);
      this.#arm();
    }, this.#resolution).unref();
  }

  #record(lag: number): void {
    const x = Math.max(0, lag);
    this.#blocked += x;
    if (x > this.#max) this.#max = x;
    if (this.#samples.length < this.#maxSamples) this.#samples.push(x);
  }

  /** Stops sampling and summarises the window; counts a block still in progress up to now. */
  stop(): LoopLag {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      const late = performance.now() - this.#due;
      if (late > 0) this.#record(late);
    }
    const s = summarize(this.#samples);
    return { ...s, max: Math.max(this.#max, s.count === 0 ? 0 : s.max), blocked: this.#blocked };
  }
}

/** Runs `fn` while sampling event-loop lag. */
export async function withLoopLag<T>(
  fn: () => T | PromiseLike<T>,
  options?: { resolutionMs?: number },
): Promise<{ value: T; lag: LoopLag }> {
  const sampler = new LoopLagSampler(options).start();
  try {
    const value = await fn();
    return { value, lag: sampler.stop() };
  } finally {
    sampler.stop();
  }
}
