/**
 * Runs one task inside a worker (thread, process, or a block's worker):
 * decode the function and its arguments, call it, await a returned promise,
 * serialize the value. Whatever happens, the outcome is an EngineResult;
 * this function never throws.
 *
 * Each payload names its strategy: code is `conduit.SourceCode` (compiled
 * here), `conduit.BundledCode` (loaded by ./bundled-code.ts) or
 * `conduit.ShellCode` (a command run by ./shell-task.ts); arguments are
 * `conduit.JSONData` or `conduit.StructuredData` (refused when they come from
 * a newer Node major than this worker's), and the result goes back in the
 * arguments' strategy, failing the task when it is larger than the result
 * limit (`engine.result_size_limit`, 10 MB by default).
 *
 * The worker runs the user's own code as that user, so there is no sandbox:
 * the function source is compiled in the worker's main context, with the
 * usual globals, and `await import("node:fs")` or
 * `process.getBuiltinModule("node:fs")` reach Node's modules.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  BUNDLED_CODE,
  type CallArguments,
  CODE_STRATEGIES,
  ConduitError,
  deserializeData,
  isDataStrategy,
  JSON_DATA,
  type Payload,
  payloadBytes,
  SHELL_CODE,
  SOURCE_CODE,
  STRUCTURED_DATA,
  serializeData,
  toWireError,
} from "@conduit/protocol/task";
import type { EngineResult, EngineTask } from "../engine-task.js";
import { TaskError } from "../errors.js";
import { SANDBOX_ROOT_ENV } from "./sandbox-root.js";

type UserFunction = (...args: unknown[]) => unknown;

/** Called by another name, eval is indirect: the code sees only the global scope, not this module's. */
// biome-ignore lint/security/noGlobalEval: running the user's own function, as that user, is this worker's job.
const globalEval: (code: string) => unknown = globalThis.eval;

/** Code strategies a worker can run. */
export { CODE_STRATEGIES };

/** The environment variable through which the UEP hands `engine.result_size_limit` to its workers. */
export const RESULT_SIZE_LIMIT_ENV = "CONDUIT_RESULT_SIZE_LIMIT";
/** Largest encoded result a task may return, unless `engine.result_size_limit` says otherwise: 10 MB. */
export const DEFAULT_RESULT_SIZE_LIMIT = 10_000_000;

/** The workers' environment with `engine.result_size_limit` (a positive integer, or absent) in it. */
export function withResultSizeLimit(env: NodeJS.ProcessEnv, limit: unknown): NodeJS.ProcessEnv {
  return typeof limit === "number" && Number.isInteger(limit) && limit > 0
    ? { ...env, [RESULT_SIZE_LIMIT_ENV]: String(limit) }
    : env;
}

/** This worker's result limit: `CONDUIT_RESULT_SIZE_LIMIT`, else 10 MB. */
export function resultSizeLimit(env: NodeJS.ProcessEnv = process.env): number {
  const configured = Number(env[RESULT_SIZE_LIMIT_ENV]);
  return Number.isInteger(configured) && configured > 0 ? configured : DEFAULT_RESULT_SIZE_LIMIT;
}

/** Set by a block manager when its engine has `run_in_sandbox`: each task runs in a folder of its own below it. */
export { SANDBOX_ROOT_ENV };
/** The task's own folder (its working directory), while it runs in a sandbox. */
export const TASK_SANDBOX_ENV = "CONDUIT_TASK_SANDBOX_DIR";

/**
 * Makes the task's folder `<root>/<task id>` (0700), enters it and names it
 * in the environment; the returned function leaves it. Tasks of a process
 * worker run one at a time, so changing the process's directory is safe.
 */
