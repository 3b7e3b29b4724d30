/**
 * Top self-time functions of a .cpuprofile (issue 23: what a task costs the service).
 * `node bench/cpu-profile-top.mjs FILE [--last SECONDS] [--tasks N] [--top K]`:
 * only samples of the profile's last SECONDS (skips start-up) count; with --tasks,
 * each line also prints µs per task. Prints total sampled CPU, idle excluded.
 * With --interval US (the sampling interval), each sample counts US rather
 * than the wall time to the next sample, which on a loaded machine also holds
 * the time the process was not running.
 */
import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
const file = args[0];
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : Number(args[i + 1]);
};
const last = opt("--last", Number.POSITIVE_INFINITY);
const tasks = opt("--tasks", 0);
const top = opt("--top", 25);
const interval = opt("--interval", 0);
const profile = JSON.parse(readFileSync(file, "utf8"));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const times = [];
let t = profile.startTime;
for (const d of profile.timeDeltas) {
  t += d;
  times.push(t);
}
const from = profile.endTime - last * 1e6;
const self = new Map();
let busy = 0;
let idle = 0;
for (let i = 0; i < profile.samples.length; i++) {
  if (times[i] < from) continue;
  const dt = interval || (times[i + 1] ?? profile.endTime) - times[i];
  const n = nodes.get(profile.samples[i]);
  const { functionName, url, lineNumber } = n.callFrame;
  if (functionName === "(idle)" || functionName === "(program)") {
    idle += dt;
    if (functionName === "(idle)") continue;
  }
  if (functionName !== "(program)") busy += dt;
  const where = url ? `${url.replace(/^.*\/(node_modules|packages)\//, "$1/")}:${lineNumber + 1}` : "";
  const key = `${functionName || "(anonymous)"} ${where}`;
  self.set(key, (self.get(key) ?? 0) + dt);
}
const fmt = (us) =>
  tasks ? `${(us / tasks).toFixed(1).padStart(7)} µs/task` : `${(us / 1000).toFixed(1).padStart(8)} ms`;
console.log(`busy (not idle, not program) ${fmt(busy)}; idle+program ${(idle / 1000).toFixed(0)} ms`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${fmt(v)}  ${k}`);
