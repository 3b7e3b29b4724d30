/**
 * The audit log of a real High-Assurance multi-user endpoint (root, the
 * installed CLI, real local users, the default high-throughput template):
 * created 0600, its session lines, each task's records line by line, the
 * audit channel never reaching a block manager or worker, a task forging
 * records on everything it can write to, and a write error stopping the MEP.
 */
import type { ChildProcess } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, Executor } from "@conduit/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHighAssuranceKeys, createVhost } from "../../../scripts/local-stack.mjs";
import {
  createUser,
  installedCli,
  killUeps,
  type LocalTestUser,
  parseStatus,
  removeUsersAndGroups,
  type StartedMep,
  startMultiUserMep,
  waitFor,
} from "./multi-user.helpers.js";

/** ISO 8601 local time with microseconds and offset, as in the seed. */
const TS = String.raw`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}[+-]\d{2}:\d{2}`;
const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

const MARKER = "FORGED-RECORD";

type Node = typeof import("node:fs");
/** Shipped as source: Node globals only (fs from `process.getBuiltinModule`). */
type WithBuiltins = { getBuiltinModule(id: string): Node };

async function probe(): Promise<{ pid: number; fds: string[] }> {
  const fs = (process as unknown as WithBuiltins).getBuiltinModule("node:fs");
  const fds = fs.readdirSync("/proc/self/fd").map((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return "";
    }
  });
  return { pid: process.pid, fds };
}

async function notPermitted(): Promise<number> {
  return 1;
}

/**
 * Writes forged audit records (bare lines, and JSON lines as a UEP sends
 * them) to every descriptor of its own and to every /proc/<ancestor>/fd/N it
 * can open (its UEP's among them), then leaves `~/forged.done` with the count.
 */
