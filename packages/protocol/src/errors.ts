/**
 * Errors shared by every Conduit program. Each has a stable `code` (listed in
 * error-codes.ts); across IPC, AMQP and HTTP an error travels as a
 * {@link WireError}, made by {@link toWireError} and nothing else, and is
 * rebuilt on the other side with {@link fromWireError}, keeping the remote name
 * and stack.
 */
import type { ApiErrorBody, AuthorizationParameters } from "./api.js";
import type { ErrorCode } from "./error-codes.js";

/** An error as it crosses a process boundary (AMQP, IPC, HTTP body). */
export interface WireError {
  /** Stable machine-readable code, e.g. `TASK_EXCEPTION`, `UEP_START_FAILED`. */
  code: string;
  /** The error's class name on the side that raised it, e.g. `TypeError`. */
  name: string;
  /** One sentence naming the problem and the fix. */
  message: string;
  /** The remote stack, when there is one. */
  stack?: string;
  cause?: WireError;
}

export class ConduitError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "ConduitError";
  }
}

/**
 * A broker message that is not JSON, or whose shape is wrong (code
 * `BAD_MESSAGE`); the sentence names the field, e.g. `results[3].taskId is
 * not a UUID` (that is `problem`; `field` is `results[3].taskId`). `taskId` is the message's own task id when that field is sound,
 * so a receiver can fail the task instead of leaving its submitter waiting.
 */
export class BadMessageError extends ConduitError {
  constructor(
    message: string,
    readonly details: { kind?: string; field?: string; problem?: string; taskId?: string } = {},
    options?: { cause?: unknown },
  ) {
    super("BAD_MESSAGE", message, options);
    this.name = "BadMessageError";
  }
}

/**
 * An error whose one sentence says all its receiver needs: it travels without
 * a stack, since the frames of the side that raised it are Conduit's
 * internals, not the user's code. Each family extends it with its codes and
 * their wire names (the endpoint's TaskError, EngineError, UepError, …).
 */
export class ReportedError extends ConduitError {
  constructor(code: ErrorCode, name: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = name;
    this.stack = undefined;
  }
}

/**
 * The service answered with an HTTP error; `code` and `message` are the
 * service's own (a newer service may send a code this version does not list),
 * or, for an answer that is not a Conduit error body (a proxy's page),
 * `HTTP_<status>` and a sentence naming the status and the URL.
 */
export class ConduitApiError extends ConduitError {
  readonly statusCode: number;
  /** With `AUTH_POLICY_UNMET`: what a new login must satisfy. */
  readonly authorizationParameters?: AuthorizationParameters;

  constructor(body: Pick<ApiErrorBody, "code" | "statusCode" | "message" | "authorization_parameters">) {
    super(body.code, body.message);
    this.name = "ConduitApiError";
    this.statusCode = body.statusCode;
    if (body.authorization_parameters) this.authorizationParameters = body.authorization_parameters;
  }
}

/**
 * The endpoint's authentication policy still refuses the caller after the
 * client logged in again once (or could not log in again by itself): the
 * sentence names the constraint that failed.
 */
export class AuthPolicyUnmetError extends ConduitApiError {
  constructor(message: string, authorizationParameters: AuthorizationParameters | undefined) {
    super({ code: "AUTH_POLICY_UNMET", statusCode: 403, message, authorization_parameters: authorizationParameters });
    this.name = "AuthPolicyUnmetError";
  }
}

/** A task's function threw, or the task could not run; carries the remote error. */
export class TaskExecutionFailed extends ConduitError {
  readonly remote: WireError;

  constructor(remote: WireError) {
    super(remote.code, remote.message);
    this.name = remote.name;
    this.remote = remote;
    this.stack = remote.stack ?? `${remote.name}: ${remote.message}`;
  }
}

/** A payload (task or request) is larger than the limit in force. */
export class PayloadTooLargeError extends ConduitError {
  constructor(what: string, size: number, limit: number) {
    super(
      "TASK_PAYLOAD_TOO_LARGE",
      `${what} is ${size} bytes, over the limit of ${limit} bytes; send less data per task (e.g. pass a path or URL instead of the data) or raise the limit.`,
    );
    this.name = "PayloadTooLargeError";
  }
}

/**
 * The one way an error becomes a {@link WireError}: a ConduitError keeps its
 * code, any other error (what a user's function threw) gets `code`; the stack
 * travels when the error has one (a {@link ReportedError} has none).
 */
export function toWireError(err: unknown, code: ErrorCode = "TASK_EXCEPTION"): WireError {
  if (err instanceof Error) {
    const wire: WireError = {
      code: err instanceof ConduitError ? err.code : code,
      name: err.name,
      message: err.message,
    };
    if (err.stack) wire.stack = err.stack;
    if (err.cause !== undefined) wire.cause = toWireError(err.cause, code);
    return wire;
  }
  return { code, name: "Error", message: typeof err === "string" ? err : (JSON.stringify(err) ?? String(err)) };
}

export function fromWireError(wire: WireError): TaskExecutionFailed {
  return new TaskExecutionFailed(wire);
}
