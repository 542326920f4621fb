/**
 * `events` benches.
 *
 * `events/emit-200k-3subs`: 200k emits of one event type to 3 subscribers whose handlers are
 * `async` functions; timed until every handler has run 200k times (600k calls in all).
 * - `sluice`: `await bus.emit(...)` per event (resolves once the 3 buffers took it; handlers run
 *   one at a time per subscriber, in order), then `await bus.close()`.
 * - `emittery`: `await emitter.emit(...)` per event (emittery resolves once every listener
 *   finished: its own backpressure). Not awaiting is slower (measured while writing this).
 * - `eventemitter3 + p-limit`: a synchronous emit whose listeners queue their async work on a
 *   `p-limit(1)` each (order per subscriber, as sluice's default), then awaiting every queue.
 *
 * - `hand-written floor`: the same loop with no bus at all — per subscriber an array and a flag,
 *   the handler started at once from `emit` and its promise chained with `.then` — the cost of
 *   an awaited emit plus three async calls with one promise reaction each, and nothing else (no
 *   bound, no async start, no async context, no stats). What is left between it and sluice is
 *   the bus's own work.
 *
 * `events/flood-heap`: a producer 10× faster than the consumer (it emits 50k events without
 * waiting, as a socket or timer callback does; each handler takes one macrotask per event).
 * Heap retained at the end of production. sluice uses `overflow: 'drop-oldest'` with its
 * default buffer (1024): it stays at its bound and counts what it dropped; the peers buffer
 * everything.
 */
import Emittery from 'emittery';
import { EventEmitter } from 'eventemitter3';
import pLimit, { type LimitFunction } from 'p-limit';
import { EventBus } from '../src/events/index.js';
import type { Group } from './harness.js';

const EMITS = 200_000;
const SUBSCRIBERS = 3;

let handled = 0;
/** A distinct handler function per subscriber (emittery keeps listeners in a Set). */
function makeHandler(): () => Promise<void> {
  return async () => {
    handled++;
  };
}

function check(impl: string, expected: number): void {
  if (handled !== expected) throw new Error(`${impl}: expected ${expected} handler calls, got ${handled}`);
}

const RESOLVED = Promise.resolve();

/** The floor: per subscriber a queue and a busy flag; no bound, no async start, no context. */
class Floor {
  readonly #queues: number[][] = [];
  readonly #busy: boolean[] = [];
  readonly #handlers: (() => Promise<void>)[] = [];
  readonly #done: (() => void)[] = [];
  #idle: (() => void) | undefined;

  constructor(subscribers: number) {
    for (let k = 0; k < subscribers; k++) {
      this.#queues.push([]);
      this.#busy.push(false);
      this.#handlers.push(makeHandler());
      this.#done.push(() => {
        this.#busy[k] = false;
        if (this.#queues[k]!.length > 0) this.#start(k);
        else if (this.#idle !== undefined && !this.#busy.includes(true)) this.#idle();
      });
    }
  }

