/**
 * Runs one task inside a worker (thread, process, or a block's worker):
 * decode the function and its arguments, call it, await a returned promise,
 * serialize the value. Whatever happens, the outcome is an EngineResult;
 * this function never throws.
 *
 * The worker runs the user's own code as that user, so there is no sandbox:
 * the function source is compiled in the worker's main context, with the
 * usual globals, and `await import("node:fs")` or
 * `process.getBuiltinModule("node:fs")` reach Node's modules.
 */
import {
  type CallArguments,
  ConduitError,
  deserializeData,
  JSON_DATA,
  type Payload,
  SOURCE_CODE,
  serializeJson,
  toWireError,
} from "@conduit/protocol";
import type { EngineResult, EngineTask } from "../engines/engine-types.js";

type UserFunction = (...args: unknown[]) => unknown;

/** Called by another name, eval is indirect: the code sees only the global scope, not this module's. */
// biome-ignore lint/security/noGlobalEval: running the user's own function, as that user, is this worker's job.
const globalEval: (code: string) => unknown = globalThis.eval;

/** Code strategies a worker can run. */
export const CODE_STRATEGIES: readonly string[] = [SOURCE_CODE];

/** Compiled functions by function id; a worker sees few distinct functions, so a small bound suffices. */
const MAX_CACHED_FUNCTIONS = 256;
const compiled = new Map<string, { source: string; fn: UserFunction }>();

export async function executeTask(task: EngineTask): Promise<EngineResult> {
  let fn: UserFunction;
  let call: CallArguments;
  try {
    fn = loadFunction(task);
    call = decodeArguments(task);
  } catch (err) {
    return { taskId: task.taskId, ok: false, error: toWireError(err) };
  }
  const args = call.kwargs && Object.keys(call.kwargs).length > 0 ? [...call.args, call.kwargs] : call.args;

  const previousTaskId = process.env.CONDUIT_TASK_ID;
  process.env.CONDUIT_TASK_ID = task.taskId;
  let value: unknown;
  try {
    value = await fn(...args);
  } catch (err) {
    return { taskId: task.taskId, ok: false, error: toWireError(trimStack(err)) };
  } finally {
    if (previousTaskId === undefined) delete process.env.CONDUIT_TASK_ID;
    else process.env.CONDUIT_TASK_ID = previousTaskId;
  }

  try {
    return { taskId: task.taskId, ok: true, value: serializeResult(value) };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const error = taskError(
      "SERIALIZATION_FAILED",
      "SerializationError",
      `The result of task ${task.taskId} cannot be serialized as JSON (${reason}); return plain data (objects, arrays, strings, numbers, booleans, null).`,
    );
    return { taskId: task.taskId, ok: false, error: toWireError(error) };
  }
}

function loadFunction(task: EngineTask): UserFunction {
  const payload: Payload = task.function;
  if (payload.strategy !== SOURCE_CODE) {
    throw taskError(
      "DESERIALIZATION_FAILED",
      "DeserializationError",
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
    throw taskError(
      "FUNCTION_INVALID",
      "FunctionError",
      `Function ${functionId} does not compile (${reason}); send a function's source text, e.g. \`(a, b) => a + b\` or \`async function f(x) { ... }\`.`,
      err,
    );
  }
  if (typeof value !== "function") {
    throw taskError(
      "FUNCTION_INVALID",
      "FunctionError",
      `Function ${functionId} evaluates to ${value === null ? "null" : `a ${typeof value}`}, not a function; send a function's source text, e.g. \`(a, b) => a + b\` or \`async function f(x) { ... }\`.`,
    );
  }
  return value as UserFunction;
}

function decodeArguments(task: EngineTask): CallArguments {
  let decoded: unknown;
  try {
    decoded = deserializeData(task.args);
  } catch (err) {
    if (err instanceof ConduitError) throw err;
    throw taskError(
      "DESERIALIZATION_FAILED",
      "DeserializationError",
      `The arguments of task ${task.taskId} are not valid ${JSON_DATA} (${err instanceof Error ? err.message : String(err)}); serialize them with ${JSON_DATA}.`,
    );
  }
  const call = decoded as Partial<CallArguments> | null;
  const kwargsOk =
    call?.kwargs === undefined ||
    call.kwargs === null ||
    (typeof call.kwargs === "object" && !Array.isArray(call.kwargs));
  if (typeof call !== "object" || call === null || !Array.isArray(call.args) || !kwargsOk) {
    throw taskError(
      "DESERIALIZATION_FAILED",
      "DeserializationError",
      `The arguments of task ${task.taskId} must be {"args": [...], "kwargs": {...}}; send the call's arguments in that shape.`,
    );
  }
  return { args: call.args, kwargs: call.kwargs ?? undefined };
}

/** A function that returns nothing (`undefined`) yields `null`, as a Python function returning None would. */
function serializeResult(value: unknown): Payload {
  return serializeJson(value === undefined ? null : value);
}

/** Drops the worker's own frames (executeTask and below) from a user error's stack: they are noise to the user. */
function trimStack(err: unknown): unknown {
  if (!(err instanceof Error) || typeof err.stack !== "string") return err;
  const lines = err.stack.split("\n");
  const ours = lines.findIndex((line) => /^\s+at (async )?executeTask\b/.test(line));
  if (ours > 0) err.stack = lines.slice(0, ours).join("\n");
  return err;
}

function taskError(code: string, name: string, message: string, cause?: unknown): ConduitError {
  const error = new ConduitError(code, message, cause === undefined ? undefined : { cause });
  error.name = name;
  // The stack would show worker internals, not the user's code: the message says it all.
  error.stack = undefined;
  return error;
}
