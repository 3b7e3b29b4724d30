/**
 * Throwaway stores for tests: a fresh Postgres database on the shared server
 * (dropped afterwards) or a PGlite data directory in a temp folder.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

export const POSTGRES_ADMIN_URL =
  process.env.CONDUIT_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export interface Throwaway<T> {
  value: T;
  dispose(): Promise<void>;
}

/** Creates `conduit_test_<random>` and returns its URL; dispose drops it. */
export async function createPostgresDatabase(): Promise<Throwaway<string>> {
  const name = `conduit_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    value: url.toString(),
    async dispose() {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export async function createTempDir(prefix = "conduit-service-test-"): Promise<Throwaway<string>> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { value: dir, dispose: () => rm(dir, { recursive: true, force: true }) };
}
