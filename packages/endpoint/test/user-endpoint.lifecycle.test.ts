import { spawn } from "node:child_process";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { THREAD_POOL_TEMPLATE, UEP_MAIN, UepHarness } from "./user-endpoint.harness.js";

const WAIT = { timeout: 20_000, interval: 50 };

describe("user endpoint process: lifecycle", () => {
  let h: UepHarness;
  beforeEach(async () => {
    h = await new UepHarness().open();
  });
  afterEach(async () => {
    await h.close();
  });

  it("shuts down when its parent closes stdin (the MEP died)", async () => {
    const uep = h.start();
    await expect.poll(() => h.heartbeats.length, WAIT).toBeGreaterThan(0);
    // Its periodic heartbeats report the engine (the console shows its workers).
    expect(h.heartbeats[0].engine).toMatchObject({ type: "ThreadPoolEngine", totalWorkers: expect.any(Number) });
    expect(h.heartbeats[0].engine!.totalWorkers).toBeGreaterThan(0);
    uep.child.stdin!.end();
    expect(await uep.exit).toEqual({ code: 0, signal: null });
    expect(h.log()).toContain(`Parent (${process.pid}) has gone away; initiating shut down`);
    expect(h.heartbeats.at(-1)?.period).toBe(0);
  });

  it("shuts down when it is re-parented, even while its stdin stays open", async () => {
    // An intermediate "MEP" starts the UEP with the test's pipe as its stdin, then is killed -9:
    // the pipe stays open (the test holds it), so only the parent-pid poll can notice.
    const mep = spawn(
      process.execPath,
      [
        "-e",
        `const c = require("node:child_process").spawn(process.execPath, [${JSON.stringify(UEP_MAIN)}, ${JSON.stringify(h.uepName)}], { stdio: ["inherit", "ignore", "ignore"] });
         console.log(c.pid); setInterval(() => {}, 1000);`,
      ],
      { env: { ...process.env, CONDUIT_USER_DIR: h.userDir }, stdio: ["pipe", "pipe", "inherit"] },
    );
    let uepPid = 0;
    try {
      mep.stdout!.on("data", (d) => {
        uepPid ||= Number.parseInt(String(d), 10);
      });
      mep.stdin!.write(`${JSON.stringify({ ...h.bootstrap(), mepPid: mep.pid })}\n`);
      await expect.poll(() => h.heartbeats.length, WAIT).toBeGreaterThan(0);
      mep.kill("SIGKILL");
      await expect.poll(() => h.heartbeats.at(-1)?.period, WAIT).toBe(0);
      await expect.poll(() => alive(uepPid), WAIT).toBe(false);
      expect(h.log()).toContain(`Parent (${mep.pid}) has gone away; initiating shut down`);
    } finally {
      mep.kill("SIGKILL");
      if (uepPid && alive(uepPid)) process.kill(uepPid, "SIGKILL");
      mep.stdin!.destroy();
    }
  });

  it("stops after idle_heartbeats_soft quiet heartbeats once its work is done", async () => {
    const uep = h.start({ template: `${THREAD_POOL_TEMPLATE}idle_heartbeats_soft: 2\n` });
    const task = h.task();
    await h.publish(task);
    expect(await uep.exit).toEqual({ code: 0, signal: null });
    expect(h.resultOf(task.taskId)?.state).toBe("success");
    expect(h.log()).toContain("Idle heartbeats reached.  Shutting down.");
  });

  it("stops a UEP that never got a task at idle_heartbeats_hard", async () => {
    const uep = h.start({ template: `${THREAD_POOL_TEMPLATE}idle_heartbeats_soft: 1\nidle_heartbeats_hard: 2\n` });
    expect(await uep.exit).toEqual({ code: 0, signal: null });
    expect(h.log()).toContain("Shutting down due to idle heartbeats HARD limit.");
  });

  it("refuses to start without a bootstrap, with a bootstrap for another UEP, or from a process that is not its parent", async () => {
    const empty = h.start({ stdinText: "" });
    empty.child.stdin!.end();
    expect((await empty.exit).code).toBe(1);
    expect(empty.output()).toContain(
      "Missing or invalid endpoint information from stdin. (Hint: this command is not meant to be invoked manually; the endpoint manager starts it.)",
    );

    const garbage = h.start({ stdinText: "{not json\n" });
    expect((await garbage.exit).code).toBe(1);
    expect(garbage.output()).toContain("Missing or invalid endpoint information from stdin.");

    const orphan = h.start({ mepPid: 1 });
    expect((await orphan.exit).code).toBe(1);
    expect(orphan.output()).toContain("Pid 1 not parent; refusing to start");

    const other = h.start({ stdinText: `${JSON.stringify({ ...h.bootstrap(), uepName: "uep.a.b" })}\n` });
    expect((await other.exit).code).toBe(1);
    expect(other.output()).toContain(`is for uep.a.b, not ${h.uepName}`);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
