import { channels } from '../internal/channels.js';
import { monotonicClock, readClock, type Clock } from '../internal/clock.js';
import * as v from '../internal/validate.js';

/** How an {@link AdaptiveLimit} moves its limit. */
export type AdaptiveAlgorithm = 'gradient' | 'aimd';

/** Options of {@link AdaptiveLimit}. */
export interface AdaptiveLimitOptions {
  /**
   * - `'gradient'` (Envoy's adaptive concurrency): once per window,
   *   `limit × clamp(minRtt × (1 + buffer) / windowRtt, 0.5, 2) + √limit`; the no-load latency
   *   `minRtt` is re-measured every `probeIntervalMs` by dropping the limit to `min` briefly.
   *   Reacts to latency: slows down *before* the dependency fails.
   * - `'aimd'` (TCP-style): grows by about 1 per `limit` successful samples while the limit is
   *   in use, and multiplies by `backoff` once per window that saw a drop (a failed task, or a
   *   latency over `timeoutMs`). Reacts to failures only.
   * @default 'gradient'
   */
  readonly algorithm?: AdaptiveAlgorithm | undefined;
  /**
   * The lowest limit, a positive integer; also the limit while `'gradient'` probes its no-load
   * latency.
   * @default 1
   */
  readonly min?: number | undefined;
  /**
   * The highest limit, an integer ≥ `min`.
   * @default 1000
   */
  readonly max?: number | undefined;
  /**
   * The limit to start from, an integer in `[min, max]`.
   * @default 20, clamped into `[min, max]`
   */
  readonly initial?: number | undefined;
  /**
   * Shortest sampling window, in ms: the limit changes at most once per window, and a window
   * lasts at least twice the measured no-load latency too, so a change is seen in the samples
   * before the next one is made.
   * @default 100
   */
  readonly windowMs?: number | string | undefined;
  /**
   * Fewest samples a window aggregates before it may close (an idle service does not move its
   * limit on one or two samples). Also the number of low-concurrency samples a probe averages.
   * @default 10
   */
  readonly minSamples?: number | undefined;
  /**
   * `'gradient'`: the latency increase over `minRtt` tolerated before the limit shrinks, as a
   * fraction (0.1 = 10%). Larger absorbs more latency noise and queues more at the dependency.
   * @default 0.1
   */
  readonly buffer?: number | undefined;
  /**
   * `'gradient'`: how often the no-load latency is re-measured (the limit drops to `min` until
   * `minSamples` samples have been taken at that concurrency, then returns to where it was).
   * `Infinity` probes only once, at the start.
   * @default 30_000
   */
  readonly probeIntervalMs?: number | string | undefined;
  /**
   * `'aimd'`: the factor the limit is multiplied by after a window with a drop, in (0, 1).
   * @default 0.9
   */
  readonly backoff?: number | undefined;
  /**
   * `'aimd'`: a sample slower than this (ms) counts as a drop, like a failure.
   * @default Infinity
   */
  readonly timeoutMs?: number | string | undefined;
  /**
   * Time source for windows and probes when {@link AdaptiveLimit.sample} is called without a
   * time; a Limiter passes its own readings. A throw (reported on `sluice:limit:error`) or a
   * reading that is not a finite number counts as the previous reading.
   * @default monotonic `performance.now()`
   */
  readonly clock?: Clock | undefined;
  /**
   * Names this limit in its channel payloads.
   * @default 'AdaptiveLimit'
   */
  readonly name?: string | undefined;
}

/** Gauges and counters of an {@link AdaptiveLimit}; reading them is free. */
export interface AdaptiveLimitStats {
  /** The `name` option. */
  readonly name: string;
  /** The `algorithm` option. */
  readonly algorithm: AdaptiveAlgorithm;
  /** The current limit, an integer in `[min, max]`. */
  readonly limit: number;
  /** `'gradient'`: the measured no-load latency in ms; `NaN` until the first probe ends. */
  readonly minRttMs: number;
  /** Mean latency of the last closed window, in ms; `NaN` before the first one. */
  readonly windowRttMs: number;
  /** Whether a `'gradient'` probe of the no-load latency is under way (the limit is `min`). */
  readonly probing: boolean;
  /** Samples taken (ignored ones excluded). */
  readonly samples: number;
  /** Samples counted as drops (failures, and for `'aimd'` latencies over `timeoutMs`). */
  readonly drops: number;
  /** Windows closed. */
  readonly windows: number;
  /** Times the integer limit changed. */
  readonly changes: number;
}

