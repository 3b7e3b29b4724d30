/**
 * Payload encoding: how the SDK ships functions and arguments, and decodes results.
 *
 * Functions travel as `conduit.SourceCode`: the function's source text, which
 * the worker evaluates as an expression (see function-source.ts for what
 * can be shipped so). Arguments travel as `{args}` in a data strategy,
 * `conduit.StructuredData` (the default) or `conduit.JSONData`; results come
 * back in the task's data strategy, decoded by the protocol.
 */
import {
  ConduitError,
  deserializeData,
  fromWireError,
  type Payload,
  ReportedError,
  SOURCE_CODE,
  STRUCTURED_DATA,
  serializeCall,
  type TaskState,
  toWireError,
  type WireError,
} from "@conduit/protocol";
import { type AnyFunction, functionSource } from "./function-source.js";

/** A `conduit.SourceCode` payload for `fn`. */
export function serializeFunction(fn: AnyFunction): Payload {
  return { strategy: SOURCE_CODE, data: functionSource(fn) };
}

/**
 * The call's arguments as `{args}` in a data strategy (`conduit.StructuredData`
 * by default, or `conduit.JSONData`); a value the strategy cannot carry is
 * refused naming its path, e.g. `args[0].when`.
 */
export function serializeArguments(args: unknown[], strategy: string = STRUCTURED_DATA): Payload {
  if (!Array.isArray(args)) {
    throw new ConduitError("SERIALIZATION_FAILED", "The arguments must be an array; pass them as [a, b, …].");
  }
  return serializeCall(args, strategy);
}

/** What a finished task reports, from a pushed result or a REST status. */
export interface TaskOutcome {
  taskId: string;
  state: TaskState;
  result?: Payload;
  error?: WireError;
}

/**
 * The task's value, or throws what the task raised: a TaskExecutionFailed with
 * the remote name, message and stack; TASK_PENDING if it has not finished yet.
 */
export function decodeOutcome(outcome: TaskOutcome): unknown {
  const { taskId, state, result, error } = outcome;
  switch (state) {
    case "success":
      return result === undefined ? undefined : deserializeData(result, { what: `The result of task ${taskId}` });
    case "failed":
    case "cancelled":
      throw fromWireError(
        error ??
          toWireError(
            new ReportedError(
              state === "failed" ? "TASK_FAILED" : "TASK_CANCELLED",
              "Error",
              `Task ${taskId} ${state === "failed" ? "failed" : "was cancelled"} without an error report; see the endpoint's log.`,
            ),
          ),
      );
    default:
      throw new ConduitError(
        "TASK_PENDING",
        `Task ${taskId} is ${state}, not finished; ask again later, or submit through an Executor to have the result pushed.`,
      );
  }
}
