// A deterministic discrete-event simulation of a Limiter in front of a dependency of capacity C:
// a task started while n tasks are in flight (itself included) takes `baseMs × max(1, n / C)`,
// so past C concurrent calls throughput stays at C / baseMs and only latency grows (they queue
// inside the dependency). `failPastCapacity` makes such a call fail instead (an overloaded
// dependency that errors). Time is a variable the simulation moves; no timer runs.
import { Limiter } from '../../src/limit/index.js';
import type { AdaptiveLimit } from '../../src/resilience/index.js';

export interface SimOptions {
  readonly limit: AdaptiveLimit;
  readonly capacity: number;
  readonly baseMs: number;
  /** Closed-loop clients, each calling again as soon as its call settles. */
  readonly clients: number;
  readonly durationMs: number;
  /** Limit readings are kept from this time on. */
  readonly measureFromMs: number;
  readonly failPastCapacity?: boolean;
  /** The no-load latency from this time on, if it changes (a dependency that got slower). */
  readonly slowerAt?: { readonly ms: number; readonly baseMs: number } | undefined;
}

export interface SimResult {
  /** Time-weighted mean of the limit over the measured span, probes excluded. */
  readonly meanLimit: number;
  readonly minLimit: number;
  readonly maxLimit: number;
  /** Successful calls per ms over the measured span. */
  readonly throughput: number;
  /** Mean latency of successful calls in the measured span, in ms. */
  readonly meanLatency: number;
  /** Every limit the AdaptiveLimit held, in order (for bounds checks). */
  readonly limits: readonly number[];
}

interface Event {
  readonly t: number;
  readonly seq: number;
  readonly fire: () => void;
}

/** A binary min-heap of events by time, then by insertion. */
class Events {
  readonly #a: Event[] = [];
  get size(): number {
    return this.#a.length;
  }
  push(e: Event): void {
    const a = this.#a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): Event | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}
const before = (x: Event, y: Event): boolean => x.t < y.t || (x.t === y.t && x.seq < y.seq);

const flush = async (): Promise<void> => {
  for (let i = 0; i < 40; i++) await Promise.resolve();
};

export async function simulate(o: SimOptions): Promise<SimResult> {
  let now = 0;
  let seq = 0;
  const clock = { now: () => now };
  const events = new Events();
  const limiter = new Limiter({ concurrency: o.limit, maxQueue: Infinity, clock });
  let inflight = 0;
  let ok = 0;
  let latencySum = 0;
  const dependency = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      inflight++;
      const started = now;
      const over = inflight > o.capacity;
      const base = o.slowerAt !== undefined && now >= o.slowerAt.ms ? o.slowerAt.baseMs : o.baseMs;
      const latency = base * Math.max(1, inflight / o.capacity);
      events.push({
        t: now + latency,
        seq: seq++,
        fire: () => {
          inflight--;
          if (over && o.failPastCapacity === true) reject(new Error('overloaded'));
          else {
            if (started >= o.measureFromMs) {
              ok++;
              latencySum += now - started;
            }
            resolve();
          }
        },
      });
    });
  let stop = false;
  const client = async (): Promise<void> => {
    while (!stop) await limiter.run(dependency).catch(() => undefined);
  };
  const clients = Array.from({ length: o.clients }, client);
  await flush();

  const limits: number[] = [o.limit.limit];
  let weighted = 0;
  let span = 0;
  let minLimit = Infinity;
  let maxLimit = -Infinity;
  let last = now;
  let pending: Event | undefined;
  while (events.size > 0) {
    const e = events.pop() as Event;
    if (e.t > o.durationMs) {
      pending = e;
      break;
    }
    const held = o.limit.limit;
    if (now >= o.measureFromMs && !o.limit.stats.probing) {
      weighted += held * (e.t - last);
      span += e.t - last;
      if (held < minLimit) minLimit = held;
      if (held > maxLimit) maxLimit = held;
    }
    last = e.t;
    now = e.t;
    e.fire();
    await flush();
    if (o.limit.limit !== limits[limits.length - 1]) limits.push(o.limit.limit);
  }
  stop = true;
  // Let every call still in flight or queued settle, so no promise is left pending.
  if (pending !== undefined) events.push(pending);
  while (events.size > 0) {
    const e = events.pop() as Event;
    now = e.t;
    e.fire();
    await flush();
  }
  await Promise.all(clients);
  await limiter.close();
  const measured = o.durationMs - o.measureFromMs;
  return {
    meanLimit: weighted / span,
    minLimit,
    maxLimit,
    throughput: ok / measured,
    meanLatency: latencySum / ok,
    limits,
  };
}
