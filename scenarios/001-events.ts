// Seed 001 (agent platform): rapid-fire event emissions (100+ events/s) on the platform's event
// bus. The report's original bus spawned one task (an un-awaited coroutine) per event per
// handler, ran duplicates again and kept its history in a list; the fix added a semaphore of 100
// handlers, a 1 s dedup window and a deque(maxlen=1000) history. Naive: that original bus.
// sluice: EventBus({ maxConcurrentHandlers: 100, dedupWindowMs: 1000, history: 1000 }).
import { EventBus } from '../src/events/index.js';
import { collector } from './harness/gc.js';
import { sized } from './harness/size.js';
import { round, sleep } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

/** Emits per burst; every burst is followed by a pause, so the rate is BURST per PERIOD_MS. */
const BURST = 100;
const PERIOD_MS = 200;
const BURSTS = sized(20, 5);
/** Of every 10 emits, this many repeat an event emitted shortly before (30% duplicates). */
const DUPS_PER_10 = 3;
/** A burst's duplicate repeats one of the last this-many distinct events (well inside 1 s). */
const DUP_RECENT = 50;
const MAX_HANDLERS = 100;
const DEDUP_WINDOW_MS = 1000;
/** The report's deque(maxlen=1000); quick runs emit fewer events, so the bound shrinks with them. */
const HISTORY = sized(1000, 200);
const MIN_HANDLER_MS = 20;
const MAX_HANDLER_MS = 50;
const HANDLERS = ['persist', 'notify'] as const;
const KiB = 1024;
const MiB = 1024 * KiB;
/** The soak: the report's manual check (10–20 events/s for hours), on an injected clock. */
const SOAK_RATE = 15;
const SOAK_SECONDS = sized(3600, 1200);
/** A soak duplicate repeats one of the last this-many distinct events (under 0.5 s back). */
const SOAK_RECENT = 5;
const CHECKPOINTS = 5;

interface AgentUpdated {
  readonly id: number;
  readonly agent: string;
  readonly status: string;
  readonly version: number;
}

/** The same payload for the same id (a fresh object each time: dedup compares content). */
const payload = (id: number): AgentUpdated => ({
  id,
  agent: `agent-${id % 40}`,
  status: id % 3 === 0 ? 'busy' : 'idle',
  version: id,
});

/** A handler's latency for one event, 20–50 ms, deterministic so both sides do the same work. */
const latency = (id: number, handler: number): number =>
  MIN_HANDLER_MS + ((id * 7919 + handler * 104729) % (MAX_HANDLER_MS - MIN_HANDLER_MS + 1));

/**
 * An emit sequence, the same for both sides: `groups` groups of `size` ids; of every 10 emits, 7
 * new events and 3 repeats of one of the last `recent` distinct ones (a seeded LCG picks which).
 */
function workload(
  groups: number,
  size: number,
  recent: number,
): { ids: number[][]; unique: number; duplicates: number } {
  const ids: number[][] = [];
  let next = 0;
  let duplicates = 0;
  let seed = 0x9e3779b9;
  let k = 0;
  for (let g = 0; g < groups; g++) {
    const group: number[] = [];
    for (let i = 0; i < size; i++, k++) {
      if (k % 10 >= 10 - DUPS_PER_10 && next > 0) {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        group.push(next - 1 - (seed % Math.min(recent, next)));
        duplicates++;
      } else group.push(next++);
    }
    ids.push(group);
  }
  return { ids, unique: next, duplicates };
}

/** Handler calls in flight, their maximum, and how often each handler ran for each event id. */
class Probe {
  inFlight = 0;
  maxInFlight = 0;
  calls = 0;
  readonly runs: Uint16Array[];

  constructor(unique: number) {
    this.runs = HANDLERS.map(() => new Uint16Array(unique));
  }