/** What `sluice:limit:adaptive` carries when the limit changes. */
export interface AdaptiveLimitChange {
  /** The AdaptiveLimit that changed. */
  readonly adaptiveLimit: AdaptiveLimit;
  /** Its `name`. */
  readonly name: string;
  /** The new limit. */
  readonly limit: number;
  /** The limit before. */
  readonly previous: number;
  /** Why: a window's update, or the start or end of a no-load latency probe. */
  readonly reason: 'window' | 'probe-start' | 'probe-end';
  /** Mean latency of the window that caused it, in ms (`NaN` for `probe-start`). */
  readonly windowRttMs: number;
  /** The no-load latency in use, in ms (`NaN` until measured). */
  readonly minRttMs: number;
}

/** `sluice:limit:adaptive` (a change of limit) and `sluice:limit:error` (a throwing clock). */
const channel = channels('limit', ['adaptive', 'error']);

/**
 * A concurrency limit that sets itself from observed latency (and failures), for a
 * {@link Limiter}: `new Limiter({ concurrency: new AdaptiveLimit({ max: 200 }) })`, or
 * `concurrency: 'adaptive'` for the defaults.
 *
 * The Limiter times every task (start to settle, on its clock) and hands each time to
 * {@link AdaptiveLimit.sample} with the number in flight and whether the task failed; the limit
 * aggregates samples in windows (O(1) per sample), updates once per window and resizes the
 * Limiter when its integer value changes. It always stays in `[min, max]`.
 *
 * One AdaptiveLimit drives one Limiter; giving it to a second one throws.
 *
 * @example
 * ```ts
 * import { Limiter } from 'sluice/limit';
 * import { AdaptiveLimit } from 'sluice/resilience';
 * const limit = new AdaptiveLimit({ algorithm: 'gradient', min: 2, max: 200 });
 * const limiter = new Limiter({ concurrency: limit, maxQueueWaitMs: 100 });
 * await limiter.run(() => callDependency());
 * limit.stats.limit; // what it settled on
 * ```
 */
export class AdaptiveLimit {
  readonly #algorithm: AdaptiveAlgorithm;
  readonly #min: number;
  readonly #max: number;
  readonly #windowMs: number;
  readonly #minSamples: number;
  readonly #buffer: number;
  readonly #probeIntervalMs: number;
  readonly #backoff: number;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  readonly #name: string;
  #onChange: ((limit: number, now: number) => void) | undefined;

  /** The real-valued estimate; `#limit` is its integer part, clamped. */
  #estimate: number;
  #limit: number;
  #minRtt = NaN;
  #windowRtt = NaN;

  // The open window (or probe) began at #windowStart (NaN: at the start of the next sample's
  // task). Only tasks that started inside it count: they ran under the current limit.
  #windowStart = NaN;
  #count = 0;
  #sum = 0;
  #maxInflight = 0;
  #windowDrops = 0;

  // A probe: the limit sits at `min` until #probeCount samples at that concurrency are taken.
  #probing = false;
  #deferred = 0;
  #probeCount = 0;
  #probeSum = 0;
  #probeSeen = 0;
  #nextProbe = NaN;
  /** The first window after a probe saw the ramp back up from `min`: it may not grow the limit. */
  #rampWindow = false;

  /** The last good reading of `clock` (see `#now`). */
  #lastNow = 0;

  #samples = 0;
  #drops = 0;
  #windows = 0;
  #changes = 0;

