/**
 * A UEP's task records, as it sends them to the MEP: one JSON string a line,
 * `jid=` left out while the job is unknown, and a failed write reported once
 * (the UEP then stops). Real descriptors; the MEP's side is manager.audit-log.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TaskAudit } from "../src/user-endpoint/task-audit.js";

const dir = mkdtempSync(join(tmpdir(), "conduit-task-audit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const FID = "6d0ba55f-de15-4af2-827d-05c50c338aa7";

describe("TaskAudit", () => {
  it("sends each state of a task as one JSON line, with the block and job once known", () => {
    const path = join(dir, "channel");
    const fd = openSync(path, "a");
    const failures: string[] = [];
    const audit = TaskAudit.toDescriptor(fd, (m) => failures.push(m));
    audit.received("t1", FID);
    audit.execStart("t1");
    audit.running(["t1", "unknown"], { blockId: "4" });
    audit.running(["t1"], { blockId: "4", jobId: "2477" });
    audit.execEnd("t1");
    audit.received("t2", FID);
    audit.notPermitted("t2");
    // Forgotten once ended: nothing more is sent for them.
    audit.execEnd("t1");
    audit.execStart("t2");
    closeSync(fd);
    const lines = readFileSync(path, "utf8")
      .split("\n")
      .slice(0, -1)
      .map((l) => JSON.parse(l) as string);
    expect(lines).toEqual([
      `fid=${FID} tid=t1 bid= RECEIVED`,
      `fid=${FID} tid=t1 bid= EXEC_START`,
      `fid=${FID} tid=t1 bid=4 RUNNING`,
      `fid=${FID} tid=t1 bid=4 jid=2477 RUNNING`,
      `fid=${FID} tid=t1 bid=4 jid=2477 EXEC_END`,
      `fid=${FID} tid=t2 bid= RECEIVED`,
      `fid=${FID} tid=t2 bid= FAILED - Function not permitted on endpoint`,
    ]);
    expect(failures).toEqual([]);
  });

  it("reports a failed write once, as the UEP logs it, and sends nothing after it", () => {
    const path = join(dir, "read-only");
    writeFileSync(path, "");
    const fd = openSync(path, "r");
    const failures: string[] = [];
    const audit = TaskAudit.toDescriptor(fd, (m) => failures.push(m));
    audit.received("t1", FID);
    audit.execStart("t1");
    closeSync(fd);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/^Unable to write audit log; endpoint may not continue: EBADF/);
  });

  it("refuses a descriptor that is not open, saying so", () => {
    expect(() => TaskAudit.toDescriptor(987, () => {})).toThrow(
      /^The audit descriptor 987 the endpoint manager gave is not open/,
    );
  });
});
