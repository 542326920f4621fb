import { performance } from 'node:perf_hooks';

/** A source of time in milliseconds. Only differences between readings are used. */
export interface Clock {
  /** The current time in milliseconds. */
  now(): number;
}

/**
 * Monotonic clock (`performance.now()`), immune to wall-clock jumps. `performance` comes from
 * `node:perf_hooks`: the global one is an accessor, which costs a getter call per read.
 */
export const monotonicClock: Clock = { now: () => performance.now() };