  constructor(options?: AdaptiveLimitOptions) {
    v.options('options', options);
    const o: AdaptiveLimitOptions = options ?? {};
    this.#algorithm =
      o.algorithm === undefined ? 'gradient' : v.oneOf('algorithm', o.algorithm, ['gradient', 'aimd']);
    this.#min = o.min === undefined ? 1 : v.positiveInteger('min', o.min);
    this.#max = o.max === undefined ? Math.max(1000, this.#min) : v.positiveInteger('max', o.max);
    if (this.#max < this.#min) {
      throw new RangeError(v.expectation('max', `an integer ≥ min (${this.#min})`, o.max));
    }
    const initial =
      o.initial === undefined
        ? Math.min(this.#max, Math.max(this.#min, 20))
        : v.positiveInteger('initial', o.initial);
    if (initial < this.#min || initial > this.#max) {
      throw new RangeError(
        v.expectation('initial', `an integer in [min, max] = [${this.#min}, ${this.#max}]`, o.initial),
      );
    }
    this.#windowMs = o.windowMs === undefined ? 100 : v.duration('windowMs', o.windowMs);
    this.#minSamples = o.minSamples === undefined ? 10 : v.positiveInteger('minSamples', o.minSamples);
    this.#buffer = o.buffer === undefined ? 0.1 : v.nonNegativeNumber('buffer', o.buffer);
    this.#probeIntervalMs =
      o.probeIntervalMs === undefined ? 30_000 : v.positiveDuration('probeIntervalMs', o.probeIntervalMs);
    const backoff = o.backoff === undefined ? 0.9 : v.positiveNumber('backoff', o.backoff);
    if (backoff >= 1) throw new RangeError(v.expectation('backoff', 'a number in (0, 1)', backoff));
    this.#backoff = backoff;
    this.#timeoutMs = o.timeoutMs === undefined ? Infinity : v.positiveDuration('timeoutMs', o.timeoutMs);
    this.#clock = o.clock === undefined ? monotonicClock : v.clock('clock', o.clock);
    this.#name = o.name === undefined ? 'AdaptiveLimit' : v.string('name', o.name);
    this.#estimate = initial;
    this.#limit = initial;
    // 'gradient' starts by measuring its no-load latency, as Envoy's controller does.
    if (this.#algorithm === 'gradient') this.#startProbe(NaN, false);
  }

  /** The current limit: an integer in `[min, max]`. */
  get limit(): number {
    return this.#limit;
  }

  /** The `min` option. */
  get min(): number {
    return this.#min;
  }

  /** The `max` option. */
  get max(): number {
    return this.#max;
  }

  /** A snapshot of the gauges and counters; cheap, synchronous. */
  get stats(): AdaptiveLimitStats {
    return {
      name: this.#name,
      algorithm: this.#algorithm,
      limit: this.#limit,
      minRttMs: this.#minRtt,
      windowRttMs: this.#windowRtt,
      probing: this.#probing,
      samples: this.#samples,
      drops: this.#drops,
      windows: this.#windows,
      changes: this.#changes,
    };
  }

  /**
   * Records one finished task: its latency `rttMs`, how many tasks were in flight when it
   * finished (itself included), and whether it `dropped` (failed, timed out). O(1); at most one
   * limit update per call. A latency that is not a finite number ≥ 0 (a clock gone wrong) is
   * ignored. A Limiter calls this for every task it runs; call it yourself only for a limit
   * that no Limiter drives.
   *
   * @param now the time of the sample, in ms; default: a reading of the `clock` option.
   */
  sample(rttMs: number, inflight: number, dropped = false, now?: number): void {
    if (!(rttMs >= 0) || rttMs === Infinity) return;
    const t = now ?? this.#now();
    const start = this.#windowStart;
    // A task that ran longer than the window has been open started under an earlier limit.
    // (rttMs and t − start are the same subtraction for a task started as the window opened.)
    if (rttMs > t - start) return;
    if (start !== start) this.#windowStart = t - rttMs; // NaN: the first sample opens the window
    this.#samples++;
    if (this.#algorithm === 'aimd' && rttMs > this.#timeoutMs) dropped = true;
    if (dropped) this.#drops++;
    if (this.#probing) {
      this.#probeSample(rttMs, inflight, t);
      return;
    }
    this.#count++;
    this.#sum += rttMs;
    if (inflight > this.#maxInflight) this.#maxInflight = inflight;
    if (dropped) this.#windowDrops++;
    if (this.#count < this.#minSamples) return;
    const rtt = this.#minRtt;
    const length = rtt === rtt && 2 * rtt > this.#windowMs ? 2 * rtt : this.#windowMs;
    if (t - this.#windowStart >= length) this.#closeWindow(t);
  }

  /** @internal Lets a Limiter follow this limit; throws if another one already does. */
  attach(onChange: (limit: number, now: number) => void): void {
    if (this.#onChange !== undefined) {
      throw new TypeError(
        `Expected \`concurrency\` to be an AdaptiveLimit no other Limiter uses, got ${this.#name}, already in use`,
      );
    }
    this.#onChange = onChange;
  }

  /** A clock reading; a throwing or non-finite clock gives the previous one (and is reported). */
  #now(): number {
    return (this.#lastNow = readClock(this.#clock, this.#lastNow, channel.error, this, 'clock.now'));
  }

  #closeWindow(now: number): void {
    const rtt = this.#sum / this.#count;
    this.#windowRtt = rtt;
    this.#windows++;
    const estimate = this.#estimate;
    let next = estimate;
    if (this.#algorithm === 'aimd') {
      if (this.#windowDrops > 0) next = estimate * this.#backoff;
      else if (2 * this.#maxInflight >= estimate) {
        // +1 per window at most: a window spans several round trips, and an overshoot is only
        // seen (as drops) at the end of the next one.
        next = estimate + 1;
      }
    } else {
      // A lower window mean lowers the no-load latency; the first window seeds it if a probe
      // ended without a sample at `min` (NaN fails every comparison).
      if (!(rtt >= this.#minRtt)) this.#minRtt = rtt;
      const minRtt = this.#minRtt;
      const ratio = rtt > 0 ? (minRtt * (1 + this.#buffer)) / rtt : 2;
      const gradient = ratio < 0.5 ? 0.5 : ratio > 2 ? 2 : ratio;
      const scaled = estimate * gradient;
      next = scaled + Math.sqrt(scaled);
      // Only grow a limit that is in use (an idle service says nothing about its capacity), and
      // not from the window after a probe, whose tasks started as in-flight climbed from `min`.
      if (next > estimate && (this.#rampWindow || 2 * this.#maxInflight < estimate)) next = estimate;
      this.#rampWindow = false;
    }
    this.#openWindow(now);
    this.#setEstimate(next, now, 'window', rtt);
    if (this.#algorithm === 'gradient' && now >= this.#nextProbe) this.#startProbe(now, true);
  }

  /** Starts an empty window at `now`. */
  #openWindow(now: number): void {
    this.#count = 0;
    this.#sum = 0;
    this.#maxInflight = 0;
    this.#windowDrops = 0;
    this.#windowStart = now;
  }

  /** Drops the limit to `min` until `minSamples` samples at that concurrency give the no-load latency. */
  #startProbe(now: number, publish: boolean): void {
    this.#probing = true;
    this.#windowStart = now;
    this.#deferred = this.#estimate;
    this.#probeCount = 0;
    this.#probeSum = 0;
    this.#probeSeen = 0;
    if (publish) this.#apply(this.#min, now, 'probe-start', NaN);
    else this.#limit = this.#min;
  }

  #probeSample(rttMs: number, inflight: number, now: number): void {
    this.#probeSeen++;
    // Only samples taken at `min` in flight count (the Limiter bounds them; a caller feeding
    // samples by hand might not).
    if (inflight <= this.#min) {
      this.#probeCount++;
      this.#probeSum += rttMs;
    }
    // Bounded: a caller whose in-flight count never falls to `min` cannot pin the limit there.
    const enough = this.#probeCount >= this.#minSamples;
    if (!enough && this.#probeSeen < this.#deferred + 10 * this.#minSamples) return;
    if (this.#probeCount > 0) this.#minRtt = this.#probeSum / this.#probeCount;
    this.#probing = false;
    this.#rampWindow = true;
    this.#nextProbe = now + this.#probeIntervalMs;
    this.#openWindow(now);
    this.#estimate = this.#deferred;
    this.#apply(this.#clamp(this.#deferred), now, 'probe-end', this.#minRtt);
  }

  #setEstimate(next: number, now: number, reason: 'window', rtt: number): void {
    const min = this.#min;
    const max = this.#max;
    this.#estimate = next < min ? min : next > max ? max : next;
    this.#apply(this.#clamp(this.#estimate), now, reason, rtt);
  }

  #clamp(estimate: number): number {
    const n = Math.floor(estimate);
    return n < this.#min ? this.#min : n > this.#max ? this.#max : n;
  }

  #apply(limit: number, now: number, reason: AdaptiveLimitChange['reason'], rtt: number): void {
    const previous = this.#limit;
    if (limit === previous) return;
    this.#limit = limit;
    this.#changes++;
    if (channel.adaptive.hasSubscribers) {
      const change: AdaptiveLimitChange = {
        adaptiveLimit: this,
        name: this.#name,
        limit,
        previous,
        reason,
        windowRttMs: rtt,
        minRttMs: this.#minRtt,
      };
      channel.adaptive.publish(change);
    }
    this.#onChange?.(limit, now);
  }
}
