#!/usr/bin/env node
/**
 * `npm run bench`: Conduit next to its peers, in the same run, on this machine,
 * on loopback (issue 11, "Benchmarks"). One module per peer under bench/peers/
 * (conduit, floor, celery, bullmq); each exports `name`, `versionsNote` and
 * `prepare(ctx)`, which returns its configurations (or `{ skip: reason }`),
 * each with the figures it takes part in and a `run(sizes)` that measures one
 * repetition on fresh workers and returns
 *   a_p50, a_p99 (ms)  (a) round trip of one no-op task at a time
 *   b (tasks/s)        (b) a burst of no-op tasks all in flight
 *   c (tasks/s)        (c) 10 ms sleep tasks, exactly 2 running at once
 *   d, d_rss (MiB)     (d) idle PSS (smaps_rollup) and RSS of the worker side's process tree
 *   e (ms)             (e) cold start (Conduit only)
 *   e_chain (ms)       (e') three `node -e 0` spawns in a row, right after (e): its floor
 * The runner repeats each configuration (medians of 3 with min and max),
 * prints Markdown tables (every result, then Conduit ÷ each peer's best
 * configuration per figure) and writes bench/results/<date>-<host>.json.
 *
 * Knobs: BENCH_QUICK=1 (small sizes, 1 repetition), BENCH_PEERS=floor,celery
 * (a subset), BENCH_RESULTS_DIR (where the JSON goes), and the sizes in
 * bench/sizes.mjs.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, hostname, loadavg, release, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createVhost, ensureRabbitMQ } from "../scripts/local-stack.mjs";
import { submitThroughput } from "./executor-submit.mjs";
import { sizes } from "./sizes.mjs";
import { summarize } from "./stats.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const ALL_PEERS = ["conduit", "floor", "celery", "bullmq"];
const selected = (process.env.BENCH_PEERS ?? ALL_PEERS.join(","))
  .split(",")
  .map((p) => p.trim())
  .filter(Boolean);
for (const p of selected) {
  if (!ALL_PEERS.includes(p)) {
    console.error(`Unknown peer ${p} in BENCH_PEERS; use some of ${ALL_PEERS.join(", ")}.`);
    process.exit(2);
  }
}

export const METRICS = [
  { key: "a_p50", figure: "a", label: "(a) round trip p50", unit: "ms", better: "lower", digits: 2 },
  { key: "a_p99", figure: "a", label: "(a) round trip p99", unit: "ms", better: "lower", digits: 2 },
  { key: "b", figure: "b", label: `(b) ${sizes.burst} no-op tasks in flight`, unit: "tasks/s", better: "higher" },
  {
    key: "c",
    figure: "c",
    label: `(c) ${sizes.sleepTasks} × ${sizes.sleepMs} ms, 2 at once`,
    unit: "tasks/s",
    better: "higher",
    digits: 1,
  },
  { key: "d", figure: "d", label: "(d) idle PSS, worker side", unit: "MiB", better: "lower", digits: 1 },
  { key: "d_rss", figure: "d", label: "(d) idle RSS, worker side", unit: "MiB", better: "lower", digits: 1 },
  { key: "e", figure: "e", label: "(e) cold start of a new UEP", unit: "ms", better: "lower" },
  { key: "e_chain", figure: "e", label: "(e') 3 × `node -e 0` in a row", unit: "ms", better: "lower" },
];

const log = (line) => console.error(`[bench] ${line}`);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

function tryRun(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "unknown";
  }
}

const machine = {
  host: tryRun("hostname", ["-s"]) || hostname(),
  cpus: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  kernel: release(),
  os: tryRun("sh", ["-c", ". /etc/os-release && echo $PRETTY_NAME"]),
  node: process.versions.node,
  rabbitmq: tryRun("rabbitmqctl", ["-q", "version"]),
  loadBefore: load(),
};

/** What every peer gets: a RabbitMQ vhost of its own on demand, cleaned up afterwards. */
function makeContext(peer) {
  const disposers = [];
  return {
    log: (line) => log(`${peer}: ${line}`),
    sizes,
    async vhost() {
      await ensureRabbitMQ(log);
      const v = await createVhost();
      disposers.push(v.dispose);
      return v;
    },
    onDispose(fn) {
      disposers.push(fn);
    },
    async dispose() {
      for (const fn of disposers.reverse()) await fn().catch((err) => log(`${peer}: cleanup failed: ${err.message}`));
    },
  };
}

