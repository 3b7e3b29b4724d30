#!/usr/bin/env node
/**
 * `npm run load`: many Executors in several client processes against one local
 * stack (service + endpoint, HighThroughputEngine), checking that every
 * result arrives exactly once, and printing /healthz latency (p50, p99)
 * sampled during the load next to a bare `node:http` probe server (a process
 * of its own, answering 200 at once, sampled at the same moments, so both
 * see the same machine load), the load's throughput and the service's peak
 * RSS. Nothing is asserted on time. The last line of stdout is a JSON
 * summary (`LOAD_JSON {...}`) for the benches.
 *
 * Exactly once is checked twice: each future must settle once with its own
 * key (the SDK drops repeated results, so this finds lost and crossed ones),
 * and each task appends its key to a shared log, so a task run twice (a
 * redelivery after it ran) shows up as a repeated line.
 *
 * Scale knobs (environment):
 *   LOAD_CLIENTS                client processes            (default 5)
 *   LOAD_EXECUTORS              Executors in all            (default 50, spread over the clients)
 *   LOAD_TASKS                  tasks per Executor          (default 1000)
 *   LOAD_WORKERS                HighThroughputEngine workers (default 4)
 *   LOAD_SAMPLE_MS              /healthz sampling interval  (default 100)
 * e.g. `LOAD_CLIENTS=2 LOAD_EXECUTORS=4 LOAD_TASKS=50 npm run load` for a quick run.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runEndpointCli, startLocalStack } from "./local-stack.mjs";

const SELF = fileURLToPath(import.meta.url);
const ENDPOINT_NAME = "load";

function knob(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) {
    console.error(`${name} must be a positive whole number; got ${JSON.stringify(raw)}.`);
    process.exit(2);
  }
  return n;
}

/** The task: records that it ran (for the double-run check), returns its key. */
const recordAndReturn = async (logPath, key) => {
  const fs = await import("node:fs");
  fs.appendFileSync(logPath, `${key}\n`);
  return key;
};

// ---------------------------------------------------------------- client process

async function runClient() {
  const { serviceUrl, token, endpointId, logPath, clientIndex, executors, tasks } = JSON.parse(
    process.env.LOAD_CLIENT_SPEC,
  );
  const { Client, Executor } = await import("@conduit/sdk");
  const report = { submitted: 0, received: 0, wrong: [], failed: [] };
  await Promise.all(
    Array.from({ length: executors }, async (_, e) => {
      const client = new Client({ serviceUrl, token });
      const executor = new Executor({ endpointId, client });
      try {
        const futures = [];
        for (let i = 0; i < tasks; i++) {
          const key = `${clientIndex}:${e}:${i}`;
          futures.push({ key, future: executor.submit(recordAndReturn, logPath, key) });
          report.submitted++;
        }
        await Promise.all(
          futures.map(async ({ key, future }) => {
            try {
              const value = await future.result();
              report.received++;
              if (value !== key) report.wrong.push({ key, value });
            } catch (err) {
              report.failed.push({ key, error: String(err?.message ?? err).split("\n")[0] });
            }
          }),
        );
      } finally {
        await executor.shutdown({ wait: false, cancelFutures: true });
      }
    }),
  );
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

// ---------------------------------------------------------------- driver

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function peakRssMiB(pid) {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? Number.NaN : Number(kb) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** A bare node:http server answering 200 "ok" to everything, in its own process: the floor for /healthz. */
const PROBE_SERVER = `const s = require("node:http").createServer((q, r) => r.end("ok"));
s.listen(0, "127.0.0.1", () => process.stdout.write(s.address().port + "\\n"));`;

async function startProbeServer() {
  const child = spawn(process.execPath, ["-e", PROBE_SERVER], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve(Number(out.trim()));
    });
    child.once("exit", (code) => reject(new Error(`the probe server exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}/healthz`, stop: () => child.kill("SIGTERM") };
}

function runClientProcess(spec) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SELF, "client"], {
      env: { ...process.env, LOAD_CLIENT_SPEC: JSON.stringify(spec) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (d) => {
      stdout += d;
    });
    child.once("exit", (code, signal) => {
      const line = stdout.trim().split("\n").pop();
      try {
        resolve({ code, signal, report: JSON.parse(line ?? "") });
      } catch {
        resolve({ code, signal, report: undefined });
      }
    });
  });
}

/** A user_config_template.yaml.j2 running every task on this host's HighThroughputEngine. */
function loadTemplate(workers) {
  return [
    "engine:",
    "  type: HighThroughputEngine",
    `  max_workers_per_node: ${workers}`,
    "  provider:",
    "    type: LocalProvider",
    "    min_blocks: 0",
    "    max_blocks: 1",
    "    init_blocks: 1",
    "idle_heartbeats_soft: 10",
    "idle_heartbeats_hard: 5760",
    "",
  ].join("\n");
}