function enterSandbox(taskId: string): (() => void) | undefined {
  const root = process.env[SANDBOX_ROOT_ENV];
  if (!root) return undefined;
  const dir = join(root, taskId.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+$/, "_"));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const previous = process.cwd();
  process.chdir(dir);
  process.env[TASK_SANDBOX_ENV] = dir;
  return () => {
    process.chdir(previous);
    delete process.env[TASK_SANDBOX_ENV];
  };
}

/** Compiled functions by function id; a worker sees few distinct functions, so a small bound suffices. */
const MAX_CACHED_FUNCTIONS = 256;
const compiled = new Map<string, { source: string; fn: UserFunction }>();

export async function executeTask(task: EngineTask): Promise<EngineResult> {
  let fn: UserFunction;
  let call: CallArguments;
  try {
    // The arguments first: a payload this worker cannot read fails before any user code (a bundle's top level) runs.
    call = decodeArguments(task);
    fn = await loadFunction(task);
  } catch (err) {
    return { taskId: task.taskId, ok: false, error: toWireError(err) };
  }
  const args = call.kwargs && Object.keys(call.kwargs).length > 0 ? [...call.args, call.kwargs] : call.args;

  const previousTaskId = process.env.CONDUIT_TASK_ID;
  process.env.CONDUIT_TASK_ID = task.taskId;
  let value: unknown;
  let leaveSandbox: (() => void) | undefined;
  try {
    leaveSandbox = enterSandbox(task.taskId);
    value = await fn(...args);
  } catch (err) {
    return { taskId: task.taskId, ok: false, error: toWireError(trimStack(err)) };
  } finally {
    leaveSandbox?.();
    if (previousTaskId === undefined) delete process.env.CONDUIT_TASK_ID;
    else process.env.CONDUIT_TASK_ID = previousTaskId;
  }

  // Results go back in the task's data strategy.
  const strategy = isDataStrategy(task.args.strategy) ? task.args.strategy : STRUCTURED_DATA;
  let payload: Payload;
  try {
    payload = serializeResult(value, strategy);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const error = new TaskError(
      "SERIALIZATION_FAILED",
      `The result of task ${task.taskId} cannot be serialized with ${strategy} (${reason.replace(/\.$/, "")}); return a value that strategy carries.`,
    );
    return { taskId: task.taskId, ok: false, error: toWireError(error) };
  }
  const size = payloadBytes(payload);
  const limit = resultSizeLimit();
  if (size > limit) {
    const error = new TaskError(
      "RESULT_TOO_LARGE",
      `The result of task ${task.taskId} is ${size} bytes encoded, over this endpoint's result limit of ${limit} bytes (engine.result_size_limit); return less data (e.g. write it to a file and return its path) or ask the endpoint's administrator to raise the limit.`,
    );
    return { taskId: task.taskId, ok: false, error: toWireError(error) };
  }
  return { taskId: task.taskId, ok: true, value: payload };
}

async function loadFunction(task: EngineTask): Promise<UserFunction> {
  const payload: Payload = task.function;
  // Bundles and shell functions load their runner at their first task: a worker's start pays only for what
  // every task needs (a new UEP's first task waits for its workers to start).
  if (payload.strategy === BUNDLED_CODE) {
    const { loadBundledFunction, workerModulesDir } = await import("./bundled-code.js");
    try {
      return await loadBundledFunction(payload.data, { modulesDir: workerModulesDir() });
    } catch (err) {
      if (err instanceof ConduitError) throw err;
      throw new TaskError(
        "FUNCTION_INVALID",
        `The bundled function of task ${task.taskId} could not be loaded (${err instanceof Error ? err.message : String(err)}); check the module and the packages it needs.`,
        { cause: err },
      );
    }
  }
  if (payload.strategy === SHELL_CODE) {
    const { parseShellSpec, runShellTask, shellValues } = await import("./shell-task.js");
    const spec = parseShellSpec(payload.data, task.functionId);
    return (...args: unknown[]) => runShellTask(spec, shellValues(args, task.taskId), task);
  }
  if (payload.strategy !== SOURCE_CODE) {
    throw new TaskError(
      "DESERIALIZATION_FAILED",
      `Code strategy ${payload.strategy} is not known here; known: ${CODE_STRATEGIES.join(", ")}.`,
    );
  }
  const cached = compiled.get(task.functionId);
  if (cached && cached.source === payload.data) return cached.fn;

  const fn = compile(payload.data, task.functionId);
  if (compiled.size >= MAX_CACHED_FUNCTIONS) {
    // Maps iterate in insertion order: drop the oldest entry.
    const oldest = compiled.keys().next().value;
    if (oldest !== undefined) compiled.delete(oldest);
  }
  compiled.set(task.functionId, { source: payload.data, fn });
  return fn;
}

