#!/usr/bin/env node
/**
 * `npm run bench:store`: the embedded store (PGlite) in the service's thread
 * against PGlite in its worker thread (what the service runs), and fsync off
 * against on. Prints, for each:
 *
 * - /healthz p50 / p99 (ms): a bare `node:http` /healthz in this process,
 *   probed every 5 ms by a child process, while STORE_CONCURRENCY loops
 *   insert STORE_BATCH-task submits through the Store (its real SQL);
 * - the longest event-loop delay (ms) over the same load (perf_hooks), and
 *   how many probes were answered;
 * - submits/s and commit cost (ms per single-row insert, one at a time);
 * - RSS / PSS (MiB) of a fresh process that opens the store after a restart
 *   (the data directory already made), migrates it, runs a few hundred
 *   submits and idles: the store's share of the service's idle memory.
 *
 * The first start (initdb) is timed and its RSS printed apart. Nothing is
 * asserted. Knobs: STORE_SECONDS (load per mode, default 10),
 * STORE_CONCURRENCY (default 8), STORE_BATCH (tasks per submit, default 1).
 */
import { fork } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DIST = join(ROOT, "packages/service/dist/store");
const SELF = fileURLToPath(import.meta.url);

const SECONDS = Number(process.env.STORE_SECONDS ?? 10);
const CONCURRENCY = Number(process.env.STORE_CONCURRENCY ?? 8);
const BATCH = Number(process.env.STORE_BATCH ?? 1);

const { openPGlite, PGLITE_DEFAULT_SETTINGS } = await import(join(DIST, "pglite-client.js"));
const { openPGliteInThread } = await import(join(DIST, "pglite-direct.js"));
const { migrate } = await import(join(DIST, "migrate.js"));
const { Store } = await import(join(DIST, "store.js"));

const mib = (kb) => kb / 1024;

function memory(pid = process.pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const pss = Number(/Pss:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0);
  return { rss: mib(rss), pss: mib(pss) };
}

async function open(mode, dataDir, settings) {
  const client = mode === "thread" ? await openPGliteInThread(dataDir, settings) : await openPGlite(dataDir, settings);
  await migrate(client);
  return { client, store: new Store(client) };
}

async function fixture(store) {
  const owner = await store.createIdentity(`bench-${randomUUID()}@example.org`);
  const endpoint = await store.registerEndpoint({
    id: randomUUID(),
    ownerId: owner.id,
    name: "bench",
    multiUser: false,
  });
  const fn = await store.registerFunction(owner.id, { strategy: "conduit.SourceCode", data: "() => 1" });
  const sha = createHash("sha256").update("[]").digest("hex");
  return () => ({
    ownerId: owner.id,
    endpointId: endpoint.id,
    uepId: randomUUID(),
    taskGroupId: randomUUID(),
    taskGroupGiven: false,
    uepConfig: { worker_init: "true" },
    uepRuntime: null,
    tasks: Array.from({ length: BATCH }, () => ({
      id: randomUUID(),
      functionId: fn.id,
      argsBytes: 2,
      argsSha256: sha,
    })),
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** The /healthz probe, in its own process so that its clock is not the loaded loop's. */
async function runProbe() {
  const url = process.argv[3];
  const samples = [];
  let stop = false;
  process.on("message", () => {
    stop = true;
  });
  while (!stop) {
    const t = performance.now();
    await fetch(url).then((r) => r.text());
    samples.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 5));
  }
  process.send(samples, () => process.exit(0));
}

async function loadRun(mode, fsync, template) {
  const dataDir = mkdtempSync(join(tmpdir(), "conduit-bench-store-"));
  try {
    cpSync(template, dataDir, { recursive: true });
    const settings = { ...PGLITE_DEFAULT_SETTINGS, fsync };
    const { client, store } = await open(mode, dataDir, settings);
    const next = await fixture(store);
    // Commit cost: one single-row submit at a time.
    const serial = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await store.insertTasks(next());
      serial.push(performance.now() - t);
    }
    serial.sort((a, b) => a - b);

    const server = createServer((_req, res) => res.end('{"status":"ok"}'));
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    const probe = fork(SELF, ["probe", `http://127.0.0.1:${server.address().port}/healthz`]);
    const probed = new Promise((r) => probe.once("message", r));
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    let submits = 0;
    const until = performance.now() + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < until) {
          await store.insertTasks(next());
          submits++;
        }
      }),
    );
    delay.disable();
    probe.send("stop");
    const samples = (await probed).sort((a, b) => a - b);
    server.close();
    await client.close();
    return {
      mode,
      fsync,
      healthzP50: percentile(samples, 50),
      healthzP99: percentile(samples, 99),
      // A loop that never turned during the load has no samples: its delay is the whole load.
      loopDelayMax: delay.count > 0 ? delay.max / 1e6 : SECONDS * 1000,
      probes: samples.length,
      submitsPerSecond: submits / SECONDS,
      commitP50: percentile(serial, 50),
    };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Child: opens the store in `dataDir` (already made), runs submits, idles, reports its memory. */
