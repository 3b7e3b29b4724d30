/**
 * The HighThroughputEngine's network side: TLS between the interchange and
 * its block managers (certificates made at start, checked both ways), the
 * secret, block managers that reach no address, a block manager of other
 * versions, and a block manager that stops answering (heartbeats).
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { connect as connectTcp, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { connect as connectTls } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { HighThroughputEngine } from "../src/engines/high-throughput-engine.js";
import { createInterchangeTls } from "../src/engines/interchange-tls.js";
import { workerEntryPath } from "../src/worker/worker-entry.js";
import { EngineHarness, expectGone, hteConfig, killQuietly, PIDS, WAIT_FOR_FILE } from "./engines.harness.js";

let h: EngineHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function interchangePort(harness: EngineHarness): number {
  const port = Number(/interchange on 127\.0\.0\.1:(\d+)/.exec(harness.logs.join("\n"))?.[1]);
  expect(port).toBeGreaterThan(0);
  return port;
}

/** The engine's TLS folder in its run dir. */
function tlsDir(harness: EngineHarness): string {
  const name = readdirSync(harness.runDir).find((f) => f.endsWith(".tls"));
  expect(name).toBeDefined();
  return join(harness.runDir, name as string);
}

const GUESSED_REGISTRATION = `${JSON.stringify({ v: 1, cmd: "register", blockId: "0", secret: "guess", pid: 1, hostname: "x", workers: 4, nodeVersion: process.version, conduitVersion: "0.1.0", via: "x" })}\n`;

