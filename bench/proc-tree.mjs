/**
 * Memory of process trees, from /proc (Linux only): RSS (VmRSS) and PSS (the
 * proportional set size from smaps_rollup: each shared page split among the
 * processes that map it, so a tree's PSS does not count a shared library or a
 * forked parent's pages once per process, as summed RSS does).
 */
import { readdirSync, readFileSync } from "node:fs";

/** pid → parent pid of every process now. */
function parents() {
  const map = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      map.set(Number(entry), ppid);
    } catch {
      // gone meanwhile
    }
  }
  return map;
}

/** The pid and all its descendants. */
export function treePids(pid) {
  const ppids = parents();
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    for (const [child, parent] of ppids) if (parent === out[i]) out.push(child);
  }
  return out;
}

/** The direct children of a pid. */
export function childPids(pid) {
  return [...parents()].filter(([, parent]) => parent === pid).map(([child]) => child);
}

/** VmRSS of one process in KiB (0 when it is gone). */
export function rssKiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Summed VmRSS of a pid and its descendants, in MiB, and how many processes that was. */
export function treeRss(pid) {
  const pids = treePids(pid);
  return { mib: pids.reduce((sum, p) => sum + rssKiB(p), 0) / 1024, processes: pids.length };
}

/** Pss of one process in KiB, from /proc/PID/smaps_rollup (0 when it is gone or unreadable). */
export function pssKiB(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Summed PSS and RSS of a pid and its descendants, in MiB, and how many processes that was. */
export function treeMem(pid) {
  const pids = treePids(pid);
  return {
    pss: pids.reduce((sum, p) => sum + pssKiB(p), 0) / 1024,
    rss: pids.reduce((sum, p) => sum + rssKiB(p), 0) / 1024,
    processes: pids.length,
  };
}

/** CPU time (user + system, all threads) a process has used, in ms; 0 when it is gone. */
export function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime (fields 14 and 15 of stat(5)) in clock ticks, 100 a second on Linux.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/** Write system calls a process has made (`syscw` of /proc/PID/io); 0 when it is gone or unreadable. */
export function writeCalls(pid) {
  try {
    return Number(/^syscw:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** What a process of the endpoint tree is, from its command line. */
export function endpointRole(pid) {
  let cmd = "";
  try {
    cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "gone";
  }
  if (cmd.includes("block-manager")) return "block manager";
  if (cmd.includes("process-worker")) return "worker";
  if (cmd.includes("_start-user-endpoint") || cmd.startsWith("conduit UEP")) return "UEP";
  if (cmd.includes(" start ")) return "MEP";
  return cmd.slice(0, 60);
}
