/**
 * The smallest SQL surface the store needs, so PGlite (embedded) and Postgres
 * (`pg` pool) are interchangeable. Parameters are `$1…$n`; pass JSON as text
 * and cast it (`$1::jsonb`): both drivers then send the same thing.
 */

/** A value bound to a `$n` placeholder. */
export type SqlParam = string | number | boolean | null | Date;

export interface SqlResult<T> {
  rows: T[];
}

/** Runs statements, on its own or inside a transaction. */
export interface SqlExecutor {
  /** One statement, with parameters. */
  query<T>(sql: string, params?: readonly SqlParam[]): Promise<SqlResult<T>>;
  /** A script of several statements, without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface SqlClient extends SqlExecutor {
  /** Runs `fn` in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** For logs: which backend and where, without secrets. */
  readonly description: string;
}
