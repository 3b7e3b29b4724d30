/**
 * Shared by the multi-user.* tests (root only): the packed packages installed
 * into a world-readable prefix, as an admin would, so that UEPs running as
 * mapped users can read Conduit's code even when the checkout sits in a 0700
 * folder; and throwaway local users and groups.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const PACKAGES = ["protocol", "sdk", "endpoint", "service"];

/**
 * `<prefix>/bin/conduit-endpoint` of an install of the current build. Packed
 * afresh each time (a few seconds); installed once per distinct build and
 * shared across test files through the prefix's name (a hash of the tarballs).
 */
export function installedCli(): string {
  requireSharedTmpdir();
  const packDir = mkdtempSync(join(tmpdir(), "conduit-pack-"));
  try {
    for (const p of PACKAGES) {
      execFileSync("npm", ["pack", "-w", `packages/${p}`, "--pack-destination", packDir], {
        cwd: ROOT,
        stdio: "ignore",
      });
    }
    const tarballs = readdirSync(packDir)
      .filter((f) => f.endsWith(".tgz"))
      .sort()
      .map((f) => join(packDir, f));
    const hash = createHash("sha256");
    for (const t of tarballs) hash.update(readFileSync(t));
    const prefix = join(tmpdir(), `conduit-mu-prefix-${hash.digest("hex").slice(0, 16)}`);
    const cli = join(prefix, "bin", "conduit-endpoint");
    if (!existsSync(cli)) {
      const staging = mkdtempSync(join(tmpdir(), "conduit-mu-staging-"));
      execFileSync("npm", ["install", "-g", "--prefix", staging, "--no-audit", "--no-fund", ...tarballs], {
        cwd: packDir,
        stdio: "ignore",
      });
      execFileSync("chmod", ["-R", "a+rX", staging]);
      chmodSync(staging, 0o755);
      try {
        renameSync(staging, prefix);
      } catch {
        // another test file installed the same build meanwhile
        rmSync(staging, { recursive: true, force: true });
      }
    }
    return cli;
  } finally {
    rmSync(packDir, { recursive: true, force: true });
  }
}

/**
 * The install, drivers and endpoint folders these tests hand to other users
 * live under tmpdir(), so every folder up to it must let others pass.
 */
function requireSharedTmpdir(): void {
  const tmp = tmpdir();
  for (let dir = tmp; ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      throw new Error(
        `The multi-user tests hand files under ${tmp} to other local users, but ${dir} does not let them enter it; set TMPDIR to a folder every user can enter (such as /tmp).`,
      );
    }
    if (dirname(dir) === dir) return;
  }
}

export interface LocalTestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

const createdUsers: string[] = [];
const createdGroups: string[] = [];

export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(4).toString("hex")}`;
}

export function createGroup(): { name: string; gid: number } {
  const name = uniqueName("cdg_");
  execFileSync("groupadd", [name]);
  createdGroups.push(name);
  const gid = Number(execFileSync("getent", ["group", name], { encoding: "utf8" }).split(":")[2]);
  return { name, gid };
}

export function createUser(supplementaryGroups: string[] = []): LocalTestUser {
  const name = uniqueName("cdt_");
  const args = ["-m", "-s", "/bin/sh"];
  if (supplementaryGroups.length > 0) args.push("-G", supplementaryGroups.join(","));
  execFileSync("useradd", [...args, name]);
  createdUsers.push(name);
  const [, , uid, gid, , home] = execFileSync("getent", ["passwd", name], { encoding: "utf8" }).trim().split(":");
  return { name, uid: Number(uid), gid: Number(gid), home: home ?? "" };
}

/** Removes every user (with its home) and group created here. */
export function removeUsersAndGroups(): void {
  for (const name of createdUsers.splice(0)) {
    try {
      execFileSync("userdel", ["-r", "-f", name], { stdio: "ignore" });
    } catch {
      // already gone
    }
  }
  for (const name of createdGroups.splice(0)) {
    try {
      execFileSync("groupdel", [name], { stdio: "ignore" });
    } catch {
      // already gone
    }
  }
}

/** Pids of the UEP processes of `endpointId` (by their title). */
export function uepPids(endpointId: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes(`conduit UEP uep.${endpointId}.`)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Kills (SIGKILL) the process group of every UEP of these endpoints still running. */
export function killUeps(endpointIds: readonly string[]): void {
  for (const pid of endpointIds.flatMap((id) => uepPids(id))) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** The fields of a `/proc/<pid>/status` text. */
export function parseStatus(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** A running MEP started by {@link startMultiUserMep}. */
export interface StartedMep {
  child: import("node:child_process").ChildProcess;
  endpointId: string;
  /** Its stdout and stderr so far. */
  output(): string;
}

/**
 * Configures endpoint `name` in `userDir` as multi-user with `mappings` as
 * its one expression mapper (and `extraConfig` appended to config.yaml),
 * starts it with the installed `cli` and waits for its id (or its exit).
 */
export async function startMultiUserMep(options: {
  cli: string;
  env: NodeJS.ProcessEnv;
  userDir: string;
  name: string;
  mappings: object[];
  extraConfig?: string;
}): Promise<StartedMep> {
  const { spawn } = await import("node:child_process");
  const { writeFileSync } = await import("node:fs");
  const { cli, env, userDir, name, mappings } = options;
  const configure = spawn(cli, ["configure", name, "--multi-user"], { env, stdio: "ignore" });
  const configured = await new Promise((r) => configure.once("exit", r));
  if (configured !== 0) throw new Error(`configure ${name} exited ${String(configured)}`);
  const epDir = join(userDir, name);
  writeFileSync(
    join(epDir, "idmap.json"),
    JSON.stringify([{ DATA_TYPE: "expression_identity_mapping#1.0.0", mappings }]),
  );
  const config = readFileSync(join(epDir, "config.yaml"), "utf8").replace(
    /^identity_mapping_config_path:.*$/m,
    "identity_mapping_config_path: idmap.json",
  );
  // The shared test broker accepts guest/guest from here: only this key lets a multi-user MEP start on it.
  writeFileSync(join(epDir, "config.yaml"), `${config}allow_default_broker_login: true\n${options.extraConfig ?? ""}`);
  const child = spawn(cli, ["start", name], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  const deadline = Date.now() + 30_000;
  while (!/Endpoint ID: [0-9a-f-]{36}/.test(out) && child.exitCode === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { child, endpointId: /Endpoint ID: ([0-9a-f-]{36})/.exec(out)?.[1] ?? "", output: () => out };
}

/** Resolves once `check` returns a value, polling every 100 ms; throws `what` after `ms`. */
export async function waitFor<T>(what: string, check: () => T | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
