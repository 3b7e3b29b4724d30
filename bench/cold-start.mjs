#!/usr/bin/env node
/**
 * `node bench/cold-start.mjs`: where figure (e) goes. One local stack (service
 * on PGlite, endpoint with the bench's template, `debug: true`), then N times a
 * `userEndpointConfig` never seen (a new UEP), submit → result, next to three
 * `node -e 0` spawns in a row. Each new UEP logs its timing marks at DEBUG
 * (ms since its process started, and that start as epoch ms), which splits
 * (e) into: submit → UEP process start (service, account creation, MEP,
 * spawn), node's own start, module loading, bootstrap, config, engine start,
 * broker connect, first task, first result, result → SDK.
 *
 * Knobs: COLD_RUNS (default 3), COLD_ENGINE (GlobusComputeEngine, the bench's;
 * or ThreadPoolEngine), COLD_STORE (pglite, the default, or postgres).
 */
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { spawnChainMs, startConduitBench } from "./peers/conduit.mjs";
import { summarize } from "./stats.mjs";

const runs = Number(process.env.COLD_RUNS ?? 3);
const engine = process.env.COLD_ENGINE ?? "GlobusComputeEngine";
const log = (line) => console.error(`[cold-start] ${line}`);

const TEMPLATE = `debug: true
engine:
   type: ${engine}
${engine === "ThreadPoolEngine" ? "   max_workers: 2\n" : "   max_workers_per_node: 2\n   provider:\n      type: LocalProvider\n      min_blocks: 0\n      max_blocks: 1\n      init_blocks: 1\n"}idle_heartbeats_soft: 10
idle_heartbeats_hard: 5760
`;

/** The cold-start line of the UEP log under `dir` written after `since` (epoch ms). */
function marksIn(userDir, known) {
  for (const entry of readdirSync(userDir)) {
    if (!entry.startsWith("uep.") || known.has(entry)) continue;
    const file = join(userDir, entry, "endpoint.log");
    if (!existsSync(file)) continue;
    const line = readFileSync(file, "utf8")
      .split("\n")
      .find((l) => l.includes("Cold start, ms since this process started:"));
    if (!line) continue;
    known.add(entry);
    const body = line.slice(line.indexOf("started:") + "started:".length);
    const origin = Number(/epoch ms (\d+)/.exec(body)?.[1]);
    const marks = [...body.replace(/\(process start.*$/, "").matchAll(/([a-z][a-z ,_]*?) (\d+)(?:,|\s*$)/g)].map(
      (m) => [m[1].trim(), Number(m[2])],
    );
    return { origin, marks: marks.sort((x, y) => x[1] - y[1]) };
  }
  return undefined;
}

export async function coldStartProfile({ runs: n = runs } = {}) {
  const rows = [];
  const bench = await startConduitBench({ log }, process.env.COLD_STORE === "postgres", {
    template: TEMPLATE,
    userEndpointConfig: { warm: "yes" },
  });
  try {
    const { ex, userDir } = bench;
    const noop = () => null;
    const known = new Set(readdirSync(userDir).filter((e) => e.startsWith("uep.")));
    for (let i = 0; i < n; i++) {
      ex.userEndpointConfig = { cold: randomUUID() };
      const submitAt = Date.now();
      const t0 = performance.now();
      await ex.submit(noop).result();
      const total = performance.now() - t0;
      const chain = spawnChainMs();
      let found;
      for (let tries = 0; tries < 50 && !found; tries++) {
        found = marksIn(userDir, known);
        if (!found) await new Promise((r) => setTimeout(r, 100));
      }
      const row = { total, chain, untilProcessStart: found ? found.origin - submitAt : undefined, marks: found?.marks };
      rows.push(row);
      log(`run ${i + 1}: ${total.toFixed(0)} ms (chain ${chain.toFixed(0)} ms) ${JSON.stringify(row.marks)}`);
    }
  } finally {
    await bench.dispose();
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await coldStartProfile();
  const med = (f) => summarize(rows.map(f).filter((v) => typeof v === "number" && !Number.isNaN(v))).median;
  const names = rows.find((r) => r.marks)?.marks.map(([m]) => m) ?? [];
  const at = (r, name) => r.marks?.find(([m]) => m === name)?.[1];
  console.log(
    `## Cold start (e), ${engine}, median of ${rows.length} (load average ${(await import("node:os"))
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")})`,
  );
  console.log();
  console.log("| step | ms (median) |");
  console.log("|---|---|");
  console.log(
    `| submit → UEP process start (REST, account, MEP, spawn) | ${med((r) => r.untilProcessStart).toFixed(0)} |`,
  );
  let prev;
  for (const name of names) {
    console.log(
      `| UEP: ${prev ? `${prev} → ` : "process start → "}${name} | ${med((r) => at(r, name) - (prev ? at(r, prev) : 0)).toFixed(0)} |`,
    );
    prev = name;
  }
  const last = names.at(-1);
  console.log(
    `| ${last} → result in the SDK | ${med((r) => r.total - r.untilProcessStart - at(r, last)).toFixed(0)} |`,
  );
  console.log(`| **(e) submit → result** | **${med((r) => r.total).toFixed(0)}** |`);
  console.log(`| (e') 3 × node -e 0 | ${med((r) => r.chain).toFixed(0)} |`);
  console.log(`| (e) ÷ (e') | ${med((r) => r.total / r.chain).toFixed(2)} |`);
  process.exit(0);
}
