/** Longest delay `setTimeout` honours; Node fires longer ones after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Fires a Timer's step; assigned in Timer's static block (it reaches its private fields). */
let fire: (timer: Timer) => void;

/**
 * A one-shot timer that honours any delay: one `setTimeout` when the delay fits in a signed
 * 32-bit integer, a chain of them when it does not (Node fires a `setTimeout` over
 * 2^31−1 ms after 1 ms). `Infinity` never fires. Unref'd unless `ref` is set. Every timer
 * sluice arms goes through here.
 */
export class Timer {
  #handle: ReturnType<typeof setTimeout> | undefined;
  #remaining: number;
  readonly #fn: () => void;
  readonly #ref: boolean;

  constructor(fn: () => void, ms: number, ref = false) {
    this.#fn = fn;
    this.#ref = ref;
    this.#remaining = ms;
    this.#arm();
  }

  /** Whether the timer is still waiting to fire. */
  get pending(): boolean {
    return this.#handle !== undefined;
  }

  /** Stops the timer; idempotent. */
  cancel(): void {
    if (this.#handle === undefined) return;
    clearTimeout(this.#handle);
    this.#handle = undefined;
  }

  #arm(): void {
    const ms = this.#remaining;
    if (ms === Infinity || Number.isNaN(ms)) return;
    const step = Math.min(Math.max(ms, 0), MAX_TIMER_MS);
    this.#remaining = ms - step;
    // The timer is passed as setTimeout's argument: no bound closure per Timer.
    this.#handle = setTimeout(fire, step, this);
    if (!this.#ref) this.#handle.unref();
  }

  static {
    fire = (timer) => {
      timer.#handle = undefined;
      if (timer.#remaining > 0) timer.#arm();
      else timer.#fn();
    };
  }
}

/** Shorthand: `new Timer(fn, ms, ref)`, or `undefined` for a delay that never fires. */
export function schedule(fn: () => void, ms: number, ref = false): Timer | undefined {
  return ms === Infinity ? undefined : new Timer(fn, ms, ref);
}
