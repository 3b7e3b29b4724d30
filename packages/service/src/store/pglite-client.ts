/**
 * The embedded store: PGlite (Postgres compiled to WebAssembly) in this
 * process, its files in `<data dir>/pgdata`. PGlite admits one process per
 * data directory; the service takes a lock file before it opens one.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { PGlite, type Transaction } from "@electric-sql/pglite";
import type { SqlClient, SqlExecutor, SqlParam, SqlResult } from "./sql-client.js";

class PGliteExecutor implements SqlExecutor {
  constructor(protected readonly db: PGlite | Transaction) {}

  async query<T>(sql: string, params: readonly SqlParam[] = []): Promise<SqlResult<T>> {
    const result = await this.db.query<T>(sql, params as SqlParam[]);
    return { rows: result.rows };
  }

  async exec(sql: string): Promise<void> {
    await this.db.exec(sql);
  }
}

class PGliteClient extends PGliteExecutor implements SqlClient {
  constructor(
    private readonly pglite: PGlite,
    readonly description: string,
  ) {
    super(pglite);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.pglite.transaction((tx) => fn(new PGliteExecutor(tx)));
  }

  close(): Promise<void> {
    return this.pglite.close();
  }
}

/** Opens (creating on first use) the PGlite database under `dataDir`. */
export async function openPGlite(dataDir: string): Promise<SqlClient> {
  const pgdata = join(dataDir, "pgdata");
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  const db = await PGlite.create(pgdata);
  return new PGliteClient(db, `PGlite at ${pgdata}`);
}
