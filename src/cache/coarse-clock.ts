import { performance } from 'node:perf_hooks';
import type { Clock } from '../internal/clock.js';

/** A clock reading is reused at most this many times before `performance.now()` is read again. */
export const MAX_REUSE = 256;
/**
 * Within this many ms of a deadline (by the coarse reading) the cache re-reads the real clock
 * before deciding, so a coarse reading that lags by less than this never serves an expired value.
 */
export const NEAR_DEADLINE_MS = 1000;

let cached = 0;
let reuse = 0;
let timer: ReturnType<typeof setTimeout> | undefined;

function expire(): void {
  reuse = 0;
  timer = undefined;
}

/** Reads `performance.now()` and makes it the cached reading. */
export function preciseNow(): number {
  cached = performance.now();
  reuse = MAX_REUSE;
  if (timer === undefined) {
    timer = setTimeout(expire, 1);
    timer.unref();
  }
  return cached;
}

/**
 * The cache's default clock: monotonic `performance.now()` in ms, read at most once per
 * millisecond of event-loop time and reused in between — on this kind of machine a clock read
 * costs more than the rest of a cache hit. The cached reading is dropped by one `unref()`'d
 * 1 ms timer shared by every cache, and after 256 reuses, so a synchronous (or microtask-only)
 * loop that never yields still sees time advance. Never ahead of the real clock; how far it
 * may lag is bounded by the cache, which re-reads the real clock near a deadline (see
 * `NEAR_DEADLINE_MS`).
 *
 * @example
 * ```ts
 * const t = coarseClock.now();
 * ```
 */
export const coarseClock: Clock = {
  now(): number {
    if (reuse > 0) {
      reuse--;
      return cached;
    }
    return preciseNow();
  },
};
