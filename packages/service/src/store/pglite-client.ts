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

/**
 * Postgres's buffer cache inside the WebAssembly heap. Its default, 128 MB, is
 * resident once touched and never returned; 32 MB holds the service's hot rows
 * (open tasks, tokens, endpoints) and the files stay in the OS's page cache.
 * Measured on a restart: 350 MiB RSS for the whole service at 128 MB, about 230 at 32.
 */
const SHARED_BUFFERS = "32MB";

/** Opens (creating on first use) the PGlite database under `dataDir`. */
export async function openPGlite(dataDir: string): Promise<SqlClient> {
  const pgdata = join(dataDir, "pgdata");
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  const db = await PGlite.create(pgdata, {
    startParams: [...PGlite.defaultStartParams, "-c", `shared_buffers=${SHARED_BUFFERS}`],
  });
  return new PGliteClient(db, `PGlite at ${pgdata}`);
}
