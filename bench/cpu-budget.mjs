/**
 * Figure (b)'s budget: the CPU time each process spends per task while a burst
 * of no-op tasks is in flight, for Conduit (SDK, service, RabbitMQ, MEP, UEP,
 * block manager, workers), BullMQ (client, Redis, worker) and the durable
 * two-hop RabbitMQ echo. On a machine with C cores nothing can run faster than
 * C s of CPU a second allow: the sum per task gives each system's CPU ceiling,
 * and the µs per task a goal leaves.
 *
 *   node bench/cpu-budget.mjs          # CPU_TASKS (10,000), CPU_STORE (pglite|postgres), CPU_PEERS
 *
 * CPU is read from /proc/PID/stat (all threads, 10 ms ticks) before and after
 * the burst, after a warm-up: 200 tasks one at a time, then a burst of a fifth
 * as many (a first burst costs more than the next). Beside it, what the broker counted on the
 * system's own vhost over the burst, for Conduit (its statistics lag up to 5 s, so they are
 * read 11 s after the warm-up and after the burst): messages published,
 * delivered, acked and confirmed per task; each process's write system calls
 * (/proc/PID/io) and, on Postgres, the commits per task. With bench/service-cpu-prof.cjs
 * preloaded (NODE_OPTIONS="--require ./bench/service-cpu-prof.cjs" and
 * CONDUIT_SERVICE_CPU_PROF=DIR), the service is CPU-profiled over the burst;
 * `node bench/cpu-profile-top.mjs` summarises the profile. The broker and Redis are this machine's
 * shared servers: anything else they serve meanwhile counts too, so run it on
 * a quiet machine.
 */
import { execFileSync } from "node:child_process";
import { availableParallelism } from "node:os";
import pg from "pg";
import { createVhost, vhostMessageStats } from "../scripts/local-stack.mjs";
import { openBullmq } from "./peers/bullmq.mjs";
import { startConduitBench } from "./peers/conduit.mjs";
import { echo } from "./peers/floor.mjs";
import { cpuMs, endpointRole, treePids, writeCalls } from "./proc-tree.mjs";
import { msSince } from "./stats.mjs";

const TASKS = Number(process.env.CPU_TASKS ?? 10_000);
const WARMUP = 200;
/** A first burst costs more than the next ones (JIT, the engine's prefetch and batches settling): one is run first. */
const WARMUP_BURST = Math.max(500, Math.round(TASKS / 5));
const STORE = process.env.CPU_STORE ?? "pglite";
const PEERS = (process.env.CPU_PEERS ?? "conduit,bullmq,floor").split(",");
const CORES = availableParallelism();
const log = (line) => console.error(`[cpu-budget] ${line}`);
const ctx = { log };

function pidsOf(name) {
  try {
    return execFileSync("pgrep", ["-x", name], { encoding: "utf8" }).trim().split("\n").map(Number);
  } catch {
    return [];
  }
}

/**
 * CPU ms and write system calls of each named group of processes, and of this
 * process as `own` (its CPU from process.cpuUsage(), read first: finding the
 * others spawns pgrep).
 */
function snapshot(groups, own) {
  const out = { [own]: { cpu: process.cpuUsage(), writes: writeCalls(process.pid) } };
  for (const [name, pids] of Object.entries(groups())) {
    out[name] = {
      cpu: pids.reduce((sum, pid) => sum + cpuMs(pid), 0),
      writes: pids.reduce((sum, pid) => sum + writeCalls(pid), 0),
    };
  }
  return out;
}

function spent(before, after, own) {
  const rows = {};
  for (const name of Object.keys(after)) {
    const writes = after[name].writes - (before[name]?.writes ?? 0);
    if (name === own) {
      const d = process.cpuUsage(before[own].cpu);
      rows[name] = { cpu: (d.user + d.system) / 1000, writes };
    } else rows[name] = { cpu: after[name].cpu - (before[name]?.cpu ?? 0), writes };
  }
  return rows;
}

/** Transactions committed in a Postgres database so far (its statistics are flushed within a second). */
async function commits(databaseUrl) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const name = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
    const { rows } = await client.query("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", [name]);
    return Number(rows[0]?.xact_commit ?? 0);
  } finally {
    await client.end();
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** The management API's statistics interval (5 s by default) and a margin. */
const STATS_SETTLE_MS = 11_000;

/**
 * Runs `burst` between two snapshots of `groups` (re-read each time: pids may
 * change); with `amqpUrl`, two readings of the vhost's message counts, with
 * `databaseUrl` of the database's commits; `profiled` pids get SIGUSR2 before
 * the burst (CONDUIT_SERVICE_CPU_PROF: bench/service-cpu-prof.cjs is preloaded).
 */
async function measure(system, own, groups, burst, { amqpUrl, databaseUrl, profiled = [] } = {}) {
  if (amqpUrl) await sleep(STATS_SETTLE_MS);
  const messagesBefore = amqpUrl ? await vhostMessageStats(amqpUrl) : undefined;
  const commitsBefore = databaseUrl ? await commits(databaseUrl) : undefined;
  if (process.env.CONDUIT_SERVICE_CPU_PROF) for (const pid of profiled) process.kill(pid, "SIGUSR2");
  const before = snapshot(groups, own);
  const t0 = process.hrtime.bigint();
  await burst();
  const wallMs = msSince(t0);
  const rows = spent(before, snapshot(groups, own), own);
  let messages;
  if (messagesBefore) {
    await sleep(STATS_SETTLE_MS);
    const after = await vhostMessageStats(amqpUrl);
    messages = Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] - messagesBefore[k]) / TASKS]));
  }
  const commitsPerTask = databaseUrl ? ((await commits(databaseUrl)) - commitsBefore) / TASKS : undefined;
  return { system, rows, wallMs, messages, commitsPerTask };
}

