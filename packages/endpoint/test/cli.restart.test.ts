/**
 * `conduit-endpoint restart NAME` as real processes against the real service
 * and RabbitMQ: it stops the running MEP cleanly and runs a new one attached,
 * under the same id; it starts a stopped endpoint; it refuses to restart an
 * endpoint that systemd runs, whose unit would start a second one.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliEnv, listStates, readLog, runCli, startMep, tempUserDir, useTestService } from "./cli.helpers.js";

const context = useTestService();

async function configured(name: string) {
  const userDir = tempUserDir();
  const env = cliEnv(userDir, context.service);
  expect((await runCli(["configure", name], env)).code).toBe(0);
  const dir = join(userDir, name);
  return { env, log: join(dir, "endpoint.log"), pidFile: join(dir, "daemon.pid") };
}

describe("conduit-endpoint restart", () => {
  it("stops the running endpoint cleanly and runs it again, attached, under the same id", async () => {
    const { env, log, pidFile } = await configured("lab");
    const first = await startMep("lab", env);
    const second = await startMep("lab", env, [], "restart");
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(second.endpointId).toBe(first.endpointId);
    expect(second.output.stdout).toBe(
      `> Endpoint <lab> is now stopped\n        >>> Endpoint ID: ${first.endpointId} <<<\n`,
    );
    expect(readFileSync(pidFile, "utf8").trim()).toBe(String(second.child.pid));
    expect((await listStates(env)).get("lab")).toEqual({ id: first.endpointId, status: "Running" });
    expect(readLog(log).match(/========== Endpoint Manager begins: /g)).toHaveLength(2);
    expect(readLog(log)).toContain("Shutting down (SIGTERM)");

    expect((await runCli(["stop", "lab"], env)).code).toBe(0);
    expect(await second.exited).toEqual({ code: 0, signal: null });
  }, 90_000);

  it("starts an endpoint that is not running", async () => {
    const { env } = await configured("idle");
    const mep = await startMep("idle", env, [], "restart");
    expect(mep.output.stdout).toBe(`Endpoint <idle> is not running\n        >>> Endpoint ID: ${mep.endpointId} <<<\n`);
    expect((await runCli(["stop", "idle"], env)).code).toBe(0);
    expect(await mep.exited).toEqual({ code: 0, signal: null });
  }, 60_000);

  it("refuses, with one sentence, to restart an endpoint that systemd runs", async () => {
    const { env, pidFile } = await configured("unit");
    // systemd sets INVOCATION_ID for every service it starts.
    const mep = await startMep("unit", { ...env, INVOCATION_ID: "0123456789abcdef0123456789abcdef" });
    const refused = await runCli(["restart", "unit"], env);
    expect(refused).toEqual({
      code: 1,
      stdout: "",
      stderr:
        "Error: Endpoint unit runs under systemd (its unit would start it again beside this one); restart it with: sudo systemctl restart conduit-endpoint-unit.service\n",
    });
    expect(readFileSync(pidFile, "utf8").trim()).toBe(String(mep.child.pid));
    expect((await runCli(["stop", "unit"], env)).code).toBe(0);
    expect(await mep.exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