async function runDriver() {
  const clients = knob("LOAD_CLIENTS", 5);
  const totalExecutors = knob("LOAD_EXECUTORS", 50);
  const tasks = knob("LOAD_TASKS", 1000);
  const workers = knob("LOAD_WORKERS", 4);
  const sampleMs = knob("LOAD_SAMPLE_MS", 100);
  if (totalExecutors < clients) {
    console.error(`LOAD_EXECUTORS (${totalExecutors}) must be at least LOAD_CLIENTS (${clients}).`);
    process.exit(2);
  }

  const userDir = mkdtempSync(join(tmpdir(), "conduit-load-"));
  const logPath = join(userDir, "executions.log");
  writeFileSync(logPath, "");
  const env = { ...process.env, CONDUIT_USER_DIR: userDir };
  delete env.CONDUIT_SERVICE_URL;
  delete env.CONDUIT_TOKEN;
  const configured = await runEndpointCli(["configure", ENDPOINT_NAME], env);
  if (configured.code !== 0) throw new Error(`conduit-endpoint configure failed: ${configured.stderr.trim()}`);
  writeFileSync(join(userDir, ENDPOINT_NAME, "user_config_template.yaml.j2"), loadTemplate(workers));

  const stack = await startLocalStack({ userDir, endpointName: ENDPOINT_NAME, isolated: true });
  let failed = false;
  try {
    const { token } = JSON.parse(readFileSync(join(userDir, "credentials.json"), "utf8"));
    const total = totalExecutors * tasks;
    console.log(
      `Load: ${clients} client processes, ${totalExecutors} Executors, ${tasks} tasks each (${total} tasks), ` +
        `HighThroughputEngine with ${workers} workers.`,
    );

    const probe = await startProbeServer();
    const latencies = [];
    const bareLatencies = [];
    const timed = async (url, into) => {
      const start = performance.now();
      const ok = await fetch(url).then(
        async (r) => {
          await r.arrayBuffer();
          return r.ok;
        },
        () => false,
      );
      into.push(ok ? performance.now() - start : Number.POSITIVE_INFINITY);
    };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        // Both at the same moment, so both see the same load.
        await Promise.all([timed(`${stack.serviceUrl}/healthz`, latencies), timed(probe.url, bareLatencies)]);
        await new Promise((r) => setTimeout(r, sampleMs));
      }
    })();

    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: clients }, (_, c) =>
        runClientProcess({
          serviceUrl: stack.serviceUrl,
          token,
          endpointId: stack.endpointId,
          logPath,
          clientIndex: c,
          // Spread the Executors as evenly as the numbers allow.
          executors: Math.floor(totalExecutors / clients) + (c < totalExecutors % clients ? 1 : 0),
          tasks,
        }),
      ),
    );
    const elapsedS = (performance.now() - started) / 1000;
    sampling = false;
    await sampler;
    probe.stop();

    // ---- exactly once
    const problems = [];
    let received = 0;
    for (const [c, r] of results.entries()) {
      if (!r.report) {
        problems.push(`client ${c} exited with ${r.signal ?? r.code} without a report`);
        continue;
      }
      received += r.report.received;
      for (const w of r.report.wrong.slice(0, 5)) problems.push(`task ${w.key} returned ${JSON.stringify(w.value)}`);
      if (r.report.wrong.length > 5) problems.push(`... and ${r.report.wrong.length - 5} more wrong results`);
      for (const f of r.report.failed.slice(0, 5)) problems.push(`task ${f.key} failed: ${f.error}`);
      if (r.report.failed.length > 5) problems.push(`... and ${r.report.failed.length - 5} more failed tasks`);
    }
    const runs = new Map();
    for (const line of readFileSync(logPath, "utf8").split("\n")) {
      if (line) runs.set(line, (runs.get(line) ?? 0) + 1);
    }
    const twice = [...runs].filter(([, n]) => n > 1);
    if (twice.length > 0) {
      problems.push(
        `${twice.length} tasks ran more than once, e.g. ${twice
          .slice(0, 5)
          .map(([k, n]) => `${k} x${n}`)
          .join(", ")}`,
      );
    }
    if (runs.size !== total) problems.push(`${runs.size} of ${total} tasks ran`);
    if (received !== total) problems.push(`${received} of ${total} results arrived`);

    // ---- report (measured, not asserted)
    const finite = latencies.filter(Number.isFinite).sort((a, b) => a - b);
    const unanswered = latencies.length - finite.length;
    const bare = bareLatencies.filter(Number.isFinite).sort((a, b) => a - b);
    const throughput = total / elapsedS;
    console.log(
      `Results: ${received} of ${total} arrived; ${runs.size} distinct tasks ran, ${twice.length} more than once.`,
    );
    console.log(`Throughput: ${throughput.toFixed(0)} tasks/s over ${elapsedS.toFixed(1)} s (not asserted).`);
    console.log(
      `/healthz during the load: p50 ${percentile(finite, 50).toFixed(1)} ms, p99 ${percentile(finite, 99).toFixed(1)} ms ` +
        `over ${latencies.length} samples${unanswered ? ` (${unanswered} unanswered)` : ""}.`,
    );
    console.log(
      `Bare node:http probe server, same moments: p50 ${percentile(bare, 50).toFixed(1)} ms, p99 ${percentile(bare, 99).toFixed(1)} ms; ` +
        `/healthz p99 ÷ bare p99 = ${(percentile(finite, 99) / percentile(bare, 99)).toFixed(2)}.`,
    );
    const peakRss = peakRssMiB(stack.service.child.pid);
    console.log(`Service peak RSS (VmHWM): ${peakRss.toFixed(1)} MiB.`);
    console.log(
      `LOAD_JSON ${JSON.stringify({
        tasks: total,
        throughput,
        healthz: { p50: percentile(finite, 50), p99: percentile(finite, 99), samples: latencies.length, unanswered },
        bare: { p50: percentile(bare, 50), p99: percentile(bare, 99), samples: bareLatencies.length },
        servicePeakRssMiB: peakRss,
        exactlyOnce: problems.length === 0,
      })}`,
    );
    if (problems.length > 0) {
      failed = true;
      console.error(`FAILED: ${problems.join("; ")}.`);
    } else {
      console.log("OK: every result arrived exactly once and every task ran once.");
    }
  } finally {
    await stack.stop();
    rmSync(userDir, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

if (process.argv[2] === "client") await runClient();
else await runDriver();
