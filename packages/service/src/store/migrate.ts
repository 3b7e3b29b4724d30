/**
 * Applies `packages/service/migrations/NNNN_name.sql` in order, each in one
 * transaction, recording it in `conduit_migrations`. Every transaction first
 * takes an advisory lock, so replicas starting together apply each file once.
 */
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { SqlClient } from "./sql-client.js";

/** Arbitrary, fixed: the advisory lock all Conduit services agree on for migrations. */
const MIGRATION_LOCK = 7_316_422_001;

/** packages/service/migrations, from src/store or dist/store alike. */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = /^(\d{4})_[\w-]+\.sql$/.exec(file);
    if (!match) throw new Error(`Migration file ${file} is not named NNNN_name.sql; rename it.`);
    migrations.push({ id: Number(match[1]), name: file, sql: await readFile(`${dir}/${file}`, "utf8") });
  }
  return migrations;
}

/** Applies the migrations not applied yet; returns the names it applied. */
export async function migrate(client: SqlClient, migrations?: Migration[]): Promise<string[]> {
  const all = migrations ?? (await loadMigrations());
  const applied: string[] = [];
  for (const migration of all) {
    const ran = await client.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      await tx.exec(`CREATE TABLE IF NOT EXISTS conduit_migrations (
        id integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await tx.query<{ id: number }>("SELECT id FROM conduit_migrations WHERE id = $1", [
        migration.id,
      ]);
      if (rows.length > 0) return false;
      await tx.exec(migration.sql);
      await tx.query("INSERT INTO conduit_migrations (id, name) VALUES ($1, $2)", [migration.id, migration.name]);
      return true;
    });
    if (ran) applied.push(migration.name);
  }
  return applied;
}
