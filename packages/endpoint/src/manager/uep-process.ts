/**
 * One UEP child of the MEP: `node <dist/cli/main.js> _start-user-endpoint
 * <uep name>`, in its own session and process group (so a signal reaches its
 * workers too), its stdout/stderr appended to its own `endpoint.log`, and the
 * bootstrap written as one JSON line on stdin. stdin then stays open: the UEP
 * exits when it closes, which is how UEPs die with their MEP, even on kill -9.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { UepBootstrap } from "../user-endpoint/bootstrap-types.js";
import { signalGroup } from "./processes.js";

/** The built CLI entry point (this file is dist/manager/uep-process.js). */
const CLI_MAIN = fileURLToPath(new URL("../cli/main.js", import.meta.url));

export interface SpawnUepOptions {
  bootstrap: UepBootstrap;
  userDir: string;
  /** Added to the MEP's environment (user_environment.yaml). */
  env: Record<string, string>;
}

export type UepExit = { code: number | null; signal: NodeJS.Signals | null };

export class UepProcess {
  readonly name: string;
  readonly pid: number;
  /** Its own process group: spawned in a new session. */
  readonly pgid: number;
  /** `<user dir>/<uep name>/endpoint.log`, where its stdout and stderr go. */
  readonly logFile: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<UepExit>;
  private exit: UepExit | undefined;

  private constructor(
    private readonly child: ChildProcess,
    name: string,
    pid: number,
    logFile: string,
  ) {
    this.name = name;
    this.pid = pid;
    this.pgid = pid;
    this.logFile = logFile;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  /** `[(<user>, <uep name>) conduit-endpoint _start-user-endpoint <uep name>]`, as in the seed's log lines. */
  static describe(localUser: string, name: string): string {
    return `[(${localUser}, ${name}) conduit-endpoint _start-user-endpoint ${name}]`;
  }

  static spawn(options: SpawnUepOptions): UepProcess {
    const { bootstrap, userDir } = options;
    const name = bootstrap.uepName;
    const dir = join(userDir, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const logFile = join(dir, "endpoint.log");
    const logFd = openSync(logFile, "a", 0o600);
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [CLI_MAIN, "_start-user-endpoint", name], {
        // Its own folder: it exists (HOME may not, for a service account), and run files land there.
        cwd: dir,
        detached: true,
        stdio: ["pipe", logFd, logFd],
        env: { ...process.env, ...options.env, CONDUIT_USER_DIR: userDir },
      });
    } finally {
      closeSync(logFd);
    }
    if (child.pid === undefined) {
      // spawn() reports failures asynchronously; swallow the event, the throw says it.
      child.once("error", () => {});
      throw new Error(`Could not start a user endpoint process (${process.execPath} ${CLI_MAIN}).`);
    }
    // A UEP that died before reading its stdin makes this write fail with EPIPE; its exit is logged instead.
    child.stdin?.on("error", () => {});
    child.stdin?.write(`${JSON.stringify(bootstrap)}\n`);
    return new UepProcess(child, name, child.pid, logFile);
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Asks the UEP and its workers to stop (SIGTERM to the group). */
  terminate(): void {
    signalGroup(this.pgid, "SIGTERM");
  }

  /** Kills the whole process group, stragglers included. */
  kill(): void {
    signalGroup(this.pgid, "SIGKILL");
  }

  /** Closes its stdin: the UEP reads that as "the MEP is gone" and shuts down. */
  closeStdin(): void {
    this.child.stdin?.end();
  }
}
