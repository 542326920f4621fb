// Seed 003 (validation engine): validation events written under a burst well above 100 events/s,
// with the service shut down in the middle of it. Naive: one fire-and-forget INSERT per event
// (the report's un-awaited `create_task`), so shutdown has nothing to wait on. sluice: a
// BatchWriter, whose close() stops intake, flushes and resolves only once every accepted
// event is a row; later adds are refused with ClosedError, so the caller knows.
import { BatchWriter } from '../src/batch/index.js';
import { ClosedError } from '../src/errors.js';
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
/** Offered events per second during the burst (the report's bar: 100+ events/s). */
const RATE = 1000;
/** The service shuts down once this many events have been offered. */
const CLOSE_AT = sized(300, 100);
/** Simulated network round trip before every query, so PGlite costs what a networked DB does. */
const RTT_MS = 1;
const MAX_ITEMS = 50;
const MAX_WAIT_MS = 20;
const MAX_PENDING = 1000;

type ValidationEvent = ValidationRow;

const event = (id: number): ValidationEvent => ({
  id,
  rule: `rule-${id % 17}`,
  path: `/project/src/file-${id % 50}.py`,
  passed: id % 7 !== 0,
});

/**
 * Offers events 0, 1, … at `RATE` per second of wall time (a few per timer tick), calling
 * `offer` for each until it returns false or `EVENTS` are offered. Resolves with the measured rate.
 */
async function burst(
  offer: (e: ValidationEvent) => Promise<boolean>,
): Promise<{ offered: number; rate: number }> {
  const start = performance.now();
  let offered = 0;
  let last = start;
  for (;;) {
    const due = Math.min(EVENTS, Math.floor(((performance.now() - start) * RATE) / 1000) + 1);
    while (offered < due) {
      last = performance.now();
      if (!(await offer(event(offered++)))) return { offered, rate: (offered * 1000) / (last - start || 1) };
    }
    if (offered >= EVENTS) return { offered, rate: (offered * 1000) / (last - start || 1) };
    await sleep(1);
  }
}

