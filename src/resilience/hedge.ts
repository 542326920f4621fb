import { InvalidInputError } from '../errors.js';
import { monotonicClock, readClock, type Clock } from '../internal/clock.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import { Timer } from '../internal/timer.js';
import * as v from '../internal/validate.js';
import { channel } from './channels.js';
import { LatencySample } from './latency-sample.js';
import { invoke, OPEN, refusal, type Policy, type PolicyRunOptions, type Work } from './policy.js';

/** Options of {@link Hedger} (and of the policy form {@link hedge}`(options)`). */
export interface HedgerOptions {
  /**
   * How long an attempt may run before the next (hedged) one starts beside it, in ms; or `'p95'`:
   * the 95th percentile of this hedger's recent successful attempts, so that about 5% of calls
   * are hedged whatever the dependency's normal latency.
   */
  readonly delayMs: number | 'p95';
  /**
   * Extra attempts at most, beside the first. A non-negative integer.
   * @default 1
   */
  readonly maxHedges?: number | undefined;
  /**
   * `'p95'`: the delay used until `minSamples` successful latencies have been seen, in ms.
   * @default 100
   */
  readonly initialDelayMs?: number | undefined;
  /**
   * `'p95'`: successful latencies needed before the percentile is trusted. A positive integer
   * no larger than `sampleSize`.
   * @default 20
   */
  readonly minSamples?: number | undefined;
  /**
   * `'p95'`: how many recent successful latencies are kept (a ring: memory is fixed). An integer
   * from 1 to 100 000.
   * @default 128
   */
  readonly sampleSize?: number | undefined;
  /**
   * `'p95'`: lower bound of the delay, in ms, so that a very fast dependency is not hedged on
   * noise.
   * @default 1
   */
  readonly minDelayMs?: number | undefined;
  /**
   * `'p95'`: time source for the latencies, in ms (a fixed delay never reads it). A throw (reported on `sluice:resilience:error`)
   * or a reading that is not a finite number counts as the previous reading.
   * @default monotonic `performance.now()`
   */
  readonly clock?: Clock | undefined;
}

/** Counters of a {@link Hedger}; reading them is free. */
export interface HedgerStats {
  /** Calls run, ever. */
  readonly calls: number;
  /** Hedged attempts started (beyond each call's first), ever. */
  readonly hedges: number;
  /** Calls won by a hedged attempt rather than the first. */
  readonly hedgeWins: number;
  /** The delay the next call would use, in ms. */
  readonly delayMs: number;
}

/**
 * One hedged call: its attempts' controllers, the hedge timer, the link to the caller's signal.
 * Settles once; then every loser is aborted, the timer cleared, the signal unlinked.
 */
class HedgedCall<T> {
  readonly controllers: AbortController[] = [];
  timer: Timer | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  inFlight = 0;
  done = false;

  constructor(
    readonly hedger: Hedger,
    readonly fn: Work<T>,
    readonly delay: number,
    readonly maxAttempts: number,
    readonly parent: AbortSignal | undefined,
    readonly resolve: (value: T) => void,
    readonly reject: (reason: unknown) => void,
  ) {}

  launch(): void {
    if (this.done) return;
    this.timer?.cancel();
    this.timer = undefined;
    const index = this.controllers.length;
    if (index > 0) countHedge(this.hedger);
    const controller = new AbortController();
    this.controllers.push(controller);
    this.inFlight++;
    const started = now(this.hedger);
    invoke(this.fn, controller.signal).then(
      (value) => this.win(index, value, started),
      (error: unknown) => this.lose(error),
    );
    // `fn` may have settled the call synchronously (by aborting the caller's signal): no timer then.
    if (!this.done && this.controllers.length < this.maxAttempts && this.delay !== Infinity) {
      this.timer = new Timer(() => this.launch(), this.delay, true);
    }
  }

  win(index: number, value: T, started: number): void {
    if (this.done) return;
    this.finish();
    recordWin(this.hedger, index, now(this.hedger) - started);
    if (this.controllers.length > 1) {
      const lost = new DOMException('Another hedged attempt succeeded first', 'AbortError');
      for (const [i, c] of this.controllers.entries()) if (i !== index) c.abort(lost);
    }
    this.resolve(value);
  }

