import { randomBytes } from 'node:crypto';

/** A row as returned by the driver. */
export type Row = Record<string, unknown>;

/**
 * The database surface scenarios and integration tests use: one `query` that counts itself, so
 * a test can assert "21 queries → 1", not just the result.
 */
export interface Db {
  /** Runs one statement with `$1`-style parameters. Counts as one query. */
  query<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<{ rows: R[] }>;
  /** Statements run so far through `query` (take differences to count a workload). */
  readonly queries: number;
  /** `'pglite'` (embedded, in-process) or `'postgres'` (a real server through `pg`). */
  readonly kind: 'pglite' | 'postgres';
  /** Closes the pool or the embedded database. */
  close(): Promise<void>;
}

/** Options of {@link openDb}. */
export interface OpenDbOptions {
  /**
   * Postgres connection string; without one, an in-memory PGlite database is used.
   * @default process.env.DATABASE_URL
   */
  readonly url?: string | undefined;
  /**
   * Connections in the `pg.Pool` (real Postgres only; PGlite has one).
   * @default 10
   */
  readonly poolSize?: number;
  /**
   * PGlite only: reuse one embedded database per process (opening one costs seconds of WASM
   * start-up on a loaded machine). `close()` then leaves it open; {@link closeSharedDb} closes it.
   * Tables are per-run unique ({@link uniqueTable}), so users do not see each other's rows.
   * @default false
   */
  readonly shared?: boolean;
}

type Lite = { query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>; close(): Promise<void> };
let sharedLite: Promise<Lite> | undefined;

async function newLite(): Promise<Lite> {
  const { PGlite } = await import('@electric-sql/pglite');
  const lite = new PGlite();
  await lite.waitReady;
  return lite;
}

/** Closes the shared PGlite of `openDb({ shared: true })`, if one was opened. */
export async function closeSharedDb(): Promise<void> {
  const lite = sharedLite;
  sharedLite = undefined;
  if (lite !== undefined) await (await lite.catch(() => undefined))?.close();
}

/**
 * Opens a query-counting database: PGlite (`@electric-sql/pglite`, in-process, no server) by
 * default, or a `pg.Pool` when `DATABASE_URL` (or `url`) is set. Drivers are imported lazily, so
 * neither is loaded unless used.
 *
 * @example
 * ```ts
 * const db = await openDb();
 * const before = db.queries;
 * await db.query('SELECT * FROM users WHERE id = ANY($1::int[])', [[1, 2, 3]]);
 * console.log(db.queries - before); // 1
 * await db.close();
 * ```
 */
export async function openDb(options: OpenDbOptions = {}): Promise<Db> {
  const url = 'url' in options ? options.url : process.env['DATABASE_URL'];
  if (url !== undefined && url !== '') {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10 });
    // An idle client's error (server restart) must not crash the process; the next query fails.
    pool.on('error', () => undefined);
    return counting(
      'postgres',
      (sql, params) => pool.query(sql, params as unknown[]),
      () => pool.end(),
    );
  }
  if (options.shared === true) {
    sharedLite ??= newLite();
    const lite = await sharedLite;
    return counting(
      'pglite',
      (sql, params) => lite.query(sql, params as unknown[]),
      async () => undefined,
    );
  }
  const lite = await newLite();
  return counting(
    'pglite',
    (sql, params) => lite.query(sql, params as unknown[]),
    () => lite.close(),
  );
}

function counting(
  kind: Db['kind'],
  run: (sql: string, params: readonly unknown[] | undefined) => Promise<{ rows: unknown[] }>,
  close: () => Promise<void>,
): Db {
  let queries = 0;
  return {
    kind,
    get queries() {
      return queries;
    },
    async query<R extends Row = Row>(sql: string, params?: readonly unknown[]) {
      queries++;
      const result = await run(sql, params);
      return { rows: result.rows as R[] };
    },
    close,
  };
}

/**
 * A table name no concurrent test or scenario run will pick: `<prefix>_<pid>_<random>`.
 * Create it, use it, drop it.
 */
export function uniqueTable(prefix: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix))
    throw new TypeError(`Expected a lower-case SQL identifier, got ${prefix}`);
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** Rows, distinct ids and the sum of ids in `table`. */
export async function contents(
  db: Db,
  table: string,
): Promise<{ count: number; distinct: number; sum: number }> {
  const { rows } = await db.query<{ n: number; d: number; s: number }>(
    `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, coalesce(sum(id), 0)::int AS s FROM ${table}`,
  );
  const row = rows[0];
  return { count: row?.n ?? 0, distinct: row?.d ?? 0, sum: row?.s ?? 0 };
}
