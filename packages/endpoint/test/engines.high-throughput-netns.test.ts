/**
 * A HighThroughputEngine across two "nodes" without leaving this machine:
 * two network namespaces this test creates, joined by a veth pair with
 * addresses that exist only inside them. The UEP (and so the interchange,
 * listening on every address there) runs in one; worker_init moves each
 * block into the other, as a scheduler would start it on a compute node, and
 * the block manager finds the one address of the UEP's that it can reach. Then the link goes down: the block is
 * lost without its connection ever closing, and only heartbeats tell.
 * Root only (creating namespaces needs CAP_SYS_ADMIN).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EngineResult } from "../src/engine-task.js";
import type { EngineConfig } from "../src/engines/engine-types.js";
import { expectGone, killQuietly } from "./engines.harness.js";

const SUBNET = "10.213.7";
const UEP_ADDRESS = `${SUBNET}.1`;
const NODE_ADDRESS = `${SUBNET}.2`;

/** Why namespaces cannot be made here, or undefined when they can (tried for real). */
function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "creating network namespaces needs root";
  const probe = `cdt-probe-${randomBytes(3).toString("hex")}`;
  try {
    execFileSync("ip", ["netns", "add", probe], { stdio: "pipe" });
    execFileSync("ip", ["netns", "delete", probe], { stdio: "pipe" });
    return undefined;
  } catch (err) {
    return `\`ip netns add\` failed here (${String((err as { stderr?: Buffer }).stderr ?? err).trim()})`;
  }
}

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`Skipping the network namespace tests: ${unavailable}.`);

const tag = randomBytes(3).toString("hex");
const uepNs = `cdt-uep-${tag}`;
const nodeNs = `cdt-node-${tag}`;

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: "pipe" });
}

beforeAll(() => {
  if (unavailable) return;
  ip("netns", "add", uepNs);
  ip("netns", "add", nodeNs);
  // Both ends are created inside the namespaces: nothing appears in the host's own network.
  ip("link", "add", `cdu${tag}`, "netns", uepNs, "type", "veth", "peer", "name", `cdn${tag}`, "netns", nodeNs);
  ip("-n", uepNs, "addr", "add", `${UEP_ADDRESS}/24`, "dev", `cdu${tag}`);
  ip("-n", nodeNs, "addr", "add", `${NODE_ADDRESS}/24`, "dev", `cdn${tag}`);
  for (const [ns, dev] of [
    [uepNs, `cdu${tag}`],
    [nodeNs, `cdn${tag}`],
  ]) {
    ip("-n", ns, "link", "set", dev, "up");
    ip("-n", ns, "link", "set", "lo", "up");
  }
  // The pair has a carrier once both ends are up, a moment later: wait for it (5 s at most).
  const deadline = Date.now() + 5_000;
  const carrier = (ns: string, dev: string) =>
    execFileSync("ip", ["-n", ns, "-o", "link", "show", "dev", dev]).toString().includes("LOWER_UP");
  while (!(carrier(uepNs, `cdu${tag}`) && carrier(nodeNs, `cdn${tag}`)) && Date.now() < deadline) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
});

afterAll(() => {
  if (unavailable) return;
  for (const ns of [uepNs, nodeNs]) {
    try {
      ip("netns", "delete", ns);
    } catch {
      // already gone
    }
  }
});

/**
 * A UEP stand-in in a namespace: a Node process that starts the engine from
 * the built package and takes tasks as JSON lines on stdin; it writes each
 * result and each log line as a JSON line on stdout.
 */
class RemoteUep {
  readonly logs: string[] = [];
  private readonly waiters = new Map<string, (result: EngineResult) => void>();
  private counter = 0;

  private constructor(readonly child: ChildProcess) {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on("line", (line) => {
      const message = JSON.parse(line) as { log?: string; result?: EngineResult };
      if (message.log) this.logs.push(message.log);
      if (message.result) this.waiters.get(message.result.taskId)?.(message.result);
    });
  }

