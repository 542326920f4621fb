// Seed 001 (multi-agent API): its event bus was an in-process emitter, so behind two workers
// each process saw only its own events. Two processes on one log: every event reaches both, in
// one order, and the `indexer` consumer group handles each once while both run and at least
// once across a SIGKILL of one. With REDIS_URL: two forked workers on one fresh Redis stream
// (deleted at the end). Without it: one process, two EventBus instances on one MemoryTransport
// standing for the two processes, the kill simulated (said plainly in the result).
import { runFanout, type FanoutOptions, type FanoutResult } from './harness/fanout-cluster.js';
import { sized } from './harness/size.js';
import type { Scenario } from './harness/types.js';

const PER_NODE = sized(200, 50);
const KILL_PER_NODE = sized(60, 30);
const KILL_AFTER = sized(10, 5);
const DELAY_MS = 15;
const INTERVAL_MS = 60;
const BURST = 3;
const CLAIM_AFTER_MS = 300;
const TOTAL = 2 * PER_NODE;

const count = (ids: readonly string[]): Map<string, number> => {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
};

/** The invariants of one run, measured. */
function measure(r: FanoutResult) {
  const phase1 = (id: string): boolean => id.includes('1:');
  const seenA = r.seen1.a.filter(phase1);
  const seenB = r.seen1.b.filter(phase1);
  const inB = new Set(seenB);
  const seenByBoth = new Set(seenA.filter((id) => inB.has(id))).size;
  const sameOrder = seenA.length === seenB.length && seenA.every((id, i) => seenB[i] === id);
  const uniqueViews = new Set(seenA).size === seenA.length && inB.size === seenB.length;
  // Each process's own events appear in its emit order in every view.
  const emitOrder = [seenA, seenB].every((view) =>
    ['a', 'b'].every((from) => {
      const mine = view.filter((id) => id.startsWith(from)).map((id) => Number(id.slice(3)));
      return mine.every((n, i) => n === i);
    }),
  );
  const all = [...r.handled.a, ...r.handled.b];
  const handled1 = count(all.filter(phase1));
  const indexedOnce = [...handled1.values()].filter((c) => c === 1).length;
  const indexedMore = [...handled1.values()].filter((c) => c > 1).length;
  const byA = r.handled.a.filter(phase1).length;
  const byB = r.handled.b.filter(phase1).length;

  const handled2 = count(all.filter((id) => id.includes('2:')));
  const lost = r.log2.filter((id) => !handled2.has(id));
  const duplicates = r.log2.filter((id) => (handled2.get(id) ?? 0) > 1);
  const doneByB = new Set(r.handled.b);
  const doneByA = new Set(r.handled.a);
  const inFlight = r.startedByB.filter((id) => !doneByB.has(id));
  const takenOver = inFlight.filter((id) => doneByA.has(id)).length;
  // A duplicate is an event b finished but died before acknowledging; a then handled it again.
  const explained = duplicates.every((id) => doneByB.has(id) && doneByA.has(id));
  return {
    seenA: seenA.length,
    seenB: seenB.length,
    seenByBoth,
    sameOrder,
    uniqueViews,
    emitOrder,
    indexedOnce,
    indexedMore,
    byA,
    byB,
    log: r.log2.length,
    lost,
    duplicates,
    inFlight,
    takenOver,
    explained,
    pendingAtKill: r.pendingAtKill,
    pendingAtEnd: r.pendingAtEnd,
  };
}

