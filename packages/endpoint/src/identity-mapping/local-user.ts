/**
 * Looks a local account up by name, as `getpwnam` + `getgrouplist` would:
 * `/etc/passwd` and `/etc/group` first, then `getent passwd` and `id -G` for
 * accounts that only the name service (LDAP, SSSD…) knows.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { MappedIdentity } from "../config/render.js";

/** `mapped_identity.local` of the template. */
export type LocalUser = MappedIdentity["local"];

export interface LocalUserSources {
  /** @default "/etc/passwd" */
  passwdFile?: string;
  /** @default "/etc/group" */
  groupFile?: string;
}

/** The account named `name`, or null when there is none (or the name cannot be one). */
export function lookupLocalUser(name: string, sources: LocalUserSources = {}): LocalUser | null {
  // A name with ":" or a newline could forge a passwd line; one starting with "-" would be read as an option.
  if (name === "" || name.startsWith("-") || /[:\n\0/]/.test(name)) return null;
  const fromFile = findPasswdLine(readText(sources.passwdFile ?? "/etc/passwd"), name);
  const line = fromFile ?? run("getent", ["passwd", name]);
  const user = line === undefined ? null : parsePasswdLine(line);
  if (!user || user.uname !== name) return null;
  const groups = fromFile
    ? groupsFromFile(readText(sources.groupFile ?? "/etc/group"), name, user.gid)
    : groupsFromId(name, user.gid);
  return { ...user, groups };
}

function findPasswdLine(text: string, name: string): string | undefined {
  return text.split("\n").find((line) => line.startsWith(`${name}:`));
}

function parsePasswdLine(line: string): Omit<LocalUser, "groups"> | null {
  const fields = line.trim().split(":");
  if (fields.length < 7) return null;
  const [uname = "", , uid = "", gid = "", gecos = "", dir = "", shell = ""] = fields;
  if (!/^\d+$/.test(uid) || !/^\d+$/.test(gid)) return null;
  return { uname, uid: Number(uid), gid: Number(gid), gecos, dir, shell };
}

/** The primary group first, then every group that lists the user as a member. */
function groupsFromFile(text: string, name: string, gid: number): number[] {
  const groups = [gid];
  for (const line of text.split("\n")) {
    const [, , id = "", members = ""] = line.trim().split(":");
    if (!/^\d+$/.test(id)) continue;
    if (members.split(",").includes(name) && !groups.includes(Number(id))) groups.push(Number(id));
  }
  return groups;
}

function groupsFromId(name: string, gid: number): number[] {
  const ids = (run("id", ["-G", name]) ?? "")
    .trim()
    .split(/\s+/)
    .filter((id) => /^\d+$/.test(id));
  return [...new Set([gid, ...ids.map(Number)])];
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** stdout of a lookup command, or undefined when it fails (unknown user, command missing). */
function run(command: string, args: string[]): string | undefined {
  try {
    const out = execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 });
    return out.split("\n")[0];
  } catch {
    return undefined;
  }
}
