/**
 * The MEP's audit log file on its own: created 0600 whatever the umask, an
 * existing file used as it is, records one per line under the prefix the MEP
 * knows (whatever a UEP sends), and a failed write reported once (fail closed).
 * The whole path through a real multi-user endpoint is multi-user.audit-log.test.ts.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/logging.js";
import { AuditLog, auditTimestamp, MAX_RECORD_CHARS } from "../src/manager/audit-log.js";

const dir = mkdtempSync(join(tmpdir(), "conduit-audit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const log = createLogger({ name: "test" });
const EID = "7a1c5e0e-3f7e-4b38-9a3c-2d5ad0c6d8f1";
const UEP = { uid: 1234, pid: 4321, uepId: "0e0f6a0c-8d51-4c57-8f6e-4a5c0a3f8b11" };
/** ISO 8601 local time with microseconds and offset, as in the seed. */
const TS = String.raw`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}[+-]\d{2}:\d{2}`;

function lines(path: string): string[] {
  return readFileSync(path, "utf8").split("\n").slice(0, -1);
}

describe("the audit log file", () => {
  it("is created with mode 0600 even under a permissive umask, and an existing file keeps its mode", () => {
    const path = join(dir, "new.log");
    const umask = process.umask(0);
    try {
      const audit = AuditLog.open({ path, endpointId: EID, log, onFailure: () => {} });
      audit.session("begin");
      audit.close();
    } finally {
      process.umask(umask);
    }
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const existing = join(dir, "existing.log");
    writeFileSync(existing, "kept\n");
    chmodSync(existing, 0o640);
    const audit = AuditLog.open({ path: existing, endpointId: EID, log, onFailure: () => {} });
    audit.session("begin");
    audit.close();
    expect(statSync(existing).mode & 0o777).toBe(0o640);
    expect(lines(existing)[0]).toBe("kept");
    expect(lines(existing)[1]).toMatch(
      new RegExp(`^${TS} uid=${process.getuid?.()} pid=${process.pid} eid=${EID} Begin MEP session =====$`),
    );
  });

  it("refuses a path it cannot open with one sentence naming it and the fix", () => {
    const path = join(dir, "missing", "audit.log");
    expect(() => AuditLog.open({ path, endpointId: EID, log, onFailure: () => {} })).toThrow(
      new RegExp(`^Cannot open the audit log ${path} \\(ENOENT.*\\); fix audit_log_path in config\\.yaml`),
    );
  });

  it("files each line a UEP sends under that UEP's prefix, one record per line", async () => {
    const path = join(dir, "records.log");
    const audit = AuditLog.open({ path, endpointId: EID, log, onFailure: () => {} });
    const channel = new PassThrough();
    audit.follow(UEP, channel);
    const forged = `x\r\n${auditTimestamp()} uid=0 pid=1 eid=${EID} End MEP session -----\0`;
    channel.write(`${JSON.stringify("fid=f tid=t bid= RECEIVED")}\n`);
    // A JSON string may carry \n, \r and NUL: they cannot break the line.
    channel.write(`${JSON.stringify(forged)}\n`);
    // Not JSON: filed as it came, split at its newlines.
    channel.write("raw one\nraw\r two\n");
    channel.write(`${"a".repeat(MAX_RECORD_CHARS + 10)}`);
    channel.write("b".repeat(100));
    channel.write("\nlast\n");
    channel.end();
    await audit.end(5_000);
    const prefix = `${TS} uid=1234 pid=4321 uep=${UEP.uepId} `;
    const got = lines(path);
    expect(got).toHaveLength(7);
    expect(got[0]).toMatch(new RegExp(`^${prefix}fid=f tid=t bid= RECEIVED$`));
    expect(got[1]).toMatch(new RegExp(`^${prefix}x ${TS} uid=0 pid=1 eid=${EID} End MEP session -----$`));
    expect(got[2]).toMatch(new RegExp(`^${prefix}raw one$`));
    expect(got[3]).toMatch(new RegExp(`^${prefix}raw two$`));
    expect(got[4]).toMatch(new RegExp(`^${prefix}a{${MAX_RECORD_CHARS}}$`));
    expect(got[5]).toMatch(new RegExp(`^${prefix}last$`));
    expect(got[6]).toMatch(new RegExp(`^${TS} uid=\\d+ pid=${process.pid} eid=${EID} End MEP session -----$`));
  });

  it("reports a failed write once, naming the record's prefix, and writes nothing after it", () => {
    const failures: string[] = [];
    const audit = AuditLog.open({ path: "/dev/full", endpointId: EID, log, onFailure: (m) => failures.push(m) });
    const problem = audit.session("begin");
    audit.uepRecord(UEP, "fid=f tid=t bid= RECEIVED");
    audit.close();
    expect(failures).toEqual([problem]);
    expect(problem).toMatch(
      new RegExp(
        `^Failed to write audit log message: \\[uid=\\d+ pid=${process.pid} eid=${EID}\\] - ENOSPC.*; the endpoint stops \\(fail closed\\)\\.$`,
      ),
    );
    expect(audit.failed).toBe(true);
  });

  it("writes the local time with microseconds and the UTC offset", () => {
    const at = Date.UTC(2025, 3, 10, 19, 44, 58, 742) + 0.079;
    const text = auditTimestamp(at);
    expect(text).toMatch(new RegExp(`^${TS}$`));
    expect(text).toMatch(/:58\.742079[+-]/);
    expect(new Date(text.replace(/(\.\d{3})\d{3}/, "$1")).getTime()).toBe(Math.floor(at));
  });
});
