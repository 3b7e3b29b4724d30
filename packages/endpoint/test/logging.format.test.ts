/**
 * The endpoint's log lines: one JSON object a line in the service's (pino's)
 * shape, with the logger's and the line's fields; `CONDUIT_LOG_FORMAT=text`
 * for the former human-readable lines; a bad value refused in one sentence.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createLogger, logFormatFromEnv } from "../src/logging.js";

function logDir(): string {
  return mkdtempSync(join(tmpdir(), "conduit-logfmt-"));
}

describe("endpoint log format", () => {
  it("writes one JSON object a line, pino's level numbers, the logger's fields and the line's", () => {
    const file = join(logDir(), "endpoint.log");
    const log = createLogger({ file, name: "UEP uep.a.b", debug: true, fields: { uep: "uep.a.b", endpoint_id: "a" } });
    const before = Date.now();
    log.debug('Task t1 received "quoted"\nsecond line', { task_id: "t1", reqId: "r1", absent: undefined });
    log.info("started");
    log.warn("careful", { uep: "uep.a.c" });
    log.error("failed");
    const lines = readFileSync(file, "utf8").split("\n");
    expect(lines.pop()).toBe("");
    expect(lines).toHaveLength(4);
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries[0]).toEqual({
      level: 20,
      time: expect.any(Number),
      pid: process.pid,
      hostname: expect.any(String),
      name: "UEP uep.a.b",
      msg: 'Task t1 received "quoted"\nsecond line',
      uep: "uep.a.b",
      endpoint_id: "a",
      task_id: "t1",
      reqId: "r1",
    });
    expect(entries[0].time as number).toBeGreaterThanOrEqual(before);
    expect(entries.map((e) => e.level)).toEqual([20, 30, 40, 50]);
    expect(entries[2].uep).toBe("uep.a.c");
  });

  it("leaves DEBUG lines out unless asked", () => {
    const file = join(logDir(), "endpoint.log");
    const log = createLogger({ file, name: "MEP" });
    log.debug("hidden", { task_id: "t" });
    log.info("shown");
    expect(
      readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l).msg),
    ).toEqual(["shown"]);
  });

  it("writes the human-readable lines with CONDUIT_LOG_FORMAT=text, and refuses another value in one sentence", () => {
    const file = join(logDir(), "endpoint.log");
    const log = createLogger({ file, name: "MEP", format: logFormatFromEnv({ CONDUIT_LOG_FORMAT: "text" }) });
    log.warn("careful", { task_id: "t1" });
    expect(readFileSync(file, "utf8")).toMatch(
      new RegExp(`^\\[\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\] WARNING ${process.pid} MEP careful task_id=t1\\n$`),
    );
    expect(logFormatFromEnv({})).toBe("json");
    expect(() => logFormatFromEnv({ CONDUIT_LOG_FORMAT: "yaml" })).toThrow(
      'CONDUIT_LOG_FORMAT is "yaml", neither json nor text; set it to one of them, or unset it for json.',
    );
  });
});
