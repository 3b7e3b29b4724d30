/**
 * Messages between the service's thread and the PGlite worker thread
 * (pglite-worker.ts). Each request carries an id its reply repeats; `tx` names
 * an open transaction, whose statements the worker runs inside it.
 */
import type { PGliteSettings } from "./pglite-direct.js";
import type { SqlParam } from "./sql-client.js";

export interface PGliteWorkerData {
  dataDir: string;
  settings: PGliteSettings;
}

/**
 * A statement's parameter as it crosses to the worker: a big text arrives as
 * its UTF-8 bytes, moved (not copied) across the threads.
 */
export type ThreadParam = SqlParam | Uint8Array;

/** Text parameters at least this long, written `$n::text` in their statement, cross as UTF-8 bytes (see {@link ThreadParam}). */
export const BYTES_PARAM_MIN = 64 * 1024;

export type ToPGliteWorker =
  | { id: number; op: "query"; sql: string; params: readonly ThreadParam[]; tx?: number }
  | { id: number; op: "exec"; sql: string; tx?: number }
  | { id: number; op: "begin" }
  | { id: number; op: "end"; tx: number; commit: boolean }
  | { id: number; op: "close" };

/** An error as it crossed the thread: its name, message, stack and the database's fields (code, detail, constraint…). */
export interface SentError {
  name: string;
  message: string;
  stack?: string;
  fields: Record<string, string | number>;
}

export type FromPGliteWorker =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: SentError }
  | { id: 0; ready: true; description: string }
  | { id: 0; ready: false; error: SentError };

/** The fields of a Postgres error worth keeping (pg-protocol's DatabaseError, as PGlite and pg raise it). */
const ERROR_FIELDS = [
  "code",
  "severity",
  "detail",
  "hint",
  "position",
  "internalPosition",
  "internalQuery",
  "where",
  "schema",
  "table",
  "column",
  "dataType",
  "constraint",
  "file",
  "line",
  "routine",
] as const;

export function sendError(err: unknown): SentError {
  if (!(err instanceof Error)) return { name: "Error", message: String(err), fields: {} };
  const fields: Record<string, string | number> = {};
  const source = err as unknown as Record<string, unknown>;
  for (const key of ERROR_FIELDS) {
    const value = source[key];
    if (typeof value === "string" || typeof value === "number") fields[key] = value;
  }
  return { name: err.name, message: err.message, stack: err.stack, fields };
}

/**
 * A Postgres error raised in the PGlite worker, with the same fields as pg's
 * DatabaseError (`code` is the SQLSTATE, e.g. "23505"), so callers test
 * `err.code` alike on both backends.
 */
export class PGliteDatabaseError extends Error {
  readonly code?: string;
  readonly severity?: string;
  readonly detail?: string;
  readonly hint?: string;
  readonly constraint?: string;
  readonly table?: string;
  readonly column?: string;
  readonly schema?: string;
  /** The statement that failed. */
  readonly query?: string;

  constructor(sent: SentError, sql: string | undefined) {
    super(sent.message);
    this.name = sent.name;
    Object.assign(this, sent.fields);
    if (sql !== undefined) this.query = sql;
  }
}
