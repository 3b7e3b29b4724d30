/**
 * Figure (b) alone, for profiling the endpoint and the SDK (issue 23): a local
 * stack (service on PGlite or Postgres, one endpoint with the default
 * HighThroughputEngine), a warm-up, then BENCH_BURST no-op tasks submitted at
 * once through one Executor, timed from the first submit to the last result.
 * `node bench/burst.mjs [pglite|postgres]`; BENCH_BURST (default 10000),
 * BENCH_REPEAT (default 1). Besides tasks/s it prints the CPU time (user +
 * system, from /proc/PID/stat) each process of the path spent per task during
 * the burst: on a shared machine that moves far less with the load than wall
 * time does. BENCH_PROFILE_SIGNAL=1 sends SIGUSR2 to every process below this
 * one before and after the burst, for a preload that toggles a CPU profile
 * (`node --cpu-prof` is not allowed in NODE_OPTIONS). One JSON line per repetition.
 */
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { startLocalStack } from "../scripts/local-stack.mjs";

const store = process.argv[2] ?? "postgres";
const burst = Number(process.env.BENCH_BURST ?? 10_000);
const repeat = Number(process.env.BENCH_REPEAT ?? 1);
const ADMIN = process.env.CONDUIT_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

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

const userDir = mkdtempSync(join(tmpdir(), "conduit-bench-burst-"));
process.env.CONDUIT_USER_DIR = userDir;
const db = store === "postgres" ? await database() : undefined;
const stack = await startLocalStack({
  userDir,
  endpointName: "bench-burst",
  isolated: true,
  serviceArgs: db ? ["--database-url", db.url] : [],
  log: (line) => process.stderr.write(`${line}\n`),
});
const { Executor } = await import("@conduit/sdk");
const ex = new Executor({ endpointId: stack.endpointId, userEndpointConfig: { worker_init: "" } });
const noop = () => null;
/** Every process below this one (pids), depth first. */
function descendants() {
  const pids = [];
  const walk = (pid) => {
    let out = "";
    try {
      out = execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" });
    } catch {}
    for (const child of out
      .split("\n")
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0)) {
      pids.push(child);
      walk(child);
    }
  };
  walk(process.pid);
  return pids;
}

/** CPU ms (user + system) of each process below this one, by a short role name. */
function cpuByRole() {
  const roles = {};
  for (const pid of descendants()) {
    let stat;
    let cmd;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
    const role = cmd.includes("conduit-service")
      ? "service"
      : cmd.includes("conduit-endpoint")
        ? "MEP"
        : cmd.startsWith("conduit UEP")
          ? "UEP"
          : cmd.includes("block-manager")
            ? "block manager"
            : cmd.includes("process-worker")
              ? "workers"
              : undefined;
    if (role) roles[role] = (roles[role] ?? 0) + ms;
  }
  return roles;
}

/** With BENCH_PROFILE_SIGNAL=1, every process below this one gets SIGUSR2 before and after the burst (see bench/README.md). */
function signalTree() {
  if (process.env.BENCH_PROFILE_SIGNAL !== "1") return;
  for (const pid of [process.pid, ...descendants()]) {
    try {
      process.kill(pid, "SIGUSR2");
    } catch {}
  }
}
try {
  await Promise.all(Array.from({ length: 200 }, () => ex.submit(noop).result()));
  for (let r = 0; r < repeat; r++) {
    const load = loadavg()[0];
    signalTree();
    const cpu0 = cpuByRole();
    // This process (the Executor) is read apart, right around the burst: finding the others spawns `ps`.
    const self0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: burst }, () => ex.submit(noop).result()));
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const self = process.cpuUsage(self0);
    const cpu1 = cpuByRole();
    cpu0.Executor = 0;
    cpu1.Executor = (self.user + self.system) / 1000;
    signalTree();
    const cpuUsPerTask = {};
    for (const [role, ms] of Object.entries(cpu1))
      cpuUsPerTask[role] = Math.round(((ms - (cpu0[role] ?? 0)) * 1000) / burst);
    cpuUsPerTask.total = Object.values(cpuUsPerTask).reduce((a, b) => a + b, 0);
    const tasksPerSecond = Math.round(burst / s);
    console.log(JSON.stringify({ store, burst, tasksPerSecond, cpuUsPerTask, load: [load, loadavg()[0]] }));
  }
} finally {
  await ex.shutdown();
  await stack.stop();
  await db?.dispose();
  rmSync(userDir, { recursive: true, force: true });
}
