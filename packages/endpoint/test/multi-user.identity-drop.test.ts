/**
 * A multi-user endpoint, started as root from an installed prefix, runs each
 * identity's UEP and workers as the local user the mapping names, with no
 * privileges left; identities that map to nobody, or to root, are refused and
 * their tasks fail with the reason.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, Executor } from "@conduit/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVhost } from "../../../scripts/local-stack.mjs";
import {
  createGroup,
  createUser,
  installedCli,
  type LocalTestUser,
  parseStatus,
  removeUsersAndGroups,
  uepPids,
} from "./multi-user.helpers.js";

type Probe = { uid: number; gid: number; groups: number[]; status: string };

/**
 * Shipped as source: Node globals only (a dynamic import would be rewritten by
 * the test runner's transform, so fs comes from `process.getBuiltinModule`).
 */
async function probe(): Promise<Probe> {
  const fs = (process as unknown as { getBuiltinModule(id: string): typeof import("node:fs") }).getBuiltinModule(
    "node:fs",
  );
  return {
    uid: process.getuid?.() ?? -1,
    gid: process.getgid?.() ?? -1,
    groups: process.getgroups?.() ?? [],
    status: fs.readFileSync("/proc/self/status", "utf8"),
  };
}

function expectDropped(statusText: string, user: LocalTestUser, extraGid: number): void {
  const s = parseStatus(statusText);
  expect(s.Uid?.split(/\s+/).map(Number)).toEqual([user.uid, user.uid, user.uid, user.uid]);
  expect(s.Gid?.split(/\s+/).map(Number)).toEqual([user.gid, user.gid, user.gid, user.gid]);
  expect(s.Groups?.split(/\s+/).filter(Boolean).map(Number).sort()).toEqual([user.gid, extraGid].sort());
  expect(s.NoNewPrivs).toBe("1");
  for (const key of ["CapEff", "CapPrm", "CapBnd", "CapInh"]) expect(BigInt(`0x${s[key]}`)).toBe(0n);
}

