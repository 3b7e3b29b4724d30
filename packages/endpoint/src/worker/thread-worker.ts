/** Entry of a ThreadPoolEngine worker thread. */
import { parentPort } from "node:worker_threads";
import { runWorkerLoop } from "./worker-loop.js";

if (!parentPort) throw new Error("thread-worker.js runs as a worker thread of a ThreadPoolEngine, not on its own.");
const port = parentPort;

runWorkerLoop({
  send: (message) => port.postMessage(message),
  onMessage: (handler) => port.on("message", handler),
});
