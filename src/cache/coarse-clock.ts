import type { Clock } from '../internal/clock.js';

/** A clock reading is reused at most this many times before `performance.now()` is read again. */
const MAX_REUSE = 1024;

let cached = 0;
let reuse = 0;
let timer: ReturnType<typeof setTimeout> | undefined;

function expire(): void {
  reuse = 0;
  timer = undefined;
}

/**
 * The cache's default clock: monotonic `performance.now()` in ms, read at most once per
 * millisecond of event-loop time and reused in between — a clock read costs about three
 * `Map.get`s, more than the rest of a cache hit. The cached reading is dropped by one
 * `unref()`'d 1 ms timer shared by every cache, and after 1024 reuses, so a synchronous loop
 * that never yields still sees time advance (in steps of 1024 reads). Inject a precise clock
 * with the `clock` option when that resolution is not enough.
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
    cached = performance.now();
    reuse = MAX_REUSE;
    if (timer === undefined) {
      timer = setTimeout(expire, 1);
      timer.unref();
    }
    return cached;
  },
};
