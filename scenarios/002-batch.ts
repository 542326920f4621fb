// Seed 002 (pool orchestrator): memory aggregation over 5 pools × 100 items. Naive: each pool's
// memory collected in turn, then every item inserted with its own awaited INSERT (500 queries).
// sluice: the pools collected concurrently (`map`), the items inserted through a BatchWriter in
// batches of 20 (25 multi-row INSERTs). Scaled down from the report (10 s per pool → 40 ms,
// 0.1 s per insert → 1 ms round trip), counted on Postgres (PGlite, or DATABASE_URL).
import { BatchWriter } from '../src/batch/index.js';
import { map } from '../src/limit/index.js';
import { openDb, uniqueTable, type Db } from './harness/db.js';
import { LoopbackServer } from './harness/server.js';
import { sized } from './harness/size.js';
import { round, sleep, timed } from './harness/stats.js';
import type { Scenario } from './harness/types.js';
import { timeHeadline } from './harness/headline.js';

const POOLS = 5;
const ITEMS = sized(100, 40);
/** One pool's `collect_memory()` (10 s in the report). */
const COLLECT_MS = 40;
/** Simulated network round trip before every query (the report's 0.1 s per insert, scaled). */
const RTT_MS = 1;
const BATCH = 20;
/** Batches written at once (the report gathered its batch inserts concurrently). */
const WRITE_CONCURRENCY = 4;

interface Memory {
  readonly pool: number;
  readonly seq: number;
  readonly content: string;
}

const memoryAggregation: Scenario = {
  seed: '002',
  name: 'memory-aggregation',
  api: 'map + BatchWriter',
  workload:
    `${POOLS} pools × ${ITEMS} memory items, ${COLLECT_MS} ms per pool collection (loopback HTTP), +${RTT_MS} ms ` +
    `simulated round trip per query: sequential collection + ${POOLS * ITEMS} single INSERTs vs concurrent ` +
    `collection + BatchWriter(maxItems ${BATCH})`,
  async run(ctx) {
    const total = POOLS * ITEMS;
    const server = new LoopbackServer();
    for (let p = 0; p < POOLS; p++) {
      server.route(`/pool/${p}/memory`, {
        latencyMs: COLLECT_MS,
        handler: (): Memory[] =>
          Array.from({ length: ITEMS }, (_, seq) => ({ pool: p, seq, content: `pool ${p} memory ${seq}` })),
      });
    }
    const db = await openDb({ shared: true });
    const naiveTable = uniqueTable('memory_naive');
    const sluiceTable = uniqueTable('memory_sluice');
    try {
      await server.start();
      for (const table of [naiveTable, sluiceTable]) {
        await db.query(
          `CREATE TABLE ${table} (pool int NOT NULL, seq int NOT NULL, content text NOT NULL, PRIMARY KEY (pool, seq))`,
        );
      }
      const collect = async (pool: number): Promise<Memory[]> =>
        JSON.parse(await server.client.get(`/pool/${pool}/memory`)) as Memory[];
      const insertOne = async (table: string, m: Memory) => {
        await sleep(RTT_MS);
        await db.query(`INSERT INTO ${table} (pool, seq, content) VALUES ($1, $2, $3)`, [
          m.pool,
          m.seq,
          m.content,
        ]);
      };
      const insertMany = async (table: string, items: readonly Memory[]) => {
        await sleep(RTT_MS);
        await db.query(
          `INSERT INTO ${table} (pool, seq, content) SELECT * FROM unnest($1::int[], $2::int[], $3::text[])`,
          [items.map((m) => m.pool), items.map((m) => m.seq), items.map((m) => m.content)],
        );
      };
      const pools = Array.from({ length: POOLS }, (_, p) => p);

      // Naive: for each pool, collect, then insert its items one awaited INSERT at a time.
      let before = db.queries;
      let done = 0;
      const naive = await timed(async () => {
        for (const p of pools) {
          for (const m of await collect(p)) {
            await insertOne(naiveTable, m);
            if (++done % 25 === 0) ctx.progress(done, total, 'naive');
          }
        }
      });
      const naiveQueries = db.queries - before;
      const naiveRequests = server.requests;
      const naiveMaxInFlight = server.maxInFlight;
      server.resetCounters();

      // sluice: every pool collected at once; each item handed to the writer as it arrives.
      before = db.queries;
      done = 0;
      const writer = new BatchWriter<Memory>((items) => insertMany(sluiceTable, items), {
        maxItems: BATCH,
        concurrency: WRITE_CONCURRENCY,
      });
      const fast = await timed(async () => {
        try {
          await map(
            pools,
            async (p) => {
              for (const m of await collect(p)) {
                await writer.add(m);
                if (++done % 25 === 0) ctx.progress(done, total, 'sluice');
              }
            },
            { concurrency: POOLS },
          );
        } finally {
          await writer.close(); // flushes the last batch; resolves when every item is written
        }
      });
      const sluiceQueries = db.queries - before;
      const sluiceMaxInFlight = server.maxInFlight;

      const naiveRows = await contents(db, naiveTable);
      const sluiceRows = await contents(db, sluiceTable);
      const ratio = naive.ms / fast.ms;
      const ok =
        naiveRows.count === total &&
        sluiceRows.count === total &&
        naiveRows.digest === sluiceRows.digest &&
        naiveQueries === total &&
        sluiceQueries === Math.ceil(total / BATCH) &&
        writer.stats.written === total &&
        writer.stats.batches === sluiceQueries &&
        writer.stats.failedItems === 0 &&
        naiveRequests === POOLS &&
        naiveMaxInFlight === 1 &&
        sluiceMaxInFlight === POOLS &&
        ratio > 2;
      return {
        naive: { ms: round(naive.ms), queries: naiveQueries, rows: naiveRows.count, db: db.kind },
        sluice: {
          ms: round(fast.ms),
          queries: sluiceQueries,
          rows: sluiceRows.count,
          batchSize: round(writer.stats.written / writer.stats.batches),
          poolsInFlight: sluiceMaxInFlight,
        },
        headline: timeHeadline(round(naive.ms), round(fast.ms)),
        invariant:
          `all ${total} items stored both ways (${naiveRows.count} = ${sluiceRows.count} rows, same content) on ` +
          `${db.kind}; INSERTs ${naiveQueries} → ${sluiceQueries}; pools collected ${naiveMaxInFlight} → ` +
          `${sluiceMaxInFlight} at a time; ${round(naive.ms)} → ${round(fast.ms)} ms`,
        ok,
      };
    } finally {
      for (const table of [naiveTable, sluiceTable])
        await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      await db.close();
      await server.close();
    }
  },
};

/** Row count and an order-independent digest of the stored items. */
async function contents(db: Db, table: string): Promise<{ count: number; digest: string }> {
  const { rows } = await db.query<{ n: number; digest: string }>(
    `SELECT count(*)::int AS n, md5(coalesce(string_agg(pool || ':' || seq || ':' || content, ',' ORDER BY pool, seq), '')) AS digest FROM ${table}`,
  );
  const row = rows[0];
  return { count: row?.n ?? 0, digest: row?.digest ?? '' };
}

export default memoryAggregation;
