/**
 * Conduit through the whole path: SDK Executor → REST → service → RabbitMQ →
 * MEP → UEP → HighThroughputEngine worker → back to the Executor, durable, on
 * PGlite and on Postgres (a throwaway database on the local server). Each
 * repetition starts a fresh service and endpoint (the real CLIs, via
 * scripts/local-stack.mjs) whose UEP runs exactly 2 workers
 * (max_workers_per_node: 2, one block).
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { portOpen, runEndpointCli, startLocalStack, startService, waitFor } from "../../scripts/local-stack.mjs";
import { pssKiB, rssKiB, treeMem, treePids } from "../proc-tree.mjs";
import { msSince, percentile } from "../stats.mjs";

const POSTGRES_ADMIN_URL = process.env.CONDUIT_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const ENDPOINT = "bench";

export const name = "Conduit";
export const versionsNote =
  "HighThroughputEngine, 2 workers in one block, durable; each repetition a fresh service and endpoint; (d) is the endpoint tree: MEP, UEP, its block manager and 2 workers; (e') is three `node -e 0` spawns one after another, taken right after (e)";

async function postgresReachable() {
  if (!(await portOpen(Number(new URL(POSTGRES_ADMIN_URL).port || 5432), new URL(POSTGRES_ADMIN_URL).hostname)))
    return false;
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** A fresh `conduit_bench_<random>` database; dispose drops it. */
export async function createDatabase() {
  const dbName = `conduit_bench_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${dbName}`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${dbName}`;
  return {
    url: url.toString(),
    async dispose() {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export async function prepare(ctx) {
  const figures = ["a", "b", "c", "d", "e"];
  const configs = [{ id: "pglite", label: "PGlite", figures, run: (sizes) => run(sizes, ctx, false) }];
  let note;
  if (await postgresReachable()) {
    configs.push({ id: "postgres", label: "Postgres", figures, run: (sizes) => run(sizes, ctx, true) });
  } else {
    note = `Postgres row skipped: nothing answers at ${new URL(POSTGRES_ADMIN_URL).host} (set CONDUIT_TEST_POSTGRES_URL)`;
  }
  return { configs, note };
}

const noop = () => null;
const sleepFor = (ms) => new Promise((resolve) => setTimeout(() => resolve(null), ms));

/**
 * The endpoint's processes: the MEP (the started CLI) and, under it, the UEP
 * with its block manager and workers; PSS with RSS beside it, and the MEP and
 * the service apart.
 */
function memoryOf(stack) {
  const mep = stack.endpoint.child.pid;
  const tree = treeMem(mep);
  const service = treeMem(stack.service.child.pid);
  return {
    d: tree.pss,
    d_rss: tree.rss,
    d_mep: pssKiB(mep) / 1024,
    d_mep_rss: rssKiB(mep) / 1024,
    d_service: service.pss,
    d_service_rss: service.rss,
  };
}

/** (e'): three `node -e 0` spawns one after another, in ms: the process-start floor of (e). */
export function spawnChainMs() {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 3; i++) {
    const r = spawnSync(process.execPath, ["-e", "0"], { stdio: "ignore" });
    if (r.status !== 0) throw new Error(`node -e 0 exited with ${r.status}`);
  }
  return msSince(t0);
}

/** Stops the stack's service and starts it again with the same arguments, store and port. */
async function restartService(stack, ctx) {
  const argv = readFileSync(`/proc/${stack.service.child.pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  const args = argv.slice(argv.indexOf("start") + 1);
  const port = Number(args[args.indexOf("--port") + 1]);
  const rest = args.filter((_, i) => i !== args.indexOf("--port") && i !== args.indexOf("--port") + 1);
  ctx.log("restarting the service ...");
  await stack.service.stop();
  return startService({ env: stack.env, port, args: rest });
}

/**
 * A fresh service (PGlite, or a throwaway Postgres database) and endpoint whose
 * UEP runs exactly 2 workers (or renders `options.template` instead of the
 * default template), with an Executor (`options.userEndpointConfig`) that has
 * run one no-op task (the function registered, the result stream open, the UEP
 * started, a worker warm). `dispose` undoes all of it.
 */
export async function startConduitBench(ctx, postgres, options = {}) {
  const userDir = mkdtempSync(join(tmpdir(), "conduit-bench-"));
  const db = postgres ? await createDatabase() : undefined;
  const previousUserDir = process.env.CONDUIT_USER_DIR;
  process.env.CONDUIT_USER_DIR = userDir;
  const bench = {
    userDir,
    stack: undefined,
    ex: undefined,
    /** The throwaway Postgres database's URL, on Postgres. */
    databaseUrl: db?.url,
    async dispose() {
      await bench.ex?.shutdown().catch(() => {});
      await bench.stack?.stop();
      await db?.dispose().catch((err) => ctx.log(`dropping the bench database failed: ${err.message}`));
      if (previousUserDir === undefined) delete process.env.CONDUIT_USER_DIR;
      else process.env.CONDUIT_USER_DIR = previousUserDir;
      rmSync(userDir, { recursive: true, force: true });
    },
  };
  try {
    const env = { ...process.env, CONDUIT_USER_DIR: userDir };
    const configured = await runEndpointCli(["configure", ENDPOINT], env);
    if (configured.code !== 0) throw new Error(`conduit-endpoint configure failed: ${configured.stderr.trim()}`);
    const templatePath = join(userDir, ENDPOINT, "user_config_template.yaml.j2");
    const template = readFileSync(templatePath, "utf8");
    if (!/max_workers_per_node: 1\b/.test(template))
      throw new Error("the default template changed; update bench/peers/conduit.mjs");
    writeFileSync(
      templatePath,
      options.template ?? template.replace(/max_workers_per_node: 1\b/, "max_workers_per_node: 2"),
    );
    bench.stack = await startLocalStack({
      userDir,
      endpointName: ENDPOINT,
      isolated: true,
      serviceArgs: db ? ["--database-url", db.url] : [],
      log: ctx.log,
    });
    const { Executor } = await import("@conduit/sdk");
    bench.ex = new Executor({
      endpointId: bench.stack.endpointId,
      userEndpointConfig: options.userEndpointConfig ?? { worker_init: "" },
    });
    await bench.ex.submit(noop).result();
    return bench;
  } catch (error) {
    await bench.dispose();
    throw error;
  }
}

async function run(sizes, ctx, postgres) {
  const bench = await startConduitBench(ctx, postgres);
  const { stack } = bench;
  let ex = bench.ex;
  let restarted;
  try {
    const mep = stack.endpoint.child.pid;
    // MEP, UEP, the block manager and its 2 workers.
    await waitFor("the UEP and its 2 workers running", () => treePids(mep).length >= 5, 30_000);
    // Settled: the warm-up task's garbage and the start's transient pages are gone or shared.
    await sleepFor(2000);
    const result = memoryOf(stack);
    if (process.env.BENCH_DEBUG) {
      for (const pid of treePids(mep))
        ctx.log(
          `endpoint tree: ${pid} ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").slice(0, 150)}`,
        );
    }

    for (let i = 0; i < sizes.warmup; i++) await ex.submit(noop).result();
    const samples = [];
    for (let i = 0; i < sizes.roundTrips; i++) {
      const t0 = process.hrtime.bigint();
      await ex.submit(noop).result();
      samples.push(msSince(t0));
    }
    samples.sort((x, y) => x - y);
    result.a_p50 = percentile(samples, 50);
    result.a_p99 = percentile(samples, 99);

    let t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: sizes.burst }, () => ex.submit(noop).result()));
    result.b = sizes.burst / (msSince(t0) / 1000);

    await ex.submit(sleepFor, sizes.sleepMs).result(); // registers the function outside the clock
    t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: sizes.sleepTasks }, () => ex.submit(sleepFor, sizes.sleepMs).result()));
    result.c = sizes.sleepTasks / (msSince(t0) / 1000);

    // (e): a userEndpointConfig never seen makes the MEP start a new UEP.
    ex.userEndpointConfig = { worker_init: "", bench_cold_start: randomUUID() };
    t0 = process.hrtime.bigint();
    await ex.submit(noop).result();
    result.e = msSince(t0);
    result.e_chain = spawnChainMs();
    await ex.shutdown().catch(() => {});
    ex = undefined;
    bench.ex = undefined;
    // The service again after a restart on the same store: PGlite's first start (initdb) leaves pages a restart does not.
    restarted = await restartService(stack, ctx).catch((err) => {
      ctx.log(`restarting the service for its memory failed: ${err.message}`);
      return undefined;
    });
    if (restarted) {
      await sleepFor(2000);
      const mem = treeMem(restarted.child.pid);
      result.d_service_restarted = mem.pss;
      result.d_service_restarted_rss = mem.rss;
    }
    return result;
  } finally {
    await ex?.shutdown().catch(() => {});
    await restarted?.stop().catch(() => {});
    bench.ex = undefined;
    await bench.dispose();
  }
}
