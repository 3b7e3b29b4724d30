/**
 * The HighThroughputEngine's ports, attacked by another local user (issue
 * 19): a task of Bob's, running as Bob on the same host, finds the port of
 * an endpoint's interchange and the ports of its block manager, and tries
 * everything a local user can. With `encrypted` (the default) he cannot
 * read the engine's client key or secret, a TLS connection without a
 * certificate or with one of his own CA is refused before any frame, and
 * plain TCP gets nothing; with `encrypted: false` a guessed secret is
 * rejected. The block manager listens on no port at all: its one
 * connection goes out to the interchange. Root only (it creates Bob).
 */
import { spawn } from "node:child_process";
import { chmodSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EngineHarness, PIDS } from "../../packages/endpoint/test/engines.harness.js";
import {
  createUser,
  type LocalTestUser,
  removeUsersAndGroups,
} from "../../packages/endpoint/test/multi-user.helpers.js";

const asRoot = process.getuid?.() === 0;

/**
 * Bob's task: self-contained (Bob cannot read this checkout), it reports what
 * each attempt got as one JSON line. argv: port, TLS folder, secret file,
 * block manager ports (comma-separated).
 */
const BOBS_TASK = `
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { connect as tcp } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tls } from "node:tls";
const [port, tlsDir, secretFile, managerPorts] = process.argv.slice(1);
const register = JSON.stringify({ v: 1, cmd: "register", blockId: "0", secret: "guess", pid: process.pid,
  hostname: "bob", workers: 64, nodeVersion: process.version, conduitVersion: "0.1.0", via: "x" }) + "\\n";
function read(path) {
  try { readFileSync(path); return "read"; } catch (err) { return err.code; }
}
/** What the peer sent before the connection ended ("" for nothing), or the connect error's code. */
function attempt(socket, ready) {
  return new Promise((resolve) => {
    let text = "";
    let failed;
    socket.once(ready, () => socket.write(register));
    socket.on("data", (c) => { text += c; });
    socket.on("error", (err) => { failed = err.code; });
    socket.on("close", () => resolve(text !== "" ? text.trim() : failed === "ECONNREFUSED" ? failed : ""));
  });
}
const dir = mkdtempSync(join(tmpdir(), "bob-ca-"));
execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
  "-keyout", join(dir, "k"), "-out", join(dir, "c"), "-days", "1", "-subj", "/CN=conduit-block-manager"], { stdio: "ignore" });
const host = "127.0.0.1";
const report = {
  clientKey: read(join(tlsDir, "client.key")),
  secret: read(secretFile),
  plain: await attempt(tcp({ host, port: Number(port) }), "connect"),
  tlsNoCert: await attempt(tls({ host, port: Number(port), rejectUnauthorized: false }), "secureConnect"),
  tlsOwnCert: await attempt(tls({ host, port: Number(port), rejectUnauthorized: false,
    cert: readFileSync(join(dir, "c")), key: readFileSync(join(dir, "k")) }), "secureConnect"),
  managerPorts: await Promise.all(managerPorts.split(",").filter(Boolean).map((p) =>
    attempt(tcp({ host, port: Number(p) }), "connect"))),
};
process.stdout.write(JSON.stringify(report) + "\\n");
`;

interface BobsReport {
  clientKey: string;
  secret: string;
  plain: string;
  tlsNoCert: string;
  tlsOwnCert: string;
  managerPorts: string[];
}

async function runAsBob(bob: LocalTestUser, args: string[]): Promise<BobsReport> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", BOBS_TASK, ...args], {
    uid: bob.uid,
    gid: bob.gid,
    cwd: bob.home,
    env: { HOME: bob.home, PATH: process.env.PATH ?? "/usr/bin:/bin", TMPDIR: "/tmp" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (c) => {
    out += c;
  });
  child.stderr.on("data", (c) => {
    err += c;
  });
  const code = await new Promise((resolve) => child.once("exit", resolve));
  expect(code, err).toBe(0);
  return JSON.parse(out) as BobsReport;
}