  lose(error: unknown): void {
    if (this.done) return;
    this.inFlight--;
    if (this.inFlight > 0) return;
    // Nothing left in flight: hedge at once rather than wait out the delay (as gRPC hedging does
    // on a failure), or give up with this, the last, error.
    if (this.controllers.length < this.maxAttempts) {
      this.launch();
      return;
    }
    this.finish();
    this.reject(error);
  }

  abort(): void {
    if (this.done) return;
    this.finish();
    const reason = (this.parent as AbortSignal).reason as unknown;
    for (const c of this.controllers) c.abort(reason);
    this.reject(reason);
  }

  finish(): void {
    this.done = true;
    this.timer?.cancel();
    this.timer = undefined;
    unlinkSignal(this.parent, this.onAbort);
    this.onAbort = undefined;
  }
}

let now: (hedger: Hedger) => number;
let countHedge: (hedger: Hedger) => void;
let recordWin: (hedger: Hedger, index: number, ms: number) => void;

/**
 * Hedged requests: when an attempt is slower than `delayMs`, a second one starts beside it
 * (up to `maxHedges` extra); the first to succeed wins and the others are **aborted** through
 * their signals (reason: an `AbortError` DOMException). A Hedger holds the latency state that
 * `delayMs: 'p95'` needs — a fixed ring of recent successful latencies — so keep one per
 * dependency; it is a {@link Policy}.
 *
 * - Each attempt gets its own signal, aborted when another wins, the caller aborts, or the call
 *   otherwise settles; a failed attempt with nothing else in flight starts the next one at once.
 * - **All attempts fail**: rejects with the last error to arrive, unchanged (so `retryIf` and a
 *   breaker's `isFailure` see a real error, not an AggregateError).
 * - Caller abort: every attempt is aborted, the call rejects with `signal.reason`; no timer or
 *   listener is left behind in any outcome.
 * - Hedging adds load by design: with `'p95'` about 5% of calls send a second request. Put it
 *   inside a breaker and a retry budget, and only hedge idempotent work.
 *
 * @example
 * ```ts
 * import { Hedger } from 'sluice/resilience';
 * const hedger = new Hedger({ delayMs: 'p95', maxHedges: 1 });
 * const doc = await hedger.run((signal) => store.get(key, { signal }), { signal });
 * ```
 */
export class Hedger implements Policy {
  readonly #fixed: number;
  readonly #sample: LatencySample | undefined;
  readonly #maxHedges: number;
  readonly #initialDelayMs: number;
  readonly #minSamples: number;
  readonly #minDelayMs: number;
  readonly #clock: Clock;
  #calls = 0;
  #hedges = 0;
  #hedgeWins = 0;
  /** The last good clock reading: a throwing or non-finite clock gives it (and is reported). */
  #lastNow = 0;

  constructor(options: HedgerOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(v.expectation('options', 'an object', options));
    }
    const delay: unknown = options.delayMs;
    this.#maxHedges = v.nonNegativeInteger('maxHedges', options.maxHedges ?? 1);
    this.#initialDelayMs = v.nonNegativeNumber('initialDelayMs', options.initialDelayMs ?? 100);
    this.#minDelayMs = v.nonNegativeNumber('minDelayMs', options.minDelayMs ?? 1);
    this.#clock = options.clock === undefined ? monotonicClock : v.clock('clock', options.clock);
    if (delay === 'p95') {
      const size = v.positiveInteger('sampleSize', options.sampleSize ?? 128);
      if (size > 100_000)
        throw new RangeError(v.expectation('sampleSize', 'an integer from 1 to 100000', size));
      this.#minSamples = v.positiveInteger('minSamples', options.minSamples ?? Math.min(20, size));
      if (this.#minSamples > size) {
        throw new RangeError(
          v.expectation('minSamples', `an integer no larger than sampleSize (${size})`, this.#minSamples),
        );
      }
      this.#sample = new LatencySample(size, 95);
      this.#fixed = NaN;
    } else {
      if (typeof delay !== 'number') {
        throw new TypeError(v.expectation('delayMs', "a non-negative number of ms or 'p95'", delay));
      }
      this.#fixed = v.nonNegativeNumber('delayMs', delay, true);
      this.#minSamples = 0;
    }
  }