const validationEventsBurst: Scenario = {
  seed: '003',
  name: 'validation-events-burst',
  api: 'BatchWriter + close()',
  workload:
    `${EVENTS} validation events offered at ${RATE}/s, shutdown after ${CLOSE_AT}, +${RTT_MS} ms simulated round ` +
    `trip per query: fire-and-forget INSERT per event vs BatchWriter(maxItems ${MAX_ITEMS}, maxWaitMs ${MAX_WAIT_MS}) + close()`,
  async run(ctx) {
    const db = await openDb({ shared: true });
    const naiveTable = uniqueTable('validation_events_naive');
    const sluiceTable = uniqueTable('validation_events_sluice');
    // Instrumentation only (the naive code keeps no handle on its writes): lets the scenario see
    // what was still unwritten at shutdown, and wait for it before dropping the table.
    const untracked = new Set<Promise<void>>();
    try {
      for (const table of [naiveTable, sluiceTable]) {
        await createValidationTable(db, table, true);
      }

      // Naive: every event starts its own INSERT and nobody awaits it.
      let before = db.queries;
      let naiveFailed = 0;
      let naiveWritten = 0;
      const naiveStart = performance.now();
      const naiveBurst = await burst(async (e) => {
        const write = (async () => {
          await sleep(RTT_MS);
          await insertValidationRow(db, naiveTable, e);
          naiveWritten++;
        })().catch(() => void naiveFailed++);
        untracked.add(write);
        void write.finally(() => untracked.delete(write));
        if ((e.id + 1) % 50 === 0) ctx.progress(e.id + 1, EVENTS, 'naive');
        return e.id + 1 < CLOSE_AT; // shutdown: stop; there is nothing to flush or wait for
      });
      const naiveMs = performance.now() - naiveStart;
      // Measured at the moment shutdown returns: writes completed, and writes still in flight.
      const writtenAtShutdown = naiveWritten;
      const unwrittenAtShutdown = untracked.size;
      await Promise.all(untracked); // the scenario (not the naive code) waits, to count and clean up
      const naiveDrainMs = performance.now() - naiveStart;
      const naiveQueries = db.queries - before;
      const naiveFinal = await contents(db, naiveTable);

      // sluice: events go to a BatchWriter; shutdown is close() in the middle of the burst.
      before = db.queries;
      let reported = 0;
      const writer = new BatchWriter<ValidationEvent>(
        async (items) => {
          await sleep(RTT_MS);
          await insertValidationRows(db, sluiceTable, items);
        },
        {
          maxItems: MAX_ITEMS,
          maxWaitMs: MAX_WAIT_MS,
          maxPending: MAX_PENDING,
          onError: (items) => void (reported += items.length),
        },
      );
      const accepted: number[] = [];
      let refused = 0;
      let otherErrors = 0;
      let closing: Promise<void> | undefined;
      let closedAt = 0;
      let closeDoneAt = 0;
      let unwrittenAtClose = 0;
      const sluiceStart = performance.now();
      const sluiceBurst = await burst(async (e) => {
        try {
          await writer.add(e);
          accepted.push(e.id);
        } catch (error) {
          if (error instanceof ClosedError) refused++;
          else otherErrors++;
        }
        if (e.id + 1 === CLOSE_AT) {
          unwrittenAtClose = writer.pending;
          closedAt = performance.now();
          // Adds from here on are refused with ClosedError; it resolves once everything is written.
          closing = writer.close().then(() => void (closeDoneAt = performance.now()));
        }
        if ((e.id + 1) % 50 === 0) ctx.progress(e.id + 1, EVENTS, 'sluice');
        return true; // the burst goes on; late events meet a closed writer
      });
      await closing;
      const closeMs = closeDoneAt - closedAt;
      const sluiceMs = closeDoneAt - sluiceStart;
      const sluiceQueries = db.queries - before;
      const sluiceRows = await contents(db, sluiceTable);

      const acceptedSum = accepted.reduce((a, b) => a + b, 0);
      const naiveSum = (naiveBurst.offered * (naiveBurst.offered - 1)) / 2;
      const ok =
        // sluice: every accepted event is a row once close() resolved; refused ones were told so.
        closing !== undefined &&
        accepted.length === CLOSE_AT &&
        sluiceRows.count === accepted.length - reported &&
        sluiceRows.distinct === sluiceRows.count &&
        sluiceRows.sum === acceptedSum &&
        reported === 0 &&
        otherErrors === 0 &&
        refused === EVENTS - CLOSE_AT &&
        refused === writer.stats.rejected &&
        accepted.length + refused === sluiceBurst.offered &&
        writer.stats.written === accepted.length &&
        writer.stats.pending === 0 &&
        sluiceQueries === writer.stats.batches &&
        unwrittenAtClose > 0 &&
        sluiceBurst.rate > 100 &&
        // naive: one query per event, all eventually rows (here, where the process did not exit).
        naiveBurst.offered === CLOSE_AT &&
        naiveQueries === naiveBurst.offered &&
        writtenAtShutdown + unwrittenAtShutdown === naiveBurst.offered &&
        naiveFailed === 0 &&
        naiveFinal.count === naiveBurst.offered &&
        naiveFinal.sum === naiveSum &&
        naiveBurst.rate > 100;
      return {
        naive: {
          ms: round(naiveMs),
          ratePerSec: Math.round(naiveBurst.rate),
          queries: naiveQueries,
          writtenAtShutdown: `${writtenAtShutdown}/${naiveBurst.offered}`,
          unwrittenAtShutdown,
          drainMs: round(naiveDrainMs),
          db: db.kind,
        },
        sluice: {
          ms: round(sluiceMs),
          ratePerSec: Math.round(sluiceBurst.rate),
          queries: sluiceQueries,
          rowsAfterClose: `${sluiceRows.count}/${accepted.length}`,
          unwrittenAtClose,
          closeMs: round(closeMs),
          refused,
          onError: reported,
        },
        headline: {
          measure: 'unwritten at shutdown',
          of: accepted.length,
          naive: unwrittenAtShutdown,
          sluice: accepted.length - sluiceRows.count,
          better: 'lower',
        },
        invariant:
          `close() mid-burst with ${unwrittenAtClose} events unwritten resolved in ${round(closeMs)} ms with all ` +
          `${accepted.length} accepted events as rows (${reported} reported to onError), ${refused} later adds ` +
          `refused with ClosedError (not lost: the caller was told); naive had written ${writtenAtShutdown}/` +
          `${naiveBurst.offered} when shutdown returned, ${unwrittenAtShutdown} untracked write(s) still in flight; INSERTs ` +
          `${naiveQueries} → ${sluiceQueries} on ${db.kind}`,
        ok,
      };
    } finally {
      await Promise.all(untracked);
      for (const table of [naiveTable, sluiceTable])
        await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      await db.close();
    }
  },
};

export default validationEventsBurst;
