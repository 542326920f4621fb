// Seed 003 (validation engine): "implement event batching for high throughput" in the event
// store integration. Validation results are published on an event bus and stored in Postgres.
// Naive: a handler per event that INSERTs one row. sluice: the store consumes the events as a
// stream (`bus.subscribe`, a bounded buffer) and writes them through a BatchWriter, one INSERT per
// batch. Shutdown order: bus.close() (no new events), the iterator ends once read, then
// writer.close() flushes; nothing accepted is lost.
import { BatchWriter } from '../src/batch/index.js';
import { ClosedError } from '../src/errors.js';
import { EventBus } from '../src/events/index.js';
import { contents, openDb, uniqueTable } from './harness/db.js';
import {
  createValidationTable,
  insertValidationRow,
  insertValidationRows,
  type ValidationRow,
} from './harness/validation-rows.js';
import { sized } from './harness/size.js';
import { round, sleep } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const EVENTS = sized(600, 200);
/** Each validation run checks one file against this many rules and emits one event per rule. */
const RULES = 25;
/** A validation run every this many ms: RULES / RUN_EVERY_MS = 1000 events/s (the bar: 100+). */
const RUN_EVERY_MS = 25;
const RATE = (RULES * 1000) / RUN_EVERY_MS;
/** Simulated network round trip before every query, so PGlite costs what a networked DB does. */
const RTT_MS = 1;
/** The store's subscription buffer: past it, emits wait (overflow 'wait'). */
const BUFFER = 256;
const MAX_ITEMS = 50;
const MAX_WAIT_MS = 20;
const MAX_PENDING = 1000;

type ValidationDone = ValidationRow;

type Events = { 'validation.done': ValidationDone };

const event = (id: number): ValidationDone => ({
  id,
  rule: `rule-${id % RULES}`,
  path: `/project/src/file-${Math.floor(id / RULES) % 50}.py`,
  passed: id % 7 !== 0,
});

/**
 * Runs validations every `RUN_EVERY_MS` of wall time (catching up if late), each emitting its
 * `RULES` results with one `emitBatch`, until EVENTS are emitted. Resolves with the measured rate.
 */
async function burst(bus: EventBus<Events>, progress: (done: number) => void): Promise<number> {
  const start = performance.now();
  let emitted = 0;
  for (let run = 0; emitted < EVENTS; run++) {
    const wait = start + run * RUN_EVERY_MS - performance.now();
    if (wait > 0) await sleep(wait);
    const results = Array.from({ length: Math.min(RULES, EVENTS - emitted) }, (_, i) => event(emitted + i));
    await bus.emitBatch('validation.done', results); // resolves once every subscriber took them
    emitted += results.length;
    progress(emitted);
  }
  return (EVENTS * 1000) / (performance.now() - start || 1);
}

/** Tries one emit on a closed bus: true when it is refused with ClosedError. */
const refusedAfterClose = (bus: EventBus<Events>): Promise<boolean> =>
  bus.emit('validation.done', event(EVENTS)).then(
    () => false,
    (error: unknown) => error instanceof ClosedError,
  );

