/**
 * `start`, `stop`, `list` and `delete` as real processes against the real
 * service (in process, PGlite) and RabbitMQ: the id is printed and kept across
 * restarts, every stop signal shuts the MEP down cleanly, a MEP killed with
 * SIGKILL lists as Disconnected and the next start cleans up and runs.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  cliEnv,
  closedServiceUrl,
  listStates,
  readLog,
  runCli,
  startMep,
  tempUserDir,
  useTestService,
} from "./cli.helpers.js";

const context = useTestService();

async function configured(name: string) {
  const userDir = tempUserDir();
  const env = cliEnv(userDir, context.service);
  const made = await runCli(["configure", name], env);
  expect(made.code).toBe(0);
  const dir = join(userDir, name);
  return { userDir, env, dir, log: join(dir, "endpoint.log"), pidFile: join(dir, "daemon.pid") };
}

describe("conduit-endpoint start / stop / list", () => {
  it("registers, prints the id, keeps it across restarts, and lists Initialized → Running → Stopped", async () => {
    const { env, dir, log, pidFile } = await configured("lab");
    expect((await listStates(env)).get("lab")).toEqual({ id: "", status: "Initialized" });

    const mep = await startMep("lab", env);
    expect(mep.endpointId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(mep.output.stdout).toBe(`        >>> Endpoint ID: ${mep.endpointId} <<<\n`);
    expect(JSON.parse(readFileSync(join(dir, "endpoint.json"), "utf8"))).toEqual({ endpoint_id: mep.endpointId });
    expect(readFileSync(pidFile, "utf8").trim()).toBe(String(mep.child.pid));
    expect(readLog(log)).toContain(`========== Endpoint Manager begins: ${mep.endpointId}`);
    expect((await listStates(env)).get("lab")).toEqual({ id: mep.endpointId, status: "Running" });

    const stopped = await runCli(["stop", "lab"], env);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toBe("> Endpoint <lab> is now stopped\n");
    expect(await mep.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(pidFile)).toBe(false);
    // The log is JSON lines; its last two say the MEP ended cleanly.
    const messages = readLog(log)
      .trim()
      .split("\n")
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages.slice(-2)).toEqual([
      "Shutdown complete.",
      expect.stringMatching(/^---------- Endpoint Manager ends: [0-9a-f-]{36}$/),
    ]);
    expect((await listStates(env)).get("lab")).toEqual({ id: mep.endpointId, status: "Stopped" });

    const again = await startMep("lab", env);
    expect(again.endpointId).toBe(mep.endpointId);
    expect((await runCli(["stop", "lab"], env)).code).toBe(0);
    await again.exited;

    const idle = await runCli(["stop", "lab"], env);
    expect(idle).toMatchObject({ code: 0, stdout: "Endpoint <lab> is not running\n" });
  });

  it.each(["SIGINT", "SIGQUIT", "SIGTERM"] as const)("stops cleanly on %s", async (signal) => {
    const { env, log, pidFile } = await configured("sig");
    const mep = await startMep("sig", env);
    mep.child.kill(signal);
    expect(await mep.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(pidFile)).toBe(false);
    const text = readLog(log);
    expect(text).toContain(`Shutting down (${signal})`);
    expect(text).toContain("Shutdown complete.");
    expect(text).toContain(`---------- Endpoint Manager ends: ${mep.endpointId}`);
  });

  it("lists a MEP killed with SIGKILL as Disconnected; the next start cleans up, runs, and refuses a second instance", async () => {
    const { env, log } = await configured("crashy");
    const first = await startMep("crashy", env);
    first.child.kill("SIGKILL");
    await first.exited;
    expect((await listStates(env)).get("crashy")).toEqual({ id: first.endpointId, status: "Disconnected" });

    const second = await startMep("crashy", env);
    expect(second.endpointId).toBe(first.endpointId);
    expect(second.output.stderr).toContain(
      "Previous endpoint instance failed to shutdown cleanly.  Removing PID file.",
    );
    expect(readLog(log)).toContain("Previous endpoint instance failed to shutdown cleanly.  Removing PID file.");
    expect((await listStates(env)).get("crashy")?.status).toBe("Running");

    const third = await runCli(["start", "crashy"], env);
    expect(third.code).toBe(1);
    expect(third.stderr.trim()).toBe(
      `Error: Another instance of this endpoint is running (pid ${second.child.pid}); stop it with: conduit-endpoint stop crashy`,
    );

    // stop on a Disconnected endpoint cleans up and says so.
    second.child.kill("SIGKILL");
    await second.exited;
    const stopped = await runCli(["stop", "crashy"], env);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toMatch(/^> Endpoint <crashy> was not running \(its manager process had died/);
    expect((await listStates(env)).get("crashy")?.status).toBe("Stopped");
  });

  it("says how to fix an unreachable service, and leaves the endpoint as it was", async () => {
    const { userDir, dir } = await configured("offline");
    const url = await closedServiceUrl();
    const result = await runCli(["start", "offline"], cliEnv(userDir, { url, token: "t" }));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr.trim()).toMatch(
      /^Error: Cannot reach the Conduit service at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\); start it with `npx conduit-service start`, or point CONDUIT_SERVICE_URL at a running service\.$/,
    );
    expect(existsSync(join(dir, "daemon.pid"))).toBe(false);
    expect((await listStates(cliEnv(userDir))).get("offline")?.status).toBe("Initialized");
  });

  it("deletes only a stopped endpoint, and only when confirmed", async () => {
    const { env, dir } = await configured("doomed");
    const mep = await startMep("doomed", env);
    const refused = await runCli(["delete", "doomed", "--yes"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe(
      `Error: Endpoint doomed is running (pid ${mep.child.pid}); stop it first with: conduit-endpoint stop doomed`,
    );
    expect((await runCli(["stop", "doomed"], env)).code).toBe(0);
    await mep.exited;
    const unconfirmed = await runCli(["delete", "doomed"], env);
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.stderr).toContain("pass --yes to confirm");
    expect(existsSync(dir)).toBe(true);
    const deleted = await runCli(["delete", "doomed", "--yes"], env);
    expect(deleted).toMatchObject({ code: 0, stdout: `> Endpoint <doomed> has been deleted (removed ${dir})\n` });
    expect(existsSync(dir)).toBe(false);
    expect((await listStates(env)).has("doomed")).toBe(false);
  });
});
