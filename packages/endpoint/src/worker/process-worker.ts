/**
 * Entry of a worker process, forked by a ProcessPoolEngine (in the UEP) or by
 * a block manager, with an IPC channel. When the channel disconnects its
 * parent is gone, and the worker exits: no worker outlives the process that
 * started it.
 */
import { runWorkerLoop } from "./worker-loop.js";

if (!process.send) throw new Error("process-worker.js runs as a forked worker with an IPC channel, not on its own.");
const send = process.send.bind(process);

process.on("disconnect", () => process.exit(0));

runWorkerLoop({
  send: (message) => {
    // The parent may be gone already; then there is nobody to tell, and the disconnect handler ends us.
    send(message, undefined, undefined, () => {});
  },
  onMessage: (handler) => process.on("message", handler),
});
