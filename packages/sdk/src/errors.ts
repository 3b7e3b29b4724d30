/**
 * Errors the SDK raises itself. Errors that travel from the service or the
 * endpoint (TaskExecutionFailed, PayloadTooLargeError, ConduitError) come from
 * @conduit/protocol.
 */
import { type ApiErrorBody, ConduitError } from "@conduit/protocol";

/** The service answered with an HTTP error; `message` is the service's one sentence. */
export class ConduitApiError extends ConduitError {
  readonly statusCode: number;

  constructor(body: Pick<ApiErrorBody, "code" | "statusCode" | "message">) {
    super(body.code, body.message);
    this.name = "ConduitApiError";
    this.statusCode = body.statusCode;
  }
}

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

/** A future given up by `Executor.shutdown({ cancelFutures: true })`. */
export class FutureCancelledError extends ConduitError {
  readonly taskId: string;

  constructor(taskId: string) {
    super(
      "FUTURE_CANCELLED",
      `Task ${taskId} was cancelled by Executor.shutdown({ cancelFutures: true }); if it was already submitted, fetch its result with client.getResult("${taskId}").`,
    );
    this.name = "FutureCancelledError";
    this.taskId = taskId;
  }
}

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