  static {
    // Only a 'p95' delay keeps latencies: a fixed one never reads the clock.
    now = (hedger) =>
      hedger.#sample === undefined
        ? 0
        : (hedger.#lastNow = readClock(hedger.#clock, hedger.#lastNow, channel.error, hedger, 'clock.now'));
    countHedge = (hedger) => {
      hedger.#hedges++;
    };
    recordWin = (hedger, index, ms) => {
      if (index > 0) hedger.#hedgeWins++;
      hedger.#sample?.record(ms);
    };
  }

  /** The delay before the next call's first hedge, in ms. */
  get delayMs(): number {
    const sample = this.#sample;
    if (sample === undefined) return this.#fixed;
    if (sample.count < this.#minSamples) return this.#initialDelayMs;
    return Math.max(this.#minDelayMs, sample.percentile());
  }

  /** A snapshot of the counters; cheap, synchronous. */
  get stats(): HedgerStats {
    return { calls: this.#calls, hedges: this.#hedges, hedgeWins: this.#hedgeWins, delayMs: this.delayMs };
  }

  /**
   * Runs `fn`, hedged; resolves with the first success, rejects with the last failure when every
   * attempt failed, or with `signal.reason` when the caller aborts. `fn` starts asynchronously.
   */
  run<T>(fn: Work<T>, options?: PolicyRunOptions): Promise<T> {
    const refused = refusal(fn, options);
    if (refused !== undefined) return Promise.reject(refused);
    this.#calls++;
    const parent = options?.signal;
    const delay = this.delayMs;
    let call!: HedgedCall<T>;
    const promise = new Promise<T>((resolve, reject) => {
      call = new HedgedCall(this, fn, delay, this.#maxHedges + 1, parent, resolve, reject);
    });
    if (parent !== undefined) call.onAbort = linkSignal(parent, () => call.abort());
    void OPEN.then(() => call.launch());
    return promise;
  }
}

/** Options of the one-shot {@link hedge}`(fn, options)`: a fixed delay, and the caller's signal. */
export interface HedgeOptions {
  /** How long an attempt may run before the next starts beside it, in ms. */
  readonly delayMs: number;
  /**
   * Extra attempts at most, beside the first.
   * @default 1
   */
  readonly maxHedges?: number | undefined;
  /** Aborting aborts every attempt and rejects with `signal.reason`. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Runs `fn` hedged, once: see {@link Hedger}. The one-shot form takes a fixed `delayMs`; a
 * `'p95'` delay needs latency state across calls, so it needs a `Hedger` (or `hedge(options)`).
 *
 * @example
 * ```ts
 * import { hedge } from 'sluice/resilience';
 * const doc = await hedge((signal) => replica.get(key, { signal }), { delayMs: 50, signal });
 * ```
 */
export function hedge<T>(fn: Work<T>, options: HedgeOptions): Promise<T>;
/**
 * A hedging {@link Policy} for {@link pipe}: a new {@link Hedger} (keep it: with `'p95'` it
 * learns the latencies).
 *
 * @example
 * ```ts
 * import { hedge, pipe, timeout } from 'sluice/resilience';
 * const policy = pipe(timeout(1000), hedge({ delayMs: 'p95' }));
 * ```
 */
export function hedge(options: HedgerOptions): Hedger;
export function hedge<T>(fnOrOptions: Work<T> | HedgerOptions, options?: HedgeOptions): Promise<T> | Hedger {
  if (typeof fnOrOptions !== 'function') return new Hedger(fnOrOptions);
  let hedger: Hedger;
  try {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(v.expectation('options', 'an object', options));
    }
    if (typeof options.delayMs !== 'number') {
      throw new TypeError(
        v.expectation(
          'delayMs',
          "a number of ms (a 'p95' delay needs a Hedger to learn from)",
          options.delayMs,
        ),
      );
    }
    hedger = new Hedger({ delayMs: options.delayMs, maxHedges: options.maxHedges });
  } catch (error) {
    return Promise.reject(new InvalidInputError((error as Error).message, { cause: error }));
  }
  return hedger.run(fnOrOptions, { signal: options.signal });
}