/** Everything the server sent until the connection ended, and the client-side error, if any. */
async function exchange(socket: Socket, ready: string, send: string): Promise<{ text: string; error?: string }> {
  return new Promise((resolve) => {
    let text = "";
    let error: string | undefined;
    socket.once(ready, () => socket.write(send));
    socket.on("data", (chunk) => {
      text += chunk;
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    socket.on("close", () => resolve({ text, error }));
  });
}

describe("HighThroughputEngine over TLS (encrypted, the default)", () => {
  it("runs tasks over TLS, with the certificates in a 0700 folder of 0600 files and no CA key left", async () => {
    h = await EngineHarness.start(hteConfig());
    expect(await h.run("(a, b) => a + b", [2, 3])).toBe(5);
    expect(h.logs.join("\n")).toMatch(/interchange on 127\.0\.0\.1:\d+ \(TLS; blocks try 127\.0\.0\.1\)/);
    const dir = tlsDir(h);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir).sort();
    expect(files).toEqual(["ca.pem", "client.key", "client.pem", "server.key", "server.pem"]);
    for (const f of files) expect(statSync(join(dir, f)).mode & 0o777, f).toBe(0o600);
  });

  it("refuses a client without a certificate, with another CA's certificate, or speaking plain TCP", async () => {
    h = await EngineHarness.start(hteConfig({}, { init_blocks: 0 }));
    const port = interchangePort(h);
    const noCert = await exchange(
      connectTls({ host: "127.0.0.1", port, rejectUnauthorized: false }),
      "secureConnect",
      GUESSED_REGISTRATION,
    );
    const foreign = await createInterchangeTls(join(h.runDir, "foreign-ca"));
    const otherCa = await exchange(
      connectTls({
        host: "127.0.0.1",
        port,
        rejectUnauthorized: false,
        cert: readFileSync(join(foreign.dir, "client.pem")),
        key: readFileSync(join(foreign.dir, "client.key")),
      }),
      "secureConnect",
      GUESSED_REGISTRATION,
    );
    const plain = await exchange(connectTcp({ host: "127.0.0.1", port }), "connect", GUESSED_REGISTRATION);
    // Not one byte of the protocol reaches a peer without this engine's client certificate.
    for (const outcome of [noCert, otherCa, plain]) expect(outcome.text).not.toMatch(/"cmd"/);
    const refusals = () => h?.logs.filter((l) => l.includes("The interchange refused a TLS connection from")) ?? [];
    await expect.poll(() => refusals()).toHaveLength(3);
    expect(refusals().join("\n")).toContain("from 127.0.0.1: peer did not return a certificate.");
    expect(refusals().join("\n")).toContain("from 127.0.0.1: wrong version number.");
    expect(h.engine.status()).toMatchObject({ totalWorkers: 0, blocks: 0 });
  });

  it("rejects a client with the engine's certificate but a wrong secret", async () => {
    h = await EngineHarness.start(hteConfig({}, { init_blocks: 0 }));
    const dir = tlsDir(h);
    const reply = await exchange(
      connectTls({
        host: "127.0.0.1",
        port: interchangePort(h),
        ca: readFileSync(join(dir, "ca.pem")),
        cert: readFileSync(join(dir, "client.pem")),
        key: readFileSync(join(dir, "client.key")),
        checkServerIdentity: () => undefined,
      }),
      "secureConnect",
      GUESSED_REGISTRATION,
    );
    expect(JSON.parse(reply.text)).toEqual({ v: 1, cmd: "rejected", reason: "wrong secret" });
  });
});

describe("HighThroughputEngine with encrypted: false", () => {
  it("runs tasks over plain TCP and rejects a block that does not present the engine's secret", async () => {
    h = await EngineHarness.start(hteConfig({ encrypted: false }));
    expect(await h.run("(a, b) => a * b", [6, 7])).toBe(42);
    expect(readdirSync(h.runDir).filter((f) => f.endsWith(".tls"))).toEqual([]);
    const reply = await exchange(
      connectTcp({ host: "127.0.0.1", port: interchangePort(h), noDelay: true }),
      "connect",
      GUESSED_REGISTRATION,
    );
    expect(JSON.parse(reply.text)).toEqual({ v: 1, cmd: "rejected", reason: "wrong secret" });
  });
});

describe("HighThroughputEngine network options", () => {
  it.each([
    [
      { address: "login node 1" },
      'engine.address must be an IP address or host name of this host (0.0.0.0 or :: for every address) (got "login node 1").',
    ],
    [
      { worker_port: 54000, worker_port_range: [54000, 55000] },
      "engine.worker_port and engine.worker_port_range are both set; keep one (worker_port for one port, worker_port_range for any of several).",
    ],
    [
      { worker_port_range: [55000, 54000] },
      "engine.worker_port_range must be a list of two port numbers [low, high] with low ≤ high (got [55000,54000]).",
    ],
    [
      { heartbeat_period: 30, heartbeat_threshold: 45 },
      "engine.heartbeat_threshold (45 s) is less than twice engine.heartbeat_period (30 s), so one late heartbeat would count a block as lost; raise heartbeat_threshold or lower heartbeat_period.",
    ],
  ])("refuses %j with one sentence", (options, sentence) => {
    expect(() => HighThroughputEngine.parse(options)).toThrow(sentence);
  });
});

describe("HighThroughputEngine: addresses, ports, versions, heartbeats", () => {
  it("listens on worker_port when given, and a block manager logs the address it used", async () => {
    const port = await freePort();
    h = await EngineHarness.start(hteConfig({ worker_port: port }));
    expect(await h.run(PIDS)).toBeTruthy();
    expect(h.logs.join("\n")).toContain(`interchange on 127.0.0.1:${port} (TLS`);
    expect(h.logs.join("\n")).toMatch(new RegExp(`Block 0 connected: .* \\(via 127\\.0\\.0\\.1:${port}\\)`));
  });

  it("a block manager that reaches none of its addresses exits 1 naming each address and why", async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        workerEntryPath("block-manager"),
        "--addresses",
        "127.0.0.1,127.0.0.2",
        "--port",
        String(port),
        "--block-id",
        "7",
        "--workers",
        "1",
        "--secret-file",
        "/dev/null",
        "--heartbeat-period",
        "1",
        "--heartbeat-threshold",
        "3",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(1);
    expect(stderr).toContain(
      `Block 7 could not start: could not reach the interchange at any of 127.0.0.1:${port} (ECONNREFUSED), 127.0.0.2:${port} (ECONNREFUSED); set the engine's address to one this node`,
    );
  });

  it("fails the block of a block manager on another Node major version at once, naming both versions and worker_init", async () => {
    // worker_init changes the Node the block runs on, as a `module load` would; here it only changes what it reports.
    const fake = "v18.20.4";
    // Backquotes: NODE_OPTIONS takes double quotes as its own quoting.
    const preload = `data:text/javascript,Object.defineProperty(process,\`version\`,{value:\`${fake}\`})`;
    h = await EngineHarness.start(hteConfig({}, { worker_init: `export NODE_OPTIONS='--import=${preload}'` }));
    const result = await h.submit(PIDS);
    expect(result).toMatchObject({ ok: false, error: { code: "BLOCK_START_FAILED" } });
    if (result.ok) return;
    const major = process.version.split(".")[0].slice(1);
    expect(result.error.message).toMatch(
      new RegExp(
        `^Block 0 failed to start: its block manager on .* runs Conduit \\S+ on Node ${fake} \\(interchange protocol 1\\), but the user endpoint runs Conduit \\S+ on Node ${process.version.replaceAll(".", "\\.")} \\(interchange protocol 1\\); fix the provider's worker_init \\(or the install on the nodes\\) so that blocks run Node ${major} and Conduit`,
      ),
    );
    // Not resubmitted: one block only.
    expect(h.logs.filter((l) => l.includes("Starting block"))).toHaveLength(1);
  });

  it("counts a block that stops sending heartbeats as lost, naming the heartbeat, and runs the next task on a new block", async () => {
    h = await EngineHarness.start(hteConfig({ heartbeat_period: 0.2, heartbeat_threshold: 1 }));
    const marker = join(h.runDir, "never");
    const stuck = h.submit(WAIT_FOR_FILE, [marker]);
    await expect.poll(() => h?.engine.status().totalWorkers, { timeout: 20_000 }).toBe(1);
    const managerPid = Number(/block manager pid (\d+)/.exec(h.logs.join("\n"))?.[1]);
    expect(managerPid).toBeGreaterThan(0);
    // Stopped, not killed: its connection stays open, as when its node is cut off.
    process.kill(managerPid, "SIGSTOP");
    try {
      const lost = await stuck;
      expect(lost).toMatchObject({ ok: false, error: { code: "WORKER_LOST" } });
      if (lost.ok) return;
      expect(lost.error.message).toMatch(
        new RegExp(
          `^Block 0 \\(block manager pid ${managerPid} on .*\\) was lost: its block manager sent no heartbeat for [\\d.]+ s \\(heartbeat_threshold: 1 s\\): its node is down or cannot reach the interchange, while running task ${lost.taskId}; it was not re-run`,
        ),
      );
      expect(h.logs.join("\n")).toContain("Too many heartbeats missed by block 0");
      expect(((await h.run(PIDS)) as { ppid: number }).ppid).not.toBe(managerPid);
    } finally {
      killQuietly(managerPid, "SIGCONT");
    }
    await expectGone([managerPid]);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
