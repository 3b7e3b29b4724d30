/**
 * One UEP child of the MEP: `conduit-endpoint _start-user-endpoint <uep name>`
 * — the one on the UEP's PATH (an admin's wrapper; see uep-program.ts), else
 * `node <dist/cli/main.js>` — in its own session and process group (so a signal reaches its
 * workers too), its stdout/stderr appended to its own `endpoint.log`, and the
 * bootstrap written as one JSON line on stdin. stdin then stays open: the UEP
 * exits when it closes, which is how UEPs die with their MEP, even on kill -9.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chownSync, closeSync, constants, fchownSync, lstatSync, mkdirSync, openSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import type { MappedIdentity } from "../config/render.js";
import type { UepBootstrap } from "../user-endpoint/bootstrap-types.js";
import { endProcesses, findProcesses } from "../worker/process-tree.js";
import { UEP_CGROUP_ENV } from "../worker/worker-cgroups.js";
import type { AuditLog } from "./audit-log.js";
import type { UepCgroup, UepCgroups } from "./cgroups.js";
import { signalGroup } from "./processes.js";
import { CLI_MAIN, findUepProgram, type UepProgram } from "./uep-program.js";

export interface SpawnUepOptions {
  bootstrap: UepBootstrap;
  userDir: string;
  /** Added to the MEP's environment (user_environment.yaml). */
  env: Record<string, string>;
  /**
   * Multi-user: the mapped account. The UEP then runs as that user through
   * setpriv, in a clean environment, with its directory in `~/.conduit`.
   */
  runAs?: MappedIdentity["local"];
  /** A root MEP's cgroups: the UEP gets one of its own. */
  cgroups?: UepCgroups;
  /**
   * High-Assurance: the UEP gets a channel of its own as descriptor
   * {@link AUDIT_FD} for its task records, which this log files under its prefix.
   */
  audit?: AuditLog;
}

/**
 * The UEP's end of its audit channel (a socket, which no other process can
 * open through /proc). Node marks it close-on-exec at start, and the UEP
 * checks that it did, so no block manager or worker inherits it.
 */
export const AUDIT_FD = 3;

/**
 * Marks every process of a UEP (inherited through the environment), so that
 * when it stops, what escaped its process group (setsid) is found too.
 */
const UEP_MARKER_ENV = "CONDUIT_UEP_NAME";
/** What a stopped UEP's leftover processes get between SIGTERM and SIGKILL. */
const LEFTOVER_GRACE_MS = 2000;

/**
 * Drops to the user before any Conduit code runs: no capabilities (bounding
 * set included), no way back (no_new_privs), the user's groups. `sh` only sets
 * the umask and `exec`s the program (node, or a wrapper that ends by
 * `exec`ing it), so node keeps setpriv's pid: the UEP stays a
 * direct child of the MEP (its parent-pid check and die-with-parent hold).
 */
const SETPRIV = "setpriv";
const UMASK_EXEC = 'umask 077; exec "$0" "$@"';

/** Where a mapped user's UEP keeps its directory: `<home>/.conduit`. */
export function mappedUserDir(user: MappedIdentity["local"]): string {
  return join(user.dir, ".conduit");
}

export type UepExit = { code: number | null; signal: NodeJS.Signals | null };

export class UepProcess {
  readonly name: string;
  readonly pid: number;
  /** Its own process group: spawned in a new session. */
  readonly pgid: number;
  /** `<user dir>/<uep name>/endpoint.log`, where its stdout and stderr go. */
  readonly logFile: string;
  /** The program it was started through (a wrapper found on its PATH, or the endpoint's own). */
  readonly program: UepProgram;
  /** Resolves when the process has exited. */
  readonly exited: Promise<UepExit>;
  private exit: UepExit | undefined;

