/**
 * `conduit-endpoint restart <name>`: `stop`, then `start` attached in this
 * process, as Globus's `restart` invokes its stop and start. An endpoint that
 * systemd runs (`enable-on-boot`) is restarted through systemd instead: its
 * unit starts it again a second after any stop, and two starts would race for
 * `daemon.pid`.
 */
import { readFileSync } from "node:fs";
import { ConduitError } from "@conduit/protocol/wire";
import { configuredEndpoint, readPidFile } from "../manager/endpoint-dir.js";
import { type StartOptions, startEndpoint } from "./start.js";
import { stopEndpoint } from "./stop.js";

export interface RestartOptions extends StartOptions {
  /** Where the stop's progress lines go. */
  print: (line: string) => void;
}

/** Resolves with `start`'s exit code, once the restarted endpoint stops. */
export async function restartEndpoint(options: RestartOptions): Promise<number> {
  const { name } = options;
  const ep = configuredEndpoint(options.userDir, name);
  const running = readPidFile(ep);
  if (running.state === "running" && startedBySystemd(running.pid)) {
    throw new ConduitError(
      "ENDPOINT_RUNNING",
      `Endpoint ${name} runs under systemd (its unit would start it again beside this one); restart it with: sudo systemctl restart conduit-endpoint-${name}.service`,
    );
  }
  await stopEndpoint(options);
  return startEndpoint(options);
}

/** systemd sets INVOCATION_ID in the environment of every service it starts. */
function startedBySystemd(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, "utf8")
      .split("\0")
      .some((v) => v.startsWith("INVOCATION_ID="));
  } catch {
    return false;
  }
}
