/** A source of time in milliseconds. Only differences between readings are used. */
export interface Clock {
  /** The current time in milliseconds. */
  now(): number;
}

/** Monotonic clock (`performance.now()`), immune to wall-clock jumps. */
export const monotonicClock: Clock = { now: () => performance.now() };