/** TCP ports of a process's sockets, and whether any of them listens (from /proc/net/tcp{,6}). */
function socketPorts(pid: number): { ports: number[]; listening: number[] } {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const target = readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: "utf8" });
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1]);
  }
  const ports: number[] = [];
  const listening: number[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").trim().split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (!inodes.has(cols[9])) continue;
      const port = Number.parseInt(cols[1].split(":")[1], 16);
      ports.push(port);
      if (cols[3] === "0A") listening.push(port);
    }
  }
  return { ports, listening };
}

let bob: LocalTestUser;
let h: EngineHarness | undefined;

beforeAll(() => {
  if (asRoot) bob = createUser();
});
afterEach(async () => {
  await h?.close();
  h = undefined;
});
afterAll(() => {
  if (asRoot) removeUsersAndGroups();
});

async function startEngine(encrypted: boolean): Promise<{ port: number; managerPid: number; workerPid: number }> {
  h = await EngineHarness.start({
    type: "HighThroughputEngine",
    encrypted,
    provider: { type: "LocalProvider", init_blocks: 1, max_blocks: 1 },
  });
  // Bob may walk into the run folder: the files' own modes must keep him out.
  chmodSync(h.runDir, 0o755);
  const { pid, ppid } = (await h.run(PIDS)) as { pid: number; ppid: number };
  const port = Number(/interchange on 127\.0\.0\.1:(\d+)/.exec(h.logs.join("\n"))?.[1]);
  return { port, managerPid: ppid, workerPid: pid };
}

function runDirFile(harness: EngineHarness, suffix: string): string {
  return join(harness.runDir, readdirSync(harness.runDir).find((f) => f.endsWith(suffix)) ?? `missing${suffix}`);
}

describe.skipIf(!asRoot)("another local user against the HighThroughputEngine's ports", () => {
  it("with encrypted (the default): no key, no secret, no TLS without the engine's certificate, nothing over plain TCP", async () => {
    const { port, managerPid, workerPid } = await startEngine(true);
    const manager = socketPorts(managerPid);
    expect(manager.listening).toEqual([]);
    // Its workers talk to it over pipes: no port either.
    expect(socketPorts(workerPid).ports).toEqual([]);
    expect(manager.ports.length).toBeGreaterThan(0);
    const report = await runAsBob(bob, [
      String(port),
      runDirFile(h as EngineHarness, ".tls"),
      runDirFile(h as EngineHarness, ".secret"),
      manager.ports.join(","),
    ]);
    expect(report).toEqual({
      clientKey: "EACCES",
      secret: "EACCES",
      plain: "",
      tlsNoCert: "",
      tlsOwnCert: "",
      managerPorts: manager.ports.map(() => "ECONNREFUSED"),
    });
    const refusals = (h as EngineHarness).logs.filter((l) => l.includes("The interchange refused a TLS connection"));
    expect(refusals.length).toBeGreaterThanOrEqual(3);
    // Bob's attempts cost the endpoint nothing: its block still runs tasks.
    expect(await (h as EngineHarness).run("() => 'still here'")).toBe("still here");
    expect((h as EngineHarness).engine.status()).toMatchObject({ blocks: 1, totalWorkers: 1 });
  });

  it("with encrypted: false: a guessed secret is rejected, and the block manager listens on nothing", async () => {
    const { port, managerPid } = await startEngine(false);
    const manager = socketPorts(managerPid);
    expect(manager.listening).toEqual([]);
    const report = await runAsBob(bob, [
      String(port),
      "/nonexistent",
      runDirFile(h as EngineHarness, ".secret"),
      manager.ports.join(","),
    ]);
    expect(report.secret).toBe("EACCES");
    expect(JSON.parse(report.plain)).toEqual({ v: 1, cmd: "rejected", reason: "wrong secret" });
    expect(report.managerPorts).toEqual(manager.ports.map(() => "ECONNREFUSED"));
    expect((h as EngineHarness).engine.status()).toMatchObject({ blocks: 1, totalWorkers: 1 });
  });
});
