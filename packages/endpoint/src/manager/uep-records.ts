/**
 * `<endpoint dir>/ueps.json`: every UEP process group the MEP has running.
 * The MEP rewrites it on each spawn and exit and removes it on a clean
 * shutdown; when the MEP dies without cleaning up (kill -9, power loss), the
 * next `start`, `stop` or `delete` kills what it lists.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { StartUepCommand } from "@conduit/protocol/wire";
import type { Logger } from "../logging.js";
import { groupExists, isOurProcess, pidExists, signalGroup } from "./processes.js";

export interface UepRecord {
  /** `uep.<endpoint id>.<uep id>`. */
  name: string;
  pid: number;
  /** The UEP's process group (its own: it is spawned in a new session). */
  pgid: number;
  /**
   * The command the UEP last ran with: after a crash of the MEP, the next one
   * starts it again with this if its queue still holds tasks (no new command
   * would announce them). The file is mode 0600: it may hold the UEP's broker URL.
   */
  command?: StartUepCommand;
}

export function readUepRecords(file: string): UepRecord[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return [];
  }
  const list = (parsed as { ueps?: unknown } | null)?.ueps;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (r): r is UepRecord =>
      typeof r === "object" &&
      r !== null &&
      typeof r.name === "string" &&
      Number.isInteger(r.pid) &&
      Number.isInteger(r.pgid),
  );
}

export function writeUepRecords(file: string, records: readonly UepRecord[]): void {
  // Write then rename, so a crash mid-write never leaves half a file.
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ ueps: records })}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

export function removeUepRecords(file: string): void {
  rmSync(file, { force: true });
}

/**
 * Kills the process groups of the UEPs a dead MEP left behind, then removes
 * the records. A UEP whose pid now runs something else is left alone; a group
 * whose leader is gone but whose workers remain is killed.
 */
export async function killLeftoverUeps(file: string, log?: Logger): Promise<number> {
  const records = readUepRecords(file);
  let killed = 0;
  for (const r of records) {
    // The name alone: it holds two UUIDs, and the UEP retitles itself (process.title) around it.
    const leaderIsOurs = isOurProcess(r.pid, [r.name]);
    // The leader died but its group lives on (workers it started): still ours,
    // since a pgid is not reused while any member of the group is alive.
    const orphanedGroup = !leaderIsOurs && !pidExists(r.pid) && groupExists(r.pgid);
    if (!leaderIsOurs && !orphanedGroup) continue;
    log?.info(`Killing leftover user endpoint process group ${r.pgid} (${r.name})`);
    if (signalGroup(r.pgid, "SIGKILL")) killed++;
  }
  if (killed > 0) await sleep(100);
  removeUepRecords(file);
  return killed;
}
