/**
 * A multi-user endpoint (root, from an installed prefix) looks conduit-endpoint
 * up on the PATH its UEP gets (user_environment.yaml applied) as the mapped
 * user sees it: an admin's wrapper there runs as that user, first, and the UEP
 * it execs runs the task; a PATH entry anyone may write is refused, and the
 * task fails naming the entry and the fix.
 */
import { type ChildProcess, execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, Executor } from "@conduit/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVhost } from "../../../scripts/local-stack.mjs";
import {
  createUser,
  installedCli,
  killUeps,
  type LocalTestUser,
  removeUsersAndGroups,
  startMultiUserMep,
} from "./multi-user.helpers.js";

describe.skipIf(process.getuid?.() !== 0)("multi-user endpoint: the conduit-endpoint on the UEP's PATH", () => {
  let cli: string;
  let userDir: string;
  let dataDir: string;
  let adminScripts: string;
  let open: string;
  let vhost: { url: string; dispose(): Promise<void> };
  let service: Awaited<ReturnType<typeof import("@conduit/service").startService>>;
  let mep: ChildProcess | undefined;
  let endpointId = "";
  let alice: LocalTestUser;
  let bob: LocalTestUser;
  const executors: Executor[] = [];

  beforeAll(async () => {
    cli = installedCli();
    alice = createUser();
    bob = createUser();
    const { startService } = await import("@conduit/service");
    vhost = await createVhost();
    dataDir = mkdtempSync(join(tmpdir(), "conduit-svc-"));
    service = await startService({ port: 0, dataDir, writeCredentials: false, amqpUrl: vhost.url });
    userDir = mkdtempSync(join(tmpdir(), "conduit-mu-"));
    // Root's, 0755: as an admin would keep /usr/local/admin_scripts.
    adminScripts = mkdtempSync(join(tmpdir(), "conduit-admin-scripts-"));
    chmodSync(adminScripts, 0o755);
    const wrapper = join(adminScripts, "conduit-endpoint");
    writeFileSync(
      wrapper,
      `#!/bin/sh\necho "$(id -u) $*" > "$HOME/wrapper-ran"\nexport PATH=/usr/local/bin:/usr/bin:/bin\nexec "${process.execPath}" "${realpathSync(cli)}" "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
    open = mkdtempSync(join(tmpdir(), "conduit-open-"));
    chmodSync(open, 0o777);
    const env = {
      ...process.env,
      CONDUIT_USER_DIR: userDir,
      CONDUIT_SERVICE_URL: service.url,
      CONDUIT_TOKEN: service.adminToken,
    };
    const started = await startMultiUserMep({
      cli,
      env,
      userDir,
      name: "mu",
      mappings: [
        { source: "{username}", match: "alice@example\\.org", output: alice.name },
        { source: "{username}", match: "bob@example\\.org", output: bob.name },
      ],
    });
    mep = started.child;
    endpointId = started.endpointId;
    if (!endpointId) throw new Error(`The MEP did not start: ${started.output()}`);
  }, 420_000);

  afterAll(async () => {
    for (const e of executors) await e.shutdown({ cancelFutures: true }).catch(() => {});
    if (mep && mep.exitCode === null) {
      mep.kill("SIGTERM");
      await new Promise((r) => {
        const t = setTimeout(() => {
          mep?.kill("SIGKILL");
          r(undefined);
        }, 15_000);
        mep?.once("exit", () => {
          clearTimeout(t);
          r(undefined);
        });
      });
    }
    killUeps([endpointId]);
    await service?.close();
    await vhost?.dispose();
    for (const dir of [dataDir, userDir, adminScripts, open]) if (dir) rmSync(dir, { recursive: true, force: true });
    removeUsersAndGroups();
  }, 60_000);

  async function executorFor(username: string): Promise<Executor> {
    const { token } = await service.createIdentity(username);
    const executor = new Executor({ endpointId, client: new Client({ serviceUrl: service.url, token }) });
    executors.push(executor);
    return executor;
  }

  /** The MEP reads user_environment.yaml afresh for every new UEP. */
  function setPath(path: string): void {
    writeFileSync(join(userDir, "mu", "user_environment.yaml"), `PATH: ${path}\n`);
  }

  it("starts the mapped user's UEP through the admin's wrapper, which runs as that user first", async () => {
    setPath(`${adminScripts}:/usr/local/bin:/usr/bin:/bin`);
    const executor = await executorFor("alice@example.org");
    expect(await executor.submit(() => process.getuid?.()).result()).toBe(alice.uid);
    const marker = readFileSync(join(alice.home, "wrapper-ran"), "utf8");
    expect(marker).toMatch(new RegExp(`^${alice.uid} _start-user-endpoint uep\\.${endpointId}\\.[0-9a-f-]{36}\\n$`));
    const log = readFileSync(join(userDir, "mu", "endpoint.log"), "utf8");
    expect(log).toMatch(
      new RegExp(
        `User endpoint uep\\.${endpointId}\\.[0-9a-f-]{36} runs ${join(adminScripts, "conduit-endpoint")} \\(the conduit-endpoint on its PATH\\)`,
      ),
    );
  }, 120_000);

  it("refuses a PATH entry anyone may write: the task fails naming it and the fix, and nothing ran", async () => {
    setPath(`${open}:${adminScripts}:/usr/bin:/bin`);
    const executor = await executorFor("bob@example.org");
    await expect(executor.submit(() => process.getuid?.()).result()).rejects.toThrow(
      `The PATH entry ${open} is writable by every user, so another account could put a conduit-endpoint there that runs as ${bob.name}; remove that entry from the PATH`,
    );
    expect(existsSync(join(bob.home, "wrapper-ran"))).toBe(false);
    expect(execFileSync("ls", ["-A", bob.home], { encoding: "utf8" })).not.toContain(".conduit");
  }, 120_000);
});
