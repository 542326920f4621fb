// The database behind the example: a `pg.Pool` when DATABASE_URL is set, embedded PGlite
// (in-memory, no server) otherwise. Both answer `query(sql, params)` with `{ rows }`.

/** The little the service needs from a database. */
export interface Db {
  query<R>(sql: string, params?: readonly unknown[]): Promise<{ rows: R[] }>;
  /** Statements run so far (shown by `/stats`, so "2 queries per circle" can be seen). */
  readonly queries: number;
  /** Ends the pool (or closes PGlite). */
  close(): Promise<void>;
}

export async function openDb(url: string | undefined): Promise<Db> {
  let run: (sql: string, params: unknown[]) => Promise<{ rows: unknown[] }>;
  let close: () => Promise<void>;
  if (url !== undefined && url !== '') {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    pool.on('error', () => undefined); // an idle client's error must not crash the process
    run = (sql, params) => pool.query(sql, params);
    close = () => pool.end();
  } else {
    const { PGlite } = await import('@electric-sql/pglite');
    const lite = new PGlite();
    await lite.waitReady;
    run = (sql, params) => lite.query(sql, params);
    close = () => lite.close();
  }
  let queries = 0;
  return {
    get queries() {
      return queries;
    },
    async query<R>(sql: string, params: readonly unknown[] = []) {
      queries++;
      const { rows } = await run(sql, [...params]);
      return { rows: rows as R[] };
    },
    close,
  };
}

/**
 * Creates the tables if missing and seeds demo data: 5 models, 200 agents, 10 circles of 20.
 * Idempotent, so every start may run it.
 */
export async function migrate(db: Db): Promise<void> {
  const statements = [
    `CREATE TABLE IF NOT EXISTS models (
       id text PRIMARY KEY, provider text NOT NULL, context_window int NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS agents (
       id int PRIMARY KEY, name text NOT NULL, model_id text NOT NULL REFERENCES models (id))`,
    `CREATE TABLE IF NOT EXISTS circle_members (
       circle_id int NOT NULL, agent_id int NOT NULL REFERENCES agents (id),
       PRIMARY KEY (circle_id, agent_id))`,
    `CREATE TABLE IF NOT EXISTS audit (
       id bigserial PRIMARY KEY, request_id text NOT NULL, method text NOT NULL,
       route text NOT NULL, status int NOT NULL, ms real NOT NULL,
       at timestamptz NOT NULL DEFAULT now())`,
    `INSERT INTO models
       SELECT 'model-' || i, (ARRAY['anthropic', 'openai', 'local'])[1 + i % 3], 8192 * i
       FROM generate_series(1, 5) AS i ON CONFLICT DO NOTHING`,
    `INSERT INTO agents SELECT i, 'agent-' || i, 'model-' || (1 + i % 5)
       FROM generate_series(1, 200) AS i ON CONFLICT DO NOTHING`,
    `INSERT INTO circle_members SELECT 1 + (i - 1) / 20, i
       FROM generate_series(1, 200) AS i ON CONFLICT DO NOTHING`,
  ];
  for (const sql of statements) await db.query(sql);
}
