import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { Loader } from '../../src/batch/index.js';
import { BatchResultError } from '../../src/errors.js';
import { closeSharedDb, openDb, uniqueTable, type Db } from '../../scenarios/harness/db.js';
import { serviceUrl } from '../helpers/services.js';

after(() => closeSharedDb());

interface Agent extends Record<string, unknown> {
  id: number;
  name: string;
}

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

async function withAgents(db: Db, count: number, body: (table: string) => Promise<void>): Promise<void> {
  const table = uniqueTable('agents');
  await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, name text NOT NULL)`);
  try {
    const ids = Array.from({ length: count }, (_, i) => i + 1);
    await db.query(`INSERT INTO ${table} (id, name) SELECT * FROM unnest($1::int[], $2::text[])`, [
      ids,
      ids.map((id) => `agent-${id}`),
    ]);
    await body(table);
  } finally {
    await db.query(`DROP TABLE IF EXISTS ${table}`);
  }
}

function agentLoader(db: Db, table: string, maxBatch?: number) {
  return new Loader<number, Agent>(
    async (ids) => {
      const { rows } = await db.query<Agent>(`SELECT id, name FROM ${table} WHERE id = ANY($1::int[])`, [
        ids,
      ]);
      return new Map(rows.map((row) => [row.id, row]));
    },
    maxBatch === undefined ? {} : { maxBatch },
  );
}

onEachDatabase('Loader on Postgres: 20 members in one query instead of 20', async (db) => {
  await withAgents(db, 20, async (table) => {
    const ids = Array.from({ length: 20 }, (_, i) => i + 1);

    const naiveBefore = db.queries;
    for (const id of ids) await db.query(`SELECT id, name FROM ${table} WHERE id = $1`, [id]);
    assert.equal(db.queries - naiveBefore, 20);

    const loader = agentLoader(db, table);
    const before = db.queries;
    const agents = await Promise.all(ids.map((id) => loader.load(id)));
    assert.equal(db.queries - before, 1, 'one batched query');
    assert.deepEqual(
      agents.map((a) => a.name),
      ids.map((id) => `agent-${id}`),
    );

    await Promise.all(ids.map((id) => loader.load(id)));
    assert.equal(db.queries - before, 1, 'the second pass is served from the cache');
    assert.equal(loader.stats.cacheHits, 20);
  });
});

onEachDatabase('Loader on Postgres: maxBatch splits, a missing row rejects only its key', async (db) => {
  await withAgents(db, 10, async (table) => {
    const loader = agentLoader(db, table, 4);
    const before = db.queries;
    const outcomes = await loader.loadMany([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 404]);
    assert.equal(db.queries - before, 3, '11 keys in batches of ≤ 4');
    assert.equal(outcomes.filter((o) => o.ok).length, 10);
    const missing = outcomes[10];
    assert.ok(missing !== undefined && !missing.ok && missing.error instanceof BatchResultError);
    assert.equal(loader.stats.batches, 3);
  });
});

onEachDatabase(
  'Loader on Postgres: a failing query fails its batch and is retried on the next load',
  async (db) => {
    await withAgents(db, 3, async (table) => {
      let broken = true;
      const loader = new Loader<number, Agent>(async (ids) => {
        const { rows } = await db.query<Agent>(
          `SELECT id, name FROM ${broken ? `${table}_missing` : table} WHERE id = ANY($1::int[])`,
          [ids],
        );
        return new Map(rows.map((row) => [row.id, row]));
      });
      await assert.rejects(loader.load(1), /does not exist/);
      broken = false;
      assert.equal((await loader.load(1)).name, 'agent-1');
    });
  },
);
