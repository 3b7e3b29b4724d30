#!/usr/bin/env node
/**
 * `npm run bench:scale` (issue 23, "Scale"): how cost grows with work, apart
 * from `npm run bench`. One service on PGlite (the default setup) in a vhost
 * of its own, endpoints on ThreadPoolEngine (2 threads, to keep the process
 * count sane on 2 cores), and four curves:
 *
 *   executors  throughput and service RSS with 1, 10 and 50 concurrent Executors on one endpoint
 *   endpoints  throughput and service RSS with 1, 10 and 50 endpoints on the service (an Executor each)
 *   backlog    100,000 tasks queued while the endpoint is stopped (service RSS while they wait),
 *              then drained after `start` (drain rate)
 *   payload    results of 1 KiB, 100 KiB and 5 MiB: MB/s of results, against the broker's own
 *              figure for that size (amqplib, durable queue, persistent messages, confirms, one hop)
 *
 * Time-bounded: every phase stops early at its share of SCALE_BUDGET_S (default 840 s: the whole
 * run < 15 min) and says so in its row. Knobs: SCALE_FACTOR (default 1; e.g. 0.1 scales every task
 * count down tenfold), SCALE_BUDGET_S, SCALE_PHASES (a subset of executors,endpoints,backlog,payload),
 * SCALE_MAX_ENDPOINTS (default 50), SCALE_STORE (pglite, the default, or postgres: a throwaway
 * database on CONDUIT_TEST_POSTGRES_URL's server). Prints a Markdown table on stdout (progress on stderr) and writes
 * bench/results/scale-<date>-<host>.json (or to BENCH_RESULTS_DIR).
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, hostname, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import amqp from "amqplib";
import { runEndpointCli, startEndpoint, startLocalStack } from "../scripts/local-stack.mjs";
import { createDatabase } from "./peers/conduit.mjs";
import { treeMem } from "./proc-tree.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const factor = Number(process.env.SCALE_FACTOR ?? 1);
const budgetS = Number(process.env.SCALE_BUDGET_S ?? 840);
const maxEndpoints = Number(process.env.SCALE_MAX_ENDPOINTS ?? 50);
const store = process.env.SCALE_STORE ?? "pglite";
if (store !== "pglite" && store !== "postgres") {
  console.error(`SCALE_STORE must be pglite or postgres; got ${store}.`);
  process.exit(2);
}
const PHASES = ["executors", "endpoints", "backlog", "payload"];
const phases = (process.env.SCALE_PHASES ?? PHASES.join(","))
  .split(",")
  .map((p) => p.trim())
  .filter(Boolean);
for (const p of phases) {
  if (!PHASES.includes(p)) {
    console.error(`Unknown phase ${p} in SCALE_PHASES; use some of ${PHASES.join(", ")}.`);
    process.exit(2);
  }
}
if (!(factor > 0) || !(budgetS > 0)) {
  console.error("SCALE_FACTOR and SCALE_BUDGET_S must be positive numbers.");
  process.exit(2);
}
/** Each phase's share of the budget. */
const SHARE = { executors: 0.2, endpoints: 0.3, backlog: 0.35, payload: 0.15 };
const n = (full) => Math.max(1, Math.round(full * factor));
const log = (line) => console.error(`[scale] ${line}`);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const TEMPLATE = `engine:
   type: ThreadPoolEngine
   max_workers: 2
idle_heartbeats_soft: 10
idle_heartbeats_hard: 5760
`;

/** Samples the service tree's RSS and PSS every 250 ms until stopped; the peak and the last sample. */
function memorySampler(pid) {
  let peak = 0;
  let last = { rss: 0, pss: 0 };
  const timer = setInterval(() => {
    last = treeMem(pid);
    peak = Math.max(peak, last.rss);
  }, 250);
  return {
    stop() {
      clearInterval(timer);
      last = treeMem(pid);
      return { peakRss: Math.max(peak, last.rss), rss: last.rss, pss: last.pss };
    },
  };
}

/** Futures settle, or the deadline passes: how many settled, and when the last did. */
async function settleBy(futures, deadline) {
  let settled = 0;
  let lastAt = performance.now();
  const all = Promise.all(
    futures.map((f) =>
      f.result().then(
        () => {
          settled++;
          lastAt = performance.now();
        },
        () => {
          settled++;
          lastAt = performance.now();
        },
      ),
    ),
  );
  await Promise.race([all, sleep(Math.max(0, deadline - performance.now()))]);
  return { settled, lastAt, complete: settled === futures.length };
}

const noop = () => null;
const payloadOf = (bytes) => "x".repeat(bytes);

/**
 * One row of the executors or endpoints curve: `total` no-op tasks spread over
 * `executors`, measured until they settle or the deadline passes, with the
 * service's memory meanwhile; the executors are shut down after.
 */
