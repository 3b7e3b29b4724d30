/**
 * Figure (b) alone, for before/after comparisons of the service (issue 23):
 * BENCH_BURST (10,000) no-op tasks in flight through one Executor, BENCH_BURSTS
 * (3) times, against a local stack on `pglite` or `postgres` (2 workers, as in
 * `npm run bench`). Prints, per burst, tasks/s, the service's CPU time per task
 * (user + system, from /proc: less noisy than wall time on a shared machine)
 * and its write system calls and (on Postgres) committed transactions per task
 * (counts, which load does not blur),
 * and the load average. With bench/service-cpu-prof.cjs preloaded, the service
 * is profiled over the bursts only (it gets SIGUSR2 before the first).
 * `node bench/service-burst.mjs [pglite|postgres]`
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { runEndpointCli, startLocalStack } from "../scripts/local-stack.mjs";

const store = process.argv[2] ?? "postgres";
const burst = Number(process.env.BENCH_BURST ?? 10_000);
const bursts = Number(process.env.BENCH_BURSTS ?? 3);
const ADMIN = process.env.CONDUIT_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const ENDPOINT = "bench-service-burst";

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
    /** Transactions committed in the database so far (the stats collector lags by up to a second). */
    async commits() {
      const c = new pg.Client({ connectionString: ADMIN });
      await c.connect();
      const { rows } = await c.query("SELECT pg_stat_force_next_flush()").then(
        () => c.query("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", [name]),
        () => c.query("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", [name]),
      );
      await c.end();
      return Number(rows[0].xact_commit);
    },
    async dispose() {
      const c = new pg.Client({ connectionString: ADMIN });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** User + system CPU of a process so far, in ms (clock ticks are 10 ms here). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Write system calls (write, writev, send…) a process made so far: counts, not times, so load does not blur them. */
function writeCalls(pid) {
  return Number(/^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1]);
}

const userDir = mkdtempSync(join(tmpdir(), "conduit-bench-service-burst-"));
process.env.CONDUIT_USER_DIR = userDir;
const db = store === "postgres" ? await database() : undefined;
const env = { ...process.env, CONDUIT_USER_DIR: userDir };
const configured = await runEndpointCli(["configure", ENDPOINT], env);
if (configured.code !== 0) throw new Error(`conduit-endpoint configure failed: ${configured.stderr.trim()}`);
const templatePath = join(userDir, ENDPOINT, "user_config_template.yaml.j2");
writeFileSync(
  templatePath,
  readFileSync(templatePath, "utf8").replace(/max_workers_per_node: 1\b/, "max_workers_per_node: 2"),
);
const stack = await startLocalStack({
  userDir,
  endpointName: ENDPOINT,
  isolated: true,
  serviceArgs: db ? ["--database-url", db.url] : [],
  log: (line) => process.stderr.write(`${line}\n`),
});
const { Executor } = await import("@conduit/sdk");
const ex = new Executor({ endpointId: stack.endpointId, userEndpointConfig: { worker_init: "" } });
const noop = () => null;
const pid = stack.service.child.pid;
try {
  await Promise.all(Array.from({ length: 500 }, () => ex.submit(noop).result()));
  // Only the preload (bench/service-cpu-prof.cjs) handles it: otherwise SIGUSR2 ends the process.
  if (process.env.CONDUIT_SERVICE_CPU_PROF) process.kill(pid, "SIGUSR2");
  for (let i = 0; i < bursts; i++) {
    const load = loadavg()[0].toFixed(1);
    const cpu0 = cpuMs(pid);
    const writes0 = writeCalls(pid);
    const commits0 = await db?.commits();
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: burst }, () => ex.submit(noop).result()));
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = cpuMs(pid) - cpu0;
    const writes = writeCalls(pid) - writes0;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const commits = db ? (await db.commits()) - commits0 : undefined;
    console.log(
      JSON.stringify({
        store,
        burst,
        tasksPerS: Math.round(burst / s),
        serviceCpuUsPerTask: Math.round((cpu * 1000) / burst),
        serviceWritesPerTask: Number((writes / burst).toFixed(2)),
        ...(commits === undefined ? {} : { commitsPerTask: Number((commits / burst).toFixed(3)) }),
        load: `${load} → ${loadavg()[0].toFixed(1)}`,
      }),
    );
  }
} catch (err) {
  process.stderr.write(
    `service exit ${stack.service.child.exitCode} ${stack.service.child.signalCode}: ${stack.service.output.stderr.slice(-3000)}\n`,
  );
  throw err;
} finally {
  await ex.shutdown().catch(() => {});
  await stack.stop();
  await db?.dispose();
  rmSync(userDir, { recursive: true, force: true });
}
