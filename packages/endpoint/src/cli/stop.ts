/**
 * `conduit-endpoint stop <name>`: SIGTERM to the MEP named by `daemon.pid`,
 * then wait for it to exit (it stops its UEPs first); SIGKILL after the grace
 * period. A MEP that died without cleaning up (Disconnected) gets its
 * leftovers killed and its pid file removed.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ConduitError } from "@conduit/protocol/wire";
import { configuredEndpoint, isMepProcess, readPidFile, removePidFile } from "../manager/endpoint-dir.js";
import { waitUntil } from "../manager/processes.js";
import { killLeftoverUeps } from "../manager/uep-records.js";

/** The MEP gives its UEPs 10 s; this leaves it time to say goodbye. */
const STOP_GRACE_MS = 15_000;

export interface StopOptions {
  userDir: string;
  name: string;
  /** Where the progress lines go. */
  print: (line: string) => void;
}

export async function stopEndpoint(options: StopOptions): Promise<void> {
  const { name, print } = options;
  const ep = configuredEndpoint(options.userDir, name);
  const status = readPidFile(ep);
  if (status.state === "absent") {
    // Nothing to signal, but a MEP killed after removing its pid file may have left UEPs.
    await killLeftoverUeps(ep.uepRecords);
    print(`Endpoint <${name}> is not running`);
    return;
  }
  if (status.state === "stale") {
    const killed = await killLeftoverUeps(ep.uepRecords);
    removePidFile(ep);
    const leftovers = killed > 0 ? ` and killed ${killed} leftover user endpoint process group(s)` : "";
    print(
      `> Endpoint <${name}> was not running (its manager process had died without cleaning up); removed its PID file${leftovers}`,
    );
    return;
  }

  const { pid } = status;
  try {
    process.kill(pid, "SIGTERM");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EPERM") {
      throw new ConduitError(
        "NOT_PERMITTED",
        `Endpoint ${name} runs as another user (pid ${pid}); run conduit-endpoint stop ${name} as that user.`,
      );
    }
  }
  const isMep = () => isMepProcess(pid, name);
  if (!(await waitUntil(() => !isMep(), STOP_GRACE_MS))) {
    print(`Endpoint <${name}> did not stop within ${STOP_GRACE_MS / 1000} s; killing it (pid ${pid})`);
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // exited meanwhile
    }
    await waitUntil(() => !isMep(), 5_000);
    await sleep(100);
  }
  // A MEP that shut down cleanly removed both files itself; otherwise clean up after it.
  if (readPidFile(ep).state !== "running") {
    await killLeftoverUeps(ep.uepRecords);
    removePidFile(ep);
  }
  print(`> Endpoint <${name}> is now stopped`);
}
