import { performance } from 'node:perf_hooks';
import type { Channel } from 'node:diagnostics_channel';

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

/**
 * A reading of an injected clock that cannot break its caller: a throw (reported on `channel`
 * as `{ error, source, where }`) or a reading that is not a finite number gives `last` — the
 * caller's previous good reading — instead. A NaN let into a sliding window or a latency would
 * freeze the one and poison the other for good.
 */
export function readClock(
  clock: Clock,
  last: number,
  channel: Channel,
  source: object,
  where: string,
): number {
  let now: unknown;
  try {
    now = clock.now();
  } catch (error) {
    if (channel.hasSubscribers) channel.publish({ error, source, where });
    return last;
  }
  return typeof now === 'number' && Number.isFinite(now) ? now : last;
}
