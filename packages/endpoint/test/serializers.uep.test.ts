/**
 * allowed_serializers, the data strategies and the result limit through a
 * real user endpoint process (RabbitMQ, a ThreadPoolEngine's workers).
 */

import { randomUUID } from "node:crypto";
import {
  deserializeData,
  JSON_DATA,
  SHELL_CODE,
  STRUCTURED_DATA,
  serializeCall,
  type TaskMessage,
} from "@conduit/protocol";
import { functionSource, serializeArguments } from "@conduit/sdk";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UEP_EXIT } from "../src/user-endpoint/bootstrap-types.js";
import { UepHarness } from "./user-endpoint.harness.js";

const WAIT = { timeout: 20_000, interval: 50 };

const template = (engine: string) => `engine:
  type: ThreadPoolEngine
  max_workers: 2
${engine}
heartbeat_period: 1
`;

describe("user endpoint process: serializers", () => {
  let h: UepHarness;
  beforeEach(async () => {
    h = await new UepHarness().open();
  });
  afterEach(async () => {
    await h.close();
  });

  const outcome = (task: TaskMessage) => h.outcome(task);

  it("does not start with a list lacking a data entry; queued tasks fail with Globus Compute's words", async () => {
    const tasks = [h.task(), h.task()];
    await h.publish(...tasks);
    const uep = h.start({ template: template("  allowed_serializers: [conduit.SourceCode]") });
    expect((await uep.exit).code).toBe(UEP_EXIT.startFailed);
    for (const task of tasks) {
      expect(await outcome(task)).toMatchObject({
        state: "failed",
        error: {
          code: "UEP_START_FAILED",
          message:
            'Deserialization allowlists must contain at least one code and one data deserializer/wildcard (got: ["conduit.SourceCode"])',
        },
      });
    }
    await expect
      .poll(() => h.heartbeats.find((b) => b.error)?.error?.message, WAIT)
      .toMatch(/^Deserialization allowlists/);
  });

  it("does not start with a Globus Compute name, naming the Conduit equivalent", async () => {
    const task = h.task();
    await h.publish(task);
    const uep = h.start({
      template: template("  allowed_serializers: [globus_compute_sdk.serialize.JSONData, conduit.*Code]"),
    });
    expect((await uep.exit).code).toBe(UEP_EXIT.startFailed);
    expect((await outcome(task)).error!.message).toBe(
      "engine.allowed_serializers names globus_compute_sdk.serialize.JSONData, a Globus Compute serializer; write its Conduit equivalent conduit.JSONData instead.",
    );
  });

  it("runs allowed strategies, refuses the others per task, checks the submitter's Node, and limits results", async () => {
    const ours = process.versions.node;
    const newerMajor = Number(ours.split(".")[0]) + 1;
    const structured = {
      ...h.task({ source: "(m, d) => new Map([...m].map(([k, v]) => [k, new Date(d.getTime() + v)]))" }),
      args: serializeCall([new Map([["a", 1]]), new Date(1000)], STRUCTURED_DATA),
      submitter: { nodeVersion: `v${ours}`, sdkVersion: "0.1.0" },
    };
    const json = h.task({ args: [1, 2] });
    const fromNewerNode = {
      ...h.task(),
      args: serializeCall([1, 2], STRUCTURED_DATA),
      submitter: { nodeVersion: `v${newerMajor}.0.0`, sdkVersion: "0.1.0" },
    };
    const tooBig = { ...h.task({ source: "(n) => 'x'.repeat(n)" }), args: serializeCall([5000], STRUCTURED_DATA) };
    const small = { ...h.task({ source: "(n) => 'x'.repeat(n)" }), args: serializeCall([10], STRUCTURED_DATA) };
    // Shipped by the SDK from this (vitest-transformed) file: an inner helper, import() and Node globals.
    const shippedFn = async (when: Date, tags: Set<string>) => {
      const { EOL } = await import("node:os");
      const later = (d: Date) => new Date(d.getTime() + 1);
      return { when: later(when), tags: [...tags].sort(), eol: EOL, big: BigInt(tags.size) ** 40n };
    };
    const fromSdk = {
      ...h.task(),
      function: { strategy: "conduit.SourceCode", data: functionSource(shippedFn) },
      args: serializeArguments([new Date(5), new Set(["b", "a"])]),
    };
    await h.publish(structured, json, fromNewerNode, tooBig, small, fromSdk);
    const uep = h.start({
      template: template("  allowed_serializers: [conduit.*Code, conduit.StructuredData]\n  result_size_limit: 1000"),
    });

    const ok = await outcome(structured);
    expect(ok.state).toBe("success");
    expect(ok.result!.strategy).toBe(STRUCTURED_DATA);
    expect(deserializeData(ok.result!)).toEqual(new Map([["a", new Date(1001)]]));

    expect((await outcome(json)).error).toEqual({
      code: "DESERIALIZATION_FAILED",
      name: "DeserializationError",
      message: [
        "Deserialization failed:",
        `  Data serializer ${JSON_DATA} disabled by current configuration.`,
        "  The current configuration requires the *arguments* to be serialized with one of the allowed Data classes:",
        "",
        "      Allowed serializers: conduit.*Code, conduit.StructuredData",
      ].join("\n"),
    });

    expect((await outcome(fromNewerNode)).error).toMatchObject({
      code: "DESERIALIZATION_FAILED",
      name: "DeserializationError",
      message: `The arguments of task ${fromNewerNode.taskId} came in conduit.StructuredData from Node ${newerMajor}.0.0, newer than this worker's Node ${ours}; run the endpoint's workers on Node ${newerMajor} or newer, or submit with conduit.JSONData.`,
    });

    const big = await outcome(tooBig);
    expect(big.error).toMatchObject({ code: "RESULT_TOO_LARGE", name: "MaxResultSizeExceeded" });
    expect(big.error!.message).toMatch(/ is \d+ bytes encoded, over this endpoint's result limit of 1000 bytes/);
    expect(deserializeData((await outcome(small)).result!)).toBe("x".repeat(10));

    const sdk = await outcome(fromSdk);
    expect(sdk.error).toBeUndefined();
    expect(deserializeData(sdk.result!)).toEqual({ when: new Date(6), tags: ["a", "b"], eol: "\n", big: 2n ** 40n });

    uep.child.kill("SIGTERM");
    expect((await uep.exit).code).toBe(0);
  });

  it("allows shell commands and refuses JavaScript, or the reverse; allowed_functions applies to shell commands", async () => {
    const shellTask = (cmd: string, functionId?: string) => ({
      ...h.task({ args: [{ n: "a b" }], functionId }),
      function: { strategy: SHELL_CODE, data: JSON.stringify({ cmd, snippetLines: 10 }) },
    });
    const refused = (kind: string, strategy: string, allowed: string) =>
      [
        "Deserialization failed:",
        `  ${kind} serializer ${strategy} disabled by current configuration.`,
        `  The current configuration requires the *function* to be serialized with one of the allowed ${kind} classes:`,
        "",
        `      Allowed serializers: ${allowed}`,
      ].join("\n");

    const allowedShell = randomUUID();
    const shell = shellTask("printf '%s|' {n}", allowedShell);
    const notAllowed = shellTask("echo no");
    const js = h.task();
    await h.publish(shell, notAllowed, js);
    const shellOnly = h.start({
      template: template("  allowed_serializers: [conduit.ShellCode, conduit.*Data]"),
      allowedFunctions: [allowedShell, js.functionId],
    });
    expect(deserializeData((await outcome(shell)).result!)).toEqual({
      cmd: "printf '%s|' 'a b'",
      stdout: "a b|",
      stderr: "",
      returncode: 0,
      exceptionName: null,
    });
    expect((await outcome(notAllowed)).error).toMatchObject({ code: "FUNCTION_NOT_ALLOWED" });
    expect((await outcome(js)).error!.message).toBe(
      refused("Code", "conduit.SourceCode", "conduit.ShellCode, conduit.*Data"),
    );
    shellOnly.child.kill("SIGTERM");
    expect((await shellOnly.exit).code).toBe(0);

    const shellAgain = shellTask("echo refused");
    const jsAgain = h.task();
    await h.publish(shellAgain, jsAgain);
    const jsOnly = h.start({ template: template("  allowed_serializers: [conduit.SourceCode, conduit.*Data]") });
    expect(deserializeData((await outcome(jsAgain)).result!)).toBe(42);
    expect((await outcome(shellAgain)).error!.message).toBe(
      refused("Code", "conduit.ShellCode", "conduit.SourceCode, conduit.*Data"),
    );
    jsOnly.child.kill("SIGTERM");
    expect((await jsOnly.exit).code).toBe(0);
  });
});