  handler(h: number): (event: AgentUpdated) => Promise<void> {
    return async (event) => {
      this.calls++;
      if (++this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
      try {
        await sleep(latency(event.id, h));
        const runs = this.runs[h] as Uint16Array;
        runs[event.id] = (runs[event.id] ?? 0) + 1;
      } finally {
        this.inFlight--;
      }
    };
  }

  /** [event-handler pairs run exactly once, pairs run more than once, pairs never run]. */
  tally(): { once: number; again: number; never: number } {
    let once = 0;
    let again = 0;
    let never = 0;
    for (const runs of this.runs) {
      for (const n of runs) {
        if (n === 1) once++;
        else if (n > 1) again += n - 1;
        else never++;
      }
    }
    return { once, again, never };
  }
}

/**
 * The report's original bus: `emit` appends to a history list and starts one task per handler,
 * awaited by nobody; no dedup, no bound.
 */
class NaiveBus {
  readonly history: { type: string; payload: AgentUpdated; at: number }[] = [];
  tasksSpawned = 0;
  /** Instrumentation only (the naive bus keeps no handle): lets the scenario wait for the tasks. */
  readonly untracked = new Set<Promise<void>>();
  readonly #handlers = new Map<string, ((payload: AgentUpdated) => Promise<void>)[]>();

  on(type: string, handler: (payload: AgentUpdated) => Promise<void>): void {
    const list = this.#handlers.get(type) ?? [];
    list.push(handler);
    this.#handlers.set(type, list);
  }

