#!/usr/bin/env node
/**
 * `node bench/idle-memory.mjs`: figure (d) alone, per process. One local stack
 * (service on a throwaway Postgres database, or PGlite with MEM_STORE=pglite),
 * the endpoint configured as `npm run bench` does (HighThroughputEngine, 2
 * workers), one no-op task, 2 s to settle; then the PSS and RSS of each process
 * of the endpoint tree (MEP, UEP, block manager, workers), and beside it, in
 * the same run, the floor: as many idle `node` processes
 * (`setInterval(() => {}, 1e9)`) as the tree has, their PSS summed. PSS splits
 * a shared page among every process on the machine that maps it (other Node
 * processes included), so only figures of the same run compare.
 *
 * Knobs: MEM_STORE (postgres, the default when it answers, or pglite),
 * MEM_RUNS (default 3: the tree is measured that many times, 1 s apart).
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { startConduitBench } from "./peers/conduit.mjs";
import { endpointRole, pssKiB, rssKiB, treePids } from "./proc-tree.mjs";

const runs = Number(process.env.MEM_RUNS ?? 3);
const log = (line) => console.error(`[idle-memory] ${line}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (kib) => kib / 1024;

/** Pss_Anon of one process in KiB: its own heap and stacks, as opposed to mapped files (node's code, shared). */
function pssAnonKiB(pid) {
  try {
    return Number(/^Pss_Anon:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function measure(pids) {
  return pids.map((pid) => ({
    pid,
    role: endpointRole(pid),
    pss: mib(pssKiB(pid)),
    anon: mib(pssAnonKiB(pid)),
    rss: mib(rssKiB(pid)),
  }));
}

/** MEM_SMAPS=1: the 8 mappings of a process with the most PSS (KiB, permissions, name). */
function largestMappings(pid) {
  const maps = [];
  let current;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      current = { perms: head[1], name: head[2] || "[anon]", pss: 0 };
      maps.push(current);
    } else if (current && line.startsWith("Pss:")) current.pss = Number(line.split(/\s+/)[1]);
  }
  const merged = new Map();
  for (const m of maps) merged.set(`${m.perms} ${m.name}`, (merged.get(`${m.perms} ${m.name}`) ?? 0) + m.pss);
  return [...merged]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([k, v]) => `${v} ${k}`)
    .join("; ");
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function endpointTree() {
  const bench = await startConduitBench({ log }, process.env.MEM_STORE !== "pglite");
  try {
    const mep = bench.stack.endpoint.child.pid;
    for (let i = 0; i < 300 && treePids(mep).length < 5; i++) await sleep(100);
    await sleep(2000);
    const samples = [];
    for (let i = 0; i < runs; i++) {
      if (i > 0) await sleep(1000);
      samples.push(measure(treePids(mep)));
    }
    if (process.env.MEM_SMAPS)
      for (const pid of treePids(mep)) log(`${endpointRole(pid)} ${pid}: ${largestMappings(pid)}`);
    return samples;
  } finally {
    await bench.dispose();
  }
}

/** `count` idle node processes, measured together (as the tree's are), then ended. */
async function idleNodes(count) {
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, ["-e", "setInterval(() => {}, 1e9)"], { stdio: "ignore" }),
  );
  try {
    await sleep(1500);
    const samples = [];
    for (let i = 0; i < runs; i++) {
      if (i > 0) await sleep(1000);
      samples.push(measure(children.map((c) => c.pid)));
    }
    return samples;
  } finally {
    for (const c of children) c.kill("SIGKILL");
  }
}

const before = loadavg();
const tree = await endpointTree();
const floor = await idleNodes(tree[0].length);
const after = loadavg();

const byRole = (samples, key) => {
  const roles = [...new Set(samples[0].map((p) => p.role))];
  return roles.map((r) => ({
    role: r,
    count: samples[0].filter((p) => p.role === r).length,
    value: median(samples.map((s) => s.filter((p) => p.role === r).reduce((sum, p) => sum + p[key], 0))),
  }));
};
const total = (samples, key) => median(samples.map((s) => s.reduce((sum, p) => sum + p[key], 0)));

console.log(
  `## Idle memory (d), median of ${runs} samples (load average ${before.map((l) => l.toFixed(1)).join(" ")} before, ${after.map((l) => l.toFixed(1)).join(" ")} after)`,
);
console.log();
console.log("| process | PSS MiB | of which anonymous | RSS MiB |");
console.log("|---|---|---|---|");
const rss = byRole(tree, "rss");
const anon = byRole(tree, "anon");
for (const [i, { role: r, count, value }] of byRole(tree, "pss").entries()) {
  console.log(
    `| ${count > 1 ? `${count} × ${r}` : r} | ${value.toFixed(1)} | ${anon[i].value.toFixed(1)} | ${rss[i].value.toFixed(1)} |`,
  );
}
console.log(
  `| **endpoint tree** | **${total(tree, "pss").toFixed(1)}** | ${total(tree, "anon").toFixed(1)} | ${total(tree, "rss").toFixed(1)} |`,
);
console.log(
  `| floor: ${floor[0].length} × idle \`node -e "setInterval(() => {}, 1e9)"\` | ${total(floor, "pss").toFixed(1)} | ${total(floor, "anon").toFixed(1)} | ${total(floor, "rss").toFixed(1)} |`,
);
console.log(`| tree ÷ floor | ${(total(tree, "pss") / total(floor, "pss")).toFixed(2)} | |`);
console.log(`MEM_JSON ${JSON.stringify({ tree, floor, loadavg: { before, after } })}`);
process.exit(0);
