/**
 * Endpoint errors. Each message is one sentence naming the problem and the fix;
 * across AMQP they travel as WireError `{code, name, message}`.
 */
import { ConduitError } from "@conduit/protocol";

/** A config file, template, schema or option is invalid. Not retryable. */
export class ConfigError extends ConduitError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? "CONFIG_INVALID", message, options);
    this.name = "ConfigError";
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