async function conduit() {
  const bench = await startConduitBench(ctx, STORE === "postgres");
  try {
    const { ex, stack } = bench;
    const noop = () => null;
    for (let i = 0; i < WARMUP; i++) await ex.submit(noop).result();
    await Promise.all(Array.from({ length: WARMUP_BURST }, () => ex.submit(noop).result()));
    const mep = stack.endpoint.child.pid;
    const groups = () => {
      const tree = treePids(mep);
      const byRole = (role) => tree.filter((pid) => endpointRole(pid) === role);
      return {
        service: treePids(stack.service.child.pid),
        RabbitMQ: pidsOf("beam.smp"),
        MEP: byRole("MEP"),
        UEP: byRole("UEP"),
        "block manager": byRole("block manager"),
        workers: byRole("worker"),
      };
    };
    return await measure(
      `Conduit (${STORE})`,
      "SDK (Executor)",
      groups,
      () => Promise.all(Array.from({ length: TASKS }, () => ex.submit(noop).result())),
      { amqpUrl: stack.amqpUrl, databaseUrl: bench.databaseUrl, profiled: [stack.service.child.pid] },
    );
  } finally {
    await bench.dispose();
  }
}

async function bullmq() {
  const bull = await openBullmq(50, TASKS);
  try {
    for (let i = 0; i < WARMUP; i++) await bull.submit("noop", {});
    await Promise.all(Array.from({ length: WARMUP_BURST }, () => bull.submit("noop", {})));
    const groups = () => ({ Redis: pidsOf("redis-server"), worker: treePids(bull.worker.pid) });
    return await measure("BullMQ (add(), concurrency 50)", "client (Queue, QueueEvents)", groups, () =>
      Promise.all(Array.from({ length: TASKS }, () => bull.submit("noop", {}))),
    );
  } finally {
    await bull.close();
  }
}

async function floor() {
  const vhost = await createVhost();
  try {
    await echo(vhost.url, true, { warmup: WARMUP, roundTrips: 0, burst: WARMUP_BURST });
    const groups = () => ({ RabbitMQ: pidsOf("beam.smp") });
    return await measure(
      "durable floor (two-hop echo)",
      "client and echo server",
      groups,
      // No message counts: the echo closes its channels at once, and the broker forgets their statistics.
      () => echo(vhost.url, true, { warmup: 0, roundTrips: 0, burst: TASKS }),
    );
  } finally {
    await vhost.dispose();
  }
}

const load = () => execFileSync("cat", ["/proc/loadavg"], { encoding: "utf8" }).split(" ").slice(0, 3).join(" ");
const fmt = (n, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

const runners = { conduit, bullmq, floor };
const results = [];
const loadBefore = load();
for (const peer of PEERS) {
  if (!runners[peer]) throw new Error(`CPU_PEERS names ${peer}; choose from ${Object.keys(runners).join(", ")}.`);
  log(`${peer}: ${WARMUP} warm-up tasks one at a time and ${WARMUP_BURST} at once, then ${TASKS} at once ...`);
  results.push(await runners[peer]());
}

console.log(`\n${TASKS} no-op tasks in flight, ${CORES} cores, load average ${loadBefore} before, ${load()} after\n`);
console.log("| system | process | CPU ms | µs per task | share | write calls per task |");
console.log("| --- | --- | --- | --- | --- | --- |");
const summary = [];
for (const { system, rows, wallMs } of results) {
  const total = Object.values(rows).reduce((a, b) => a + b.cpu, 0);
  for (const [name, { cpu: ms, writes }] of Object.entries(rows))
    console.log(
      `| ${system} | ${name} | ${fmt(ms)} | ${fmt((ms * 1000) / TASKS)} | ${fmt((100 * ms) / total)} % | ${fmt(writes / TASKS, 3)} |`,
    );
  const perTask = (total * 1000) / TASKS;
  summary.push({ system, perTask, measured: TASKS / (wallMs / 1000), ceiling: (CORES * 1e6) / perTask });
}
console.log("\n| system | CPU µs per task | CPU ceiling on these cores (tasks/s) | measured (tasks/s) |");
console.log("| --- | --- | --- | --- |");
for (const s of summary) console.log(`| ${s.system} | ${fmt(s.perTask)} | ${fmt(s.ceiling)} | ${fmt(s.measured)} |`);
console.log("\n| system | messages published per task | delivered | acked | confirmed |");
console.log("| --- | --- | --- | --- | --- |");
for (const { system, messages } of results) {
  if (!messages) continue;
  const m = (k) => fmt(messages[k], 3);
  console.log(`| ${system} | ${m("publish")} | ${m("deliver")} | ${m("ack")} | ${m("confirm")} |`);
}
for (const { system, commitsPerTask } of results) {
  if (commitsPerTask !== undefined)
    console.log(
      `\n${system}: ${fmt(commitsPerTask, 3)} Postgres commits per task (${fmt(1 / commitsPerTask, 1)} tasks per commit).`,
    );
}
const bull = summary.find((s) => s.system.startsWith("BullMQ"));
if (bull) {
  const goal = 1.5 * bull.measured;
  console.log(
    `\nIssue 23's (b) goal, 1.5 × BullMQ's ${fmt(bull.measured)} tasks/s = ${fmt(goal)} tasks/s, leaves ${fmt((CORES * 1e6) / goal)} µs of CPU per task for the whole path on ${CORES} cores.`,
  );
}
console.log(`CPU_JSON ${JSON.stringify({ tasks: TASKS, cores: CORES, store: STORE, results })}`);
