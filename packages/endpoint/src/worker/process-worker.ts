/**
 * Entry of a worker process, forked by a ProcessPoolEngine (in the UEP) or by
 * a block manager, with an IPC channel. When the channel disconnects its
 * parent is gone, and the worker exits: no worker outlives the process that
 * started it. When a task ends, the processes it started end too (see
 * ./process-tree.ts), `setsid` ones included.
 */
import { endProcesses, findProcesses, lastPid, ticksNow } from "./process-tree.js";
import { runWorkerLoop } from "./worker-loop.js";

if (!process.send) throw new Error("process-worker.js runs as a forked worker with an IPC channel, not on its own.");
const send = process.send.bind(process);

/** What a task's processes get between SIGTERM and SIGKILL. */
const TASK_PROCESS_GRACE_MS = 2000;

process.on("disconnect", () => process.exit(0));

let taskStart: { pid: number | undefined; ticks: number } = { pid: undefined, ticks: 0 };

runWorkerLoop({
  send: (message) => {
    // The parent may be gone already; then there is nobody to tell, and the disconnect handler ends us.
    send(message, undefined, undefined, () => {});
  },
  onMessage: (handler) => process.on("message", handler),
  beforeTask: () => {
    taskStart = { pid: lastPid(), ticks: ticksNow() };
  },
  afterTask: (taskId) => {
    const to = lastPid();
    // No pid was handed out while the task ran (in this pid namespace): it started nothing.
    if (to !== undefined && to === taskStart.pid) return;
    // Synchronous up to the SIGTERMs: the next task's message is handled only after this, so none of its processes is taken.
    const left = findProcesses({
      root: process.pid,
      marker: `CONDUIT_TASK_ID=${taskId}`,
      since: taskStart.ticks,
      pids: taskStart.pid !== undefined && to !== undefined ? { from: taskStart.pid, to } : undefined,
    });
    void endProcesses(left, TASK_PROCESS_GRACE_MS);
  },
});
