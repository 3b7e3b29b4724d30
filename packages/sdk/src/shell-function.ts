/**
 * `ShellFunction`: a shell command submitted as a task, as Globus Compute's.
 * Its `{name}` fields are filled from the values submitted with it, each
 * shell-quoted (`{name!raw}` inserts a value as is; `{{` and `}}` are
 * literal braces). It runs with bash in the task's directory, and resolves
 * with a {@link ShellResult} whatever its exit code:
 *
 * ```ts
 * import { Executor, ShellFunction } from "@conduit/sdk";
 *
 * const greet = new ShellFunction("echo {message}", { walltime: 10 });
 * const r = await ex.submit(greet, { message: "hi; rm -rf ~" }).result();
 * r.stdout; // "hi; rm -rf ~"
 * r.returncode; // 0
 * ```
 *
 * It travels as `conduit.ShellCode`, a code strategy of its own, so an
 * endpoint's `allowed_serializers` can allow shell commands and refuse
 * JavaScript, or the reverse. `MPIFunction` runs its command behind the MPI
 * engine's launcher prefix.
 */
import {
  ConduitError,
  type Payload,
  SHELL_CODE,
  type ShellResult,
  type ShellSpec,
  shellTemplateFields,
} from "@conduit/protocol";

export type { ShellResult };

/** Options of a {@link ShellFunction}. */
export interface ShellFunctionOptions {
  /** Seconds the command may run; then its whole process group is killed and it returns 124. Default: no limit. */
  walltime?: number;
  /** How many of the last lines of stdout and stderr the result keeps. @default 1000 */
  snippetLines?: number;
  /** File on the endpoint for stdout (relative to the task's directory). Default: `<task id>.stdout` there. */
  stdout?: string;
  /** File on the endpoint for stderr. Default: `<task id>.stderr` in the task's directory. */
  stderr?: string;
  /** The function's name when registered. Default: the command's first word. */
  name?: string;
}

export class ShellFunction {
  /** The `conduit.ShellCode` payload the Executor submits. */
  readonly payload: Payload;
  readonly name: string;
  /** The command template, e.g. `echo {message}`. */
  readonly cmd: string;
  /** The names of the template's fields, in order. */
  readonly fields: readonly string[];

  constructor(cmd: string, options: ShellFunctionOptions = {}) {
    if (typeof cmd !== "string" || cmd.trim() === "") {
      throw new ConduitError(
        "SHELL_TEMPLATE_INVALID",
        `${new.target.name} needs a command, got ${JSON.stringify(cmd) ?? String(cmd)}; pass one, e.g. "echo {message}".`,
      );
    }
    this.fields = shellTemplateFields(cmd);
    const { walltime, snippetLines = 1000, stdout, stderr } = options;
    if (walltime !== undefined && !(typeof walltime === "number" && Number.isFinite(walltime) && walltime > 0)) {
      throw optionError("walltime", walltime, "a positive number of seconds");
    }
    if (!(Number.isInteger(snippetLines) && snippetLines >= 0)) {
      throw optionError("snippetLines", snippetLines, "a whole number of lines, 0 or more");
    }
    for (const [key, value] of [
      ["stdout", stdout],
      ["stderr", stderr],
      ["name", options.name],
    ] as const) {
      if (value !== undefined && (typeof value !== "string" || value === "")) {
        throw optionError(key, value, "a non-empty string");
      }
    }
    this.cmd = cmd;
    this.name = options.name ?? (cmd.trim().split(/\s+/)[0] as string);
    const spec: ShellSpec = { cmd, snippetLines, ...this.extraSpec() };
    if (walltime !== undefined) spec.walltime = walltime;
    if (stdout !== undefined) spec.stdout = stdout;
    if (stderr !== undefined) spec.stderr = stderr;
    this.payload = { strategy: SHELL_CODE, data: JSON.stringify(spec) };
  }

  /** What a subclass adds to the spec. */
  protected extraSpec(): Partial<ShellSpec> {
    return {};
  }
}

function optionError(key: string, value: unknown, expected: string): ConduitError {
  return new ConduitError(
    "BAD_OPTION",
    `ShellFunction option ${key} must be ${expected}, got ${JSON.stringify(value) ?? String(value)}.`,
  );
}

/**
 * `MPIFunction`: a ShellFunction whose command runs behind the MPI engine's
 * launcher prefix (`$CONDUIT_MPI_PREFIX`, e.g. `mpiexec -n 2 …`), built from
 * the task's `resourceSpecification` (`num_nodes`, `ranks_per_node`,
 * `num_ranks`, `launcher_options`). It needs an endpoint whose engine is an
 * MPIEngine.
 *
 * ```ts
 * const ex = new Executor({ endpointId, resourceSpecification: { num_nodes: 1, num_ranks: 2 } });
 * const r = await ex.submit(new MPIFunction("hostname")).result();
 * ```
 */
export class MPIFunction extends ShellFunction {
  protected override extraSpec(): Partial<ShellSpec> {
    return { mpi: true };
  }
}
