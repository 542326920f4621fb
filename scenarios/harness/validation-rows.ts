import type { Db } from './db.js';

/** One validation result, as report 003's engine stores it. */
export interface ValidationRow {
  readonly id: number;
  readonly rule: string;
  readonly path: string;
  readonly passed: boolean;
}

/** Creates the results table (`id` unique when `primaryKey`). */
export async function createValidationTable(db: Db, table: string, primaryKey: boolean): Promise<void> {
  await db.query(
    `CREATE TABLE ${table} (id int ${primaryKey ? 'PRIMARY KEY' : 'NOT NULL'}, rule text NOT NULL, ` +
      'path text NOT NULL, passed boolean NOT NULL)',
  );
}

/** One INSERT of one row: what the naive side does per event. */
export async function insertValidationRow(db: Db, table: string, row: ValidationRow): Promise<void> {
  await db.query(`INSERT INTO ${table} (id, rule, path, passed) VALUES ($1, $2, $3, $4)`, [
    row.id,
    row.rule,
    row.path,
    row.passed,
  ]);
}

/** One INSERT of many rows (`unnest` of one array per column): what a batch costs. */
export async function insertValidationRows(
  db: Db,
  table: string,
  rows: readonly ValidationRow[],
): Promise<void> {
  await db.query(
    `INSERT INTO ${table} (id, rule, path, passed) ` +
      `SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::boolean[])`,
    [rows.map((r) => r.id), rows.map((r) => r.rule), rows.map((r) => r.path), rows.map((r) => r.passed)],
  );
}
