// One "process" of the `event-fanout` scenario, whatever it runs in (a forked worker with a
// Redis stream, or one of two stand-ins inside the scenario's process): it emits `job` events,
// records the order in which its broadcast handler sees them, and runs an "indexer" handler
// (consumer group `indexer` on an EventBus; a plain listener on the naive EventEmitter) that
// tells `hooks.handled` about every event it finished.
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventBus, type EventTransport } from '../../src/events/index.js';

export interface FanoutEvents {
  job: { id: string };
}

/** How events travel: the bus over a shared log, or what the report had (one emitter per process). */
export interface Carrier {
  onEvent(fn: (id: string) => void): void;
  onGroup(fn: (id: string) => Promise<void>): void;
  emit(id: string): Promise<void>;
  /** Graceful: every accepted event handled. */
  close(signal: AbortSignal): Promise<void>;
  /** Stops at once, acknowledging nothing more (the embedded stand-in for SIGKILL). */
  abandon(): void;
}

/** An EventBus on `transport`: every event to every bus, and the `indexer` group once per event. */
export function busCarrier(
  transport: EventTransport,
  name: string,
  claimAfterMs: number,
  consumer?: string,
): Carrier {
  // A fresh log: 'oldest' makes every bus (and its group) start from the first entry, whenever
  // its read loops start.
  const bus = new EventBus<FanoutEvents>({ transport, name, start: 'oldest', claimAfterMs, consumer });
  return {
    onEvent: (fn) => void bus.on('job', ({ id }) => fn(id)),
    onGroup: (fn) => void bus.on('job', ({ id }) => fn(id), { group: 'indexer' }),
    emit: (id) => bus.emit('job', { id }),
    close: (signal) => bus.close({ signal }),
    abandon: () => void bus.close({ signal: AbortSignal.abort() }).catch(() => undefined),
  };
}

/** The report's bus: an in-process EventEmitter, one per process; nothing crosses processes. */
export function emitterCarrier(): Carrier {
  const emitter = new EventEmitter();
  return {
    onEvent: (fn) => void emitter.on('job', fn),
    onGroup: (fn) => void emitter.on('job', (id: string) => void fn(id).catch(() => undefined)),
    emit: (id) => {
      emitter.emit('job', id);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
    abandon: () => emitter.removeAllListeners(),
  };
}

export interface NodeHooks {
  /** The indexer started an event (only while it is slow: the kill phase). */
  started(id: string): void;
  /** The indexer finished an event (its effect is done; the bus acknowledges it next). */
  handled(id: string): void;
}

export class FanoutNode {
  /** Every event this node's broadcast handler saw, in order. */
  readonly seen: string[] = [];
  readonly name: string;
  readonly #carrier: Carrier;
  readonly #killed = new AbortController();
  #delayMs = 0;

  constructor(name: string, carrier: Carrier, hooks: NodeHooks) {
    this.name = name;
    this.#carrier = carrier;
    carrier.onEvent((id) => void this.seen.push(id));
    carrier.onGroup(async (id) => {
      if (this.#delayMs > 0) {
        hooks.started(id);
        // A killed process never finishes: the handler fails, nothing is acknowledged.
        await sleep(this.#delayMs, undefined, { signal: this.#killed.signal });
      }
      hooks.handled(id);
    });
  }

  /** How long the indexer takes per event from now on. */
  setDelay(ms: number): void {
    this.#delayMs = ms;
  }

  /**
   * Emits `<name><phase>:<i>` for i < count, `burst` at a time (in one tick: one append), the
   * bursts `intervalMs` apart; stops when killed. Resolves with the number emitted.
   */
  async emit(phase: number, count: number, intervalMs: number, burst: number): Promise<number> {
    let sent = 0;
    while (sent < count && !this.#killed.signal.aborted) {
      const ids: string[] = [];
      for (let i = sent; i < Math.min(count, sent + burst); i++) ids.push(`${this.name}${phase}:${i}`);
      try {
        await Promise.all(ids.map((id) => this.#carrier.emit(id)));
      } catch (error) {
        if (this.#killed.signal.aborted) break; // its bus was closed under it
        throw error;
      }
      sent += ids.length;
      if (intervalMs > 0 && sent < count) await sleep(intervalMs);
    }
    return sent;
  }

  close(signal: AbortSignal): Promise<void> {
    return this.#carrier.close(signal);
  }

  /** The embedded stand-in for SIGKILL: in-flight handlers fail, nothing more is acknowledged. */
  kill(): void {
    this.#killed.abort();
    this.#carrier.abandon();
  }
}