async function measureNoops(stack, curve, executors, total, deadline) {
  try {
    // Starts each endpoint's UEP and opens the result streams, outside the clock.
    await Promise.all(executors.map((ex) => ex.submit(noop).result()));
    const mem = memorySampler(stack.service.child.pid);
    const per = Math.ceil(total / executors.length);
    const t0 = performance.now();
    const futures = executors.flatMap((ex) => Array.from({ length: per }, () => ex.submit(noop)));
    const { settled, lastAt, complete } = await settleBy(futures, deadline);
    const m = mem.stop();
    const row = {
      curve,
      x: executors.length,
      tasks: settled,
      ofTasks: futures.length,
      rate: settled / ((lastAt - t0) / 1000),
      serviceRss: m.rss,
      servicePeakRss: m.peakRss,
      servicePss: m.pss,
      load: load(),
      note: complete ? "" : "stopped at the phase budget",
    };
    log(`${curve} ${executors.length}: ${JSON.stringify(row)}`);
    return row;
  } finally {
    await Promise.all(executors.map((ex) => ex.shutdown({ wait: false, cancelFutures: true }).catch(() => {})));
  }
}

async function phaseExecutors(stack, deadline) {
  const { Executor } = await import("@conduit/sdk");
  const rows = [];
  const total = n(3000);
  for (const count of [1, 10, 50]) {
    if (performance.now() > deadline) {
      rows.push({ curve: "executors", x: count, note: "skipped: phase budget spent" });
      continue;
    }
    const executors = Array.from({ length: count }, () => new Executor({ endpointId: stack.endpointId }));
    rows.push(await measureNoops(stack, "executors", executors, total, deadline));
  }
  return rows;
}

async function phaseEndpoints(stack, userDir, deadline) {
  const { Executor } = await import("@conduit/sdk");
  const rows = [];
  const ids = [stack.endpointId];
  const started = [];
  const total = n(2000);
  try {
    for (const count of [1, 10, 50].filter((c) => c <= maxEndpoints)) {
      while (ids.length < count && performance.now() < deadline) {
        // Started a few at a time: each MEP's start is CPU-bound on this machine.
        const batch = Array.from(
          { length: Math.min(5, count - ids.length) },
          () => `scale-${randomUUID().slice(0, 8)}`,
        );
        const eps = await Promise.all(
          batch.map(async (name) => {
            const configured = await runEndpointCli(["configure", name], stack.env);
            if (configured.code !== 0) throw new Error(`configure ${name} failed: ${configured.stderr.trim()}`);
            writeFileSync(join(userDir, name, "user_config_template.yaml.j2"), TEMPLATE);
            return startEndpoint({ env: stack.env, name });
          }),
        );
        for (const ep of eps) {
          started.push(ep);
          ids.push(ep.endpointId);
        }
      }
      if (ids.length < count) {
        rows.push({ curve: "endpoints", x: count, note: `skipped: ${ids.length} started within the phase budget` });
        break;
      }
      const executors = ids.slice(0, count).map((endpointId) => new Executor({ endpointId }));
      rows.push(await measureNoops(stack, "endpoints", executors, total, deadline));
    }
  } finally {
    await Promise.all(started.map((ep) => ep.stop().catch(() => {})));
  }
  return rows;
}

async function phaseBacklog(stack, deadline) {
  const { Client, Executor } = await import("@conduit/sdk");
  const total = n(100_000);
  let accepted = 0;
  class CountingClient extends Client {
    async submit(id, request) {
      const response = await super.submit(id, request);
      accepted += response.task_ids.length;
      return response;
    }
  }
  const ex = new Executor({ endpointId: stack.endpointId, batchSize: 512, client: new CountingClient() });
  const row = { curve: "backlog", x: total };
  try {
    await ex.submit(noop).result(); // the UEP is up and the result stream open
    accepted = 0;
    log("stopping the endpoint ...");
    await stack.endpoint.stop();
    const before = treeMem(stack.service.child.pid);
    const mem = memorySampler(stack.service.child.pid);
    const submitDeadline = performance.now() + (deadline - performance.now()) * 0.4;
    const futures = [];
    const t0 = performance.now();
    // In chunks, so a slow machine stops submitting at its share of the budget.
    while (futures.length < total && performance.now() < submitDeadline) {
      const chunk = Math.min(5000, total - futures.length);
      for (let i = 0; i < chunk; i++) futures.push(ex.submit(noop));
      while (accepted < futures.length && performance.now() < submitDeadline + 30_000) await sleep(50);
    }
    row.submitRate = accepted / ((performance.now() - t0) / 1000);
    row.tasks = accepted;
    // Waiting: the service holds nothing per queued task.
    await sleep(5000);
    const waiting = mem.stop();
    Object.assign(row, {
      serviceRssBefore: before.rss,
      serviceRssWaiting: waiting.rss,
      servicePeakRssSubmitting: waiting.peakRss,
      servicePssWaiting: waiting.pss,
    });
    log(`backlog: ${accepted} tasks queued; starting the endpoint ...`);
    const mem2 = memorySampler(stack.service.child.pid);
    const t1 = performance.now();
    const endpoint = await startEndpoint({ env: stack.env, name: stack.endpointName });
    stack.endpoint = endpoint;
    const { settled, lastAt, complete } = await settleBy(futures, deadline);
    const draining = mem2.stop();
    Object.assign(row, {
      drained: settled,
      rate: settled / ((lastAt - t1) / 1000),
      servicePeakRssDraining: draining.peakRss,
      serviceRss: draining.rss,
      load: load(),
      note: complete ? "" : `${futures.length - settled} not drained within the phase budget`,
    });
    if (accepted < total)
      row.note = `${row.note ? `${row.note}; ` : ""}${accepted} of ${total} submitted within budget`;
    log(`backlog: ${JSON.stringify(row)}`);
  } finally {
    await ex.shutdown({ wait: false, cancelFutures: true }).catch(() => {});
  }
  return [row];
}

