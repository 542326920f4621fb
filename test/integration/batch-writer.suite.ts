import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { BatchWriter } from '../../src/batch/index.js';
import { ClosedError } from '../../src/errors.js';
import { closeSharedDb, openDb, uniqueTable, type Db } from '../../scenarios/harness/db.js';
import { serviceUrl } from '../helpers/services.js';

after(() => closeSharedDb());

/** Runs `body` against PGlite, and against real Postgres through DATABASE_URL. */
function onEachDatabase(name: string, body: (db: Db) => Promise<void>): void {
  describe(name, () => {
    it('on PGlite (embedded)', async () => {
      // One embedded PGlite per file (starting one takes seconds); every test uses its own table.
      const db = await openDb({ url: undefined, shared: true });
      try {
        await body(db);
      } finally {
        await db.close();
      }
    });
    it('on Postgres (DATABASE_URL)', async (t: TestContext) => {
      const url = serviceUrl(t, 'DATABASE_URL');
      if (url === undefined) return;
      const db = await openDb({ url });
      try {
        assert.equal(db.kind, 'postgres');
        await body(db);
      } finally {
        await db.close();
      }
    });
  });
}

interface Item {
  id: number;
  pool: string;
}

async function withTable(db: Db, body: (table: string) => Promise<void>): Promise<void> {
  const table = uniqueTable('items');
  await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, pool text NOT NULL)`);
  try {
    await body(table);
  } finally {
    await db.query(`DROP TABLE IF EXISTS ${table}`);
  }
}

const insertMany = (db: Db, table: string) => async (items: readonly Item[]) => {
  await db.query(`INSERT INTO ${table} (id, pool) SELECT * FROM unnest($1::int[], $2::text[])`, [
    items.map((i) => i.id),
    items.map((i) => i.pool),
  ]);
};

async function count(db: Db, table: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  return rows[0]!.n;
}

onEachDatabase('BatchWriter on Postgres: 500 rows in 25 inserts of 20, all present', async (db) => {
  await withTable(db, async (table) => {
    const writer = new BatchWriter<Item>(insertMany(db, table), {
      maxItems: 20,
      maxWaitMs: 5,
      concurrency: 2,
    });
    const before = db.queries;
    // 5 pools × 100 items, produced concurrently.
    await Promise.all(
      Array.from({ length: 5 }, async (_, p) => {
        for (let i = 0; i < 100; i++) await writer.add({ id: p * 100 + i, pool: `pool-${p}` });
      }),
    );
    await writer.close();
    assert.equal(db.queries - before, 25);
    assert.equal(await count(db, table), 500);
    assert.equal(writer.stats.written, 500);
    assert.equal(writer.stats.batches, 25);
  });
});

onEachDatabase(
  'BatchWriter on Postgres: a failing batch is retried, then reported; the rest lands',
  async (db) => {
    await withTable(db, async (table) => {
      // Row 7 already exists: the batch holding the duplicate fails every try.
      await db.query(`INSERT INTO ${table} (id, pool) VALUES (7, 'seed')`);
      const reported: (readonly Item[])[] = [];
      const writer = new BatchWriter<Item>(insertMany(db, table), {
        maxItems: 5,
        retry: { attempts: 2, delayMs: 1, jitter: 'none' },
        onError: (items) => void reported.push(items),
      });
      for (let id = 0; id < 20; id++) await writer.add({ id, pool: 'p' });
      await writer.close();
      assert.deepEqual(
        reported.map((batch) => batch.map((i) => i.id)),
        [[5, 6, 7, 8, 9]],
      );
      assert.equal(writer.stats.failedItems, 5);
      assert.equal(writer.stats.retries, 1);
      assert.equal(await count(db, table), 1 + 15);
    });
  },
);

onEachDatabase('BatchWriter on Postgres: shutdown in the middle of a burst loses nothing', async (db) => {
  await withTable(db, async (table) => {
    const writer = new BatchWriter<Item>(insertMany(db, table), {
      maxItems: 20,
      maxWaitMs: 10,
      maxPending: 50,
    });
    let accepted = 0;
    let refused = 0;
    let id = 0;
    let closing: Promise<void> | undefined;
    let unwrittenAtClose = 0;
    const producers = Array.from({ length: 4 }, async () => {
      for (;;) {
        // A real burst arrives over I/O turns; PGlite can complete a flush within microtasks, so
        // a producer that never yields would starve the event loop.
        await new Promise((resolve) => setImmediate(resolve));
        try {
          await writer.add({ id: id++, pool: 'burst' });
          accepted++;
        } catch (error) {
          assert.ok(error instanceof ClosedError);
          refused++;
          return;
        }
        if (accepted === 301) {
          // Shut down in the middle of the burst, with a partial batch buffered.
          unwrittenAtClose = writer.pending;
          closing = writer.close();
        }
      }
    });
    await Promise.all(producers);
    await closing;
    assert.ok(unwrittenAtClose > 0, 'close came while items were still unwritten');
    assert.equal(refused, 4);
    assert.equal(await count(db, table), accepted, 'every accepted event is a row');
    assert.equal(writer.stats.items, accepted);
  });
});