describe.skipIf(process.getuid?.() !== 0)("multi-user endpoint", () => {
  let cli: string;
  let userDir: string;
  let dataDir: string;
  let vhost: { url: string; dispose(): Promise<void> };
  let service: Awaited<ReturnType<typeof import("@conduit/service").startService>>;
  let mep: ChildProcess | undefined;
  let endpointId = "";
  let mepOut = "";
  let group: { name: string; gid: number };
  let alice: LocalTestUser;
  let bob: LocalTestUser;
  const executors: Executor[] = [];

  beforeAll(async () => {
    cli = installedCli();
    group = createGroup();
    alice = createUser([group.name]);
    bob = createUser([group.name]);
    const { startService } = await import("@conduit/service");
    vhost = await createVhost();
    dataDir = mkdtempSync(join(tmpdir(), "conduit-svc-"));
    service = await startService({ port: 0, dataDir, writeCredentials: false, amqpUrl: vhost.url });
    userDir = mkdtempSync(join(tmpdir(), "conduit-mu-"));
    const env = {
      ...process.env,
      CONDUIT_USER_DIR: userDir,
      CONDUIT_SERVICE_URL: service.url,
      CONDUIT_TOKEN: service.adminToken,
    };
    const configure = spawn(cli, ["configure", "mu", "--multi-user"], { env, stdio: "ignore" });
    expect(await new Promise((r) => configure.once("exit", r))).toBe(0);
    const epDir = join(userDir, "mu");
    writeFileSync(
      join(epDir, "idmap.json"),
      JSON.stringify([
        {
          DATA_TYPE: "expression_identity_mapping#1.0.0",
          mappings: [
            { source: "{username}", match: "alice@example\\.org", output: alice.name },
            { source: "{username}", match: "bob@example\\.org", output: bob.name },
            { source: "{username}", match: "(root)@example\\.org", output: "{0}" },
          ],
        },
      ]),
    );
    const config = readFileSync(join(epDir, "config.yaml"), "utf8").replace(
      /^identity_mapping_config_path:.*$/m,
      "identity_mapping_config_path: idmap.json",
    );
    writeFileSync(join(epDir, "config.yaml"), config);
    mep = spawn(cli, ["start", "mu"], { env, stdio: ["ignore", "pipe", "pipe"] });
    mep.stdout?.setEncoding("utf8").on("data", (d: string) => {
      mepOut += d;
    });
    mep.stderr?.setEncoding("utf8").on("data", (d: string) => {
      mepOut += d;
    });
    const deadline = Date.now() + 30_000;
    while (!/Endpoint ID: [0-9a-f-]{36}/.test(mepOut)) {
      if (mep.exitCode !== null || Date.now() > deadline) throw new Error(`The MEP did not start: ${mepOut}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    endpointId = /Endpoint ID: ([0-9a-f-]{36})/.exec(mepOut)?.[1] ?? "";
  }, 180_000);

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
    for (const pid of endpointId ? uepPids(endpointId) : []) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    await service?.close();
    await vhost?.dispose();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (userDir) rmSync(userDir, { recursive: true, force: true });
    removeUsersAndGroups();
  }, 60_000);

  async function executorFor(username: string): Promise<Executor> {
    const { token } = await service.createIdentity(username);
    const executor = new Executor({ endpointId, client: new Client({ serviceUrl: service.url, token }) });
    executors.push(executor);
    return executor;
  }

  it("runs each identity's UEP and workers as its mapped user, unprivileged", async () => {
    for (const [identity, user] of [
      ["alice@example.org", alice],
      ["bob@example.org", bob],
    ] as const) {
      const executor = await executorFor(identity);
      const result = (await executor.submit(probe).result()) as Probe;
      expect(result.uid).toBe(user.uid);
      expect(result.gid).toBe(user.gid);
      expect([...result.groups].sort()).toEqual([user.gid, group.gid].sort());
      expectDropped(result.status, user, group.gid);
      const ueps = uepPids(endpointId).filter(
        (pid) => parseStatus(readFileSync(`/proc/${pid}/status`, "utf8")).Uid?.split(/\s+/)[0] === String(user.uid),
      );
      expect(ueps).toHaveLength(1);
      const status = readFileSync(`/proc/${ueps[0]}/status`, "utf8");
      expectDropped(status, user, group.gid);
      expect(parseStatus(status).PPid).toBe(String(mep?.pid));
    }
    const log = readFileSync(join(userDir, "mu", "endpoint.log"), "utf8");
    expect(log).toContain(`Command process successfully forked for '${alice.name}' (Conduit effective identity:`);
    expect(log).toMatch(
      new RegExp(`Creating new user endpoint \\(pid: \\d+\\) \\[\\(${bob.name}, uep\\.${endpointId}\\.`),
    );
  }, 120_000);

  it("fails the tasks of an identity that maps to no local user", async () => {
    const executor = await executorFor("carol@example.net");
    await expect(executor.submit(probe).result()).rejects.toThrow(/Identity failed to map to a local user name/);
  }, 60_000);

  it("refuses an identity that maps to root", async () => {
    const executor = await executorFor("root@example.org");
    await expect(executor.submit(probe).result()).rejects.toThrow(/Requested UID is same as Manager Endpoint UID/);
  }, 60_000);

  it("exits 78 naming the file when the identity mapping cannot be read", async () => {
    const env = {
      ...process.env,
      CONDUIT_USER_DIR: userDir,
      CONDUIT_SERVICE_URL: service.url,
      CONDUIT_TOKEN: service.adminToken,
    };
    const configure = spawn(cli, ["configure", "broken", "--multi-user"], { env, stdio: "ignore" });
    expect(await new Promise((r) => configure.once("exit", r))).toBe(0);
    const epDir = join(userDir, "broken");
    writeFileSync(join(epDir, "idmap.json"), "[not json");
    const config = readFileSync(join(epDir, "config.yaml"), "utf8").replace(
      /^identity_mapping_config_path:.*$/m,
      "identity_mapping_config_path: idmap.json",
    );
    writeFileSync(join(epDir, "config.yaml"), config);
    const child = spawn(cli, ["start", "broken"], { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    expect(await new Promise((r) => child.once("exit", r))).toBe(78);
    expect(stderr).toMatch(
      new RegExp(
        `\\(SyntaxError\\) .* -- Unable to read identity mapping configuration from: ${join(epDir, "idmap.json")}`,
      ),
    );
  }, 60_000);
});
