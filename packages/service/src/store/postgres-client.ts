/**
 * The production store: a `pg` connection pool. Several service replicas may
 * share one database (migrations take an advisory lock).
 */
import { redactUrl } from "@conduit/protocol";
import pg from "pg";
import { ServiceError } from "../errors.js";
import type { SqlClient, SqlExecutor, SqlParam, SqlResult } from "./sql-client.js";

class PostgresExecutor implements SqlExecutor {
  constructor(protected readonly db: pg.Pool | pg.PoolClient) {}

  async query<T>(sql: string, params: readonly SqlParam[] = []): Promise<SqlResult<T>> {
    const result = await this.db.query(sql, params as SqlParam[]);
    return { rows: result.rows as T[] };
  }

  async exec(sql: string): Promise<void> {
    // Without parameters pg uses the simple query protocol, which runs several statements.
    await this.db.query(sql);
  }
}

class PostgresClient extends PostgresExecutor implements SqlClient {
  constructor(
    private readonly pool: pg.Pool,
    readonly description: string,
  ) {
    super(pool);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const value = await fn(new PostgresExecutor(client));
      await client.query("COMMIT");
      return value;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/** Connects to Postgres at `url` and checks that it answers. */
export async function openPostgres(url: string, maxConnections = 10): Promise<SqlClient> {
  const pool = new pg.Pool({ connectionString: url, max: maxConnections, connectionTimeoutMillis: 10_000 });
  // An idle client that loses its server emits here; without a listener it would crash the process.
  pool.on("error", () => undefined);
  try {
    await pool.query("SELECT 1");
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new ServiceError(
      "DATABASE_UNREACHABLE",
      `Cannot connect to Postgres at ${redactUrl(url)} (${(err as Error).message}); start it, create the database, or pass the right --database-url.`,
      { cause: err },
    );
  }
  return new PostgresClient(pool, `Postgres at ${redactUrl(url)}`);
}
