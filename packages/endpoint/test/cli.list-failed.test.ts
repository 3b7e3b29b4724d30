/**
 * `list`'s Failed state, through the real CLI against the real service: a
 * start that exits on an error (config invalid, credentials refused,
 * registration refused) leaves its cause for `list`'s fourth column and its
 * sentence in `last_failure.json`; the next start that takes commands clears
 * it; a start refused because another instance runs, or because the service
 * is down, says nothing about the endpoint and changes nothing. (A removed
 * broker account: manager.account-removed.)
 */
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliEnv, closedServiceUrl, listStates, runCli, startMep, tempUserDir, useTestService } from "./cli.helpers.js";

const context = useTestService();

async function configured(name: string) {
  const userDir = tempUserDir();
  const env = cliEnv(userDir, context.service);
  expect((await runCli(["configure", name], env)).code).toBe(0);
  const dir = join(userDir, name);
  return { env, dir, failure: join(dir, "last_failure.json") };
}

function recorded(path: string): { cause: string; message: string; exit_code: number; at: string } {
  return JSON.parse(readFileSync(path, "utf8"));
}

describe("conduit-endpoint list: Failed and its cause", () => {
  it("shows a start that exited on an invalid config as Failed until a start succeeds", async () => {
    const { env, dir, failure } = await configured("cfg");
    const config = readFileSync(join(dir, "config.yaml"), "utf8");
    writeFileSync(join(dir, "config.yaml"), `${config}heartbeat_perod: 5\n`);
    const started = await runCli(["start", "cfg"], env);
    expect(started.code).toBe(78);
    expect((await listStates(env)).get("cfg")).toEqual({ id: "", status: "Failed", cause: "config invalid" });
    expect(statSync(failure).mode & 0o777).toBe(0o600);
    expect(recorded(failure)).toMatchObject({
      cause: "config invalid",
      message: started.stderr.trim().replace(/^Error: /, ""),
      exit_code: 78,
    });
    expect(recorded(failure).message).toContain("heartbeat_perod");

    writeFileSync(join(dir, "config.yaml"), config);
    const mep = await startMep("cfg", env);
    expect(existsSync(failure)).toBe(false);
    expect((await listStates(env)).get("cfg")).toEqual({ id: mep.endpointId, status: "Running" });
    expect((await runCli(["stop", "cfg"], env)).code).toBe(0);
    await mep.exited;
    expect((await listStates(env)).get("cfg")).toEqual({ id: mep.endpointId, status: "Stopped" });
  }, 60_000);

  it("names refused credentials and a refused registration, and leaves the record alone when the service is down", async () => {
    const { env, dir, failure } = await configured("reg");
    const badToken = await runCli(["start", "reg"], { ...env, CONDUIT_TOKEN: "revoked-token" });
    expect(badToken.code).toBe(1);
    expect((await listStates(env)).get("reg")).toEqual({
      id: "",
      status: "Failed",
      cause: "credentials refused (HTTP 401)",
    });
    expect(recorded(failure).message).toBe(badToken.stderr.trim().replace(/^Error: /, ""));

    const mep = await startMep("reg", env);
    expect((await runCli(["stop", "reg"], env)).code).toBe(0);
    await mep.exited;
    // An id the service does not accept: the registration itself is refused.
    writeFileSync(join(dir, "endpoint.json"), `${JSON.stringify({ endpoint_id: "not-a-uuid" })}\n`);
    const refused = await runCli(["start", "reg"], env);
    expect(refused.code).toBe(1);
    expect(recorded(failure).message).toBe(refused.stderr.trim().replace(/^Error: /, ""));
    const row = (await listStates(env)).get("reg");
    expect(row).toMatchObject({ status: "Failed" });
    expect(row?.cause).toMatch(/^registration refused \(HTTP 4\d\d\)$/);

    writeFileSync(join(dir, "endpoint.json"), `${JSON.stringify({ endpoint_id: mep.endpointId })}\n`);
    const down = await runCli(["start", "reg"], { ...env, CONDUIT_SERVICE_URL: await closedServiceUrl() });
    expect(down.code).toBe(1);
    expect((await listStates(env)).get("reg")).toEqual({ ...row, id: mep.endpointId });
  }, 90_000);

  it("does not count a start refused because the endpoint already runs", async () => {
    const { env, failure } = await configured("two");
    const mep = await startMep("two", env);
    const second = await runCli(["start", "two"], env);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/^Error: Another instance of this endpoint is running/);
    expect(existsSync(failure)).toBe(false);
    expect((await runCli(["stop", "two"], env)).code).toBe(0);
    await mep.exited;
    expect((await listStates(env)).get("two")).toEqual({ id: mep.endpointId, status: "Stopped" });
  }, 60_000);
});