async function forge(endpointId: string, marker: string): Promise<number> {
  const fs = (process as unknown as WithBuiltins).getBuiltinModule("node:fs");
  const at = new Date().toISOString();
  const lines = [
    `${at} uid=0 pid=1 eid=${endpointId} End MEP session ----- ${marker}`,
    `${at} uid=0 pid=1 uep=00000000-0000-4000-8000-000000000000 fid=x tid=x bid= EXEC_END ${marker}`,
  ];
  const text = `\n${lines.join("\n")}\n${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;
  let written = 0;
  const done = `${process.env.HOME}/forged.done`;
  // Atomically, so the test never reads a truncated count.
  const say = () => {
    fs.writeFileSync(`${done}.tmp`, String(written));
    fs.renameSync(`${done}.tmp`, done);
  };
  const tryWrite = (fd: number) => {
    try {
      fs.writeSync(fd, text);
      written++;
      // Said at once: garbage on the worker's own channel may get it ended before it returns.
      say();
    } catch {
      // not writable
    }
  };
  const ancestors: number[] = [];
  for (let pid = process.pid; pid > 1; ) {
    pid = Number(/PPid:\s*(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 1);
    ancestors.push(pid);
  }
  for (const pid of ancestors) {
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const n of fds) {
      let fd: number;
      try {
        const { O_WRONLY, O_NONBLOCK, O_APPEND } = fs.constants;
        fd = fs.openSync(`/proc/${pid}/fd/${n}`, O_WRONLY | O_NONBLOCK | O_APPEND);
      } catch {
        continue;
      }
      tryWrite(fd);
      fs.closeSync(fd);
    }
  }
  for (const fd of fs.readdirSync("/proc/self/fd")) tryWrite(Number(fd));
  say();
  return written;
}

/** What the MEP's log says it launched: UEP pid → its user and UEP id. */
function launchedUeps(mepLog: string): Map<number, { user: string; uepId: string }> {
  const launched = new Map<number, { user: string; uepId: string }>();
  const re = new RegExp(`Creating new user endpoint \\(pid: (\\d+)\\) \\[\\((\\S+), uep\\.${UUID}\\.(${UUID})\\)`, "g");
  for (const m of mepLog.matchAll(re)) launched.set(Number(m[1]), { user: m[2] as string, uepId: m[3] as string });
  return launched;
}

/** Uid of a live process, or undefined once it is gone. */
function uidOf(pid: number): number | undefined {
  try {
    return Number(parseStatus(readFileSync(`/proc/${pid}/status`, "utf8")).Uid?.split(/\s+/)[0]);
  } catch {
    return undefined;
  }
}

describe.skipIf(process.getuid?.() !== 0)("the audit log of a High-Assurance multi-user endpoint", () => {
  let cli: string;
  let userDir: string;
  let dataDir: string;
  let vhost: { url: string; dispose(): Promise<void> };
  let service: Awaited<ReturnType<typeof import("@conduit/service").startService>>;
  let alice: LocalTestUser;
  let bob: LocalTestUser;
  let mep: StartedMep;
  let auditPath: string;
  let haKeys = "";
  const meps: ChildProcess[] = [];
  const executors: Executor[] = [];
  let aliceExecutor: Executor;
  let probeId = "";
  let forgeId = "";

  function env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      CONDUIT_USER_DIR: userDir,
      CONDUIT_SERVICE_URL: service.url,
      CONDUIT_TOKEN: service.adminToken,
    };
  }

  async function executorFor(username: string): Promise<Executor> {
    const { token } = await service.createIdentity(username);
    const executor = new Executor({
      endpointId: mep.endpointId,
      client: new Client({ serviceUrl: service.url, token }),
    });
    executors.push(executor);
    return executor;
  }

  function auditLines(): string[] {
    return readFileSync(auditPath, "utf8").split("\n").slice(0, -1);
  }

  /** The UEP (pid, id) running as `user`, from the MEP's log. */
  function uepOf(user: LocalTestUser): { pid: number; uepId: string } {
    const mepLog = readFileSync(join(userDir, "ha", "endpoint.log"), "utf8");
    const found = [...launchedUeps(mepLog)].find(([pid, u]) => u.user === user.name && uidOf(pid) === user.uid);
    if (!found) throw new Error(`No running user endpoint of ${user.name}`);
    return { pid: found[0], uepId: found[1].uepId };
  }

  beforeAll(async () => {
    cli = installedCli();
    alice = createUser();
    bob = createUser();
    const { startService } = await import("@conduit/service");
    vhost = await createVhost();
    dataDir = mkdtempSync(join(tmpdir(), "conduit-svc-"));
    service = await startService({ port: 0, dataDir, writeCredentials: false, amqpUrl: vhost.url });
    const keys = await createHighAssuranceKeys(service.url, service.adminToken);
    haKeys = `authentication_policy: ${keys.authentication_policy}\nsubscription_id: ${keys.subscription_id}\n`;
    userDir = mkdtempSync(join(tmpdir(), "conduit-mu-"));
    auditPath = join(userDir, "ha", "audit.log");
    mep = await startMultiUserMep({
      cli,
      env: env(),
      userDir,
      name: "ha",
      mappings: [
        { source: "{username}", match: "alice@example\\.org", output: alice.name },
        { source: "{username}", match: "bob@example\\.org", output: bob.name },
      ],
      extraConfig: `high_assurance: true\naudit_log_path: ${auditPath}\n${haKeys}`,
    });
    meps.push(mep.child);
    expect(mep.endpointId, mep.output()).not.toBe("");
    aliceExecutor = await executorFor("alice@example.org");
    probeId = await aliceExecutor.registerFunction(probe);
    forgeId = await aliceExecutor.registerFunction(forge);
    // The template (read for each new UEP) names the functions it runs: the ids are known once registered.
    const template = join(userDir, "ha", "user_config_template.yaml.j2");
    writeFileSync(template, `${readFileSync(template, "utf8")}\nallowed_functions:\n  - ${probeId}\n  - ${forgeId}\n`);
  }, 180_000);

  afterAll(async () => {
    for (const e of executors) await e.shutdown({ cancelFutures: true }).catch(() => {});
    for (const child of meps) {
      if (child.exitCode !== null) continue;
      child.kill("SIGKILL");
    }
    killUeps([mep?.endpointId ?? "none"]);
    await service?.close();
    await vhost?.dispose();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (userDir) rmSync(userDir, { recursive: true, force: true });
    removeUsersAndGroups();
  }, 60_000);

  it("is created with mode 0600 and begins with the MEP's session line", () => {
    const stat = statSync(auditPath);
    expect(stat.mode & 0o777).toBe(0o600);
    expect(stat.uid).toBe(0);
    expect(auditLines()[0]).toMatch(
      new RegExp(`^${TS} uid=0 pid=${mep.child.pid} eid=${mep.endpointId} Begin MEP session =====$`),
    );
  });

  it("records each state of a task under its UEP's uid, pid and id, the block and job once known", async () => {
    const future = aliceExecutor.submit(probe);
    await future.result();
    const { pid, uepId } = uepOf(alice);
    const prefix = `^${TS} uid=${alice.uid} pid=${pid} uep=${uepId} fid=${probeId} tid=${future.taskId} `;
    const mine = await waitFor("the task's EXEC_END record", () => {
      const lines = auditLines().filter((l) => l.includes(`tid=${future.taskId} `));
      return lines.some((l) => l.endsWith(" EXEC_END")) ? lines : undefined;
    });
    expect(mine).toHaveLength(4);
    expect(mine[0]).toMatch(new RegExp(`${prefix}bid= RECEIVED$`));
    expect(mine[1]).toMatch(new RegExp(`${prefix}bid= EXEC_START$`));
    const running = new RegExp(`${prefix}bid=(\\d+) jid=(\\d+) RUNNING$`).exec(mine[2] as string);
    expect(running, mine[2]).not.toBeNull();
    expect(mine[3]).toMatch(new RegExp(`${prefix}bid=${running?.[1]} jid=${running?.[2]} EXEC_END$`));
  }, 90_000);

  it("records FAILED for a function the template does not allow", async () => {
    const future = aliceExecutor.submit(notPermitted);
    await expect(future.result()).rejects.toThrow(/not permitted on endpoint/);
    const { pid, uepId } = uepOf(alice);
    const mine = await waitFor("the task's FAILED record", () => {
      const lines = auditLines().filter((l) => l.includes(`tid=${future.taskId} `));
      return lines.length === 2 ? lines : undefined;
    });
    const prefix = `^${TS} uid=${alice.uid} pid=${pid} uep=${uepId} fid=${UUID} tid=${future.taskId} bid= `;
    expect(mine[0]).toMatch(new RegExp(`${prefix}RECEIVED$`));
    expect(mine[1]).toMatch(new RegExp(`${prefix}FAILED - Function not permitted on endpoint$`));
  }, 60_000);

  it("keeps the UEP's audit descriptor out of its block manager and workers", async () => {
    const { pid: worker, fds } = await aliceExecutor.submit(probe).result();
    const { pid: uep } = uepOf(alice);
    const channel = readlinkSync(`/proc/${uep}/fd/3`);
    expect(channel).toMatch(/^socket:\[\d+\]$/);
    expect(fds).not.toContain(channel);
    // Every other process of the user: the block manager, its workers (the one that ran the probe among them).
    const others = readdirSync("/proc")
      .filter((e) => /^\d+$/.test(e) && Number(e) !== uep && uidOf(Number(e)) === alice.uid)
      .map(Number);
    expect(others).toContain(worker);
    for (const pid of others) {
      let links: string[] = [];
      try {
        links = readdirSync(`/proc/${pid}/fd`).map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        continue; // exited meanwhile
      }
      expect(links, `process ${pid}`).not.toContain(channel);
    }
  }, 60_000);

  it("files records of a forging task at most under its own UEP's prefix, and ends with the MEP's session line", async () => {
    // Another user's UEP, whose prefix a forger must not be able to use (its executor's probe is not allowed).
    const bobs = (await executorFor("bob@example.org")).submit(probe).result();
    await expect(bobs).rejects.toThrow(/not permitted on endpoint/);
    const aliceUep = uepOf(alice).uepId;
    const done = join(alice.home, "forged.done");
    const future = aliceExecutor.submit(forge, mep.endpointId, MARKER);
    let settled = false;
    void future.result().then(
      () => (settled = true),
      () => (settled = true),
    );
    await waitFor("the forging task", () => (existsSync(done) || settled ? true : undefined), 60_000);
    expect(Number(readFileSync(done, "utf8"))).toBeGreaterThan(0);
    mep.child.kill("SIGTERM");
    expect(await new Promise((r) => mep.child.once("exit", r))).toBe(0);

    const launched = launchedUeps(readFileSync(join(userDir, "ha", "endpoint.log"), "utf8"));
    const uids = new Map([
      [alice.name, alice.uid],
      [bob.name, bob.uid],
    ]);
    const lines = auditLines();
    const session = (what: string) =>
      new RegExp(`^${TS} uid=0 pid=${mep.child.pid} eid=${mep.endpointId} ${what} MEP session (=====|-----)$`);
    expect(lines[0]).toMatch(session("Begin"));
    expect(lines.at(-1)).toMatch(session("End"));
    const record = new RegExp(`^${TS} uid=(\\d+) pid=(\\d+) uep=(${UUID}) (.*)$`);
    const state = new RegExp(
      `^fid=${UUID} tid=${UUID} bid=\\d* (jid=\\d+ )?(RECEIVED|EXEC_START|RUNNING|EXEC_END|FAILED - Function not permitted on endpoint)$`,
    );
    const prefixes = new Set<string>();
    for (const line of lines.slice(1, -1)) {
      const m = record.exec(line);
      expect(m, line).not.toBeNull();
      const [, uid, pid, uepId, rest] = m as RegExpExecArray;
      const ueps = launched.get(Number(pid));
      // The prefix is one the MEP gave a UEP it launched: its user's uid, its pid, its id.
      expect(ueps, line).toBeDefined();
      expect(Number(uid), line).toBe(uids.get(ueps?.user ?? ""));
      expect(uepId, line).toBe(ueps?.uepId);
      prefixes.add(`${uid} ${uepId}`);
      if (rest?.includes(MARKER)) expect(`${uid} ${uepId}`, line).toBe(`${alice.uid} ${aliceUep}`);
      else expect(rest, line).toMatch(state);
    }
    expect(prefixes.size).toBe(2);
  }, 120_000);

  it("stops the MEP, saying why, when the audit log cannot be written", async () => {
    const full = await startMultiUserMep({
      cli,
      env: env(),
      userDir,
      name: "full",
      mappings: [],
      extraConfig: `high_assurance: true\naudit_log_path: /dev/full\n${haKeys}`,
    });
    meps.push(full.child);
    const code = full.child.exitCode ?? (await new Promise((r) => full.child.once("exit", r)));
    expect(code).toBe(1);
    const sentence = new RegExp(
      `Failed to write audit log message: \\[uid=0 pid=\\d+ eid=${UUID}\\] - ENOSPC.*; the endpoint stops \\(fail closed\\)\\.`,
    );
    expect(full.output()).toMatch(sentence);
    expect(readFileSync(join(userDir, "full", "endpoint.log"), "utf8")).toMatch(sentence);
    expect(full.output()).not.toContain("Endpoint ID");
  }, 60_000);
});