const peers = [];
for (const id of selected) {
  const mod = await import(`./peers/${id}.mjs`);
  const ctx = makeContext(id);
  const entry = { id, name: mod.name, note: mod.versionsNote, configs: [] };
  peers.push(entry);
  try {
    log(`${mod.name}: preparing ...`);
    const prepared = await mod.prepare(ctx);
    if (prepared.skip) {
      entry.skipped = prepared.skip;
      log(`${mod.name}: skipped: ${prepared.skip}`);
      continue;
    }
    if (prepared.note) entry.note = entry.note ? `${entry.note}; ${prepared.note}` : prepared.note;
    for (const config of prepared.configs) {
      const result = {
        id: config.id,
        label: config.label,
        figures: config.figures,
        bulk: config.bulk === true,
        repetitions: [],
      };
      entry.configs.push(result);
      for (let rep = 1; rep <= sizes.repetitions; rep++) {
        log(`${mod.name} ${config.label}: repetition ${rep}/${sizes.repetitions} ...`);
        try {
          result.repetitions.push(await config.run(sizes));
        } catch (err) {
          result.error = err instanceof Error ? err.message : String(err);
          log(`${mod.name} ${config.label}: failed: ${result.error}`);
          break;
        }
      }
      result.summary = {};
      const keys = new Set(result.repetitions.flatMap((r) => Object.keys(r)));
      for (const key of keys) {
        const values = result.repetitions.map((r) => r[key]).filter((v) => typeof v === "number");
        if (values.length > 0) result.summary[key] = summarize(values);
      }
    }
  } catch (err) {
    entry.skipped = `failed: ${err instanceof Error ? err.message : String(err)}`;
    log(`${mod.name}: ${entry.skipped}`);
  } finally {
    await ctx.dispose();
  }
}
// The Executor's submit throughput by batchSize (Conduit alone).
let submitRates;
if (selected.includes("conduit")) {
  try {
    submitRates = await submitThroughput({
      tasks: sizes.submitTasks,
      log: (line) => log(`submit throughput: ${line}`),
    });
  } catch (err) {
    log(`submit throughput: failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
machine.loadAfter = load();

// ---- tables ----
const fmt = (v, digits = 0) => (v === undefined ? "–" : v.toFixed(digits));
function cell(summary, metric) {
  const s = summary?.[metric.key];
  if (!s) return "–";
  const d = metric.digits ?? 0;
  return s.n > 1 ? `${fmt(s.median, d)} (${fmt(s.min, d)}–${fmt(s.max, d)})` : fmt(s.median, d);
}

const lines = [];
const out = (l = "") => lines.push(l);
out(`## Conduit and its peers (${new Date().toISOString()}${sizes.quick ? ", BENCH_QUICK" : ""})`);
out();
out(
  `Machine: ${machine.host}, ${machine.os}, ${machine.cpus}, ${machine.memoryGiB} GiB, Linux ${machine.kernel}; ` +
    `Node ${machine.node}; RabbitMQ ${machine.rabbitmq}; load average ${machine.loadBefore} before, ${machine.loadAfter} after.`,
);
out(
  `Sizes: (a) ${sizes.warmup} warm-up + ${sizes.roundTrips} measured, p50/p99 nearest rank; (b) ${sizes.burst}; ` +
    `(c) ${sizes.sleepTasks} (ceiling ${(1000 / sizes.sleepMs) * 2} tasks/s). ` +
    `${sizes.repetitions === 1 ? "One repetition." : `Median of ${sizes.repetitions} repetitions (min–max).`}`,
);
out();
out(`| system | configuration | ${METRICS.map((m) => `${m.label}, ${m.unit}`).join(" | ")} |`);
out(`|---|---|${METRICS.map(() => "---").join("|")}|`);
for (const peer of peers) {
  if (peer.skipped) {
    out(`| ${peer.name} | skipped: ${peer.skipped} |${METRICS.map(() => " ").join("|")}|`);
    continue;
  }
  for (const c of peer.configs) {
    const cells = METRICS.map((m) => {
      let text = cell(c.summary, m);
      if (m.key === "c" && c.summary?.c)
        text += ` (${((c.summary.c.median / ((1000 / sizes.sleepMs) * 2)) * 100).toFixed(0)} %)`;
      return text;
    });
    out(`| ${peer.name} | ${c.label}${c.error ? ` (failed: ${c.error})` : ""} | ${cells.join(" | ")} |`);
  }
}
out();
for (const peer of peers) if (peer.note && !peer.skipped) out(`- ${peer.name}: ${peer.note}.`);
const conduitPeer = peers.find((p) => p.id === "conduit" && !p.skipped);
if (conduitPeer) {
  for (const c of conduitPeer.configs) {
    if (c.summary?.d_service)
      out(
        `- Conduit ${c.label}, idle, printed apart from (d): service ${fmt(c.summary.d_service.median, 1)} MiB PSS ` +
          `(${fmt(c.summary.d_service_rss?.median, 1)} MiB RSS); of (d), the MEP ${fmt(c.summary.d_mep?.median, 1)} MiB PSS ` +
          `(${fmt(c.summary.d_mep_rss?.median, 1)} MiB RSS)` +
          (c.summary.d_service_restarted
            ? `; the service after a restart on the same store ${fmt(c.summary.d_service_restarted.median, 1)} MiB PSS ` +
              `(${fmt(c.summary.d_service_restarted_rss?.median, 1)} MiB RSS).`
            : "."),
      );
  }
}

/** Conduit ÷ the peer's best configuration for each figure. */
const ratios = [];
const others = peers.filter((p) => p.id !== "conduit" && !p.skipped);
if (conduitPeer && others.length > 0) {
  out();
  out("### Conduit ÷ peer (each peer's best configuration for the figure)");
  out();
  out(`| figure | Conduit | ${others.map((p) => p.name).join(" | ")} |`);
  out(`|---|---|${others.map(() => "---").join("|")}|`);
  const ratioRows = [
    ...METRICS.map((m) => ({ m, label: m.label, bulk: false })),
    { m: METRICS.find((m) => m.key === "b"), label: "(b) against the peer's bulk API", bulk: true },
  ];
  for (const { m, label, bulk } of ratioRows) {
    for (const c of conduitPeer.configs) {
      const mine = c.summary?.[m.key]?.median;
      if (mine === undefined) continue;
      const row = [];
      for (const p of others) {
        // A bulk API is its own row: (b) is one submit call per task.
        const candidates = p.configs.filter((pc) => pc.summary?.[m.key] && pc.bulk === bulk);
        if (candidates.length === 0) {
          row.push("–");
          continue;
        }
        const value = (pc) => pc.summary[m.key].median;
        const best = candidates.reduce((x, y) =>
          (m.better === "lower" ? value(y) < value(x) : value(y) > value(x)) ? y : x,
        );
        const ratio = mine / value(best);
        ratios.push({ metric: bulk ? "b_bulk" : m.key, conduit: c.id, peer: p.id, peerConfig: best.id, ratio });
        row.push(`${ratio.toFixed(2)} (${best.label})`);
      }
      if (row.every((r) => r === "–")) continue;
      out(`| ${label} (${m.better} is better) | ${c.label} | ${row.join(" | ")} |`);
    }
  }
}

// (e) against its own floor, measured in the same repetition: the ratio of each repetition, then their median.
if (conduitPeer) {
  const rows = [];
  for (const c of conduitPeer.configs) {
    const per = c.repetitions.filter((r) => r.e > 0 && r.e_chain > 0).map((r) => r.e / r.e_chain);
    if (per.length === 0) continue;
    const s = summarize(per);
    ratios.push({ metric: "e", conduit: c.id, peer: "node-spawn-chain", peerConfig: "3x", ratio: s.median });
    rows.push(`| (e) ÷ (e') (lower is better) | ${c.label} | ${cell({ r: s }, { key: "r", digits: 2 })} |`);
  }
  if (rows.length > 0) {
    out();
    out("### Conduit ÷ its floor in the same repetition");
    out();
    out("| figure | Conduit | ratio, median of the repetitions' ratios (min–max) |");
    out("|---|---|---|");
    for (const r of rows) out(r);
  }
}

if (submitRates) {
  out();
  out(
    `### Executor submit throughput (${sizes.submitTasks} no-op tasks submitted at once, tasks/s the service accepted)`,
  );
  out();
  out("| batchSize | tasks/s |");
  out("|---|---|");
  for (const [batchSize, rate] of Object.entries(submitRates)) out(`| ${batchSize} | ${rate.toFixed(0)} |`);
}

// issue 19: the engines and one Slurm block (bench/engines.mjs; also `npm run bench:engines`), on a full run only.
if (!process.env.BENCH_PEERS && process.env.BENCH_ENGINES !== "0")
  for (const l of ["", ...(await (await import("./engines.mjs")).runEngineBench()).lines]) out(l);

const file = join(
  process.env.BENCH_RESULTS_DIR ?? join(here, "results"),
  `${new Date().toISOString().slice(0, 10)}-${machine.host}.json`,
);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(
  file,
  `${JSON.stringify({ date: new Date().toISOString(), machine, sizes, metrics: METRICS, peers, ratios, submitThroughput: submitRates }, null, 2)}\n`,
);
out();
out(`Wrote ${file}`);
console.log(lines.join("\n"));
process.exit(0);
