/**
 * The two searches of process-tree.ts on real processes: descendants by
 * parent pid, and an environment marker that still finds a process which
 * left the tree (setsid, double fork); the owner filter a root MEP relies on;
 * and the end: SIGTERM, then SIGKILL for a process that ignores it.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { endProcesses, findProcesses, lastPid, ticksNow } from "../src/worker/process-tree.js";
import { alive } from "./engines.as-user.helpers.js";

const started: number[] = [];
afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
});

/** Starts `sh -c script` with the marker in its environment; resolves with the pids it prints. */
async function shell(script: string, marker: string, lines: number): Promise<{ shell: number; printed: number[] }> {
  const [name, value] = marker.split("=") as [string, string];
  const child = spawn("/bin/sh", ["-c", script], {
    env: { PATH: process.env.PATH, [name]: value },
    stdio: ["ignore", "pipe", "inherit"],
  });
  started.push(child.pid!);
  const printed = await new Promise<number[]>((resolve) => {
    let text = "";
    child.stdout!.on("data", (d: Buffer) => {
      text += d;
      if (text.split("\n").length > lines) resolve(text.trim().split(/\s+/).map(Number));
    });
  });
  started.push(...printed);
  // $! is known before the forks have exec'd sleep (and with it, the environment /proc shows).
  for (const pid of printed) {
    await expect.poll(() => readFileSync(`/proc/${pid}/comm`, "utf8"), { timeout: 5_000 }).toMatch(/^(sleep|sh)\n$/);
  }
  return { shell: child.pid!, printed };
}

describe("process-tree", () => {
  it("lastPid reads the newest pid again at every call (its file stays open), so it sees a process just started", () => {
    const before = lastPid();
    expect(before).toBeGreaterThan(0);
    const child = spawnSync("/bin/sh", ["-c", "echo $$"], { encoding: "utf8" });
    const childPid = Number(child.stdout.trim());
    const after = lastPid() as number;
    // Pids wrap around at pid_max; either way the counter moved on to the child (or past it).
    expect(after).not.toBe(before);
    if (after > (before as number)) expect(after).toBeGreaterThanOrEqual(childPid);
  });

  it("lastPid opens its file again when a task closed it", () => {
    expect(lastPid()).toBeGreaterThan(0);
    const fds = readdirSync("/proc/self/fd").filter((fd) => {
      try {
        return /ns_last_pid|loadavg/.test(readlinkSync(`/proc/self/fd/${fd}`));
      } catch {
        return false;
      }
    });
    expect(fds.length).toBeGreaterThan(0);
    for (const fd of fds) closeSync(Number(fd));
    lastPid();
    expect(lastPid()).toBeGreaterThan(0);
  });

  it("finds a double-forked, setsid'd process by its marker, and a plain child by the tree", async () => {
    const marker = `CONDUIT_TASK_ID=${randomUUID()}`;
    const since = ticksNow();
    const { shell: sh, printed } = await shell(
      "(setsid sleep 300 >/dev/null 2>&1 & echo $!); sleep 300 & echo $!; wait",
      marker,
      2,
    );
    const [orphan, child] = printed as [number, number];
    const byMarker = findProcesses({ marker, since }).map((p) => p.pid);
    expect(byMarker).toEqual(expect.arrayContaining([sh, orphan, child]));
    const byTree = findProcesses({ root: sh }).map((p) => p.pid);
    expect(byTree).toContain(child);
    expect(byTree).not.toContain(orphan);
    // Another user's processes are never taken, marker or not.
    expect(findProcesses({ marker, uid: 12345 })).toEqual([]);
    // A marker nobody carries finds nothing.
    expect(findProcesses({ marker: `CONDUIT_TASK_ID=${randomUUID()}` })).toEqual([]);

    await endProcesses(findProcesses({ marker, since }), 2000);
    expect(alive(orphan)).toBe(false);
    expect(alive(child)).toBe(false);
  });

  it("kills, after the grace period, a process that ignores SIGTERM", async () => {
    const marker = `CONDUIT_TASK_ID=${randomUUID()}`;
    const { printed } = await shell(
      "(trap '' TERM; setsid sh -c 'exec sleep 300' </dev/null >/dev/null 2>&1 & echo $!)",
      marker,
      1,
    );
    const [stubborn] = printed as [number];
    await expect.poll(() => readFileSync(`/proc/${stubborn}/comm`, "utf8"), { timeout: 5_000 }).toBe("sleep\n");
    // An ignored signal stays ignored across exec: this sleep ignores SIGTERM (signal 15, bit 14 of SigIgn).
    const ignored = /^SigIgn:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${stubborn}/status`, "utf8"))![1]!;
    expect(BigInt(`0x${ignored}`) & (1n << 14n)).not.toBe(0n);
    const found = findProcesses({ marker });
    expect(found.map((p) => p.pid)).toContain(stubborn);
    const ending = endProcesses(found, 500);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(alive(stubborn)).toBe(true);
    await ending;
    // SIGKILL was sent as `ending` resolved; its delivery takes a moment.
    await expect.poll(() => alive(stubborn), { timeout: 1_000, interval: 20 }).toBe(false);
  });
});
