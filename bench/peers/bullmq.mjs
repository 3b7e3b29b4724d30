/**
 * BullMQ on the local Redis: one worker process (bullmq-worker.mjs) with
 * concurrency 2 (all figures) and 50 ((a), (b), (d)); `add()` per job, and
 * `addBulk` as its own row. QueueEvents, with `streams.events.maxLen` raised
 * so 10,000 completions stay in the stream, is reading before the first job.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { portOpen, stopProcess, waitFor } from "../../scripts/local-stack.mjs";
import { treeMem } from "../proc-tree.mjs";
import { msSince, percentile } from "../stats.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const PORT = Number(process.env.BENCH_REDIS_PORT ?? 6379);
const connection = { host: "127.0.0.1", port: PORT };

export const name = "BullMQ";
export const versionsNote = "";

export async function prepare(ctx) {
  if (!(await portOpen(PORT))) {
    if (spawnSync("sh", ["-c", "command -v redis-server"]).status !== 0) {
      return { skip: "redis-server is not installed (apt-get install redis-server)" };
    }
    ctx.log("starting redis-server --daemonize yes ...");
    spawnSync("redis-server", ["--daemonize", "yes", "--port", String(PORT), "--bind", "127.0.0.1"], {
      stdio: "ignore",
    });
    await waitFor("Redis accepting connections", () => portOpen(PORT), 20_000);
  }
  const version = createRequire(import.meta.url)("bullmq/package.json").version;
  const redis = spawnSync("redis-cli", ["-p", String(PORT), "info", "server"], { encoding: "utf8" }).stdout ?? "";
  const save = spawnSync("redis-cli", ["-p", String(PORT), "config", "get", "save"], { encoding: "utf8" }).stdout ?? "";
  const aof =
    spawnSync("redis-cli", ["-p", String(PORT), "config", "get", "appendonly"], { encoding: "utf8" }).stdout ?? "";
  const keepsNothing = save.split("\n")[1]?.trim() === "" && aof.split("\n")[1]?.trim() === "no";
  const note =
    `bullmq ${version}, Redis ${/redis_version:(\S+)/.exec(redis)?.[1] ?? "?"} on 127.0.0.1:${PORT}` +
    (keepsNothing
      ? ": this Redis keeps nothing on disk (no RDB snapshots, no AOF), unlike the durable Conduit, floor and Celery rows"
      : `: this Redis persists (save "${save.split("\n")[1]?.trim()}", appendonly ${aof.split("\n")[1]?.trim()})`);
  return {
    note,
    configs: [
      { id: "c2", label: "add(), concurrency 2", figures: ["a", "b", "c", "d"], run: (s) => run(s, 2, false) },
      { id: "c50", label: "add(), concurrency 50", figures: ["a", "b", "d"], run: (s) => run(s, 50, false) },
      { id: "bulk50", label: "addBulk, concurrency 50", figures: ["b"], bulk: true, run: (s) => run(s, 50, true) },
    ],
  };
}

async function startWorker(queueName, concurrency) {
  const child = spawn(process.execPath, [join(here, "bullmq-worker.mjs"), queueName, String(concurrency)], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, BENCH_REDIS_PORT: String(PORT) },
  });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d) => {
    out += d;
  });
  await waitFor(
    "the BullMQ worker printing ready",
    () => {
      if (child.exitCode !== null) throw new Error(`the BullMQ worker exited with ${child.exitCode}`);
      return out.includes("ready");
    },
    30_000,
  );
  return child;
}

/**
 * A fresh queue with its QueueEvents (room for `burst` jobs' events) and one
 * worker process of `concurrency`;
 * `submit(name, data)` resolves when the job completed, `done(jobId)` waits for
 * a job added otherwise. `close` stops the worker and removes the queue.
 */
export async function openBullmq(concurrency, burst) {
  const { Queue, QueueEvents } = await import("bullmq");
  const queueName = `bench-${randomUUID()}`;
  const queue = new Queue(queueName, {
    connection,
    streams: { events: { maxLen: Math.max(100_000, burst * 4) } },
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
  });
  const events = new QueueEvents(queueName, { connection });
  await events.waitUntilReady();
  const waiting = new Map();
  events.on("completed", ({ jobId }) => {
    const resolve = waiting.get(jobId);
    waiting.delete(jobId);
    resolve?.();
  });
  events.on("failed", ({ jobId, failedReason }) => {
    console.error(`[bench] BullMQ job ${jobId} failed: ${failedReason}`);
  });
  let n = 0;
  // Job ids of our own: the waiter is in place before the job exists.
  const done = (jobId) => new Promise((resolve) => waiting.set(jobId, resolve));
  const nextId = () => `j${++n}`;
  const submit = (jobName, data) => {
    const jobId = nextId();
    const finished = done(jobId);
    return queue.add(jobName, data, { jobId }).then(() => finished);
  };
  const worker = await startWorker(queueName, concurrency).catch(async (error) => {
    await events.close();
    await queue.close();
    throw error;
  });
  return {
    queue,
    worker,
    submit,
    done,
    nextId,
    async close() {
      await stopProcess(worker);
      await events.close();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    },
  };
}

async function run(sizes, concurrency, bulk) {
  const bull = await openBullmq(concurrency, sizes.burst);
  const { queue, worker, submit, done, nextId } = bull;
  try {
    await submit("noop", {}); // warms the worker
    const mem = treeMem(worker.pid);
    const result = { d: mem.pss, d_rss: mem.rss };
    if (bulk) {
      const jobs = Array.from({ length: sizes.burst }, () => ({
        name: "noop",
        data: {},
        opts: { jobId: nextId() },
      }));
      const finished = jobs.map((j) => done(j.opts.jobId));
      const t0 = process.hrtime.bigint();
      await queue.addBulk(jobs);
      await Promise.all(finished);
      return { b: sizes.burst / (msSince(t0) / 1000) };
    }
    for (let i = 0; i < sizes.warmup; i++) await submit("noop", {});
    const samples = [];
    for (let i = 0; i < sizes.roundTrips; i++) {
      const t0 = process.hrtime.bigint();
      await submit("noop", {});
      samples.push(msSince(t0));
    }
    samples.sort((x, y) => x - y);
    result.a_p50 = percentile(samples, 50);
    result.a_p99 = percentile(samples, 99);
    let t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: sizes.burst }, () => submit("noop", {})));
    result.b = sizes.burst / (msSince(t0) / 1000);
    if (concurrency === 2) {
      t0 = process.hrtime.bigint();
      await Promise.all(Array.from({ length: sizes.sleepTasks }, () => submit("sleep", { ms: sizes.sleepMs })));
      result.c = sizes.sleepTasks / (msSince(t0) / 1000);
    }
    return result;
  } finally {
    await bull.close();
  }
}