/** The broker's own figure: one hop, durable queue, persistent messages, publisher confirms, consumer acks. */
async function brokerMBps(url, bytes, count) {
  const conn = await amqp.connect(url, { noDelay: true });
  try {
    const pub = await conn.createConfirmChannel();
    const sub = await conn.createChannel();
    await sub.prefetch(100);
    const queue = `scale.${randomUUID()}`;
    await pub.assertQueue(queue, { durable: true });
    const body = Buffer.alloc(bytes, 120);
    let got = 0;
    let done;
    const finished = new Promise((r) => {
      done = r;
    });
    await sub.consume(queue, (msg) => {
      if (!msg) return;
      sub.ack(msg);
      if (++got === count) done();
    });
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      if (!pub.sendToQueue(queue, body, { persistent: true })) await new Promise((r) => pub.once("drain", r));
    }
    await pub.waitForConfirms();
    await finished;
    const s = (performance.now() - t0) / 1000;
    await pub.deleteQueue(queue);
    return (bytes * count) / 1e6 / s;
  } finally {
    await conn.close();
  }
}

async function phasePayload(stack, vhostUrl, deadline) {
  const { Executor } = await import("@conduit/sdk");
  const rows = [];
  const ex = new Executor({ endpointId: stack.endpointId });
  try {
    await ex.submit(payloadOf, 1).result();
    for (const [label, bytes, count] of [
      ["1 KiB", 1024, n(1000)],
      ["100 KiB", 100 * 1024, n(200)],
      ["5 MiB", 5 * 1024 * 1024, n(20)],
    ]) {
      if (performance.now() > deadline) {
        rows.push({ curve: "payload", x: label, note: "skipped: phase budget spent" });
        continue;
      }
      const mem = memorySampler(stack.service.child.pid);
      const t0 = performance.now();
      const futures = Array.from({ length: count }, () => ex.submit(payloadOf, bytes));
      const { settled, lastAt, complete } = await settleBy(futures, deadline);
      const m = mem.stop();
      const mbps = (settled * bytes) / 1e6 / ((lastAt - t0) / 1000);
      const broker = await brokerMBps(vhostUrl, bytes, count);
      rows.push({
        curve: "payload",
        x: label,
        tasks: settled,
        ofTasks: count,
        rate: settled / ((lastAt - t0) / 1000),
        mbps,
        brokerMbps: broker,
        servicePeakRss: m.peakRss,
        serviceRss: m.rss,
        load: load(),
        note: complete ? "" : "stopped at the phase budget",
      });
      log(`payload ${label}: ${JSON.stringify(rows.at(-1))}`);
    }
  } finally {
    await ex.shutdown({ wait: false, cancelFutures: true }).catch(() => {});
  }
  return rows;
}

// ---------------------------------------------------------------- run

