/**
 * `conduit-diagnostic -e` against a whole Conduit (the real service on PGlite,
 * RabbitMQ and a started endpoint, through their CLIs): the sample task runs
 * and its result is reported; the report reaches the live service and broker,
 * lists the endpoint and never holds the API token. An unknown endpoint id is
 * one section's error, and the sections after it still run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDiagnosticBin, sectionText } from "../../packages/sdk/test/diagnostic.helpers.js";
import { type E2eStack, withStack } from "./helpers.js";

let stack: E2eStack;
let cwd: string;
beforeAll(async () => {
  stack = await withStack({ endpointName: "diag_ep" });
  cwd = mkdtempSync(join(tmpdir(), "conduit-diagnostic-e2e-"));
});
afterAll(async () => {
  await stack?.dispose();
  if (cwd) rmSync(cwd, { recursive: true, force: true });
});

describe("conduit-diagnostic against a running service and endpoint", () => {
  it("-e sends a sample task to the endpoint and reports its result", async () => {
    const { code, stdout, stderr } = await runDiagnosticBin(["-p", "-e", stack.endpointId, "-c", stack.userDir], {
      cwd,
    });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const task = sectionText(stdout, `sample task on endpoint ${stack.endpointId}`);
    expect(task).toMatch(/^Registered function [0-9a-f-]{36}\nSent task [0-9a-f-]{36}\nResult: "Hello World from v\d+/);
    expect(sectionText(stdout, "service connectivity")).toMatch(/GET \/healthz: HTTP 200 \{"status":"ok"/);
    expect(sectionText(stdout, "conduit-endpoint list")).toMatch(
      new RegExp(`\\| ${stack.endpointId} \\| Running +\\| diag_ep `),
    );
    expect(sectionText(stdout, "endpoint diag_ep")).toContain(join(stack.userDir, "diag_ep", "endpoint.log"));
    expect(stdout).not.toContain(stack.token);
  });

  it("asks the service which broker to check once a task group exists, and reaches it up to Connection.Start", async () => {
    // The first test's sample task made a task group, whose detail names the broker the SDK is sent to.
    const { stdout } = await runDiagnosticBin(["-p", "-c", stack.userDir], { cwd });
    const broker = sectionText(stdout, "broker connectivity");
    expect(broker).toMatch(/^\(broker from the service \(task group [0-9a-f-]{36}\)\)/);
    expect(broker).toMatch(/AMQP handshake: Connection.Start from RabbitMQ/);
  });

  it("an unknown endpoint id fails its section with the service's sentence; later sections still run", async () => {
    const unknown = "00000000-0000-4000-8000-000000000000";
    const { code, stdout } = await runDiagnosticBin(["-p", "-e", unknown, "-c", stack.userDir], { cwd });
    expect(code).toBe(0);
    expect(sectionText(stdout, `sample task on endpoint ${unknown}`)).toMatch(
      new RegExp(`^Registered function [0-9a-f-]{36}\\n--> Failed: .*${unknown}`),
    );
    expect(stdout).toContain("== Diagnostic: endpoint diag_ep ==");
  });

  it("-e to a stopped endpoint gives up after 15 s with upstream's sentence (runs last: it stops the endpoint)", async () => {
    await stack.endpoint.stop();
    const { code, stdout } = await runDiagnosticBin(["-p", "-e", stack.endpointId, "-c", stack.userDir], { cwd });
    expect(code).toBe(0);
    expect(sectionText(stdout, `sample task on endpoint ${stack.endpointId}`)).toMatch(
      /\nSent task [0-9a-f-]{36}\n--> Timed out sending task, endpoint may be offline \(state after 15 s: [a-z-]+\)/,
    );
    expect(sectionText(stdout, "conduit-endpoint list")).toMatch(new RegExp(`\\| ${stack.endpointId} \\| Stopped `));
  });
});
