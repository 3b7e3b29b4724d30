/**
 * Endpoint errors, a class per family of codes (protocol's ERROR_CODES). Each
 * message is one sentence naming the problem and the fix; across AMQP they
 * travel as WireError `{code, name, message}`, made by protocol's toWireError
 * and never by hand. The families that fail a task extend ReportedError: the
 * submitter gets the sentence, not the endpoint's stack.
 */
import { ConduitError, type ErrorCode, ReportedError } from "@conduit/protocol/task";

/**
 * Which step of rendering a user config template failed (see config/render.ts):
 * a reserved variable name, the schema (or the schema file itself), an
 * undefined variable, the sandbox (internals such as `__class__` or
 * `constructor`, the step budget, an engine failure), template syntax
 * (including an unknown filter or test, a compile-time error in Jinja), a
 * value of the wrong type (for an operation, or data that is not JSON), a
 * `shell_escape` of a value that is not JSON text, a template (or included
 * sibling) that does not exist or cannot be read, or a file the template names
 * that may not leave the MEP (see config/template-files.ts).
 */
export type RenderErrorKind =
  | "reserved-name"
  | "schema"
  | "undefined-variable"
  | "sandbox"
  | "template-syntax"
  | "type"
  | "shell-escape-value"
  | "template-not-found"
  | "template-file";

/** A config file, template, schema or option is invalid. Not retryable. */
export class ConfigError extends ConduitError {
  /** Set on every error of the template render pipeline: the step that failed. */
  readonly kind?: RenderErrorKind;

  constructor(message: string, options?: { cause?: unknown; code?: string; kind?: RenderErrorKind }) {
    super(options?.code ?? "CONFIG_INVALID", message, options);
    this.name = "ConfigError";
    if (options?.kind !== undefined) this.kind = options.kind;
  }
}

/** A UEP could not start (render, schema, engine, endpoint_setup); its tasks fail with this. */
export class UepStartError extends ReportedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("UEP_START_FAILED", "UepStartError", message, options);
  }
}

/** The wire names of the MEP's task errors. */
const UEP_ERROR_NAMES = {
  UEP_CRASHED: "UepCrashed",
  UEP_IDLE_HARD_LIMIT: "UepIdleHardLimit",
  IDENTITY_NOT_MAPPED: "IdentityNotMapped",
} as const satisfies Partial<Record<ErrorCode, string>>;

/** The MEP fails a UEP's queued tasks: the UEP kept crashing, stopped at its idle_heartbeats_hard limit, or its identity maps to no usable account. */
export class UepError extends ReportedError {
  constructor(code: keyof typeof UEP_ERROR_NAMES, message: string) {
    super(code, UEP_ERROR_NAMES[code], message);
  }
}

/** A worker or block died while running a task: retryable, up to the engine's max_retries_on_system_failure. */
export class WorkerLostError extends ReportedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("WORKER_LOST", "WorkerLost", message, options);
  }
}

/** The wire names of the engines' task errors. */
const ENGINE_ERROR_NAMES = {
  ENGINE_SHUTDOWN: "EngineShutdown",
  WORKER_START_FAILED: "WorkerStartError",
  WORKER_OUT_OF_MEMORY: "WorkerOutOfMemory",
  BLOCK_START_FAILED: "BlockStartError",
  BLOCK_WALLTIME: "BlockWalltime",
  BLOCK_CANCELLED: "BlockCancelled",
} as const satisfies Partial<Record<ErrorCode, string>>;

/** An engine fails a task it cannot run on: its workers or blocks would not start, died of memory, reached their walltime or were cancelled, or it shut down. */
export class EngineError extends ReportedError {
  constructor(code: keyof typeof ENGINE_ERROR_NAMES, message: string) {
    super(code, ENGINE_ERROR_NAMES[code], message);
  }
}

/** The wire names of the task errors of the UEP's checks and of the worker. */
const TASK_ERROR_NAMES = {
  BAD_TASK: "BadTask",
  FUNCTION_NOT_ALLOWED: "FunctionNotAllowed",
  INVALID_RESOURCE_SPECIFICATION: "InvalidResourceSpecification",
  FUNCTION_INVALID: "FunctionError",
  SHELL_TEMPLATE_INVALID: "ShellTemplateError",
  DESERIALIZATION_FAILED: "DeserializationError",
  SERIALIZATION_FAILED: "SerializationError",
  RESULT_TOO_LARGE: "MaxResultSizeExceeded",
  BUNDLE_EXPORT_INVALID: "BundledCodeError",
  BUNDLE_EXTERNAL_MISSING: "BundledCodeError",
} as const satisfies Partial<Record<ErrorCode, string>>;

/**
 * A task that must not or cannot run here, or whose result cannot go back: the
 * UEP refuses it (its shape, allowed_functions, resource_specification,
 * allowed_serializers) or the worker cannot load its function, decode its
 * arguments or encode its result. Not retryable.
 */
export class TaskError extends ReportedError {
  constructor(code: keyof typeof TASK_ERROR_NAMES, message: string, options?: { cause?: unknown }) {
    super(code, TASK_ERROR_NAMES[code], message, options);
  }
}