const machine = {
  host: hostname(),
  cpus: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.versions.node,
  loadBefore: load(),
};
const runStart = performance.now();
const userDir = mkdtempSync(join(tmpdir(), "conduit-scale-"));
const previous = process.env.CONDUIT_USER_DIR;
process.env.CONDUIT_USER_DIR = userDir;
const rows = [];
let stack;
let db;
try {
  const env = { ...process.env, CONDUIT_USER_DIR: userDir };
  const configured = await runEndpointCli(["configure", "scale"], env);
  if (configured.code !== 0) throw new Error(`conduit-endpoint configure failed: ${configured.stderr.trim()}`);
  writeFileSync(join(userDir, "scale", "user_config_template.yaml.j2"), TEMPLATE);
  db = store === "postgres" ? await createDatabase() : undefined;
  stack = await startLocalStack({
    userDir,
    endpointName: "scale",
    isolated: true,
    serviceArgs: db ? ["--database-url", db.url] : [],
    log,
  });
  stack.endpointName = "scale";
  const vhostUrl = /--amqp-url (\S+)/.exec(
    readFileSync(`/proc/${stack.service.child.pid}/cmdline`, "utf8").replaceAll("\0", " "),
  )?.[1];
  const budgetEnd = runStart + budgetS * 1000;
  let phaseStart = performance.now();
  for (const phase of PHASES.filter((p) => phases.includes(p))) {
    // Each phase gets its share of what is left, weighted over the phases still to run.
    const left = PHASES.filter((p) => phases.includes(p) && PHASES.indexOf(p) >= PHASES.indexOf(phase));
    const share = SHARE[phase] / left.reduce((s, p) => s + SHARE[p], 0);
    const deadline = phaseStart + (budgetEnd - phaseStart) * share;
    log(`phase ${phase} (budget ${((deadline - phaseStart) / 1000).toFixed(0)} s, load ${load()}) ...`);
    try {
      if (phase === "executors") rows.push(...(await phaseExecutors(stack, deadline)));
      if (phase === "endpoints") rows.push(...(await phaseEndpoints(stack, userDir, deadline)));
      if (phase === "backlog") rows.push(...(await phaseBacklog(stack, deadline)));
      if (phase === "payload") rows.push(...(await phasePayload(stack, vhostUrl, deadline)));
    } catch (err) {
      rows.push({ curve: phase, x: "–", note: `failed: ${err instanceof Error ? err.message : String(err)}` });
      log(`phase ${phase} failed: ${err instanceof Error ? err.stack : err}`);
    }
    phaseStart = performance.now();
  }
} finally {
  await stack?.stop().catch(() => {});
  await db?.dispose().catch(() => {});
  if (previous === undefined) delete process.env.CONDUIT_USER_DIR;
  else process.env.CONDUIT_USER_DIR = previous;
  rmSync(userDir, { recursive: true, force: true });
}
machine.loadAfter = load();
const elapsedS = (performance.now() - runStart) / 1000;

const f0 = (v) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(v < 10 ? 1 : 0) : "–");
const f1 = (v) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(1) : "–");
const lines = [];
const out = (l = "") => lines.push(l);
out(`## bench:scale (${new Date().toISOString()}, SCALE_FACTOR ${factor}, ${elapsedS.toFixed(0)} s)`);
out();
out(
  `Machine: ${machine.host}, ${machine.cpus}, ${machine.memoryGiB} GiB, Node ${machine.node}; ` +
    `load average ${machine.loadBefore} before, ${machine.loadAfter} after. Service on ${store === "pglite" ? "PGlite" : "Postgres"}, ThreadPoolEngine (2 threads) per endpoint.`,
);
out();
out(
  "| curve | x | tasks | tasks/s | service RSS after, MiB | service peak RSS, MiB | MB/s (broker's own) | load | note |",
);
out("|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  if (r.curve === "backlog" && r.tasks !== undefined) {
    out(
      `| backlog: submit while stopped | ${r.x} | ${r.tasks} | ${f0(r.submitRate)} | ${f1(r.serviceRssBefore)} → ${f1(r.serviceRssWaiting)} waiting | ${f1(r.servicePeakRssSubmitting)} | – | | |`,
    );
    out(
      `| backlog: drain after start | ${r.x} | ${r.drained} | ${f0(r.rate)} | ${f1(r.serviceRss)} | ${f1(r.servicePeakRssDraining)} | – | ${r.load} | ${r.note ?? ""} |`,
    );
    continue;
  }
  const mb = r.mbps === undefined ? "–" : `${f1(r.mbps)} (${f1(r.brokerMbps)}; ${(r.mbps / r.brokerMbps).toFixed(2)}×)`;
  out(
    `| ${r.curve} | ${r.x} | ${r.tasks ?? "–"}${r.ofTasks && r.ofTasks !== r.tasks ? ` of ${r.ofTasks}` : ""} | ${f0(r.rate)} | ${f1(r.serviceRss)} | ${f1(r.servicePeakRss)} | ${mb} | ${r.load ?? ""} | ${r.note ?? ""} |`,
  );
}
const file = join(
  process.env.BENCH_RESULTS_DIR ?? join(here, "results"),
  `scale-${new Date().toISOString().slice(0, 10)}-${machine.host}.json`,
);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), factor, budgetS, machine, rows }, null, 2)}\n`);
out();
out(`Wrote ${file}`);
console.log(lines.join("\n"));
process.exit(0);