const eventBatching: Scenario = {
  seed: '003',
  name: 'event-batching',
  api: 'EventBus.subscribe + BatchWriter',
  workload:
    `${EVENTS} validation.done events (${RULES} per validation run, ${RATE}/s) stored in Postgres (+${RTT_MS} ms simulated round trip per ` +
    `query): an INSERT per event from a bus handler vs bus.subscribe({ buffer: ${BUFFER} }) into ` +
    `BatchWriter(maxItems ${MAX_ITEMS}, maxWaitMs ${MAX_WAIT_MS}); shutdown right after the last emit`,
  async run(ctx) {
    const db = await openDb({ shared: true });
    const naiveTable = uniqueTable('validation_done_naive');
    const sluiceTable = uniqueTable('validation_done_sluice');
    try {
      for (const table of [naiveTable, sluiceTable]) {
        await createValidationTable(db, table, false);
      }

      // Naive: a handler per event, one INSERT each (the bus's default: one call at a time).
      let before = db.queries;
      const naiveBus = new EventBus<Events>();
      naiveBus.on('validation.done', async (e) => {
        await sleep(RTT_MS);
        await insertValidationRow(db, naiveTable, e);
      });
      const naiveStart = performance.now();
      const naiveRate = await burst(naiveBus, (n) => ctx.progress(n, EVENTS, 'naive'));
      const naiveAtClose = naiveBus.stats.buffered + naiveBus.stats.running;
      const naiveCloseStart = performance.now();
      await naiveBus.close(); // resolves once every handler has run every accepted event
      const naiveCloseMs = performance.now() - naiveCloseStart;
      const naiveMs = performance.now() - naiveStart;
      const naiveQueries = db.queries - before;
      const naiveRefused = await refusedAfterClose(naiveBus);
      const naiveRows = await contents(db, naiveTable);

      // sluice: the store pulls events from a bounded subscription into a BatchWriter.
      before = db.queries;
      let reported = 0;
      const bus = new EventBus<Events>();
      const writer = new BatchWriter<ValidationDone>(
        async (items) => {
          await sleep(RTT_MS);
          await insertValidationRows(db, sluiceTable, items);
        },
        {
          name: 'validation-store',
          maxItems: MAX_ITEMS,
          maxWaitMs: MAX_WAIT_MS,
          maxPending: MAX_PENDING,
          onError: (items) => void (reported += items.length),
        },
      );
      const events = bus.subscribe('validation.done', { buffer: BUFFER });
      let pumped = 0;
      const pump = (async () => {
        for await (const e of events) {
          await writer.add(e); // waits only when MAX_PENDING are unwritten
          pumped++;
        }
      })();
      pump.catch(() => undefined); // awaited below; this only keeps an early failure handled
      const sluiceStart = performance.now();
      const sluiceRate = await burst(bus, (n) => ctx.progress(n, EVENTS, 'sluice'));
      // Shutdown right after the last emit: some events are still in the subscription's buffer,
      // some in the writer's open batch.
      const inBuffer = events.stats.buffered;
      const inWriter = writer.stats.pending;
      const closeStart = performance.now();
      await bus.close(); // 1. no new events; the buffered ones stay readable
      const busClosedMs = performance.now() - closeStart;
      await pump; // 2. the iterator ended once read: every event is in the writer
      const pumpedAtEnd = pumped;
      await writer.close(); // 3. flush: every event is a row
      const closeMs = performance.now() - closeStart;
      const sluiceMs = performance.now() - sluiceStart;
      const sluiceQueries = db.queries - before;
      const refused = await refusedAfterClose(bus);
      const rows = await contents(db, sluiceTable);

      const sum = (EVENTS * (EVENTS - 1)) / 2;
      const stats = bus.stats;
      const ok =
        // sluice: every event stored exactly once, one INSERT per batch, in the documented order.
        rows.count === EVENTS &&
        rows.distinct === EVENTS &&
        rows.sum === sum &&
        pumpedAtEnd === EVENTS &&
        reported === 0 &&
        writer.stats.written === EVENTS &&
        writer.stats.pending === 0 &&
        sluiceQueries === writer.stats.batches &&
        sluiceQueries <= Math.ceil(EVENTS / MAX_ITEMS) * 2 &&
        stats.emitted === EVENTS &&
        stats.delivered === EVENTS &&
        stats.dropped === 0 &&
        events.stats.buffered === 0 &&
        inBuffer + inWriter > 0 &&
        refused &&
        sluiceRate > 100 &&
        // naive: every event stored too, but one INSERT each.
        naiveRows.count === EVENTS &&
        naiveRows.distinct === EVENTS &&
        naiveRows.sum === sum &&
        naiveQueries === EVENTS &&
        naiveRefused &&
        naiveRate > 100;
      return {
        naive: {
          ms: round(naiveMs),
          ratePerSec: Math.round(naiveRate),
          queries: naiveQueries,
          pendingAtClose: naiveAtClose,
          closeMs: round(naiveCloseMs),
          rows: `${naiveRows.count}/${EVENTS}`,
          db: db.kind,
        },
        sluice: {
          ms: round(sluiceMs),
          ratePerSec: Math.round(sluiceRate),
          queries: sluiceQueries,
          batches: writer.stats.batches,
          inBufferAtClose: inBuffer,
          inWriterAtClose: inWriter,
          busCloseMs: round(busClosedMs),
          closeMs: round(closeMs),
          rows: `${rows.count}/${EVENTS}`,
        },
        headline: { measure: 'queries', naive: naiveQueries, sluice: sluiceQueries, better: 'lower' },
        invariant:
          `every one of ${EVENTS} events stored exactly once (${rows.count} rows, ${rows.distinct} distinct ids, ` +
          `id sum ${rows.sum}); shutdown with ${inBuffer} in the subscription buffer and ${inWriter} in the writer: ` +
          `bus.close() → iterator ended after ${pumpedAtEnd} → writer.close() lost none (${reported} reported failed, ` +
          `emit after close refused with ClosedError); INSERTs ${naiveQueries} → ${sluiceQueries} ` +
          `(${writer.stats.batches} batches of ≤ ${MAX_ITEMS}) on ${db.kind}`,
        ok,
      };
    } finally {
      for (const table of [naiveTable, sluiceTable])
        await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      await db.close();
    }
  },
};

export default eventBatching;
