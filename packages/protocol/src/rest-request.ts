/**
 * The one REST request of every Conduit client (the SDK's Client, the
 * endpoint's registration, the service's admin CLI): JSON in, JSON out, a
 * bearer token, and every failure one sentence. An error answer becomes a
 * {@link ConduitApiError} carrying the service's own code and sentence
 * ({@link apiError}); no answer at all becomes the caller's own error, since
 * each client names its own fix.
 *
 * ```ts
 * const me = await requestJson<IdentityInfo>({
 *   method: "GET",
 *   url: `${serviceUrl}${API_PREFIX}/whoami`,
 *   token,
 *   urlSetting: "CONDUIT_SERVICE_URL",
 *   unreachable: (cause) => new ConduitError("SERVICE_UNREACHABLE", `No service at ${serviceUrl}.`, { cause }),
 * });
 * ```
 */
import type { ApiErrorBody } from "./api.js";
import { ConduitApiError, ConduitError } from "./errors.js";

export interface RestRequest {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** The full URL, query included. */
  url: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token: string;
  /** Sent as JSON; none for undefined. */
  body?: unknown;
  signal?: AbortSignal;
  /**
   * What the user sets to point the client at a service (`serviceUrl`,
   * `CONDUIT_SERVICE_URL`), for the sentence of an answer that is not Conduit's.
   */
  urlSetting: string;
  /** The error when no answer came (refused, reset, DNS, timeout). */
  unreachable: (cause: unknown) => Error;
}

/** Sends the request; resolves the answer's JSON (undefined for an empty body), or throws one sentence. */
export async function requestJson<T>(request: RestRequest): Promise<T> {
  const { method, url, body } = request;
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${request.token}`,
        accept: "application/json",
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: request.signal,
    });
    text = await response.text();
  } catch (err) {
    throw request.unreachable(err);
  }
  if (!response.ok) throw apiError(response, text, request);
  try {
    return (text === "" ? undefined : JSON.parse(text)) as T;
  } catch (err) {
    throw new ConduitError(
      "BAD_RESPONSE",
      `The service answered ${method} ${url} with a body that is not JSON; check that ${request.urlSetting} points at a Conduit service.`,
      { cause: err },
    );
  }
}

/**
 * The error of an HTTP error answer: the service's code and sentence from its
 * {@link ApiErrorBody}, else (a proxy's page, another server) `HTTP_<status>`
 * with a sentence naming the status and the URL.
 */
function apiError(
  response: { status: number; statusText: string },
  text: string,
  request: Pick<RestRequest, "method" | "url" | "urlSetting">,
): ConduitApiError {
  let body: Partial<ApiErrorBody> | undefined;
  try {
    body = JSON.parse(text) as Partial<ApiErrorBody>;
  } catch {
    body = undefined;
  }
  if (typeof body?.message === "string" && typeof body.code === "string") {
    const parameters = body.authorization_parameters;
    return new ConduitApiError({
      code: body.code,
      statusCode: response.status,
      message: body.message,
      ...(parameters && typeof parameters === "object" ? { authorization_parameters: parameters } : {}),
    });
  }
  return new ConduitApiError({
    code: `HTTP_${response.status}`,
    statusCode: response.status,
    message: `The service answered ${response.status} ${response.statusText} to ${request.method} ${request.url}; check that ${request.urlSetting} points at a Conduit service and see its log.`,
  });
}
