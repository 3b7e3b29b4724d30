/**
 * Two `conduit-service` replicas, started at once on one fresh Postgres
 * database and one RabbitMQ vhost: the tasks are submitted through the first
 * and their final states read through the second, which is killed with
 * SIGKILL mid-run (and started again). Both replicas consume the results
 * queue: what the killed one held unacked goes back to the other. No task may
 * be lost or reach the SDK twice.
 */
import { RESULTS_QUEUE } from "@conduit/protocol";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadMigrations } from "../../packages/service/src/store/migrate.js";
import { createPostgresDatabase, type Throwaway } from "../../packages/service/test/helpers/databases.js";
import { waitFor } from "../../scripts/local-stack.mjs";
import { type ChaosStack, formatReports, replicaKill, runFault, startChaosStack } from "./harness.js";

/** Consumers of `queue`, from the shared node's management API (guest, as the local stack uses). */
async function consumersOf(amqpUrl: string, queue: string): Promise<number> {
  const vhost = new URL(amqpUrl).pathname.slice(1) || "%2F";
  const response = await fetch(`http://127.0.0.1:15672/api/queues/${vhost}/${encodeURIComponent(queue)}`, {
    headers: { authorization: `Basic ${Buffer.from("guest:guest").toString("base64")}` },
  });
  if (!response.ok) throw new Error(`the management API answered ${response.status} for queue ${queue}`);
  return ((await response.json()) as { consumers: number }).consumers;
}

let database: Throwaway<string> | undefined;
let stack: ChaosStack | undefined;
beforeAll(async () => {
  database = await createPostgresDatabase();
  stack = await startChaosStack({ replicas: 2, serviceArgs: ["--database-url", database.value] });
}, 120_000);
afterAll(async () => {
  await stack?.dispose();
  await database?.dispose();
});

it("two replicas migrating one new database at once apply each migration once", async () => {
  const client = new pg.Client({ connectionString: database?.value });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: number }>("SELECT id FROM conduit_migrations ORDER BY id");
    expect(rows.map((r) => r.id)).toEqual((await loadMigrations()).map((m) => m.id));
  } finally {
    await client.end();
  }
});

it("submitted through one replica, read through the other, which is killed with SIGKILL: none lost or twice", {
  timeout: 90_000,
}, async () => {
  if (!stack) throw new Error("the stack did not start");
  expect(stack.replicas.map((r) => r.url)).toHaveLength(2);
  // Both replicas consume the results queue, so the killed one holds some results when it dies.
  // The management API's queue figures lag the broker by a few seconds: wait for both consumers to show.
  const amqpUrl = stack.amqpUrl;
  await waitFor(
    "both replicas consuming the results queue",
    async () => (await consumersOf(amqpUrl, RESULTS_QUEUE)) === 2,
    30_000,
  );
  const report = await runFault(stack, replicaKill(), { tasks: 200, faultAfter: 30, timeoutMs: 60_000 });
  console.log(formatReports([report]));
  expect(report.lost, formatReports([report])).toBe(0);
  expect(report.twice, formatReports([report])).toBe(0);
  expect(report.failedWithoutCause, formatReports([report])).toBe(0);
  expect(report.mismatched, formatReports([report])).toBe(0);
  expect(report.succeeded + report.failed).toBe(200);
  expect(report.missed).toBeUndefined();
});