  emit(type: string, payload: AgentUpdated): void {
    this.history.push({ type, payload, at: Date.now() });
    for (const handler of this.#handlers.get(type) ?? []) {
      this.tasksSpawned++;
      const task = Promise.resolve(payload)
        .then(handler)
        .catch(() => undefined);
      this.untracked.add(task);
      void task.finally(() => this.untracked.delete(task));
    }
  }
}

/** What one side of the soak left behind: heap growth at each checkpoint, and its structures. */
interface Soak {
  /** Heap growth since the start, in bytes, at each checkpoint. */
  readonly growth: number[];
  readonly history: number;
  readonly handled: number;
  readonly dedupKeys: number;
  readonly deduplicated: number;
}

/**
 * Emits the soak's events one simulated second at a time (`SOAK_RATE` per second, the clock
 * advanced per emit), letting handlers run between seconds; reads the heap at checkpoints.
 */
async function soak(
  ids: readonly (readonly number[])[],
  heap: () => number,
  emit: (id: number) => Promise<void> | void,
  advance: (ms: number) => void,
): Promise<number[]> {
  const growth: number[] = [];
  const base = heap();
  const every = ids.length / CHECKPOINTS;
  for (const [second, group] of ids.entries()) {
    for (const id of group) {
      advance(1000 / SOAK_RATE);
      await emit(id);
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
    if ((second + 1) % every === 0) growth.push(heap() - base);
  }
  return growth;
}

async function soakNaive(ids: readonly (readonly number[])[], heap: () => number): Promise<Soak> {
  const bus = new NaiveBus();
  let handled = 0;
  for (let h = 0; h < HANDLERS.length; h++) bus.on('agent.updated', async () => void handled++);
  const growth = await soak(
    ids,
    heap,
    (id) => bus.emit('agent.updated', payload(id)),
    () => undefined,
  );
  return { growth, history: bus.history.length, handled, dedupKeys: 0, deduplicated: 0 };
}

async function soakSluice(ids: readonly (readonly number[])[], heap: () => number): Promise<Soak> {
  let now = 0;
  const bus = new EventBus<{ 'agent.updated': AgentUpdated }>({
    maxConcurrentHandlers: MAX_HANDLERS,
    dedupWindowMs: DEDUP_WINDOW_MS,
    history: HISTORY,
    clock: { now: () => now },
  });
  let handled = 0;
  for (let h = 0; h < HANDLERS.length; h++) bus.on('agent.updated', () => void handled++);
  const growth = await soak(
    ids,
    heap,
    (id) => bus.emit('agent.updated', payload(id)),
    (ms) => void (now += ms),
  );
  const { dedupKeys, deduplicated } = bus.stats;
  await bus.close();
  return { growth, history: bus.history().length, handled, dedupKeys, deduplicated };
}

const eventBurst: Scenario = {
  seed: '001',
  name: 'event-burst',
  api: 'EventBus({ maxConcurrentHandlers, dedupWindowMs, history })',
  workload:
    `${BURSTS * BURST} agent.updated events in bursts of ${BURST} every ${PERIOD_MS} ms ` +
    `(${(BURST * 1000) / PERIOD_MS}/s, ${DUPS_PER_10 * 10}% duplicates), ${HANDLERS.length} handlers of ` +
    `${MIN_HANDLER_MS}–${MAX_HANDLER_MS} ms: a task per event per handler vs EventBus(maxConcurrentHandlers ` +
    `${MAX_HANDLERS}, dedupWindowMs ${DEDUP_WINDOW_MS}, history ${HISTORY})`,
  async run(ctx) {
    const { ids, unique, duplicates } = workload(BURSTS, BURST, DUP_RECENT);
    const emits = BURSTS * BURST;
    const gc = collector();
    const heap = (): number => {
      gc?.();
      return process.memoryUsage().heapUsed;
    };

    // Naive: the report's original bus.
    const naiveProbe = new Probe(unique);
    const naiveBus = new NaiveBus();
    for (const h of HANDLERS.keys()) naiveBus.on('agent.updated', naiveProbe.handler(h));
    const naiveStart = performance.now();
    for (const [b, burst] of ids.entries()) {
      for (const id of burst) naiveBus.emit('agent.updated', payload(id));
      ctx.progress(b + 1, BURSTS, 'naive');
      await sleep(PERIOD_MS);
    }
    // The scenario (not the naive bus) waits for the untracked tasks, to count what they did.
    while (naiveBus.untracked.size > 0) await Promise.all(naiveBus.untracked);
    const naiveMs = performance.now() - naiveStart;
    const naiveHistory = naiveBus.history.length;
    const naiveTasks = naiveBus.tasksSpawned;
    const naive = naiveProbe.tally();

    // sluice: the same emits through an EventBus.
    const probe = new Probe(unique);
    const bus = new EventBus<{ 'agent.updated': AgentUpdated }>({
      maxConcurrentHandlers: MAX_HANDLERS,
      dedupWindowMs: DEDUP_WINDOW_MS,
      history: HISTORY,
    });
    // Each handler may use every slot of the bus; the bus bounds them together.
    const subs = [...HANDLERS.keys()].map((h) =>
      bus.on('agent.updated', probe.handler(h), { concurrency: MAX_HANDLERS }),
    );
    let maxRunning = 0;
    let maxBuffered = 0;
    const sluiceStart = performance.now();
    for (const [b, burst] of ids.entries()) {
      for (const id of burst) {
        await bus.emit('agent.updated', payload(id));
        const { running, buffered } = bus.stats;
        if (running > maxRunning) maxRunning = running;
        if (buffered > maxBuffered) maxBuffered = buffered;
      }
      ctx.progress(b + 1, BURSTS, 'sluice');
      await sleep(PERIOD_MS);
    }
    const beforeClose = bus.stats;
    await bus.close(); // resolves once every accepted event has run through every handler
    const sluiceMs = performance.now() - sluiceStart;
    const stats = bus.stats;
    const history = bus.history();
    const sluice = probe.tally();
    for (const sub of subs) sub.unsubscribe();

    // The soak: the report's 24 h memory check, shortened, on simulated time.
    const soakIds = workload(SOAK_SECONDS, SOAK_RATE, SOAK_RECENT);
    const soakEmits = SOAK_SECONDS * SOAK_RATE;
    ctx.progress(0, 2, 'soak');
    const naiveSoak = await soakNaive(soakIds.ids, heap);
    ctx.progress(1, 2, 'soak');
    const sluiceSoak = await soakSluice(soakIds.ids, heap);
    const first = (g: number[]): number => g[0] ?? NaN;
    const last = (g: number[]): number => g[g.length - 1] ?? NaN;
    // Flat: from the first checkpoint (the history ring is full by then) to the last.
    const sluiceDrift = last(sluiceSoak.growth) - first(sluiceSoak.growth);
    const naiveDrift = last(naiveSoak.growth) - first(naiveSoak.growth);
    const heapFlat =
      gc === undefined || (sluiceDrift < MiB && naiveDrift > 4 * Math.max(sluiceDrift, MiB / 4));

    const pairs = unique * HANDLERS.length;
    const historyIds = history.map((e) => e.payload.id);
    const historyTail = historyIds.every((id, i) => id === unique - historyIds.length + i);
    const ok =
      // sluice: bounded concurrency, every distinct event run once per handler, no duplicate run.
      probe.maxInFlight <= MAX_HANDLERS &&
      maxRunning <= MAX_HANDLERS &&
      sluice.once === pairs &&
      sluice.again === 0 &&
      sluice.never === 0 &&
      probe.calls === pairs &&
      stats.emitted === unique &&
      stats.deduplicated === duplicates &&
      stats.delivered === pairs &&
      stats.dropped === 0 &&
      stats.failures === 0 &&
      stats.running === 0 &&
      stats.buffered === 0 &&
      beforeClose.dropped === 0 &&
      // history: a ring of the latest distinct events, in order.
      history.length === Math.min(HISTORY, unique) &&
      historyTail &&
      // naive: a task per emit per handler, duplicates run again, history grows with every emit.
      naiveTasks === emits * HANDLERS.length &&
      naive.never === 0 &&
      naive.again === duplicates * HANDLERS.length &&
      naiveHistory === emits &&
      naiveProbe.maxInFlight > MAX_HANDLERS &&
      // soak: sluice's history and dedup table stay bounded, the naive history has every emit.
      sluiceSoak.history === HISTORY &&
      sluiceSoak.deduplicated === soakIds.duplicates &&
      sluiceSoak.handled === soakIds.unique * HANDLERS.length &&
      sluiceSoak.dedupKeys <= 2 * SOAK_RATE &&
      naiveSoak.history === soakEmits &&
      naiveSoak.handled === soakEmits * HANDLERS.length &&
      heapFlat;
    const mib = (bytes: number): number => round(bytes / MiB, 1);
    const heapNote = gc === undefined ? 'without forced GC, not asserted' : 'after GC';
    const hours = round(SOAK_SECONDS / 3600, 2);
    return {
      naive: {
        ms: round(naiveMs),
        tasksSpawned: naiveTasks,
        maxInFlight: naiveProbe.maxInFlight,
        handlerRuns: naiveProbe.calls,
        duplicateRuns: naive.again,
        history: naiveHistory,
        soakHistory: naiveSoak.history,
        soakHeapMiB: naiveSoak.growth.map(mib).join(' → '),
      },
      sluice: {
        ms: round(sluiceMs),
        maxInFlight: probe.maxInFlight,
        maxBuffered,
        handlerRuns: probe.calls,
        deduplicated: stats.deduplicated,
        duplicateRuns: sluice.again,
        history: history.length,
        maxLagMs: round(stats.maxLagMs),
        soakHistory: sluiceSoak.history,
        soakDedupKeys: sluiceSoak.dedupKeys,
        soakHeapMiB: sluiceSoak.growth.map(mib).join(' → '),
      },
      headline: {
        measure: 'peak concurrent handlers',
        naive: naiveProbe.maxInFlight,
        sluice: probe.maxInFlight,
        better: 'lower',
      },
      invariant:
        `handlers in flight ≤ ${MAX_HANDLERS} (max ${probe.maxInFlight}; naive ${naiveProbe.maxInFlight}, ` +
        `${naiveTasks} tasks spawned); each of ${unique} distinct events ran exactly once per handler ` +
        `(${probe.calls} runs = delivered ${stats.delivered}, dropped ${stats.dropped}), ` +
        `${stats.deduplicated}/${duplicates} duplicates suppressed (naive ran ${naive.again} again); ` +
        `history ${history.length} = min(${HISTORY}, ${unique}) latest in order (naive ${naiveHistory}, one per emit); ` +
        `soak of ${soakEmits} events (${hours} h at ${SOAK_RATE}/s, simulated clock): history ${sluiceSoak.history} ` +
        `(naive ${naiveSoak.history}), dedup table ${sluiceSoak.dedupKeys} keys, heap ${heapNote} flat ` +
        `(${mib(sluiceDrift)} MiB from first to last checkpoint, naive +${mib(naiveDrift)} MiB)`,
      ok,
    };
  },
};

export default eventBurst;
