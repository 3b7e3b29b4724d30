/**
 * The PGlite worker thread (pglite-client.ts) behind SqlClient: what crossing
 * a thread could break. Transactions stay pinned (no other statement runs
 * inside or between theirs), database errors keep their Postgres fields, the
 * event loop runs while a statement does, and close ends the thread with the
 * data on disk. The store's behaviour itself is store.conformance.test.ts's.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPGlite } from "../src/store/pglite-client.js";
import { openPostgres } from "../src/store/postgres-client.js";
import type { SqlClient } from "../src/store/sql-client.js";
import { createPostgresDatabase, createTempDir, type Throwaway } from "./helpers/databases.js";

const TABLE = "CREATE TABLE items (id integer PRIMARY KEY, label text NOT NULL, at timestamptz)";

let dir: Throwaway<string>;
let client: SqlClient;

beforeAll(async () => {
  dir = await createTempDir();
  client = await openPGlite(dir.value);
  await client.exec(TABLE);
});

afterAll(async () => {
  await client?.close();
  await dir?.dispose();
});

describe("PGlite in a worker thread", () => {
  it("runs no other statement inside or between a transaction's statements", async () => {
    await client.exec("TRUNCATE items");
    const events: string[] = [];
    let others: Promise<unknown> | undefined;
    await client.transaction(async (tx) => {
      events.push("A begins");
      await tx.query("INSERT INTO items (id, label) VALUES (1, 'a')");
      // Issued while A is open; each has 20 of A's round trips to slip into.
      others = Promise.all([
        client.transaction(async (other) => {
          events.push("B begins");
          const { rows } = await other.query<{ n: number }>("SELECT count(*)::int AS n FROM items");
          events.push(`B sees ${rows[0]?.n}`);
        }),
        client.query<{ n: number }>("SELECT count(*)::int AS n FROM items").then(({ rows }) => {
          events.push(`query sees ${rows[0]?.n}`);
        }),
      ]);
      for (let id = 2; id <= 21; id++) await tx.query("INSERT INTO items (id, label) VALUES ($1, 'a')", [id]);
      events.push("A commits");
    });
    await others;
    expect(events.slice(0, 2)).toEqual(["A begins", "A commits"]);
    expect(events.slice(2).sort()).toEqual(["B begins", "B sees 21", "query sees 21"]);
  });

  it("rolls back a transaction whose statement failed, and goes on serving", async () => {
    await client.exec("TRUNCATE items");
    await expect(
      client.transaction(async (tx) => {
        await tx.query("INSERT INTO items (id, label) VALUES (1, 'kept?')");
        await tx.query("INSERT INTO items (id, label) VALUES (2, NULL)");
      }),
    ).rejects.toMatchObject({ code: "23502" });
    expect((await client.query("SELECT id FROM items")).rows).toEqual([]);
    await client.transaction((tx) => tx.query("INSERT INTO items (id, label) VALUES (3, 'c')"));
    expect((await client.query("SELECT id FROM items")).rows).toEqual([{ id: 3 }]);
  });

  it("passes parameters and rows of every SqlParam type across the thread", async () => {
    await client.exec("TRUNCATE items");
    const at = new Date("2026-01-02T03:04:05.678Z");
    const { rows } = await client.query<{ id: number; label: string; at: Date; flag: boolean; none: null }>(
      "INSERT INTO items (id, label, at) VALUES ($1, $2, $3) RETURNING id, label, at, $4::boolean AS flag, $5::text AS none",
      [7, "seven", at, true, null],
    );
    expect(rows).toEqual([{ id: 7, label: "seven", at, flag: true, none: null }]);
    expect(rows[0]?.at).toBeInstanceOf(Date);
  });

  it("keeps the event loop running while a long statement runs", async () => {
    let turns = 0;
    let running = true;
    const spin = () => {
      turns++;
      if (running) setImmediate(spin);
    };
    setImmediate(spin);
    await client.query("SELECT count(*) FROM generate_series(1, 300000)");
    running = false;
    // In the service's thread, PGlite's WebAssembly would hold the loop for the whole statement: a turn or two.
    expect(turns).toBeGreaterThan(100);
  });

  it("ends its thread on close, refuses statements after, and reopens its data directory with the rows", async () => {
    await client.exec("TRUNCATE items");
    await client.query("INSERT INTO items (id, label) VALUES (1, 'kept')");
    const first = client;
    await first.close();
    await first.close();
    await expect(first.query("SELECT 1")).rejects.toThrow(/is closed/);
    client = await openPGlite(dir.value);
    expect((await client.query("SELECT label FROM items")).rows).toEqual([{ label: "kept" }]);
  });

  it("says which folder it cannot open and what to do", async () => {
    const own = await createTempDir();
    try {
      // `pgdata` a file, not a folder.
      await writeFile(join(own.value, "pgdata"), "not a folder");
      await expect(openPGlite(own.value)).rejects.toThrow(
        new RegExp(`Cannot open the PGlite store in ${own.value} .*--database-url`),
      );
    } finally {
      await own.dispose();
    }
  });
});

describe.each([
  { name: "PGlite", open: async () => ({ client, dispose: async () => undefined }) },
  {
    name: "Postgres",
    open: async () => {
      const db = await createPostgresDatabase();
      const pg = await openPostgres(db.value);
      await pg.exec(TABLE);
      return {
        client: pg,
        dispose: async () => {
          await pg.close();
          await db.dispose();
        },
      };
    },
  },
])("A database error on $name", ({ open }) => {
  it("carries its SQLSTATE, constraint and table, as pg's DatabaseError does", async () => {
    const opened = await open();
    try {
      await opened.client.exec("TRUNCATE items");
      await opened.client.query("INSERT INTO items (id, label) VALUES (1, 'a')");
      const err = await opened.client
        .transaction((tx) => tx.query("INSERT INTO items (id, label) VALUES (1, 'b')"))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).toMatchObject({
        code: "23505",
        constraint: "items_pkey",
        table: "items",
        message: 'duplicate key value violates unique constraint "items_pkey"',
      });
      await expect(opened.client.query("SELEC 1")).rejects.toMatchObject({ code: "42601" });
    } finally {
      await opened.dispose();
    }
  });
});
