/**
 * Errors the SDK raises itself. Errors that travel from the service or the
 * endpoint (TaskExecutionFailed, PayloadTooLargeError, ConduitApiError,
 * ConduitError) come from @conduit/protocol; their codes are its ERROR_CODES.
 */
import { ConduitError } from "@conduit/protocol";

/** The service answered with an HTTP error; `message` is the service's one sentence. */
/**
 * An endpoint's authentication policy refused the call even after the SDK
 * logged in again once (or its credential cannot log in again by itself);
 * the sentence names the constraint, `authorizationParameters` what a login
 * must satisfy.
 */
export { AuthPolicyUnmetError, ConduitApiError } from "@conduit/protocol";

/** No connection to the service (refused, reset, DNS): worth retrying once it is up. */
export class ServiceUnreachableError extends ConduitError {
  readonly serviceUrl: string;

  constructor(serviceUrl: string, cause: unknown) {
    super(
      "SERVICE_UNREACHABLE",
      `Cannot reach the Conduit service at ${serviceUrl} (${networkReason(cause)}); is the service running? (npx conduit-service start)`,
      { cause },
    );
    this.name = "ServiceUnreachableError";
    this.serviceUrl = serviceUrl;
  }
}

/** Why a future was cancelled; each reason has its own sentence. */
export type CancelReason = "shutdown" | "not-started" | "running" | "remote";

const CANCEL_MESSAGES: Record<CancelReason, (taskId: string) => string> = {
  shutdown: (id) =>
    `Task ${id} was cancelled by Executor.shutdown({ cancelFutures: true }); if it was already submitted, fetch its result with client.getResult("${id}").`,
  "not-started": (id) => `Task ${id} was cancelled by future.cancel() before it started, so it never ran.`,
  running: (id) =>
    `Task ${id} was cancelled by future.cancel() after it had started; it finishes on the endpoint and its result is discarded (fetch it with client.getResult("${id}")).`,
  remote: (id) => `Task ${id} was cancelled before it started (by another client of its task group), so it never ran.`,
};

/**
 * A future that will not get its task's result: `future.cancel()`, a `cancelled`
 * result from the service, or `Executor.shutdown({ cancelFutures: true })`.
 */
export class CancelledError extends ConduitError {
  readonly taskId: string;
  readonly reason: CancelReason;

  constructor(taskId: string, reason: CancelReason = "shutdown") {
    super(reason === "shutdown" ? "FUTURE_CANCELLED" : "TASK_CANCELLED", CANCEL_MESSAGES[reason](taskId));
    this.name = "CancelledError";
    this.taskId = taskId;
    this.reason = reason;
  }
}

/** @deprecated Renamed {@link CancelledError}. */
export const FutureCancelledError = CancelledError;
/** @deprecated Renamed {@link CancelledError}. */
export type FutureCancelledError = CancelledError;

/** fetch() wraps the socket error in `cause` (an AggregateError when every address failed). */
function networkReason(err: unknown): string {
  let inner: unknown = err;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  if (inner instanceof AggregateError && inner.errors[0] instanceof Error) inner = inner.errors[0];
  if (inner instanceof Error) {
    const code = (inner as NodeJS.ErrnoException).code;
    return inner.message || code || inner.name;
  }
  return String(inner);
}
