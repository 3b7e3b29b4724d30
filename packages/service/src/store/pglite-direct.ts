/**
 * PGlite (Postgres compiled to WebAssembly) in the calling thread, its files in
 * `<data dir>/pgdata`. The service does not call this on its main thread:
 * every statement runs synchronously in WebAssembly and would block the event
 * loop. {@link openPGlite} (pglite-client.ts) runs this inside a worker thread.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { PGlite, type QueryOptions, type Transaction } from "@electric-sql/pglite";
import type { SqlClient, SqlExecutor, SqlParam, SqlResult } from "./sql-client.js";

/** Postgres's `text` type. */
const TEXT_OID = 25;

/**
 * PGlite's `text` serializer, except that UTF-8 bytes pass as they are: PGlite
 * binds them in binary format, which Postgres reads for `text` as the same text
 * (and checks as UTF-8). Its typings promise serializers return strings only.
 */
const BYTES_AS_TEXT = {
  [TEXT_OID]: (v: unknown) => (v instanceof Uint8Array ? v : v instanceof Date ? v.toISOString() : String(v)),
} as unknown as NonNullable<QueryOptions["serializers"]>;

class PGliteExecutor implements SqlExecutor {
  constructor(protected readonly db: PGlite | Transaction) {}

  /** Parameters may be UTF-8 bytes (pglite-client.ts hands big texts over so) for `text` placeholders. */
  async query<T>(sql: string, params: readonly (SqlParam | Uint8Array)[] = []): Promise<SqlResult<T>> {
    const bytes = params.some((p) => p instanceof Uint8Array);
    const result = await this.db.query<T>(sql, params as unknown[], bytes ? { serializers: BYTES_AS_TEXT } : undefined);
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

/** Postgres settings for PGlite, and whether commits are flushed to disk. */
export interface PGliteSettings {
  /**
   * Postgres's fsync. PGlite's default is off (`-F`), and Conduit keeps it:
   * PGlite's Node file system (Emscripten's NODEFS) has no fsync, so with it
   * on no flush reaches the disk either (strace shows no fsync or fdatasync
   * call), only Postgres's own bookkeeping runs. A commit is written to the
   * OS (pwrite) either way, so a killed service loses nothing committed; a
   * power cut or OS crash may. README, "Embedded store", has the figures.
   */
  fsync: boolean;
  /** `-c name=value` settings added to PGlite's start parameters. */
  settings: Readonly<Record<string, string>>;
}

/**
 * PGlite's memory is the WebAssembly heap: it grows to its high-water mark and
 * is never returned to the OS, so these bound the service's resident size.
 * - shared_buffers: Postgres's buffer cache; its default, 128 MB, is resident
 *   once touched. 8 MB holds the hot rows (open tasks, tokens, endpoints); the
 *   files stay in the OS's page cache, so a miss costs a copy, not a disk read.
 * - work_mem / maintenance_work_mem: per sort or hash, and per index build or
 *   vacuum. The service's queries sort and hash a few hundred rows at most.
 * - temp_buffers, wal_buffers: per session temporary tables (none), the WAL tail.
 * Measured in README, "Embedded store".
 */
export const PGLITE_DEFAULT_SETTINGS: PGliteSettings = {
  fsync: false,
  settings: {
    shared_buffers: "8MB",
    work_mem: "2MB",
    maintenance_work_mem: "16MB",
    temp_buffers: "1MB",
    wal_buffers: "1MB",
  },
};

/** PGlite's start parameters for `settings`: its defaults, without `-F` when fsync is on. */
export function pgliteStartParams(settings: PGliteSettings): string[] {
  const params = PGlite.defaultStartParams.filter((p) => !(settings.fsync && p === "-F"));
  for (const [name, value] of Object.entries(settings.settings)) params.push("-c", `${name}=${value}`);
  return params;
}

/** Opens (creating on first use) the PGlite database under `dataDir`, in this thread. */
export async function openPGliteInThread(
  dataDir: string,
  settings: PGliteSettings = PGLITE_DEFAULT_SETTINGS,
): Promise<SqlClient> {
  const pgdata = join(dataDir, "pgdata");
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  const db = await PGlite.create(pgdata, { startParams: pgliteStartParams(settings) });
  return new PGliteClient(db, `PGlite at ${pgdata}`);
}