async function runIdle() {
  const [, , , dataDir, settingsJson] = process.argv;
  const { client, store } = await open("worker", dataDir, JSON.parse(settingsJson));
  const next = await fixture(store);
  for (let i = 0; i < 300; i++) await store.insertTasks(next());
  await new Promise((r) => setTimeout(r, 3000));
  globalThis.gc?.();
  await new Promise((r) => setTimeout(r, 1000));
  process.send(memory(), async () => {
    await client.close();
    process.exit(0);
  });
}

function idleChild(dataDir, settings) {
  const child = fork(SELF, ["idle", dataDir, JSON.stringify(settings)], { execArgv: ["--expose-gc"] });
  return new Promise((resolve, reject) => {
    let mem;
    child.once("message", (m) => {
      mem = m;
    });
    // After its exit: the data directory is closed (copied next).
    child.once("exit", (code) =>
      code === 0 && mem ? resolve(mem) : reject(new Error(`the idle child exited with ${code}`)),
    );
  });
}

async function firstStart() {
  // A fresh process's first open of a new data directory: initdb, then the same idle as runIdle.
  const dataDir = mkdtempSync(join(tmpdir(), "conduit-bench-store-"));
  const t = performance.now();
  const mem = await idleChild(dataDir, PGLITE_DEFAULT_SETTINGS);
  return { dataDir, seconds: (performance.now() - t) / 1000, mem };
}

async function main() {
  console.log(
    `Embedded store bench: ${SECONDS} s of load per mode, ${CONCURRENCY} concurrent submits of ${BATCH} task(s).`,
  );
  console.log(
    `Load average before: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(", ")}`,
  );
  const first = await firstStart();
  console.log(
    `First start (initdb, then 300 submits, idle): ${first.seconds.toFixed(1)} s, RSS ${first.mem.rss.toFixed(0)} MiB, PSS ${first.mem.pss.toFixed(0)} MiB`,
  );
  const template = first.dataDir;
  try {
    const variants = [
      ["default settings", PGLITE_DEFAULT_SETTINGS],
      ["shared_buffers=32MB, others Postgres's", { fsync: true, settings: { shared_buffers: "32MB" } }],
      ["PGlite's own (shared_buffers=128MB)", { fsync: true, settings: {} }],
    ];
    for (const [label, settings] of variants) {
      const dir = mkdtempSync(join(tmpdir(), "conduit-bench-store-"));
      cpSync(template, dir, { recursive: true });
      const mem = await idleChild(dir, settings);
      rmSync(dir, { recursive: true, force: true });
      console.log(`After a restart, ${label}: RSS ${mem.rss.toFixed(0)} MiB, PSS ${mem.pss.toFixed(0)} MiB`);
    }
    const rows = [];
    for (const [mode, fsync] of [
      ["thread", false],
      ["worker", false],
      ["worker", true],
    ]) {
      rows.push(await loadRun(mode, fsync, template));
    }
    console.log("");
    console.log(
      "| PGlite | fsync | /healthz p50 | /healthz p99 | probes answered | longest loop delay | submits/s | one submit p50 |",
    );
    console.log("|---|---|---|---|---|---|---|---|");
    for (const r of rows) {
      console.log(
        `| ${r.mode === "thread" ? "service's thread" : "worker thread"} | ${r.fsync ? "on" : "off"} | ${r.healthzP50.toFixed(1)} ms | ${r.healthzP99.toFixed(1)} ms | ${r.probes} | ${r.loopDelayMax.toFixed(0)} ms | ${r.submitsPerSecond.toFixed(0)} | ${r.commitP50.toFixed(2)} ms |`,
      );
    }
    console.log(
      `Load average after: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(", ")}`,
    );
  } finally {
    rmSync(template, { recursive: true, force: true });
  }
}

if (process.argv[2] === "probe") await runProbe();
else if (process.argv[2] === "idle") await runIdle();
else await main();
