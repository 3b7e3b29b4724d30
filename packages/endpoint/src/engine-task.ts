/**
 * One task as an engine receives it, and its outcome: what the UEP hands its
 * engine, the engine its workers, and a worker sends back.
 */
import type { Payload, WireError } from "@conduit/protocol/task";

/** One task as the engine receives it (already checked against allowed_functions). */
export interface EngineTask {
  taskId: string;
  functionId: string;
  function: Payload;
  args: Payload;
  resourceSpecification?: Record<string, unknown>;
  /** The nodes the MPI engine handed this MPI task; its launcher runs on these only. */
  mpiNodes?: string[];
  /** Node and SDK versions of the submitter: a StructuredData payload from a newer Node major fails. */
  submitter?: { nodeVersion: string; sdkVersion: string };
  /** The submit's REST request id (its message's correlation-id): the worker's DEBUG line names it. */
  requestId?: string;
}

/** The outcome of one task; exactly one per submitted task, whatever happens. */
export type EngineResult =
  | { taskId: string; ok: true; value: Payload }
  | { taskId: string; ok: false; error: WireError };
