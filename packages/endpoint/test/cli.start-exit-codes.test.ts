/**
 * `conduit-endpoint start` ends at once, with Globus's sysexits codes and one
 * sentence, when its configuration cannot be loaded: EX_NOPERM (77) when
 * config.yaml cannot be read for lack of permission, EX_CONFIG (78) for
 * anything else (bad YAML, invalid keys, a multi-user endpoint without its
 * identity mapping).
 */
import { spawn } from "node:child_process";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, cleanupProcesses, cliEnv, runCli, tempUserDir } from "./cli.helpers.js";
import { createUser, installedCli, removeUsersAndGroups } from "./multi-user.helpers.js";

const asRoot = process.getuid?.() === 0;
// The other user runs an install of the packed packages, as an admin would set
// it up: the checkout itself may sit in a folder only root can enter.
let installed = "";
beforeAll(() => {
  if (asRoot) installed = installedCli();
});

afterAll(async () => {
  await cleanupProcesses();
  if (asRoot) removeUsersAndGroups();
});

async function configured(name: string): Promise<{ env: NodeJS.ProcessEnv; userDir: string; config: string }> {
  const userDir = tempUserDir();
  const env = cliEnv(userDir);
  expect((await runCli(["configure", name], env)).code).toBe(0);
  return { env, userDir, config: join(userDir, name, "config.yaml") };
}

/** Runs the installed CLI as another local user, through setpriv, as root can. */
function runCliAs(user: { uid: number; gid: number }, args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const child = spawn(
    "setpriv",
    [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", "--", process.execPath, installed, ...args],
    // cwd: the test's own working directory (the checkout) may be closed to that user
    { cwd: "/", env, stdio: ["ignore", "pipe", "pipe"] },
  );
  const out = { stdout: "", stderr: "" };
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out.stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    out.stderr += d;
  });
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, ...out })));
}

describe("conduit-endpoint start: load errors", () => {
  it("exits 78 (EX_CONFIG) with one sentence when config.yaml is not YAML", async () => {
    const { env, config } = await configured("garbled");
    writeFileSync(config, "display_name: [unclosed\n");
    const result = await runCli(["start", "garbled"], env);
    expect(result.code).toBe(78);
    expect(result.stdout).toBe("");
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(new RegExp(`^Error: .*${config.replace(/[.]/g, "\\.")}.*\\.\\n$`));
  });

  it("exits 78 (EX_CONFIG) naming the fix when config.yaml has an invalid key", async () => {
    const { env, config } = await configured("engined");
    writeFileSync(config, `${readFileSync(config, "utf8")}engine:\n  type: ThreadPoolEngine\n`);
    const result = await runCli(["start", "engined"], env);
    expect(result.code).toBe(78);
    expect(result.stderr.trim()).toMatch(
      /^Error: .*config\.yaml has an `engine` block.*move the `engine` block to user_config_template\.yaml\.j2\.$/,
    );
  });

  it.skipIf(!asRoot)(
    "exits 77 (EX_NOPERM) with one sentence when config.yaml is unreadable by the user starting it",
    async () => {
      const { env, userDir, config } = await configured("locked");
      const user = createUser();
      // The user may enter the folders but not read root's 0600 config.yaml.
      chmodSync(userDir, 0o755);
      chmodSync(join(userDir, "locked"), 0o755);
      chmodSync(config, 0o600);
      expect(statSync(config).uid).toBe(0);
      const denied = await runCliAs(user, ["start", "locked"], env);
      expect(denied.code).toBe(77);
      expect(denied.stdout).toBe("");
      expect(denied.stderr.trim()).toBe(
        `Error: Cannot read ${config} (EACCES: permission denied); start the endpoint as the user who owns that file, or let this user read it.`,
      );
      // Once readable the same start gets past the load (and fails later, on the folder it cannot write).
      chmodSync(config, 0o644);
      const readable = await runCliAs(user, ["start", "locked"], env);
      expect(readable.code).not.toBe(77);
      expect(readable.code).not.toBe(0);
    },
    30_000,
  );
});