function compile(source: string, functionId: string): UserFunction {
  let value: unknown;
  try {
    // Indirect eval: global scope, the source's own line numbers, a file name in stack traces
    // (sourceURL), and `import()` without vm's experimental loader flags. The newline keeps a
    // trailing `// comment` in the source from swallowing the closing parenthesis.
    value = globalEval(`(${source}\n)\n//# sourceURL=conduit-function-${functionId}.js`);
  } catch (err) {
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new TaskError(
      "FUNCTION_INVALID",
      `Function ${functionId} does not compile (${reason}); send a function's source text, e.g. \`(a, b) => a + b\` or \`async function f(x) { ... }\`.`,
      { cause: err },
    );
  }
  if (typeof value !== "function") {
    throw new TaskError(
      "FUNCTION_INVALID",
      `Function ${functionId} evaluates to ${value === null ? "null" : `a ${typeof value}`}, not a function; send a function's source text, e.g. \`(a, b) => a + b\` or \`async function f(x) { ... }\`.`,
    );
  }
  return value as UserFunction;
}

function decodeArguments(task: EngineTask): CallArguments {
  let decoded: unknown;
  try {
    decoded = deserializeData(task.args, {
      producerNodeVersion: task.submitter?.nodeVersion,
      what: `The arguments of task ${task.taskId}`,
    });
  } catch (err) {
    if (err instanceof ConduitError) {
      // The worker's frames say nothing to the user: the message does.
      err.stack = undefined;
      throw err;
    }
    throw new TaskError(
      "DESERIALIZATION_FAILED",
      `The arguments of task ${task.taskId} could not be decoded (${err instanceof Error ? err.message : String(err)}); serialize them with ${JSON_DATA} or ${STRUCTURED_DATA}.`,
    );
  }
  const call = decoded as Partial<CallArguments> | null;
  const kwargsOk =
    call?.kwargs === undefined ||
    call.kwargs === null ||
    (typeof call.kwargs === "object" && !Array.isArray(call.kwargs));
  if (typeof call !== "object" || call === null || !Array.isArray(call.args) || !kwargsOk) {
    throw new TaskError(
      "DESERIALIZATION_FAILED",
      `The arguments of task ${task.taskId} must be {"args": [...], "kwargs": {...}}; send the call's arguments in that shape.`,
    );
  }
  return { args: call.args, kwargs: call.kwargs ?? undefined };
}

/**
 * The result in the task's data strategy. With JSONData, a function that returns nothing (`undefined`)
 * yields `null`, as a Python function returning None would; StructuredData carries `undefined` as is.
 */
function serializeResult(value: unknown, strategy: string): Payload {
  return serializeData(strategy === JSON_DATA && value === undefined ? null : value, strategy, "result");
}

/** Drops the worker's own frames (executeTask and below) from a user error's stack: they are noise to the user. */
function trimStack(err: unknown): unknown {
  if (!(err instanceof Error) || typeof err.stack !== "string") return err;
  const lines = err.stack.split("\n");
  const ours = lines.findIndex((line) => /^\s+at (async )?executeTask\b/.test(line));
  if (ours > 0) err.stack = lines.slice(0, ours).join("\n");
  return err;
}
