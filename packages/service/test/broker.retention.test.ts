/**
 * `--result-retention` / `resultRetention`: the durations it takes, the
 * sentence a bad one gets (from the options and from the real CLI), and the
 * queue arguments protocol gives group queues.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { taskGroupQueueOptions } from "@conduit/protocol";
import { describe, expect, it } from "vitest";
import { compileOptions, parseDuration } from "../src/service-options.js";
import { createTempDir } from "./helpers/databases.js";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));

describe("result retention", () => {
  it.each([
    ["7d", 7 * 86_400_000],
    ["12h", 12 * 3_600_000],
    ["30m", 30 * 60_000],
    ["90s", 90_000],
    [" 1d ", 86_400_000],
    [1_234, 1_234],
  ])("reads %j as %d ms", (value, ms) => {
    expect(parseDuration("resultRetention", value)).toBe(ms);
  });

  it.each(["", "7", "7 days", "1.5h", "0s", "-1d", "d", "3651d", "10w"])("refuses %j with one sentence", (value) => {
    expect(() => parseDuration("resultRetention", value)).toThrow(
      /^resultRetention must be a positive duration of at most 3650d, written as a whole number and a unit \(d, h, m or s\), e\.g\. 7d, 12h, 30m or 90s; got .*\.$/,
    );
  });

  it("defaults to 7 days and keeps a valid value in the compiled config", () => {
    expect(compileOptions({ dataDir: "/tmp/x" }).resultRetentionMs).toBe(7 * 86_400_000);
    expect(compileOptions({ dataDir: "/tmp/x", resultRetention: "12h" }).resultRetentionMs).toBe(12 * 3_600_000);
    expect(() => compileOptions({ dataDir: "/tmp/x", resultRetention: "soon" })).toThrow(/resultRetention must be/);
  });

  it("puts the retention in the group queue's x-expires argument", () => {
    expect(taskGroupQueueOptions(90_000)).toEqual({ durable: true, arguments: { "x-expires": 90_000 } });
  });

  it("makes conduit-service start exit 1 with the sentence for a bad --result-retention", async () => {
    const dir = await createTempDir();
    try {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", CLI, "start", "--port", "0", "--result-retention", "a week"],
        { env: { ...process.env, CONDUIT_USER_DIR: dir.value }, stdio: ["ignore", "pipe", "pipe"] },
      );
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      const [code] = await once(child, "exit");
      expect(code).toBe(1);
      expect(stderr.trim()).toBe(
        'conduit-service: resultRetention must be a positive duration of at most 3650d, written as a whole number and a unit (d, h, m or s), e.g. 7d, 12h, 30m or 90s; got "a week".',
      );
    } finally {
      await dir.dispose();
    }
  }, 30_000);
});
