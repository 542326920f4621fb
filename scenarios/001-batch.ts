// Seed 001 (agent platform): a circle of 20 members, each with an agent, its model and the
// model's provider, loaded with 21 queries (N+1). The same reads through a Loader (2 queries)
// and as one JOIN, counted on a real Postgres (embedded PGlite, or DATABASE_URL).
import { Loader } from '../src/batch/index.js';
import { openDb, uniqueTable, type Db } from './harness/db.js';
import { round, sleep, timed } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const MEMBERS = 20;
/** A network round trip added before every query, so PGlite (in-process) behaves like a remote DB. */
const RTT_MS = 1;

type Member = {
  readonly member: string;
  readonly agent: string;
  readonly model: string;
  readonly provider: string;
};

const circleNPlusOne: Scenario = {
  seed: '001',
  name: 'circle-n-plus-1',
  workload: `circle of ${MEMBERS} members → agent → model → provider: N+1 vs Loader vs JOIN (Postgres or PGlite, +${RTT_MS} ms simulated round trip per query)`,
  async run(ctx) {
    const db = await openDb();
    const t = {
      members: uniqueTable('circle_members'),
      agents: uniqueTable('agents'),
      models: uniqueTable('models'),
      providers: uniqueTable('providers'),
    };
    const query = async <R extends Record<string, unknown>>(sql: string, params?: unknown[]) => {
      await sleep(RTT_MS);
      return (await db.query<R>(sql, params)).rows;
    };
    try {
      await setup(db, t);
      const lookupSql = `SELECT a.id AS agent_id, a.name AS agent, m.name AS model, p.name AS provider
        FROM ${t.agents} a JOIN ${t.models} m ON m.id = a.model_id JOIN ${t.providers} p ON p.id = m.provider_id`;
      type Lookup = { agent_id: number; agent: string; model: string; provider: string };
      const membersOf = () =>
        query<{ name: string; agent_id: number }>(
          `SELECT name, agent_id FROM ${t.members} WHERE circle_id = 1 ORDER BY name`,
        );

      // Naive: the members, then one query per member for its agent, model and provider.
      ctx.progress(0, 3, 'N+1');
      let before = db.queries;
      const naive = await timed(async () => {
        const out: Member[] = [];
        for (const m of await membersOf()) {
          const [row] = await query<Lookup>(`${lookupSql} WHERE a.id = $1`, [m.agent_id]);
          out.push({ member: m.name, agent: row!.agent, model: row!.model, provider: row!.provider });
        }
        return out;
      });
      const naiveQueries = db.queries - before;

      // sluice: the members, then every member's load in the same tick → one batched query.
      ctx.progress(1, 3, 'Loader');
      before = db.queries;
      const agents = new Loader<number, Lookup>(async (ids) => {
        const rows = await query<Lookup>(`${lookupSql} WHERE a.id = ANY($1::int[])`, [ids]);
        return new Map(rows.map((r) => [r.agent_id, r]));
      });
      const batched = await timed(async () =>
        Promise.all(
          (await membersOf()).map(async (m) => {
            const row = await agents.load(m.agent_id);
            return { member: m.name, agent: row.agent, model: row.model, provider: row.provider };
          }),
        ),
      );
      const loaderQueries = db.queries - before;

      ctx.progress(2, 3, 'JOIN');
      before = db.queries;
      const joined = await timed(() =>
        query<Member>(
          `SELECT c.name AS member, a.name AS agent, m.name AS model, p.name AS provider
           FROM ${t.members} c JOIN ${t.agents} a ON a.id = c.agent_id JOIN ${t.models} m ON m.id = a.model_id
           JOIN ${t.providers} p ON p.id = m.provider_id WHERE c.circle_id = 1 ORDER BY c.name`,
        ),
      );
      const joinQueries = db.queries - before;

      const same =
        JSON.stringify(naive.value) === JSON.stringify(batched.value) &&
        JSON.stringify(naive.value) === JSON.stringify(joined.value.map((r) => ({ ...r })));
      const ok =
        same &&
        naive.value.length === MEMBERS &&
        naiveQueries === MEMBERS + 1 &&
        loaderQueries <= 2 &&
        joinQueries === 1 &&
        agents.stats.batches === 1;
      return {
        naive: { ms: round(naive.ms), queries: naiveQueries, db: db.kind },
        sluice: {
          ms: round(batched.ms),
          queries: loaderQueries,
          batchSize: agents.stats.meanBatchSize,
          joinMs: round(joined.ms),
          joinQueries,
        },
        ratio: round(naiveQueries / loaderQueries, 2),
        invariant: `same ${naive.value.length} members from all three; queries ${naiveQueries} (N+1) → ${loaderQueries} (Loader) → ${joinQueries} (JOIN) on ${db.kind}`,
        ok,
      };
    } finally {
      for (const table of [t.members, t.agents, t.models, t.providers])
        await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      await db.close();
    }
  },
};

async function setup(
  db: Db,
  t: { members: string; agents: string; models: string; providers: string },
): Promise<void> {
  await db.query(`CREATE TABLE ${t.providers} (id int PRIMARY KEY, name text NOT NULL)`);
  await db.query(
    `CREATE TABLE ${t.models} (id int PRIMARY KEY, name text NOT NULL, provider_id int NOT NULL)`,
  );
  await db.query(`CREATE TABLE ${t.agents} (id int PRIMARY KEY, name text NOT NULL, model_id int NOT NULL)`);
  await db.query(
    `CREATE TABLE ${t.members} (circle_id int NOT NULL, name text NOT NULL, agent_id int NOT NULL)`,
  );
  await db.query(`INSERT INTO ${t.providers} SELECT i, 'provider-' || i FROM generate_series(1, 3) i`);
  await db.query(`INSERT INTO ${t.models} SELECT i, 'model-' || i, 1 + i % 3 FROM generate_series(1, 6) i`);
  await db.query(
    `INSERT INTO ${t.agents} SELECT i, 'agent-' || i, 1 + i % 6 FROM generate_series(1, ${MEMBERS * 2}) i`,
  );
  await db.query(
    `INSERT INTO ${t.members} SELECT 1, 'member-' || lpad(i::text, 2, '0'), i * 2 FROM generate_series(1, ${MEMBERS}) i`,
  );
}

export default circleNPlusOne;