const fanout: Scenario = {
  seed: '001',
  name: 'event-fanout',
  api: 'EventBus + transport (consumer group)',
  workload: `2 processes emit ${PER_NODE} events each, interleaved, with an indexer; then ${KILL_PER_NODE} more each with a slow indexer and one process SIGKILLed: per-process emitter vs one shared log`,
  async run(ctx) {
    const url = process.env['REDIS_URL'];
    const redis = url !== undefined && url !== '';
    const where: FanoutOptions['where'] = redis ? 'processes' : 'embedded';
    const stream = `sluice:scenario:fanout:${process.pid}:${Date.now()}`;
    const base = {
      where,
      perNode: PER_NODE,
      killPerNode: KILL_PER_NODE,
      killAfter: KILL_AFTER,
      delayMs: DELAY_MS,
      intervalMs: INTERVAL_MS,
      burst: BURST,
      claimAfterMs: CLAIM_AFTER_MS,
      signal: ctx.signal,
    } as const;
    ctx.progress(0, 2, 'per-process emitters');
    const naive = measure(await runFanout({ ...base, kind: 'emitter' }));
    ctx.progress(1, 2, redis ? 'EventBus on a Redis stream' : 'EventBus on a MemoryTransport');
    let fixed: ReturnType<typeof measure>;
    try {
      fixed = measure(
        await runFanout({
          ...base,
          kind: 'bus',
          stream,
          pending: redis ? (consumer) => pendingEntries(url, stream, consumer) : undefined,
        }),
      );
    } finally {
      if (redis) await deleteStream(url, stream);
    }
    const transport = redis
      ? '2 worker processes, one fresh Redis stream at REDIS_URL (deleted after)'
      : "no REDIS_URL: ONE process, two EventBus instances on one MemoryTransport standing for the 2 processes; the kill is simulated (while its indexer is in flight, b's connection to the log is cut, so it acknowledges nothing more, and its bus is closed with an aborted signal)";
    const kill = redis ? 'SIGKILL' : 'simulated kill';
    const list = (ids: readonly string[]): string => (ids.length === 0 ? 'none' : ids.join(' '));
    const sluiceOk =
      fixed.seenA === TOTAL &&
      fixed.seenB === TOTAL &&
      fixed.seenByBoth === TOTAL &&
      fixed.sameOrder &&
      fixed.uniqueViews &&
      fixed.emitOrder &&
      fixed.indexedOnce === TOTAL &&
      fixed.indexedMore === 0 &&
      fixed.byA > 0 &&
      fixed.byB > 0 &&
      fixed.lost.length === 0 &&
      fixed.inFlight.length > 0 &&
      fixed.takenOver === fixed.inFlight.length &&
      fixed.explained &&
      // With Redis: b died holding entries, and nothing is left unacknowledged.
      (fixed.pendingAtKill === undefined || fixed.pendingAtKill >= fixed.inFlight.length) &&
      (fixed.pendingAtEnd === undefined || fixed.pendingAtEnd === 0);
    const pending =
      fixed.pendingAtKill === undefined
        ? ''
        : `, b's pending (unacknowledged) entries at its death ${fixed.pendingAtKill}, the group's at the end ${fixed.pendingAtEnd ?? '-'}`;
    const naiveShape = naive.seenA === PER_NODE && naive.seenB === PER_NODE && naive.seenByBoth === 0;
    return {
      naive: {
        seenPerProcess: `${naive.seenA}+${naive.seenB} of ${TOTAL}`,
        seenByBoth: naive.seenByBoth,
        indexedOnce: `${naive.indexedOnce} (each by its own process only)`,
        [`lostAt${redis ? 'Kill' : 'SimulatedKill'}`]: `${naive.lost.length} (${list(naive.lost)})`,
      },
      sluice: {
        seenPerProcess: `${fixed.seenA}+${fixed.seenB} of ${TOTAL}`,
        sameOrder: fixed.sameOrder ? 'yes' : 'NO',
        indexedOnce: `${fixed.indexedOnce} of ${TOTAL} (a ${fixed.byA}, b ${fixed.byB}), more than once ${fixed.indexedMore}`,
        [kill]: `log ${fixed.log}, b had ${fixed.inFlight.length} in flight (${list(fixed.inFlight)}), taken over by a after claimAfter ${CLAIM_AFTER_MS} ms: ${fixed.takenOver}, lost ${fixed.lost.length}, duplicates ${fixed.duplicates.length} (${list(fixed.duplicates)})${pending}`,
        transport,
      },
      headline: {
        measure: 'events seen by both processes',
        naive: naive.seenByBoth,
        sluice: fixed.seenByBoth,
        better: 'higher',
        of: TOTAL,
      },
      invariant:
        `${transport}. Each process saw all ${TOTAL} exactly once, both in the identical order (${fixed.sameOrder ? 'yes' : 'NO'}), each one's own in emit order; ` +
        `the indexer group handled each of the ${TOTAL} exactly once while both ran (${fixed.indexedOnce} once, ${fixed.indexedMore} more); ` +
        `across the ${kill} of b every one of the ${fixed.log} logged events was handled at least once (${fixed.lost.length} lost), b's ${fixed.inFlight.length} in-flight event(s) claimed by a, ${fixed.duplicates.length} duplicate(s), each one b finished but had not acknowledged${fixed.pendingAtEnd === undefined ? '' : `; b died holding ${fixed.pendingAtKill} unacknowledged entries, ${fixed.pendingAtEnd} left pending at the end`}. ` +
        `Naive (an in-process emitter per process): each saw only its own ${naive.seenA} of ${TOTAL}, ${naive.seenByBoth} seen by both, and the ${kill} lost ${naive.lost.length} event(s) b's indexer had in flight`,
      ok: sluiceOk && naiveShape,
    };
  },
};

/** Entries of the `indexer` group not acknowledged (of `consumer`, or all): `XPENDING`. */
async function pendingEntries(url: string, stream: string, consumer?: string): Promise<number> {
  const { Redis } = await import('ioredis');
  const client = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 3000 });
  try {
    const args: (string | number)[] = [stream, 'indexer', '-', '+', 10_000];
    if (consumer !== undefined) args.push(consumer);
    const rows = (await client.call('XPENDING', ...args)) as unknown[];
    return rows.length;
  } finally {
    client.disconnect();
  }
}

/** Deletes the scenario's stream (its consumer group goes with it). */
async function deleteStream(url: string, stream: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 3000 });
  try {
    await client.del(stream);
  } finally {
    client.disconnect();
  }
}

export default fanout;
