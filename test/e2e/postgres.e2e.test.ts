/** The same end-to-end path with the service on Postgres (--database-url) instead of PGlite. */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type E2eStack, withStack } from "./helpers.js";

const ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";
const database = `conduit_e2e_${randomUUID().replace(/-/g, "")}`;
let stack: E2eStack;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  await admin(`CREATE DATABASE ${database}`);
  stack = await withStack({
    endpointName: "on_postgres",
    serviceArgs: ["--database-url", `postgres://postgres@127.0.0.1:5432/${database}`],
  });
});
afterAll(async () => {
  await stack?.dispose();
  await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
});

it("runs tasks with the service on Postgres and keeps their state there", async () => {
  const ex = stack.executor({});
  const futures = Array.from({ length: 20 }, (_, i) => ex.submit((x: number) => x * 2, i));
  expect(await Promise.all(futures.map((f) => f.result()))).toEqual(Array.from({ length: 20 }, (_, i) => i * 2));
  const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:5432/${database}` });
  await client.connect();
  try {
    const { rows } = await client.query("SELECT state, count(*)::int AS n FROM tasks GROUP BY state");
    expect(rows).toEqual([{ state: "success", n: 20 }]);
  } finally {
    await client.end();
  }
});
