/**
 * The submit and result paths alone (issue 23), for before/after comparisons
 * of the service's hot path: one no-op task at a time through an Executor,
 * timing each round trip (submit → result) and each single-task submit
 * request (the REST call, from the SDK's Client: submit → response).
 * `node bench/submit-path.mjs [pglite|postgres]`; BENCH_ROUND_TRIPS, BENCH_WARMUP.
 * Prints one JSON line: { store, n, roundTrip: {p50, p99}, submit: {p50, p99} } in ms.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { startLocalStack } from "../scripts/local-stack.mjs";

const store = process.argv[2] ?? "postgres";
const roundTrips = Number(process.env.BENCH_ROUND_TRIPS ?? 300);
const warmup = Number(process.env.BENCH_WARMUP ?? 30);
const ADMIN = process.env.CONDUIT_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

function pct(samples, p) {
  const sorted = [...samples].sort((a, b) => a - b);
  return Number(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)].toFixed(2));
}

async function database() {
  const name = `conduit_bench_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async dispose() {
      const c = new pg.Client({ connectionString: ADMIN });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

const userDir = mkdtempSync(join(tmpdir(), "conduit-bench-submit-path-"));
process.env.CONDUIT_USER_DIR = userDir;
const db = store === "postgres" ? await database() : undefined;
const stack = await startLocalStack({
  userDir,
  endpointName: "bench-submit-path",
  isolated: true,
  serviceArgs: db ? ["--database-url", db.url] : [],
  log: (line) => process.stderr.write(`${line}\n`),
});
const { Client, Executor } = await import("@conduit/sdk");
const submits = [];
class TimingClient extends Client {
  async submit(id, request) {
    const t0 = process.hrtime.bigint();
    const response = await super.submit(id, request);
    submits.push(Number(process.hrtime.bigint() - t0) / 1e6);
    return response;
  }
}
const ex = new Executor({
  endpointId: stack.endpointId,
  client: new TimingClient(),
  userEndpointConfig: { worker_init: "" },
});
const noop = () => null;
try {
  for (let i = 0; i < warmup; i++) await ex.submit(noop).result();
  submits.length = 0;
  const samples = [];
  for (let i = 0; i < roundTrips; i++) {
    const t0 = process.hrtime.bigint();
    await ex.submit(noop).result();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  console.log(
    JSON.stringify({
      store,
      n: roundTrips,
      roundTrip: { p50: pct(samples, 50), p99: pct(samples, 99) },
      submit: { p50: pct(submits, 50), p99: pct(submits, 99) },
    }),
  );
} finally {
  await ex.shutdown();
  await stack.stop();
  await db?.dispose();
  rmSync(userDir, { recursive: true, force: true });
}