  emit(value: number): Promise<void> {
    for (let k = 0; k < this.#queues.length; k++) {
      this.#queues[k]!.push(value);
      if (!this.#busy[k]) this.#start(k);
    }
    return RESOLVED;
  }

  idle(): Promise<void> {
    if (!this.#busy.includes(true)) return RESOLVED;
    return new Promise((resolve) => (this.#idle = resolve));
  }

  #start(k: number): void {
    this.#queues[k]!.shift();
    this.#busy[k] = true;
    void this.#handlers[k]!().then(this.#done[k]);
  }
}

/**
 * The glue a service writes with eventemitter3 + p-limit: a `p-limit(1)` queue per subscriber
 * (order per subscriber, as sluice's default). `drained()` resolves once every queue ran what it
 * was given (each queue runs in order, so a last no-op per queue settles after the rest).
 */
function limitedEmitter(makeHandlerFn: () => () => Promise<void>): {
  emitter: EventEmitter;
  drained: () => Promise<unknown>;
} {
  const emitter = new EventEmitter();
  const limits: LimitFunction[] = [];
  for (let s = 0; s < SUBSCRIBERS; s++) {
    const limit = pLimit(1);
    const handler = makeHandlerFn();
    limits.push(limit);
    emitter.on('tick', () => void limit(handler));
  }
  return { emitter, drained: () => Promise.all(limits.map((limit) => limit(() => undefined))) };
}

function emitGroup(): Group {
  let floor!: Floor;
  let bus!: EventBus<{ tick: number }>;
  let emittery!: Emittery<{ tick: number }>;
  let ee!: ReturnType<typeof limitedEmitter>;
  return {
    bench: 'events/emit-200k-3subs',
    ops: EMITS,
    cases: [
      {
        impl: 'sluice',
        setup: () => {
          handled = 0;
          bus = new EventBus<{ tick: number }>();
          for (let s = 0; s < SUBSCRIBERS; s++) bus.on('tick', makeHandler());
        },
        run: async () => {
          for (let i = 0; i < EMITS; i++) await bus.emit('tick', i);
          await bus.close();
          check('sluice', EMITS * SUBSCRIBERS);
        },
      },
      {
        impl: 'hand-written floor',
        setup: () => {
          handled = 0;
          floor = new Floor(SUBSCRIBERS);
        },
        run: async () => {
          for (let i = 0; i < EMITS; i++) await floor.emit(i);
          await floor.idle();
          check('hand-written floor', EMITS * SUBSCRIBERS);
        },
      },
      {
        impl: 'emittery',
        setup: () => {
          handled = 0;
          emittery = new Emittery<{ tick: number }>();
          for (let s = 0; s < SUBSCRIBERS; s++) emittery.on('tick', makeHandler());
        },
        run: async () => {
          for (let i = 0; i < EMITS; i++) await emittery.emit('tick', i);
          check('emittery', EMITS * SUBSCRIBERS);
        },
      },
      {
        impl: 'eventemitter3 + p-limit',
        setup: () => {
          handled = 0;
          ee = limitedEmitter(makeHandler);
        },
        run: async () => {
          for (let i = 0; i < EMITS; i++) ee.emitter.emit('tick', i);
          await ee.drained();
          check('eventemitter3 + p-limit', EMITS * SUBSCRIBERS);
        },
      },
    ],
  };
}

const FLOOD = 50_000;

function makeSlowHandler(): () => Promise<void> {
  return () => {
    handled++;
    return new Promise((resolve) => setImmediate(resolve));
  };
}

function floodGroup(): Group {
  let bus!: EventBus<{ tick: { i: number; body: string } }>;
  let emittery!: Emittery<{ tick: { i: number; body: string } }>;
  let ee!: ReturnType<typeof limitedEmitter>;
  const payload = (i: number): { i: number; body: string } => ({ i, body: `event ${i}` });
  return {
    bench: 'events/flood-heap',
    ops: FLOOD,
    heap: true,
    rounds: 3,
    cases: [
      {
        impl: 'sluice',
        setup: () => {
          handled = 0;
          bus = new EventBus({ overflow: 'drop-oldest' });
          for (let s = 0; s < SUBSCRIBERS; s++) bus.on('tick', makeSlowHandler());
        },
        run: async (probe) => {
          for (let i = 0; i < FLOOD; i++) void bus.emit('tick', payload(i));
          probe.alive();
          await bus.close();
          const { delivered, dropped } = bus.stats;
          if (delivered + dropped !== FLOOD * SUBSCRIBERS) throw new Error('sluice: lost events');
        },
      },
      {
        impl: 'emittery',
        setup: () => {
          handled = 0;
          emittery = new Emittery();
          for (let s = 0; s < SUBSCRIBERS; s++) emittery.on('tick', makeSlowHandler());
        },
        run: async (probe) => {
          const all: Promise<void>[] = [];
          for (let i = 0; i < FLOOD; i++) all.push(emittery.emit('tick', payload(i)));
          probe.alive();
          await Promise.all(all);
          check('emittery', FLOOD * SUBSCRIBERS);
        },
      },
      {
        impl: 'eventemitter3 + p-limit',
        setup: () => {
          handled = 0;
          ee = limitedEmitter(makeSlowHandler);
        },
        run: async (probe) => {
          for (let i = 0; i < FLOOD; i++) ee.emitter.emit('tick', payload(i));
          probe.alive();
          await ee.drained();
          check('eventemitter3 + p-limit', FLOOD * SUBSCRIBERS);
        },
      },
    ],
  };
}

export default (): Group[] => [emitGroup(), floodGroup()];
