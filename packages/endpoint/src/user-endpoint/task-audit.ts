/**
 * A High-Assurance UEP's task records for the MEP's audit log: for each task
 * `fid=<function> tid=<task> bid=<block or empty> [jid=<job> ]<STATE>`, STATE
 * one of RECEIVED, EXEC_START, RUNNING (an engine with blocks, once the block
 * is known), EXEC_END, or `FAILED - Function not permitted on endpoint`. Each
 * record goes to the descriptor the MEP gave (`auditFd`) as one JSON string a
 * line; the MEP adds the time and this UEP's uid, pid and id (see
 * manager/audit-log.ts). Fail closed: a write that fails calls `onFailure`
 * once (the UEP then stops) and nothing more is sent.
 */
import { readFileSync, writeSync } from "node:fs";
import type { TaskPlacement } from "../engines/engine-types.js";

export type AuditState = "RECEIVED" | "EXEC_START" | "RUNNING" | "EXEC_END" | "FAILED";

interface Audited {
  functionId: string;
  blockId: string;
  jobId?: string;
}

/** O_CLOEXEC in /proc/<pid>/fdinfo's octal `flags`. */
const O_CLOEXEC = 0o2000000;

export class TaskAudit {
  private readonly tasks = new Map<string, Audited>();
  private failed = false;

  constructor(
    private readonly send: (line: string) => void,
    private readonly onFailure: (message: string) => void,
  ) {}

  /**
   * Records to descriptor `fd`, which must be close-on-exec (Node marks every
   * inherited descriptor above 2 so at start): otherwise the block managers
   * and workers this UEP starts, which run user code, would inherit it. Throws
   * one sentence when it is not.
   */
  static toDescriptor(fd: number, onFailure: (message: string) => void): TaskAudit {
    let flags: number;
    try {
      const match = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
      flags = match ? Number.parseInt(match[1] as string, 8) : 0;
    } catch (err) {
      throw new Error(`The audit descriptor ${fd} the endpoint manager gave is not open (${(err as Error).message}).`);
    }
    if ((flags & O_CLOEXEC) === 0) {
      throw new Error(
        `The audit descriptor ${fd} is not close-on-exec, so the processes this user endpoint starts would inherit it; refusing to run tasks.`,
      );
    }
    return new TaskAudit((line) => writeSync(fd, line), onFailure);
  }

  received(taskId: string, functionId: string): void {
    this.tasks.set(taskId, { functionId, blockId: "" });
    this.record(taskId, "RECEIVED");
  }

  execStart(taskId: string): void {
    this.record(taskId, "EXEC_START");
  }

  /** These tasks reached a block of an engine that says which. */
  running(taskIds: readonly string[], placement: TaskPlacement): void {
    for (const taskId of taskIds) {
      const task = this.tasks.get(taskId);
      if (!task) continue;
      task.blockId = placement.blockId;
      task.jobId = placement.jobId;
      this.record(taskId, "RUNNING");
    }
  }

  /** Its result is about to be sent. */
  execEnd(taskId: string): void {
    this.record(taskId, "EXEC_END");
    this.tasks.delete(taskId);
  }

  /** Refused by the allow-list (`allowed_functions`). */
  notPermitted(taskId: string): void {
    this.record(taskId, "FAILED", "Function not permitted on endpoint");
    this.tasks.delete(taskId);
  }

  private record(taskId: string, state: AuditState, message?: string): void {
    const task = this.tasks.get(taskId);
    if (!task || this.failed) return;
    const job = task.jobId === undefined ? "" : `jid=${task.jobId} `;
    const text = `fid=${task.functionId} tid=${taskId} bid=${task.blockId} ${job}${state}${message ? ` - ${message}` : ""}`;
    try {
      this.send(`${JSON.stringify(text)}\n`);
    } catch (err) {
      this.failed = true;
      this.onFailure(`Unable to write audit log; endpoint may not continue: ${(err as Error).message}`);
    }
  }
}
