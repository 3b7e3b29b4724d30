/**
 * Blocks in containers, for real: Debian's podman with runc, images built
 * from a local rootfs by test/infra/podman-image.sh (no registry), run as
 * this machine allows (CONTAINERS_CONF: runc, no network, ulimits). A task
 * reads /conduit-marker, a file only the image has, so its answer proves it
 * ran inside; `custom` runs the same image through a wrapper script. A
 * missing image, a runtime that is not installed, an image without Conduit
 * and an image of another Node version each fail the block, once, with one
 * sentence that the waiting task gets.
 *
 * Skipped only where podman is not installed outside CI (.ci/run installs it).
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EngineHarness, hteConfig } from "./engines.harness.js";

const REPO = new URL("../../../", import.meta.url).pathname.replace(/\/$/, "");
const HAVE_PODMAN = (() => {
  try {
    execFileSync("sh", ["-c", "command -v podman"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
if (!HAVE_PODMAN && process.env.CI) throw new Error("podman is not installed; .ci/run installs it (podman runc)");

const FULL = `localhost/conduit-test-full-${process.pid}:latest`;
const NO_CONDUIT = `localhost/conduit-test-no-conduit-${process.pid}:latest`;
const MISSING = `localhost/conduit-test-missing-${process.pid}:latest`;
/** The checkout, read-only at the same path: the image's conduit-block-manager runs its built package. */
const MOUNT = `--rm -v '${REPO}:${REPO}:ro'`;
/** The containers, running or not, made from `images`: "name state" lines. */
function containersOf(images: readonly string[]): string[] {
  const filters = images.flatMap((image) => ["--filter", `ancestor=${image}`]);
  const out = execFileSync("podman", ["ps", "-a", ...filters, "--format", "{{.Names}} {{.State}}"], { env });
  return out.toString().split("\n").filter(Boolean);
}
const READ_MARKER = `() => process.getBuiltinModule("node:fs").readFileSync("/conduit-marker", "utf8").trim()`;

let dir: string;
let env: NodeJS.ProcessEnv;
let h: EngineHarness | undefined;

