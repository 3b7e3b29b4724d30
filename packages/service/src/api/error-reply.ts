/**
 * Turns anything a route or hook throws into an `ApiErrorBody`: our own
 * ServiceErrors as they are, Fastify's validation and body errors rewritten to
 * name the bad field or the limit, anything else a 500 that says nothing
 * internal (it is logged instead). Every status is its code's in protocol's
 * ERROR_CODES, except a client error Fastify raised (BAD_REQUEST), which keeps
 * Fastify's own.
 */
import { STATUS_CODES } from "node:http";
import { type ApiErrorBody, type HttpErrorCode, httpStatus } from "@conduit/protocol";
import type { FastifyError, FastifyRequest } from "fastify";
import { AuthPolicyUnmetError, requestTooLarge, ServiceError } from "../errors.js";

interface ValidationIssue {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

export function toApiError(err: unknown, request: FastifyRequest, bodyLimit: number): ApiErrorBody {
  const e = err as Partial<FastifyError> & { validation?: ValidationIssue[]; validationContext?: string };
  if (err instanceof ServiceError) return reply(err);
  if (e.validation && e.validation.length > 0) {
    return body("INVALID_REQUEST", validationMessage(e.validation[0], e.validationContext ?? "body"));
  }
  switch (e.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE": {
      const length = Number(request.headers["content-length"]);
      const tooLarge = requestTooLarge(bodyLimit, Number.isFinite(length) && length > 0 ? length : undefined);
      return reply(tooLarge);
    }
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return body(
        "UNSUPPORTED_MEDIA_TYPE",
        `Content-Type ${request.headers["content-type"] ?? "(none)"} is not accepted; send the body as application/json.`,
      );
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return body(
        "INVALID_JSON",
        "The request body is empty but its Content-Type is application/json; send a JSON object.",
      );
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return body("INVALID_JSON", "The request body is not valid JSON; send a JSON object.");
  }
  if (err instanceof SyntaxError && e.statusCode === 400) {
    return body("INVALID_JSON", `The request body is not valid JSON (${err.message}); send a JSON object.`);
  }
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    return {
      statusCode: e.statusCode,
      code: "BAD_REQUEST",
      error: statusText(e.statusCode),
      message: e.message ?? "Bad request.",
    };
  }
  if (e.code === "BROKER_CLOSED" || e.code === "BROKER_UNREACHABLE") {
    return body("BROKER_UNAVAILABLE", "The service cannot reach RabbitMQ right now; retry in a moment.");
  }
  return body(
    "INTERNAL_ERROR",
    "The service failed to handle this request (it logged why); retry, and report it if it persists.",
  );
}

/** The answer to a request Node's HTTP parser refused before Fastify saw it. */
export function clientErrorReply(code: string | undefined): ApiErrorBody {
  switch (code) {
    case "HPE_HEADER_OVERFLOW":
      return body(
        "HEADERS_TOO_LARGE",
        "The request's headers (with its URL) exceed 16 KiB; send a shorter URL or fewer headers.",
      );
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return body("REQUEST_TIMEOUT", "The request took too long to arrive; send it again.");
    default:
      return body("MALFORMED_REQUEST", "The request is not valid HTTP/1.1; check the client that sent it.");
  }
}

function body(code: HttpErrorCode, message: string): ApiErrorBody {
  const statusCode = httpStatus(code);
  return { statusCode, code, error: statusText(statusCode), message };
}

function reply(err: ServiceError): ApiErrorBody {
  const body: ApiErrorBody = {
    statusCode: err.statusCode,
    code: err.code,
    error: statusText(err.statusCode),
    message: err.message,
  };
  if (err instanceof AuthPolicyUnmetError) body.authorization_parameters = err.authorizationParameters;
  return body;
}

function statusText(statusCode: number): string {
  return STATUS_CODES[statusCode] ?? "Error";
}

/** `body.tasks[0].task_id must be a UUID; fix that field and send the request again.` */
function validationMessage(issue: ValidationIssue, context: string): string {
  let field = context + issue.instancePath.replace(/\/(\d+)(?=\/|$)/g, "[$1]").replaceAll("/", ".");
  let problem: string;
  switch (issue.keyword) {
    case "required":
      field += `.${String(issue.params.missingProperty)}`;
      problem = "is required";
      break;
    case "format":
      problem = issue.params.format === "uuid" ? "must be a UUID" : `must be a ${String(issue.params.format)}`;
      break;
    case "type":
      problem = `must be of type ${String(issue.params.type).replace(",", " or ")}`;
      break;
    case "additionalProperties":
      field += `.${String(issue.params.additionalProperty)}`;
      problem = "is not a known field";
      break;
    default:
      problem = issue.message ?? `fails the ${issue.keyword} check`;
  }
  return `Invalid request: ${field} ${problem}; fix that field and send the request again.`;
}