  static start(namespace: string, config: EngineConfig, runDir: string): RemoteUep {
    const registry = new URL("../dist/engines/registry.js", import.meta.url).href;
    const script = `
      import { createInterface } from "node:readline";
      import { createEngine } from ${JSON.stringify(registry)};
      const out = (m) => process.stdout.write(JSON.stringify(m) + "\\n");
      const line = (level) => (m) => out({ log: level + " " + m });
      const engine = createEngine(${JSON.stringify(config)});
      await engine.start({ runDir: ${JSON.stringify(runDir)}, env: process.env,
        log: { debug() {}, info: line("INFO"), warn: line("WARNING"), error: line("ERROR") },
        onResult: (result) => out({ result }) });
      createInterface({ input: process.stdin }).on("line", (l) => engine.submit(JSON.parse(l)));
      process.stdin.on("end", async () => { await engine.shutdown(); process.exit(0); });
    `;
    const child = spawn("ip", ["netns", "exec", namespace, process.execPath, "--input-type=module", "-e", script], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    return new RemoteUep(child);
  }

  submit(source: string, args: unknown[] = []): Promise<EngineResult> {
    const taskId = `netns-${++this.counter}`;
    const result = new Promise<EngineResult>((resolve) => this.waiters.set(taskId, resolve));
    this.child.stdin?.write(
      `${JSON.stringify({
        taskId,
        functionId: `fn-${this.counter}`,
        function: { strategy: "conduit.SourceCode", data: source },
        args: { strategy: "conduit.JSONData", data: JSON.stringify({ args }) },
      })}\n`,
    );
    return result;
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.stdin?.end();
    await exited;
  }
}

/**
 * The task's view of its node: its network namespace (as /proc names it) and
 * its block manager's pid. The namespace, not the address list: Node lists
 * only interfaces that are up and running, and a veth's carrier may lag.
 */
const WHERE_AM_I = `() => ({
  netns: process.getBuiltinModule("node:fs").readlinkSync("/proc/self/ns/net"),
  manager: process.ppid,
})`;

/** How /proc/<pid>/ns/net names the namespace `ip netns` calls `name`. */
function netnsId(name: string): string {
  return `net:[${statSync(`/run/netns/${name}`).ino}]`;
}

describe.skipIf(unavailable !== undefined)("HighThroughputEngine across two network namespaces", () => {
  it("runs tasks on a block in the other namespace over TLS, and names the block lost when the link goes down", async () => {
    const runDir = mkdtempSync(join(tmpdir(), "conduit-netns-"));
    // worker_init moves the block's shell into the node's namespace before its block manager starts.
    const workerInit = `if [ -z "$CONDUIT_TEST_ON_NODE" ]; then export CONDUIT_TEST_ON_NODE=1; exec ip netns exec ${nodeNs} /bin/bash "$0"; fi`;
    const uep = RemoteUep.start(
      uepNs,
      {
        type: "HighThroughputEngine",
        // Every address of the UEP's namespace: its block tries each (the veth's and loopback) and uses what answers.
        address: "0.0.0.0",
        heartbeat_period: 0.25,
        heartbeat_threshold: 1.5,
        job_status_kwargs: { strategy_period: 0.2 },
        provider: { type: "LocalProvider", init_blocks: 1, max_blocks: 1, worker_init: workerInit },
      },
      runDir,
    );
    let managerPid = 0;
    try {
      const first = await uep.submit(WHERE_AM_I);
      expect(first.ok, JSON.stringify(first)).toBe(true);
      if (!first.ok) return;
      const where = JSON.parse(first.value.data) as { netns: string; manager: number };
      managerPid = where.manager;
      expect(where.netns).toBe(netnsId(nodeNs));
      expect(where.netns).not.toBe(netnsId(uepNs));
      const logs = uep.logs.join("\n");
      expect(logs).toContain("interchange on 0.0.0.0:");
      expect(logs).toContain(`(TLS; blocks try ${UEP_ADDRESS}, 127.0.0.1)`);
      expect(logs).toMatch(new RegExp(`Block 0 connected: .* \\(via ${UEP_ADDRESS.replaceAll(".", "\\.")}:\\d+\\)`));

      const marker = join(runDir, "never");
      const hanging = uep.submit(
        `async (marker) => { const fs = process.getBuiltinModule("node:fs"); while (!fs.existsSync(marker)) await new Promise((r) => setTimeout(r, 50)); }`,
        [marker],
      );
      await expect.poll(() => uep.logs.some((l) => l.includes("Block 0 connected")), { timeout: 10_000 }).toBe(true);
      // The node drops off the network: no FIN, no RST, just silence.
      ip("-n", nodeNs, "link", "set", `cdn${tag}`, "down");
      const lost = await hanging;
      expect(lost).toMatchObject({ ok: false, error: { code: "WORKER_LOST" } });
      if (lost.ok) return;
      expect(lost.error.message).toMatch(
        /^Block 0 \(block manager pid \d+ on .*\) was lost: its block manager sent no heartbeat for [\d.]+ s \(heartbeat_threshold: 1\.5 s\): its node is down or cannot reach the interchange, while running task netns-2; it was not re-run/,
      );
      expect(uep.logs.join("\n")).toContain("Too many heartbeats missed by block 0");
      // The engine cancels the lost block's job: its block manager does not linger on the node.
      await expectGone([managerPid]);
    } finally {
      ip("-n", nodeNs, "link", "set", `cdn${tag}`, "up");
      await uep.stop();
      if (managerPid) killQuietly(managerPid);
      rmSync(runDir, { recursive: true, force: true });
    }
  });

  it("warns when the interchange listens beyond loopback with encrypted: false", async () => {
    const runDir = mkdtempSync(join(tmpdir(), "conduit-netns-"));
    const uep = RemoteUep.start(
      uepNs,
      {
        type: "HighThroughputEngine",
        encrypted: false,
        address: UEP_ADDRESS,
        provider: { type: "LocalProvider", init_blocks: 0, max_blocks: 1 },
      },
      runDir,
    );
    try {
      await expect.poll(() => uep.logs.join("\n"), { timeout: 20_000 }).toContain("(plain TCP, encrypted: false;");
      await expect
        .poll(() => uep.logs)
        .toContain(
          `WARNING The interchange listens on ${UEP_ADDRESS} with encrypted: false: tasks and results cross the network in clear text; set encrypted: true unless that network is trusted.`,
        );
    } finally {
      await uep.stop();
      rmSync(runDir, { recursive: true, force: true });
    }
  });
});