describe.skipIf(!HAVE_PODMAN)("HighThroughputEngine blocks in podman containers", () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "conduit-podman-"));
    // The verified recipe for this machine (shared/infra/README.md): runc, no network, explicit ulimits.
    const conf = join(dir, "containers.conf");
    writeFileSync(
      conf,
      '[containers]\nnetns = "none"\ndefault_ulimits = ["nofile=20000:20000", "nproc=1024:1024"]\n' +
        '[engine]\nruntime = "runc"\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n',
    );
    env = { ...process.env, CONTAINERS_CONF: conf };
    const script = join(REPO, "test/infra/podman-image.sh");
    execFileSync("sh", [script, FULL, "full"], { env, stdio: "inherit" });
    execFileSync("sh", [script, NO_CONDUIT, "no-conduit"], { env, stdio: "inherit" });
  }, 120_000);

  afterEach(async () => {
    await h?.close();
    h = undefined;
    // No container outlives its block: the engine's shutdown stops what it started (--rm then removes it).
    await expect.poll(() => containersOf([FULL, NO_CONDUIT]), { timeout: 30_000, interval: 250 }).toEqual([]);
  }, 60_000);

  afterAll(() => {
    if (!dir) return;
    try {
      execFileSync("podman", ["rmi", "-f", FULL, NO_CONDUIT], { env, stdio: "pipe" });
    } catch (err) {
      // Clean-up only (the names are this run's own): say why, fail nothing.
      console.warn(
        `podman rmi left this run's test images: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`,
      );
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs a task inside the podman image (it reads the image's marker), the launch command logged", async () => {
    h = await EngineHarness.start(
      hteConfig({ container_type: "podman", container_uri: FULL, container_cmd_options: MOUNT }),
      env,
    );
    expect(await h.run(READ_MARKER)).toBe(FULL);
    const logs = h.logs.join("\n");
    expect(logs).toContain(
      `Starting block 0 with LocalProvider in a podman container; launch command: podman run --rm -v ${REPO}:${REPO}:ro -v ${h.runDir}:${h.runDir} -t ${FULL} sh -c `,
    );
    expect(logs).toMatch(/Block 0 connected: .* \(via unix:.*interchange\.[^ ]*\.sock\)/);
    // The socket: only its owner may open it, and a registration without the secret is refused as over TCP.
    const socketPath = join(h.runDir, readdirSync(h.runDir).find((f) => f.endsWith(".sock")) as string);
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    const reply = await new Promise<string>((resolve) => {
      let text = "";
      const socket = connect({ path: socketPath }, () =>
        socket.write(
          `${JSON.stringify({ v: 1, cmd: "register", blockId: "0", secret: "guess", pid: 1, hostname: "x", workers: 1, nodeVersion: process.version, conduitVersion: "0.1.0", via: "x" })}\n`,
        ),
      );
      socket.on("data", (chunk) => {
        text += chunk;
      });
      socket.on("close", () => resolve(text));
    });
    expect(reply).toContain('"reason":"wrong secret"');
  }, 60_000);

  it("runs a task through a custom wrapper script, {EXECUTOR_RUNDIR} and {EXECUTOR_LAUNCH_CMD} replaced", async () => {
    const wrapper = join(dir, "my runner.sh");
    writeFileSync(
      wrapper,
      `#!/bin/sh\nrundir=$1\nshift\nexec podman run --rm -v "$rundir:$rundir" -v '${REPO}:${REPO}:ro' ${FULL} "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
    h = await EngineHarness.start(
      hteConfig({
        container_type: "custom",
        container_cmd_options: `'${wrapper}' {EXECUTOR_RUNDIR} {EXECUTOR_LAUNCH_CMD}`,
      }),
      env,
    );
    expect(await h.run(READ_MARKER)).toBe(FULL);
    expect(h.logs.join("\n")).toContain(`launch command: '${wrapper}' ${h.runDir} sh -c `);
  }, 60_000);

  const failures: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      "a missing image",
      { container_type: "podman", container_uri: MISSING, container_cmd_options: MOUNT },
      new RegExp(
        `^Block 0 failed to start: podman could not run image '${MISSING}' \\(exit 125: .+\\); check container_uri and that the image is on the node`,
      ),
    ],
    [
      "a runtime that is not installed",
      { container_type: "podman-hpc", container_uri: FULL },
      /^Block 0 failed to start: the container runtime podman-hpc is not installed on the node that runs the block \(no podman-hpc on its PATH\); install it there/,
    ],
    [
      "an image without Conduit",
      { container_type: "podman", container_uri: NO_CONDUIT, container_cmd_options: "--rm" },
      new RegExp(
        `^Block 0 failed to start: the podman image '${NO_CONDUIT}' lacks the Conduit endpoint package \\(no conduit-block-manager on its PATH\\); build it with Node`,
      ),
    ],
    [
      "an image of another Node version",
      {
        container_type: "podman",
        container_uri: FULL,
        // Backquotes: podman drops double quotes from an --env value.
        container_cmd_options: `${MOUNT} --env 'NODE_OPTIONS=--import=data:text/javascript,Object.defineProperty(process,\`version\`,{value:\`v8.0.0\`})'`,
      },
      new RegExp(
        `^Block 0 failed to start: its block manager in the podman image '${FULL}' runs Conduit \\S+ on Node v8\\.0\\.0 .*; rebuild the image with Node`,
      ),
    ],
  ];

  it.each(failures)(
    "fails the block once, and the waiting task, with one sentence for %s",
    async (_, options, sentence) => {
      h = await EngineHarness.start(hteConfig(options), env);
      const result = await h.submit(READ_MARKER);
      expect(result).toMatchObject({ ok: false, error: { code: "BLOCK_START_FAILED" } });
      if (result.ok) return;
      expect(result.error.message).toMatch(sentence);
      expect(result.error.message).not.toContain("\n");
      expect(h.logs.filter((l) => l.includes("Starting block"))).toHaveLength(1);
    },
    60_000,
  );
});
