// Seed 001 (agent platform): a circle of 20 members, each with an agent, its model and the
// model's provider, loaded with 21 queries (N+1). The same reads through a Loader (members +
// one batched lookup = 2 queries) and as one JOIN, counted on Postgres (embedded PGlite by
// default, a real server through DATABASE_URL).
import { Loader } from '../src/batch/index.js';
import { openDb, uniqueTable, type Db } from './harness/db.js';
import { round, sleep, timed } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const MEMBERS = 20;
/**
 * A simulated network round trip added before every query (all three paths alike), so that
 * in-process PGlite costs per query what a networked database does. Query counts, the
 * invariant, do not depend on it.
 */
const RTT_MS = 1;

type Member = {
  readonly member: string;
  readonly agent: string;
  readonly model: string;
  readonly provider: string;
};

type Lookup = {
  readonly agent_id: number;
  readonly agent: string;
  readonly model: string;
  readonly provider: string;
};

interface Tables {
  readonly members: string;
  readonly agents: string;
  readonly models: string;
  readonly providers: string;
}

const circleNPlusOne: Scenario = {
  seed: '001',
  name: 'circle-n-plus-1',
  api: 'Loader',
  workload:
    `circle (a team of agents) of ${MEMBERS} members, each → agent → model → provider: N+1 lookups vs Loader (one batched ` +
    `agent⋈model⋈provider lookup) vs one JOIN; +${RTT_MS} ms simulated round trip per query`,
  async run(ctx) {
    const db = await openDb({ shared: true });
    const t: Tables = {
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
      ctx.progress(0, 4, 'setup');
      await setup(db, t);
      // One agent's agent, model and provider (the per-member lookup of the report).
      const lookupSql =
        `SELECT a.id AS agent_id, a.name AS agent, m.name AS model, p.name AS provider ` +
        `FROM ${t.agents} a JOIN ${t.models} m ON m.id = a.model_id JOIN ${t.providers} p ON p.id = m.provider_id`;
      const membersOf = () =>
        query<{ name: string; agent_id: number }>(
          `SELECT name, agent_id FROM ${t.members} WHERE circle_id = 1 ORDER BY name`,
        );
      const member = (name: string, row: Lookup): Member => ({
        member: name,
        agent: row.agent,
        model: row.model,
        provider: row.provider,
      });

      // Naive: the members, then one lookup per member, awaited in turn.
      const nPlusOne = async (): Promise<Member[]> => {
        const out: Member[] = [];
        for (const m of await membersOf()) {
          const [row] = await query<Lookup>(`${lookupSql} WHERE a.id = $1`, [m.agent_id]);
          if (row === undefined) throw new Error(`agent ${m.agent_id} missing`);
          out.push(member(m.name, row));
        }
        return out;
      };
      // sluice: the members, then every member's load in the same tick → one batched lookup.
      const newLoader = () =>
        new Loader<number, Lookup>(async (ids) => {
          const rows = await query<Lookup>(`${lookupSql} WHERE a.id = ANY($1::int[])`, [ids]);
          return new Map(rows.map((r) => [r.agent_id, r]));
        });
      const batched = async (loader: Loader<number, Lookup>): Promise<Member[]> =>
        Promise.all((await membersOf()).map(async (m) => member(m.name, await loader.load(m.agent_id))));
      // The report's final fix: one JOIN over all four tables.
      const joined = async (): Promise<Member[]> =>
        (
          await query<Member>(
            `SELECT c.name AS member, a.name AS agent, m.name AS model, p.name AS provider ` +
              `FROM ${t.members} c JOIN ${t.agents} a ON a.id = c.agent_id ` +
              `JOIN ${t.models} m ON m.id = a.model_id JOIN ${t.providers} p ON p.id = m.provider_id ` +
              `WHERE c.circle_id = 1 ORDER BY c.name`,
          )
        ).map((r) => ({ member: r.member, agent: r.agent, model: r.model, provider: r.provider }));

      // Warm-up (unmeasured): every statement shape planned once, so no path pays first-use costs.
      await nPlusOne();
      await batched(newLoader());
      await joined();

      const counted = async <T>(fn: () => Promise<T>) => {
        const before = db.queries;
        const r = await timed(fn);
        return { ...r, queries: db.queries - before };
      };
      ctx.progress(1, 4, 'N+1');
      const naive = await counted(nPlusOne);
      ctx.progress(2, 4, 'Loader');
      const loader = newLoader();
      const sluice = await counted(() => batched(loader));
      ctx.progress(3, 4, 'JOIN');
      const join = await counted(joined);
      ctx.progress(4, 4, 'done');

      const expected = JSON.stringify(naive.value);
      const same = JSON.stringify(sluice.value) === expected && JSON.stringify(join.value) === expected;
      const ok =
        same &&
        naive.value.length === MEMBERS &&
        naive.queries === MEMBERS + 1 &&
        sluice.queries <= 2 &&
        loader.stats.batches === 1 &&
        loader.stats.keys === MEMBERS &&
        join.queries === 1;
      return {
        naive: { ms: round(naive.ms), queries: naive.queries, db: db.kind },
        sluice: {
          ms: round(sluice.ms),
          queries: sluice.queries,
          batchSize: loader.stats.meanBatchSize,
          joinMs: round(join.ms),
          joinQueries: join.queries,
        },
        headline: { measure: 'queries', naive: naive.queries, sluice: sluice.queries, better: 'lower' },
        invariant:
          `same ${naive.value.length} members (agent, model, provider) from all three; queries ` +
          `${naive.queries} (N+1) → ${sluice.queries} (Loader: members + ${loader.stats.batches} batch of ` +
          `${loader.stats.keys}) → ${join.queries} (JOIN) on ${db.kind}`,
        ok,
      };
    } finally {
      for (const table of [t.members, t.agents, t.models, t.providers])
        await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      await db.close();
    }
  },
};

async function setup(db: Db, t: Tables): Promise<void> {
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
  // Members of circle 1 (and of circle 2, which must not leak into the result).
  await db.query(
    `INSERT INTO ${t.members} SELECT 1 + (i > ${MEMBERS})::int, 'member-' || lpad(i::text, 2, '0'), i ` +
      `FROM generate_series(1, ${MEMBERS * 2}) i`,
  );
}

export default circleNPlusOne;