  private constructor(
    private readonly child: ChildProcess,
    name: string,
    pid: number,
    logFile: string,
    private readonly uid: number,
    private readonly cgroup: UepCgroup | undefined,
    program: UepProgram,
  ) {
    this.program = program;
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
    const { runAs, audit } = options;
    const bootstrap: UepBootstrap = audit ? { ...options.bootstrap, auditFd: AUDIT_FD } : options.bootstrap;
    const userDir = runAs ? mappedUserDir(runAs) : options.userDir;
    const name = bootstrap.uepName;
    const dir = join(userDir, name);
    const env: NodeJS.ProcessEnv = runAs
      ? { ...userEnvironment(runAs), ...options.env, CONDUIT_USER_DIR: userDir }
      : { ...process.env, ...options.env, CONDUIT_USER_DIR: userDir };
    // The conduit-endpoint on its PATH, as its user sees it; a multi-user endpoint refuses an unsafe PATH here,
    // before anything is created or started for it.
    const program = findUepProgram(
      env.PATH,
      runAs ?? { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1, uname: ownUserName() },
      { strict: runAs !== undefined },
    );
    if (runAs) {
      userOwnedDir(dirname(dir), runAs);
      userOwnedDir(dir, runAs);
    } else {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    const logFile = join(dir, "endpoint.log");
    // O_NOFOLLOW: as root, never write through a link the user planted.
    const logFd = openSync(
      logFile,
      constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
      0o600,
    );
    let child: ChildProcess;
    const cgroup = options.cgroups?.prepare(name, runAs);
    const marks: Record<string, string> = { [UEP_MARKER_ENV]: name };
    if (cgroup?.memoryDir) marks[UEP_CGROUP_ENV] = cgroup.memoryDir;
    try {
      if (runAs) fchownSync(logFd, runAs.uid, runAs.gid);
      const run = [...programArgv(program), "_start-user-endpoint", name];
      const [command, args] = runAs ? [SETPRIV, [...setprivArgs(runAs), ...run]] : [run[0] as string, run.slice(1)];
      child = spawn(command, args, {
        // Its own folder: it exists (HOME may not, for a service account), and run files land there.
        cwd: dir,
        detached: true,
        stdio: audit ? ["pipe", logFd, logFd, "pipe"] : ["pipe", logFd, logFd],
        env: { ...env, ...marks },
      });
    } finally {
      closeSync(logFd);
    }
    if (child.pid !== undefined) cgroup?.enter(child.pid);
    if (child.pid === undefined) {
      void cgroup?.end();
      // spawn() reports failures asynchronously; swallow the event, the throw says it.
      child.once("error", () => {});
      throw new Error(
        `Could not start a user endpoint process (${runAs ? `${SETPRIV} … ` : ""}${programArgv(program).join(" ")}).`,
      );
    }
    const uid = runAs?.uid ?? process.getuid?.() ?? -1;
    // A "pipe" beyond stdio is a socket, readable and writable.
    const channel = child.stdio[AUDIT_FD] as Readable | null | undefined;
    if (audit && channel) audit.follow({ uid, pid: child.pid, uepId: bootstrap.uepId }, channel);
    // A UEP that died before reading its stdin makes this write fail with EPIPE; its exit is logged instead.
    child.stdin?.on("error", () => {});
    child.stdin?.write(`${JSON.stringify(bootstrap)}\n`);
    return new UepProcess(child, name, child.pid, logFile, uid, cgroup, program);
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

  /**
   * Ends every process the UEP left once it has stopped: all of its cgroup,
   * and, with or without one, every process of its user carrying its marker
   * (SIGTERM, SIGKILL after 2 s). The marker scan is taken before this
   * returns its promise, so a UEP started again later under the same name is
   * never touched.
   */
  endTree(): Promise<void> {
    const left = findProcesses({ marker: `${UEP_MARKER_ENV}=${this.name}`, uid: this.uid });
    return Promise.all([endProcesses(left, LEFTOVER_GRACE_MS), this.cgroup?.end()]).then(() => undefined);
  }

  /** Closes its stdin: the UEP reads that as "the MEP is gone" and shuts down. */
  closeStdin(): void {
    this.child.stdin?.end();
  }
}

/** The MEP's own account name, for a single-user endpoint's PATH warnings. */
function ownUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? "?"}`;
  }
}

/** The wrapper found on PATH, or node and the endpoint's CLI. */
function programArgv(program: UepProgram): string[] {
  return program.wrapper ? [program.wrapper] : [process.execPath, CLI_MAIN];
}

/** setpriv's arguments up to the program: `sh -c` sets the umask, then execs what follows. */
function setprivArgs(user: MappedIdentity["local"]): string[] {
  return [
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    "--init-groups",
    "--no-new-privs",
    "--bounding-set=-all",
    "--inh-caps=-all",
    "--",
    "/bin/sh",
    "-c",
    UMASK_EXEC,
  ];
}

/** A login-like environment for `user`; nothing of the MEP's (root's) environment leaks in. */
function userEnvironment(user: MappedIdentity["local"]): Record<string, string> {
  return {
    HOME: user.dir,
    USER: user.uname,
    LOGNAME: user.uname,
    SHELL: user.shell || "/bin/sh",
    PATH: `/usr/local/bin:/usr/bin:/bin:${dirname(process.execPath)}`,
  };
}

/**
 * Creates `path` (0700, owned by `user`) unless it exists; an existing one
 * must be a real directory owned by the user, never a link root would follow.
 */
function userOwnedDir(path: string, user: MappedIdentity["local"]): void {
  try {
    mkdirSync(path, { mode: 0o700 });
    chownSync(path, user.uid, user.gid);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  const stat = lstatSync(path);
  if (!stat.isDirectory() || stat.uid !== user.uid) {
    throw new Error(`${path} is not a directory owned by ${user.uname}; remove or fix it`);
  }
}
