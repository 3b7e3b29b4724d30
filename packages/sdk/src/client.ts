/**
 * REST client for the Conduit service (routes in @conduit/protocol `api.ts`).
 * One keep-alive connection pool (Node's fetch), a bearer token on every call,
 * and every failure turned into one sentence: a {@link ConduitApiError} with the
 * service's own message, or a {@link ServiceUnreachableError} naming the URL.
 */
import {
  API_PREFIX,
  type ApiErrorBody,
  type BatchStatusResponse,
  ConduitError,
  type EndpointInfo,
  type EndpointStatusResponse,
  type FunctionInfo,
  type IdentityInfo,
  type Payload,
  paths,
  type RegisterEndpointRequest,
  type RegisterEndpointResponse,
  type RegisterFunctionRequest,
  type RegisterFunctionResponse,
  type SubmitRequest,
  type SubmitResponse,
  type TaskStatusResponse,
} from "@conduit/protocol";
import { ConduitApiError, ServiceUnreachableError } from "./errors.js";
import { type AnyFunction, decodeOutcome, serializeFunction } from "./serialize.js";

export interface ClientOptions {
  /**
   * Base URL of the service.
   * @default `CONDUIT_SERVICE_URL`, else the URL in `$CONDUIT_USER_DIR/credentials.json`, else http://127.0.0.1:8400
   */
  serviceUrl?: string;
  /**
   * Bearer token.
   * @default `CONDUIT_TOKEN`, else the token in `$CONDUIT_USER_DIR/credentials.json` (read at the first call)
   */
  token?: string;
  /**
   * Further attempts after a connection error (refused, reset), with backoff, for calls
   * that are safe to repeat (reads, and submits: their task ids are chosen by the SDK).
   * @default 3
   */
  retries?: number;
}

type Method = "GET" | "POST";

/** First retry delay; doubled on each further attempt. */
const RETRY_DELAY_MS = 200;

export class Client {
  /** Base URL of the service, without a trailing slash. */
  readonly serviceUrl: string;
  private readonly retries: number;
  private token: string | undefined;

  constructor(options: ClientOptions = {}) {
    const serviceUrl = (options.serviceUrl ?? paths.serviceUrl()).replace(/\/+$/, "");
    let protocol: string;
    try {
      protocol = new URL(serviceUrl).protocol;
    } catch {
      protocol = "";
    }
    if (protocol !== "http:" && protocol !== "https:") {
      throw new ConduitError(
        "BAD_OPTION",
        `serviceUrl ${JSON.stringify(serviceUrl)} is not an http(s) URL; pass one such as http://127.0.0.1:8400.`,
      );
    }
    const retries = options.retries ?? 3;
    if (!Number.isInteger(retries) || retries < 0) {
      throw new ConduitError("BAD_OPTION", `retries must be a whole number of attempts (0 or more), got ${retries}.`);
    }
    if (options.token !== undefined && options.token === "") {
      throw new ConduitError("BAD_OPTION", "token is empty; pass the service's API token or leave it out.");
    }
    this.serviceUrl = serviceUrl;
    this.retries = retries;
    this.token = options.token;
  }

  /** The identity the token belongs to. */
  whoami(): Promise<IdentityInfo> {
    return this.request("GET", "/whoami");
  }

  /** Registers an endpoint; with `endpoint_id`, re-registers that endpoint (safe to repeat). */
  registerEndpoint(request: RegisterEndpointRequest): Promise<RegisterEndpointResponse> {
    return this.request("POST", "/endpoints", request, request.endpoint_id !== undefined);
  }

  listEndpoints(): Promise<EndpointInfo[]> {
    return this.request("GET", "/endpoints");
  }

  getEndpointStatus(endpointId: string): Promise<EndpointStatusResponse> {
    return this.request("GET", `/endpoints/${segment(endpointId)}/status`);
  }

