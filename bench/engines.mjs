#!/usr/bin/env node
/**
 * `npm run bench:engines` (issue 19, "Done means"): the engines themselves,
 * without the service or the broker, as a UEP drives them.
 *   1. HighThroughputEngine (one LocalProvider block, TLS as by default) vs
 *      ProcessPoolEngine, with the same number of workers (the CPU count), on
 *      10,000 no-op tasks and on 1,000 tasks sleeping 50 ms: throughput, and
 *      per-task overhead = (wall time × workers − tasks × task time) ÷ tasks,
 *      i.e. the worker time each task costs beyond its own work.
 *   2. One Slurm block (a real single-node Slurm, test/infra/slurm-up.sh):
 *      from the first task's submit (the engine then submits the block with
 *      sbatch) to its result, then the per-task overhead of 1,000 no-op tasks
 *      on that block. Skipped, with the reason printed, when Slurm is not
 *      installed (or BENCH_SLURM=0).
 * Each engine is started and warmed up (one task per worker) before the clock
 * starts. Knobs: BENCH_QUICK=1 (1/10 of the tasks), BENCH_ENGINE_WORKERS.
 * Prints a Markdown table, the ratios, and the JSON of the figures on the last line.
 */
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const { createEngine } = await import(new URL("packages/endpoint/dist/engines/registry.js", `file://${ROOT}`).href);

const quick = process.env.BENCH_QUICK === "1";
const WORKERS = Number(process.env.BENCH_ENGINE_WORKERS ?? cpus().length);
const NOOP_TASKS = quick ? 1000 : 10_000;
const SLEEP_TASKS = quick ? 100 : 1000;
const SLEEP_MS = 50;
const SLURM_TASKS = quick ? 100 : 1000;
const log = (line) => console.error(`[bench:engines] ${line}`);
const quiet = { debug() {}, info() {}, warn() {}, error: (m) => log(`engine error: ${m}`) };

const NOOP = "() => null";
const SLEEP = `async () => { await new Promise((r) => setTimeout(r, ${SLEEP_MS})); return null; }`;

