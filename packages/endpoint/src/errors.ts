/**
 * Endpoint errors. Each message is one sentence naming the problem and the fix;
 * across AMQP they travel as WireError `{code, name, message}`.
 */
import { ConduitError } from "@conduit/protocol";

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
export class UepStartError extends ConduitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("UEP_START_FAILED", message, options);
    this.name = "UepStartError";
  }
}

/** A worker or block died while running a task. */
export class WorkerLostError extends ConduitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("WORKER_LOST", message, options);
    this.name = "WorkerLost";
  }
}