  /**
   * Registers a function (a JS function, shipped as `conduit.SourceCode`, or a
   * payload serialized elsewhere) and resolves its id.
   * @param options.name shown in listings; defaults to the function's own name
   */
  async registerFunction(fnOrPayload: AnyFunction | Payload, options: { name?: string } = {}): Promise<string> {
    const body: RegisterFunctionRequest =
      typeof fnOrPayload === "function" ? { function: serializeFunction(fnOrPayload) } : { function: fnOrPayload };
    const name = options.name ?? (typeof fnOrPayload === "function" ? fnOrPayload.name : undefined);
    if (name) body.name = name;
    // A repeat after a lost answer registers a second copy: harmless, so it is retried too.
    const response = await this.request<RegisterFunctionResponse>("POST", "/functions", body);
    return response.function_id;
  }

  getFunction(functionId: string): Promise<FunctionInfo> {
    return this.request("GET", `/functions/${segment(functionId)}`);
  }

  /** Submits tasks; safe to repeat, since the SDK chose the task ids. */
  submit(endpointId: string, request: SubmitRequest): Promise<SubmitResponse> {
    return this.request("POST", `/endpoints/${segment(endpointId)}/submit`, request);
  }

  getTask(taskId: string): Promise<TaskStatusResponse> {
    return this.request("GET", `/tasks/${segment(taskId)}`);
  }

  getBatchStatus(taskIds: string[]): Promise<BatchStatusResponse> {
    return this.request("POST", "/tasks/batch_status", { task_ids: taskIds });
  }

  /**
   * The task's value; rejects with what the task raised (a TaskExecutionFailed
   * carrying the remote name, message and stack), or with code TASK_PENDING
   * while it has not finished.
   */
  async getResult(taskId: string): Promise<unknown> {
    const task = await this.getTask(taskId);
    return decodeOutcome({ taskId, state: task.state, result: task.result, error: task.error });
  }

  private async request<T>(method: Method, path: string, body?: unknown, repeatable = true): Promise<T> {
    this.token ??= paths.token();
    const url = `${this.serviceUrl}${API_PREFIX}${path}`;
    const init: RequestInit = {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        accept: "application/json",
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    };
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      let text: string;
      try {
        response = await fetch(url, init);
        text = await response.text();
      } catch (err) {
        // A refused connection never reached the service, so any call may be repeated.
        if (attempt < this.retries && (repeatable || isRefused(err))) {
          await delay(RETRY_DELAY_MS * 2 ** attempt);
          continue;
        }
        throw new ServiceUnreachableError(this.serviceUrl, err);
      }
      if (!response.ok) throw apiError(response, text, method, url);
      try {
        return (text === "" ? undefined : JSON.parse(text)) as T;
      } catch (err) {
        throw new ConduitError(
          "BAD_RESPONSE",
          `The service answered ${method} ${url} with a body that is not JSON; check that serviceUrl points at a Conduit service.`,
          { cause: err },
        );
      }
    }
  }
}

function segment(id: string): string {
  if (typeof id !== "string" || id === "") {
    throw new ConduitError("BAD_ID", `Expected an id, got ${JSON.stringify(id) ?? String(id)}; pass the id string.`);
  }
  return encodeURIComponent(id);
}

function apiError(response: Response, text: string, method: Method, url: string): ConduitApiError {
  let body: Partial<ApiErrorBody> | undefined;
  try {
    body = JSON.parse(text) as Partial<ApiErrorBody>;
  } catch {
    body = undefined;
  }
  if (body && typeof body.message === "string" && typeof body.code === "string") {
    return new ConduitApiError({ code: body.code, statusCode: response.status, message: body.message });
  }
  return new ConduitApiError({
    code: `HTTP_${response.status}`,
    statusCode: response.status,
    message: `The service answered ${response.status} ${response.statusText} to ${method} ${url}; check that serviceUrl points at a Conduit service and see its log.`,
  });
}

function isRefused(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if ((e as NodeJS.ErrnoException).code === "ECONNREFUSED") return true;
    if (e instanceof AggregateError && e.errors.some(isRefused)) return true;
  }
  return false;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
