/**
 * How a MEP ends, with real UEP processes: a UEP that ignores SIGTERM is
 * killed after the grace period and the MEP still exits cleanly; a second
 * signal during the shutdown forces the exit at once; a MEP killed with
 * SIGKILL takes its UEP with it (stdin closes), lists as Disconnected, and
 * the next `start` kills whatever process group the dead MEP had recorded.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { listStates, type Mep, pidAlive, readLog, runCli, startMep } from "./cli.helpers.js";
import { configuredEndpoint, sendCommand, startUepCommand, useServiceAndBroker } from "./manager.helpers.js";

const context = useServiceAndBroker("manager-shutdown-test");
const strays: ChildProcess[] = [];
afterAll(() => {
  for (const s of strays) if (s.pid && pidAlive(s.pid)) process.kill(-s.pid, "SIGKILL");
});

/** A started endpoint whose UEPs run `preload` (a CommonJS file) before any Conduit code. */
async function endpointWithUep(name: string, preload?: string) {
  const { userDir, env, dir, log } = await configuredEndpoint(context.service, name);
  if (preload) {
    const file = join(userDir, "preload.cjs");
    writeFileSync(file, preload);
    writeFileSync(join(dir, "user_environment.yaml"), `NODE_OPTIONS: --require=${file}\n`);
  }
  const mep = await startMep(name, env);
  const uep = await startUep(mep, log);
  // The UEP runs in its own folder (its cwd).
  const stuck = () => existsSync(join(userDir, uep.name, "stuck"));
  if (preload) await expect.poll(stuck, { timeout: 15_000 }).toBe(true);
  return { env, dir, log, mep, ...uep };
}

async function startUep(mep: Mep, log: string): Promise<{ uepPid: number; name: string }> {
  const command = startUepCommand(mep);
  await sendCommand(context.broker, command, mep.endpointId);
  const name = command.uepName;
  const created = new RegExp(`Creating new user endpoint \\(pid: (\\d+)\\) \\[\\(\\S+, ${name}\\)`);
  await expect.poll(() => created.exec(readLog(log)), { timeout: 15_000 }).not.toBeNull();
  return { uepPid: Number(created.exec(readLog(log))![1]), name };
}

/**
 * Ignores SIGTERM and blocks its event loop: a UEP stuck where it cannot stop.
 * It says when it got there (`<its folder>/stuck`), so the test signals only then.
 */
const STUBBORN = `process.on("SIGTERM", () => {});
require("node:fs").writeFileSync("stuck", "");
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);
`;

describe("MEP shutdown", () => {
  it("kills a UEP that ignores SIGTERM after the grace period, and still ends cleanly", async () => {
    const { dir, log, mep, uepPid } = await endpointWithUep("stubborn", STUBBORN);
    mep.child.kill("SIGTERM");
    expect(await mep.exited).toEqual({ code: 0, signal: null });
    const text = readLog(log);
    expect(text).toContain(`Signaling shutdown of user endpoint (PID: ${uepPid}, PGID: ${uepPid},`);
    expect(text).toContain(`Forcibly killing of user endpoint (PID: ${uepPid}, PGID: ${uepPid},`);
    expect(text).toContain(`Command terminated by signal: SIGKILL (${uepPid})`);
    expect(text).toContain(`---------- Endpoint Manager ends: ${mep.endpointId}`);
    expect(pidAlive(uepPid)).toBe(false);
    expect(existsSync(join(dir, "daemon.pid"))).toBe(false);
    expect(existsSync(join(dir, "ueps.json"))).toBe(false);
  });

  it("exits at once on a second signal during the shutdown, killing the UEP", async () => {
    const { env, dir, log, mep, uepPid } = await endpointWithUep("impatient", STUBBORN);
    mep.child.kill("SIGINT");
    await expect.poll(() => readLog(log), { timeout: 10_000 }).toContain("Signaling shutdown of user endpoint");
    mep.child.kill("SIGINT");
    expect(await mep.exited).toEqual({ code: 1, signal: null });
    expect(readLog(log)).toContain(
      "Received SIGINT during shutdown; killing the user endpoint processes and exiting now",
    );
    expect(readLog(log)).not.toContain("Forcibly killing");
    await expect.poll(() => pidAlive(uepPid), { timeout: 5_000 }).toBe(false);
    expect(existsSync(join(dir, "daemon.pid"))).toBe(false);
    expect((await listStates(env)).get("impatient")?.status).toBe("Stopped");
  });

  it("after SIGKILL: the UEP exits, list says Disconnected, the next start kills the recorded leftovers", async () => {
    const { env, dir, log, mep, uepPid, name } = await endpointWithUep("fragile");

    mep.child.kill("SIGKILL");
    await mep.exited;
    // The UEP notices its stdin closing and shuts down by itself.
    await expect.poll(() => pidAlive(uepPid), { timeout: 20_000 }).toBe(false);
    expect((await listStates(env)).get("fragile")?.status).toBe("Disconnected");

    // A process group the dead MEP recorded that is still there (say, a UEP
    // stuck in uninterruptible I/O when the MEP died) ...
    // It has retitled itself as a real UEP does, so its argv is gone from /proc.
    const retitled = `process.title = ${JSON.stringify(`conduit UEP ${name}`)}; setInterval(() => {}, 1000);`;
    const stray = spawn(process.execPath, ["-e", retitled, "_start-user-endpoint", name], {
      detached: true,
      stdio: "ignore",
    });
    // ... and an unrelated live process recorded under a pid that was reused: left alone.
    const bystander = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], {
      detached: true,
      stdio: "ignore",
    });
    strays.push(stray, bystander);
    writeFileSync(
      join(dir, "ueps.json"),
      JSON.stringify({
        ueps: [
          { name, pid: stray.pid, pgid: stray.pid },
          { name: `${name}-other`, pid: bystander.pid, pgid: bystander.pid },
        ],
      }),
    );

    const second = await startMep("fragile", env);
    expect(second.endpointId).toBe(mep.endpointId);
    // Polled: the stray is this test's child, a zombie until Node reaps it.
    await expect.poll(() => pidAlive(stray.pid!), { timeout: 5_000 }).toBe(false);
    expect(pidAlive(bystander.pid!)).toBe(true);
    expect(readLog(log)).toContain(`Killing leftover user endpoint process group ${stray.pid} (${name})`);
    expect(JSON.parse(readFileSync(join(dir, "daemon.pid"), "utf8"))).toBe(second.child.pid);
    expect((await listStates(env)).get("fragile")?.status).toBe("Running");
    expect((await runCli(["stop", "fragile"], env)).code).toBe(0);
  });
});