/** A started engine and a submit that resolves with each task's result. */
async function startEngine(config, env = process.env) {
  const runDir = mkdtempSync(join(tmpdir(), "conduit-bench-engine-"));
  const waiters = new Map();
  const engine = createEngine(config);
  await engine.start({
    runDir,
    log: quiet,
    env,
    onResult(result) {
      const done = waiters.get(result.taskId);
      waiters.delete(result.taskId);
      if (!result.ok) done?.reject(new Error(`${result.error.name}: ${result.error.message}`));
      else done?.resolve(result);
    },
  });
  let n = 0;
  const submit = (source) =>
    new Promise((resolve, reject) => {
      const taskId = `bench-${++n}`;
      waiters.set(taskId, { resolve, reject });
      engine.submit({
        taskId,
        functionId: source === NOOP ? "noop" : "sleep",
        function: { strategy: "conduit.SourceCode", data: source },
        args: { strategy: "conduit.JSONData", data: '{"args":[]}' },
      });
    });
  return {
    engine,
    submit,
    runDir,
    async close() {
      await engine.shutdown();
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/** Seconds to run `tasks` of `source`, all submitted at once. */
async function burst(h, source, tasks) {
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: tasks }, () => h.submit(source)));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function figures(seconds, tasks, workers, taskMs) {
  return {
    tasks,
    workers,
    seconds,
    perSecond: tasks / seconds,
    overheadMs: ((seconds * workers - (tasks * taskMs) / 1000) / tasks) * 1000,
  };
}

const ENGINES = {
  HighThroughputEngine: {
    type: "HighThroughputEngine",
    max_workers_per_node: WORKERS,
    job_status_kwargs: { strategy_period: 0.2 },
    provider: { type: "LocalProvider", init_blocks: 1, min_blocks: 1, max_blocks: 1 },
  },
  ProcessPoolEngine: { type: "ProcessPoolEngine", max_workers: WORKERS },
};

async function localEngines() {
  const results = {};
  for (const [name, config] of Object.entries(ENGINES)) {
    log(`${name}: starting with ${WORKERS} workers`);
    const h = await startEngine(config);
    try {
      await burst(h, NOOP, WORKERS * 2);
      log(`${name}: ${NOOP_TASKS} no-op tasks`);
      const noop = figures(await burst(h, NOOP, NOOP_TASKS), NOOP_TASKS, WORKERS, 0);
      log(`${name}: ${SLEEP_TASKS} × ${SLEEP_MS} ms tasks`);
      const sleep = figures(await burst(h, SLEEP, SLEEP_TASKS), SLEEP_TASKS, WORKERS, SLEEP_MS);
      results[name] = { noop, sleep };
    } finally {
      await h.close();
    }
  }
  return results;
}

function slurmInstalled() {
  for (const cmd of ["sbatch", "slurmctld", "slurmd", "munged"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${cmd} || test -x /usr/sbin/${cmd}`], { stdio: "ignore" });
    } catch {
      return `${cmd} is not installed (apt-get install slurm-wlm munge, or run .ci/run)`;
    }
  }
  return undefined;
}

async function freePorts(count) {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise((resolve) => {
          const server = createServer();
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** The single-node cluster of test/infra/slurm-up.sh on ports of its own (as packages/endpoint/test/slurm.helpers.ts). */
async function slurmBlock() {
  if (process.env.BENCH_SLURM === "0") return { skipped: "BENCH_SLURM=0" };
  const missing = slurmInstalled();
  if (missing) return { skipped: missing };
  const run = promisify(execFile);
  const dir = mkdtempSync(join(tmpdir(), "conduit-bench-slurm-"));
  chmodSync(dir, 0o755);
  const [ctld, slurmd] = await freePorts(2);
  const upEnv = { ...process.env, SLURM_CTLD_PORT: String(ctld), SLURMD_PORT: String(slurmd), SLURM_UP_FRESH: "1" };
  const infra = join(ROOT, "test", "infra");
  let h;
  try {
    log("Slurm: bringing a single-node cluster up");
    const { stdout } = await run("bash", [join(infra, "slurm-up.sh"), dir], { env: upEnv });
    const conf = /^export SLURM_CONF=(.+)$/m.exec(stdout)?.[1];
    if (!conf) return { skipped: `test/infra/slurm-up.sh printed no SLURM_CONF line: ${stdout}` };
    h = await startEngine(
      {
        type: "HighThroughputEngine",
        max_workers_per_node: WORKERS,
        job_status_kwargs: { strategy_period: 0.2 },
        provider: { type: "SlurmProvider", exclusive: false, init_blocks: 0, min_blocks: 0, max_blocks: 1 },
      },
      { ...process.env, SLURM_CONF: conf },
    );
    log("Slurm: first task (the engine submits the block)");
    const firstResult = await burst(h, NOOP, 1);
    await burst(h, NOOP, WORKERS * 2);
    log(`Slurm: ${SLURM_TASKS} no-op tasks on the block`);
    const noop = figures(await burst(h, NOOP, SLURM_TASKS), SLURM_TASKS, WORKERS, 0);
    return { firstResultSeconds: firstResult, noop };
  } catch (err) {
    return { skipped: `the Slurm run failed: ${err.stderr ?? err.message}` };
  } finally {
    await h?.close().catch(() => undefined);
    await run("bash", [join(infra, "slurm-down.sh"), dir], { env: upEnv }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

export async function runEngineBench() {
  const loadBefore = loadavg()[0].toFixed(2);
  const local = await localEngines();
  const slurm = await slurmBlock();
  const machine = {
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadBefore,
    loadAfter: loadavg()[0].toFixed(2),
  };
  const lines = [];
  const out = (line = "") => lines.push(line);
  out(
    `### Engines (${WORKERS} workers each; ${machine.cpus}, ${machine.memoryGiB} GiB, Node ${machine.node}, load ${machine.loadBefore} before, ${machine.loadAfter} after)`,
  );
  out();
  out("| engine | workload | tasks/s | per-task overhead, ms |");
  out("|---|---|---|---|");
  for (const [name, r] of Object.entries(local)) {
    out(`| ${name} | ${NOOP_TASKS} no-op | ${fmt(r.noop.perSecond)} | ${fmt(r.noop.overheadMs, 2)} |`);
    out(`| ${name} | ${SLEEP_TASKS} × ${SLEEP_MS} ms | ${fmt(r.sleep.perSecond, 1)} | ${fmt(r.sleep.overheadMs, 2)} |`);
  }
  const hte = local.HighThroughputEngine;
  const pool = local.ProcessPoolEngine;
  out();
  out(
    `HighThroughputEngine ÷ ProcessPoolEngine: no-op throughput ${fmt(hte.noop.perSecond / pool.noop.perSecond, 2)}×, ` +
      `overhead ${fmt(hte.noop.overheadMs / pool.noop.overheadMs, 2)}×; ${SLEEP_MS} ms throughput ${fmt(hte.sleep.perSecond / pool.sleep.perSecond, 2)}× ` +
      `(ceiling ${fmt((WORKERS * 1000) / SLEEP_MS)} tasks/s), overhead ${fmt(hte.sleep.overheadMs / pool.sleep.overheadMs, 2)}×.`,
  );
  out();
  if (slurm.skipped) out(`Slurm block: skipped, ${slurm.skipped}.`);
  else
    out(
      `Slurm block (SlurmProvider, single-node Slurm on this machine): submit → first result ${fmt(slurm.firstResultSeconds, 2)} s; ` +
        `then ${SLURM_TASKS} no-op tasks at ${fmt(slurm.noop.perSecond)} tasks/s, per-task overhead ${fmt(slurm.noop.overheadMs, 2)} ms ` +
        `(${fmt(slurm.noop.overheadMs / hte.noop.overheadMs, 2)}× the local block's).`,
    );
  return { lines, json: { machine, workers: WORKERS, quick, local, slurm } };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { lines, json } = await runEngineBench();
  console.log(lines.join("\n"));
  console.log(JSON.stringify(json));
  process.exit(0);
}
