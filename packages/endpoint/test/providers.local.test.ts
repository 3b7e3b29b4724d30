import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readTail } from "../src/providers/job-output.js";
import type { JobStatus, Provider } from "../src/providers/provider-types.js";
import { createProvider } from "../src/providers/registry.js";
import { expectGone, isAlive } from "./engines.harness.js";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

let runDir: string;
let provider: Provider | undefined;
let jobIds: string[] = [];

beforeEach(() => {
  runDir = mkdtempSync(join(tmpdir(), "conduit-provider-"));
  jobIds = [];
});

afterEach(async () => {
  await provider?.cancel(jobIds);
  provider = undefined;
  rmSync(runDir, { recursive: true, force: true });
});

async function startProvider(options: Record<string, unknown> = {}): Promise<Provider> {
  provider = createProvider({ type: "LocalProvider", ...options });
  await provider.start({ runDir, env: { ...process.env, FROM_UEP: "uep-env" }, log: quiet });
  return provider;
}

async function submit(p: Provider, command: string, name = "job"): Promise<string> {
  const id = await p.submit(command, name);
  jobIds.push(id);
  return id;
}

async function finalStatus(p: Provider, jobId: string): Promise<JobStatus> {
  await expect
    .poll(async () => (await p.status([jobId])).get(jobId)?.state, { timeout: 15_000, interval: 50 })
    .not.toBe("running");
  return (await p.status([jobId])).get(jobId) as JobStatus;
}

describe("LocalProvider", () => {
  it("runs worker_init, then the command, in one shell: exports reach the command", async () => {
    const p = await startProvider({ worker_init: "export FROM_INIT=init-value\necho init-ran" });
    const jobId = await submit(p, `/bin/sh -c 'echo "$FROM_INIT $FROM_UEP"'`, "block-7");
    expect((await p.status([jobId])).get(jobId)?.state).toMatch(/running|completed/);
    const status = await finalStatus(p, jobId);
    expect(status).toMatchObject({ state: "completed", exitCode: 0 });
    expect(readFileSync(status.stdoutPath as string, "utf8")).toBe("init-ran\ninit-value uep-env\n");
    const files = readdirSync(join(runDir, "submit_scripts"));
    expect(files.filter((f) => f.startsWith("block-7.")).map((f) => f.split(".").pop())).toEqual(
      expect.arrayContaining(["sh", "stdout", "stderr"]),
    );
    const script = files.find((f) => f.endsWith(".sh")) as string;
    expect(readFileSync(join(runDir, "submit_scripts", script), "utf8")).toContain("export FROM_INIT=init-value");
  });

  it("stops the block when worker_init fails (an exit, a missing command), with its stderr", async () => {
    const p = await startProvider({ worker_init: "echo about-to-fail >&2\nexit 3" });
    const failed = await finalStatus(p, await submit(p, "echo never"));
    expect(failed).toMatchObject({ state: "failed", exitCode: 3 });
    expect(readTail(failed.stderrPath as string)).toBe("about-to-fail");
    expect(readFileSync(failed.stdoutPath as string, "utf8")).toBe("");

    const q = await startProvider({ worker_init: "no_such_cmd_conduit" });
    const missing = await finalStatus(q, await submit(q, "echo never"));
    expect(missing).toMatchObject({ state: "failed", exitCode: 127 });
    expect(readTail(missing.stderrPath as string)).toMatch(/no_such_cmd_conduit.*not found/);
    expect(readTail(missing.stderrPath as string)).toContain("worker_init failed with exit status 127");
  });

  it("reports a command's own failure and signal", async () => {
    const p = await startProvider();
    expect(await finalStatus(p, await submit(p, "/bin/sh -c 'exit 5'"))).toMatchObject({
      state: "failed",
      exitCode: 5,
    });
    expect(await finalStatus(p, await submit(p, "/bin/sh -c 'kill -9 $$'"))).toMatchObject({
      state: "failed",
      signal: "SIGKILL",
    });
  });

  it("cancels a job's whole process group, children included", async () => {
    const p = await startProvider();
    const pidFile = join(runDir, "child.pid");
    // The child ignores SIGTERM: only the SIGKILL after the grace period stops it.
    const jobId = await submit(p, `/bin/sh -c 'trap "" TERM; sleep 300 & echo $! > ${pidFile}; wait; wait'`);
    await expect.poll(() => readFileSafe(pidFile), { timeout: 10_000 }).toMatch(/^\d+\n$/);
    const childPid = Number(readFileSafe(pidFile));
    expect(isAlive(childPid)).toBe(true);
    await p.cancel([jobId]);
    expect((await p.status([jobId])).get(jobId)?.state).toBe("cancelled");
    await expectGone([Number(jobId), childPid]);
  });

  it("says a job it never started is missing", async () => {
    const p = await startProvider();
    expect((await p.status(["424242"])).get("424242")?.state).toBe("missing");
  });
});

describe("readTail", () => {
  it("keeps the last lines within the byte limit", () => {
    const file = join(runDir, "out.txt");
    writeFileSync(file, Array.from({ length: 100 }, (_, i) => `line ${i}`).join("\n") + "\n");
    expect(readTail(file, 3)).toBe("line 97\nline 98\nline 99");
    const tail = readTail(file, 20, 30);
    expect(tail.length).toBeLessThanOrEqual(30);
    expect(tail.endsWith("line 99")).toBe(true);
    expect(tail.split("\n")[0]).toMatch(/^line \d+$/);
    expect(readTail(join(runDir, "absent"))).toBe("");
  });
});

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
