/**
 * Runs a `conduit.ShellCode` task (an SDK ShellFunction or MPIFunction):
 * fills the command's fields from the call's values, shell-quoted, and runs
 * it with bash in the task's directory, in a process group of its own.
 *
 * The task's directory is `CONDUIT_TASK_SANDBOX_DIR` when the engine sets it
 * (`run_in_sandbox`; upstream's GC_TASK_SANDBOX_DIR is read too), else a
 * new temporary directory removed when the command ends. stdout and stderr go
 * to the spec's files (relative to that directory), else to
 * `<task id>.stdout` / `.stderr` there; the result keeps their last
 * `snippetLines` lines. Every exit code is a result; the walltime kills the
 * whole process group and reports returncode 124, `TimeoutExpired`.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { constants, tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { formatShellCommand, SHELL_CODE, type ShellResult, type ShellSpec } from "@conduit/protocol/task";
import type { EngineTask } from "../engine-task.js";
import { TaskError } from "../errors.js";
import {
  MPI_LAUNCHER_ENV,
  MPI_LAUNCHERS,
  type MpiLauncher,
  mpiEnvironment,
  mpiNodes,
  mpiPrefix,
  mpiResources,
} from "./mpi-prefix.js";

/** The directory the engine runs a task in, when it sandboxes tasks. */
export const TASK_SANDBOX_ENV = "CONDUIT_TASK_SANDBOX_DIR";
/** The MPI launcher prefix an MPIFunction's command runs behind. */
export const MPI_PREFIX_ENV = "CONDUIT_MPI_PREFIX";

/** Returncode of a command the walltime stopped, as upstream (and coreutils' timeout) report it. */
export const WALLTIME_RETURNCODE = 124;
/** The most of each stream's end read for its snippet. */
const MAX_SNIPPET_BYTES = 1_000_000;

/** The spec of a ShellCode payload; throws FUNCTION_INVALID when it is not one. */
export function parseShellSpec(data: string, functionId: string): ShellSpec {
  let spec: Partial<ShellSpec> | null;
  try {
    spec = JSON.parse(data) as Partial<ShellSpec> | null;
  } catch {
    spec = null;
  }
  const optionalString = (v: unknown) => v === undefined || (typeof v === "string" && v !== "");
  if (
    typeof spec !== "object" ||
    spec === null ||
    typeof spec.cmd !== "string" ||
    !(spec.walltime === undefined || (typeof spec.walltime === "number" && spec.walltime > 0)) ||
    !(Number.isInteger(spec.snippetLines) && (spec.snippetLines as number) >= 0) ||
    !optionalString(spec.stdout) ||
    !optionalString(spec.stderr)
  ) {
    throw new TaskError(
      "FUNCTION_INVALID",
      `Function ${functionId} is not a valid ${SHELL_CODE} payload; submit a ShellFunction built by @conduit/sdk.`,
    );
  }
  return spec as ShellSpec;
}

/** The values a ShellFunction's fields are filled from: the call's one plain object (or kwargs), or none. */
export function shellValues(args: unknown[], taskId: string): Record<string, unknown> {
  const plain = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Map) && !(v instanceof Date);
  if (args.length === 0) return {};
  if (args.length === 1 && plain(args[0])) return args[0];
  throw new TaskError(
    "SHELL_TEMPLATE_INVALID",
    `Task ${taskId} runs a ShellFunction, which takes one object of values for its {fields}; submit it as ex.submit(shellFunction, { name: value }).`,
  );
}

