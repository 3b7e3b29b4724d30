/**
 * A multi-user endpoint, started as root from an installed prefix (never the
 * checkout, which mapped users may not be able to read), runs each identity's
 * UEP and workers as the local user the mapping names, with no privileges
 * left; identities that map to nobody, to a user that does not exist, or to
 * root are refused and their tasks fail with the reason, unless
 * `allow_privileged_user_mapping: true` lets root through.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client, Executor } from "@conduit/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVhost } from "../../../scripts/local-stack.mjs";
import {
  createGroup,
  createUser,
  installedCli,
  killUeps,
  type LocalTestUser,
  parseStatus,
  removeUsersAndGroups,
  startMultiUserMep,
  uepPids,
  uniqueName,
} from "./multi-user.helpers.js";

/** The checkout, which multi-user tests must not run Conduit from. */
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

type Probe = { uid: number; gid: number; groups: number[]; status: string; script: string };

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
    script: process.argv[1] ?? "",
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
  /** A name the mapping hands out that no local account has. */
  let ghost = "";
  const mepChildren: ChildProcess[] = [];
  const endpointIds: string[] = [];
  let group: { name: string; gid: number };
  let alice: LocalTestUser;
  let bob: LocalTestUser;
  const executors: Executor[] = [];

  function cliEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      CONDUIT_USER_DIR: userDir,
      CONDUIT_SERVICE_URL: service.url,
      CONDUIT_TOKEN: service.adminToken,
    };
  }

  /**
   * Configures endpoint `name` as multi-user with `mappings` as its one
   * expression mapper (and `extraConfig` appended to config.yaml), starts it
   * from the installed prefix and waits for its id.
   */
  async function startMep(
    name: string,
    mappings: object[],
    extraConfig = "",
  ): Promise<{ child: ChildProcess; endpointId: string }> {
    const started = await startMultiUserMep({ cli, env: cliEnv(), userDir, name, mappings, extraConfig });
    mepChildren.push(started.child);
    if (!started.endpointId) throw new Error(`The MEP did not start: ${started.output()}`);
    endpointIds.push(started.endpointId);
    return started;
  }

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
    ghost = uniqueName("cdt_ghost_");
    const started = await startMep("mu", [
      { source: "{username}", match: "alice(\\.again)?@example\\.org", output: alice.name },
      { source: "{username}", match: "bob@example\\.org", output: bob.name },
      { source: "{username}", match: "(root)@example\\.org", output: "{0}" },
      { source: "{username}", match: "ghost@example\\.org", output: ghost },
    ]);
    mep = started.child;
    endpointId = started.endpointId;
  }, 180_000);

  afterAll(async () => {
    for (const e of executors) await e.shutdown({ cancelFutures: true }).catch(() => {});
    for (const child of mepChildren) {
      if (child.exitCode !== null) continue;
      child.kill("SIGTERM");
      await new Promise((r) => {
        const t = setTimeout(() => {
          child.kill("SIGKILL");
          r(undefined);
        }, 15_000);
        child.once("exit", () => {
          clearTimeout(t);
          r(undefined);
        });
      });
    }
    killUeps(endpointIds);
    await service?.close();
    await vhost?.dispose();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (userDir) rmSync(userDir, { recursive: true, force: true });
    // A UEP mapped to root keeps its directory in root's own ~/.conduit.
    const rootDir = "/root/.conduit";
    for (const entry of existsSync(rootDir) ? readdirSync(rootDir) : []) {
      if (endpointIds.some((id) => entry.startsWith(`uep.${id}.`)))
        rmSync(join(rootDir, entry), { recursive: true, force: true });
    }
    removeUsersAndGroups();
  }, 60_000);

  async function executorFor(
    username: string,
    onEndpoint = endpointId,
  ): Promise<{ executor: Executor; identityId: string }> {
    const { identity, token } = await service.createIdentity(username);
    const executor = new Executor({ endpointId: onEndpoint, client: new Client({ serviceUrl: service.url, token }) });
    executors.push(executor);
    return { executor, identityId: identity.id };
  }

  it("runs each identity's UEP and workers as its mapped user, unprivileged", async () => {
    for (const [identity, user] of [
      ["alice@example.org", alice],
      ["bob@example.org", bob],
    ] as const) {
      const { executor } = await executorFor(identity);
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
    const { executor } = await executorFor("carol@example.net");
    await expect(executor.submit(probe).result()).rejects.toThrow(/Identity failed to map to a local user name/);
  }, 60_000);

  it("refuses an identity that maps to root", async () => {
    const { executor } = await executorFor("root@example.org");
    await expect(executor.submit(probe).result()).rejects.toThrow(/Requested UID is same as Manager Endpoint UID/);
  }, 60_000);

  it("runs the mapped users' UEPs from the world-readable install, not from the checkout", async () => {
    const prefix = dirname(dirname(cli));
    expect(prefix.startsWith(ROOT)).toBe(false);
    // The worker that ran the task runs the install's code (the UEP's title hides its own argv).
    const { executor } = await executorFor("alice.again@example.org");
    const { script, uid } = (await executor.submit(probe).result()) as Probe;
    expect(uid).toBe(alice.uid);
    expect(script.startsWith(`${prefix}/`)).toBe(true);
    // The mapped user, with no privilege, can read every file of the install.
    for (const user of [alice, bob]) {
      const unreadable = spawnSync(
        "setpriv",
        [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", "--", "find", prefix, "!", "-readable"],
        { encoding: "utf8" },
      );
      expect(unreadable.status).toBe(0);
      expect(unreadable.stdout).toBe("");
    }
  }, 30_000);

  it("refuses an identity mapped to a local user that does not exist, naming the identity and the rule", async () => {
    const { executor, identityId } = await executorFor("ghost@example.org");
    await expect(executor.submit(probe).result()).rejects.toThrow(
      new RegExp(
        `Identity mapped to a local user name, but local user does not exist\\.\\s+Local user name: ${ghost}\\b`,
      ),
    );
    const log = readFileSync(join(userDir, "mu", "endpoint.log"), "utf8");
    const refusal = log.slice(log.indexOf(`Local user name: ${ghost}`));
    expect(refusal).toContain(`Conduit effective identity: ${identityId}`);
    expect(refusal).toContain("Mapped by: identity mapper 1 (expression_identity_mapping#1.0.0, rule 4)");
  }, 60_000);

  it("runs a UEP as root when allow_privileged_user_mapping is true", async () => {
    const privileged = await startMep(
      "mu-priv",
      [{ source: "{username}", match: "(root)@admin\\.example\\.org", output: "{0}" }],
      "allow_privileged_user_mapping: true\n",
    );
    const { executor, identityId } = await executorFor("root@admin.example.org", privileged.endpointId);
    const result = (await executor.submit(probe).result()) as Probe;
    expect(result.uid).toBe(0);
    const ueps = uepPids(privileged.endpointId);
    expect(ueps).toHaveLength(1);
    const status = parseStatus(readFileSync(`/proc/${ueps[0]}/status`, "utf8"));
    expect(status.Uid?.split(/\s+/).map(Number)).toEqual([0, 0, 0, 0]);
    // Still started through the same drop: root's account, but no capabilities and no way to gain any.
    expect(status.NoNewPrivs).toBe("1");
    expect(BigInt(`0x${status.CapBnd}`)).toBe(0n);
    const log = readFileSync(join(userDir, "mu-priv", "endpoint.log"), "utf8");
    expect(log).toContain(`Identity ${identityId} mapped to local user root (uid 0)`);
  }, 90_000);

  it("refuses to start while RabbitMQ accepts guest/guest from this host, unless allow_default_broker_login is set", async () => {
    const env = cliEnv();
    const configure = spawn(cli, ["configure", "guest", "--multi-user"], { env, stdio: "ignore" });
    expect(await new Promise((r) => configure.once("exit", r))).toBe(0);
    const epDir = join(userDir, "guest");
    writeFileSync(join(epDir, "idmap.json"), "[]");
    const config = readFileSync(join(epDir, "config.yaml"), "utf8").replace(
      /^identity_mapping_config_path:.*$/m,
      "identity_mapping_config_path: idmap.json",
    );
    writeFileSync(join(epDir, "config.yaml"), config);
    const child = spawn(cli, ["start", "guest"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    expect(await new Promise((r) => child.once("exit", r))).toBe(78);
    const sentence =
      "RabbitMQ at 127.0.0.1 accepts the default guest/guest login from this host, so any local user could act as the Conduit service; give the service its own administrator and delete guest (rabbitmqctl delete_user guest).";
    expect(stderr).toBe(`Error: ${sentence}\n`);
    expect(stdout).not.toContain("Endpoint ID");
    expect(readFileSync(join(epDir, "endpoint.log"), "utf8")).toContain(sentence);

    // Every MEP of this suite starts with the key, and says so in its log at every start.
    expect(readFileSync(join(userDir, "mu", "endpoint.log"), "utf8")).toContain(
      `allow_default_broker_login: true in ${join(userDir, "mu", "config.yaml")}, so this endpoint does not check whether RabbitMQ accepts the default guest/guest login, with which any local user could act as the Conduit service; use it only for tests on a shared broker.`,
    );
  }, 60_000);

  it("exits 78 naming the file when the identity mapping cannot be read", async () => {
    const env = cliEnv();
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
