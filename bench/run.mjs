#!/usr/bin/env node
/**
 * `npm run bench`: what a no-op task costs through the whole of Conduit
 * (SDK → REST → service → RabbitMQ → MEP/UEP → worker → back to the Executor),
 * next to its floor measured in the same run: a two-hop RabbitMQ echo in Node
 * (durable queues, persistent messages, confirms, noDelay, prefetch 200).
 * Nothing that sends one message per task over this broker can beat the floor.
 *
 * Then the Executor's submit throughput (tasks per second the service accepted,
 * SUBMIT_TASKS no-op tasks submitted at once) for each batchSize.
 *
 * Prints Markdown tables; writes bench/results/<date>-<host>.json.
 */
import { execSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, hostname, loadavg, release, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startLocalStack } from "../scripts/local-stack.mjs";
import { echoFloor } from "./rabbitmq-floor.mjs";
import { percentile } from "./stats.mjs";

const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 1000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 100);
const BURST = Number(process.env.BENCH_BURST ?? 10_000);
const SUBMIT_TASKS = Number(process.env.BENCH_SUBMIT_TASKS ?? 10_000);
const BATCH_SIZES = [1, 16, 128, 512];

const ms = (ns) => Number(ns) / 1e6;

async function conduit(stack) {
  const { Executor } = await import("@conduit/sdk");
  const ex = new Executor({ endpointId: stack.endpointId, userEndpointConfig: { worker_init: "" } });
  const noop = () => null;
  try {
    for (let i = 0; i < WARMUP; i++) await ex.submit(noop).result();
    const samples = [];
    for (let i = 0; i < ROUND_TRIPS; i++) {
      const t0 = process.hrtime.bigint();
      await ex.submit(noop).result();
      samples.push(ms(process.hrtime.bigint() - t0));
    }
    samples.sort((a, b) => a - b);
    const t0 = process.hrtime.bigint();
    const futures = [];
    for (let i = 0; i < BURST; i++) futures.push(ex.submit(noop).result());
    await Promise.all(futures);
    const seconds = ms(process.hrtime.bigint() - t0) / 1000;
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), throughput: BURST / seconds };
  } finally {
    await ex.shutdown();
  }
}

/**
 * Tasks per second the service accepted: from the first submit until the
 * responses to the submit requests named every task (a Client that counts them).
 * The tasks' results are awaited after the clock stops, so runs do not overlap.
 */
async function submitThroughput(stack, batchSize) {
  const { Client, Executor } = await import("@conduit/sdk");
  let accepted = 0;
  let allAccepted;
  const acceptedAt = new Promise((resolve) => {
    allAccepted = resolve;
  });
  class CountingClient extends Client {
    async submit(endpointId, request) {
      const response = await super.submit(endpointId, request);
      accepted += response.task_ids.length;
      if (accepted === SUBMIT_TASKS) allAccepted(process.hrtime.bigint());
      return response;
    }
  }
  const ex = new Executor({
    endpointId: stack.endpointId,
    batchSize,
    client: new CountingClient(),
    userEndpointConfig: { worker_init: "" },
  });
  const noop = () => null;
  try {
    // Registers the function and opens the result stream outside the measurement.
    await ex.submit(noop).result();
    accepted = 0;
    const t0 = process.hrtime.bigint();
    const futures = [];
    for (let i = 0; i < SUBMIT_TASKS; i++) futures.push(ex.submit(noop).result());
    const t1 = await acceptedAt;
    await Promise.all(futures);
    return SUBMIT_TASKS / (ms(t1 - t0) / 1000);
  } finally {
    await ex.shutdown();
  }
}

function versions() {
  const out = { node: process.versions.node };
  try {
    out.rabbitmq = execSync("rabbitmqctl version 2>/dev/null", { encoding: "utf8" }).trim();
  } catch {
    out.rabbitmq = "unknown";
  }
  return out;
}

const machine = {
  host: hostname(),
  cpus: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  kernel: release(),
  ...versions(),
  loadBefore: loadavg()
    .map((l) => l.toFixed(2))
    .join(" "),
};

const userDir = mkdtempSync(join(tmpdir(), "conduit-bench-"));
process.env.CONDUIT_USER_DIR = userDir;
// A vhost of its own, so a Conduit already running on this broker is neither disturbed nor measured.
const stack = await startLocalStack({
  userDir,
  endpointName: "bench",
  isolated: true,
  log: (l) => console.error(`[bench] ${l}`),
});
let floor;
let result;
const submitRates = {};
try {
  console.error("[bench] RabbitMQ two-hop echo floor ...");
  floor = await echoFloor({ roundTrips: ROUND_TRIPS, warmup: WARMUP, burst: BURST });
  console.error("[bench] Conduit end to end ...");
  result = await conduit(stack);
  for (const batchSize of BATCH_SIZES) {
    console.error(`[bench] Executor submit throughput, batchSize ${batchSize} ...`);
    submitRates[batchSize] = await submitThroughput(stack, batchSize);
  }
} finally {
  await stack.stop();
  rmSync(userDir, { recursive: true, force: true });
}
machine.loadAfter = loadavg()
  .map((l) => l.toFixed(2))
  .join(" ");

const row = (name, c, f, unit, digits = 2) =>
  `| ${name} | ${c.toFixed(digits)} ${unit} | ${f.toFixed(digits)} ${unit} | ${(c / f).toFixed(2)} |`;
console.log(`\n## Conduit vs. its RabbitMQ floor (${new Date().toISOString()})\n`);
console.log(
  `Machine: ${machine.host}, ${machine.cpus}, ${machine.memoryGiB} GiB, Linux ${machine.kernel}; Node ${machine.node}; RabbitMQ ${machine.rabbitmq}; load ${machine.loadBefore} → ${machine.loadAfter}\n`,
);
console.log("| figure | Conduit | RabbitMQ two-hop echo (durable) | Conduit ÷ floor |");
console.log("|---|---|---|---|");
console.log(row(`round trip p50 (${ROUND_TRIPS} sequential no-op tasks)`, result.p50, floor.p50, "ms", 3));
console.log(row("round trip p99", result.p99, floor.p99, "ms", 3));
console.log(row(`throughput, ${BURST} no-op tasks in flight`, result.throughput, floor.throughput, "tasks/s", 0));

console.log(`\n## Executor submit throughput (${SUBMIT_TASKS} no-op tasks submitted at once)\n`);
console.log("| batchSize | tasks/s accepted by the service |");
console.log("|---|---|");
for (const batchSize of BATCH_SIZES) console.log(`| ${batchSize} | ${submitRates[batchSize].toFixed(0)} |`);

const file = join(
  dirname(fileURLToPath(import.meta.url)),
  "results",
  `${new Date().toISOString().slice(0, 10)}-${machine.host}.json`,
);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(
  file,
  `${JSON.stringify({ machine, conduit: result, rabbitmqFloor: floor, submitThroughput: submitRates }, null, 2)}\n`,
);
console.log(`\nWrote ${file}`);
process.exit(0);
