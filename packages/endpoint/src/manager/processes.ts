/**
 * Process checks and signals for the pid files the MEP leaves behind. A pid
 * file outlives a reboot or a kill -9, and its pid may by then belong to an
 * unrelated process: on Linux the process's command line must also match
 * before it counts as ours.
 */
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** Whether a process with this pid exists (ours or, with EPERM, another user's). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

const HAVE_PROC = commandLine(process.pid) !== undefined;

/**
 * The words of the process's command line, or undefined where /proc cannot
 * tell. Split on spaces too: a process that set `process.title` (the UEP does)
 * shows its title there instead of its argv.
 */
function commandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8")
      .split(/[\0\s]+/)
      .filter(Boolean);
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is alive and is the process we recorded: its command line
 * has every one of `words` (e.g. `["start", "my_ep"]`, or a UEP's unique name).
 */
export function isOurProcess(pid: number, words: readonly string[]): boolean {
  if (!Number.isInteger(pid) || pid <= 1 || !pidExists(pid)) return false;
  const argv = commandLine(pid);
  // Without /proc (not Linux, or not mounted) being alive is all we can check;
  // with it, a process whose arguments we cannot read is not one of ours.
  if (argv === undefined) return !HAVE_PROC;
  return words.every((w) => argv.includes(w));
}

/** Whether any process is left in the process group `pgid`. */
export function groupExists(pgid: number): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Signals a whole process group; true if it was there. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Polls until `done()` or `timeoutMs`; resolves with the last `done()`. */
export async function waitUntil(done: () => boolean, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() >= deadline) return false;
    await sleep(stepMs);
  }
  return true;
}