export async function runShellTask(
  spec: ShellSpec,
  values: Record<string, unknown>,
  task: Pick<EngineTask, "taskId" | "resourceSpecification" | "mpiNodes">,
): Promise<ShellResult> {
  const { taskId } = task;
  const env = spec.mpi ? { ...process.env, ...mpiTaskEnvironment(task) } : process.env;
  let cmd: string;
  try {
    cmd = formatShellCommand(spec.cmd, values);
  } catch (err) {
    throw new TaskError("SHELL_TEMPLATE_INVALID", (err as Error).message);
  }
  if (spec.mpi) cmd = `$${MPI_PREFIX_ENV} ${cmd}`;
  const sandbox = process.env[TASK_SANDBOX_ENV] || process.env.GC_TASK_SANDBOX_DIR;
  const dir = sandbox || (await mkdtemp(join(tmpdir(), "conduit-shell-")));
  try {
    const stdoutPath = inDir(dir, spec.stdout ?? `${taskId}.stdout`);
    const stderrPath = inDir(dir, spec.stderr ?? `${taskId}.stderr`);
    const { returncode, timedOut } = await runBash(cmd, { cwd: dir, env }, stdoutPath, stderrPath, spec.walltime);
    return {
      cmd,
      stdout: lastLines(stdoutPath, spec.snippetLines),
      stderr: lastLines(stderrPath, spec.snippetLines),
      returncode,
      exceptionName: timedOut ? "TimeoutExpired" : returncode !== 0 ? "CalledProcessError" : null,
    };
  } finally {
    if (!sandbox) await rm(dir, { recursive: true, force: true });
  }
}

function inDir(dir: string, file: string): string {
  return isAbsolute(file) ? file : join(dir, file);
}

/** The launcher prefix and resources of an MPIFunction's task, as environment variables. */
function mpiTaskEnvironment(
  task: Pick<EngineTask, "taskId" | "resourceSpecification" | "mpiNodes">,
): Record<string, string> {
  const launcher = process.env[MPI_LAUNCHER_ENV] as MpiLauncher | undefined;
  if (!launcher || !(MPI_LAUNCHERS as readonly string[]).includes(launcher)) {
    throw new TaskError(
      "FUNCTION_INVALID",
      `Task ${task.taskId} runs an MPIFunction, which needs an MPI engine; ask the endpoint's administrator for an engine of type MPIEngine with mpi_launcher set.`,
    );
  }
  // The nodes the engine handed the task; a task from elsewhere may use all of the worker's.
  const nodes = task.mpiNodes ?? mpiNodes();
  const resources = mpiResources(task.resourceSpecification, task.taskId, nodes.length);
  const used = nodes.slice(0, resources.numNodes);
  return mpiEnvironment(launcher, mpiPrefix(launcher, resources, used), resources, used);
}

function runBash(
  cmd: string,
  { cwd, env }: { cwd: string; env: NodeJS.ProcessEnv },
  stdoutPath: string,
  stderrPath: string,
  walltime: number | undefined,
): Promise<{ returncode: number; timedOut: boolean }> {
  // Appended, as upstream does: a file shared by several tasks keeps every task's output.
  const out = openSync(stdoutPath, "a");
  const err = openSync(stderrPath, "a");
  return new Promise((resolve) => {
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const child = spawn("/bin/bash", ["-c", cmd], { cwd, env, stdio: ["ignore", out, err], detached: true });
    let settled = false;
    const done = (returncode: number) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      closeSync(out);
      closeSync(err);
      resolve({ returncode: timedOut ? WALLTIME_RETURNCODE : returncode, timedOut });
    };
    // bash itself could not start: 127, as a shell reports a command it cannot run.
    child.once("error", () => done(127));
    child.once("exit", (code, signal) => done(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)));
    if (walltime !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        killGroup(child.pid);
      }, walltime * 1000);
    }
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // The group is gone already.
  }
}

/** The last `count` lines of the file (at most its last MB), without the final newline. */
function lastLines(path: string, count: number): string {
  if (count === 0) return "";
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return "";
  }
  try {
    const size = statSync(path).size;
    const length = Math.min(size, MAX_SNIPPET_BYTES);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const lines = buffer.toString("utf8").replace(/\n$/, "").split("\n");
    return lines.slice(-count).join("\n");
  } finally {
    closeSync(fd);
  }
}
