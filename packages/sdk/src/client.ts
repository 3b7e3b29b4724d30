/**
 * REST client for the Conduit service: a method for every route. Its request
 * and response types are @conduit/protocol's, derived from the route
 * definitions the service itself is built from (a test checks the service's
 * /openapi.json against them). One keep-alive connection pool (Node's fetch), a
 * bearer token on every call, and every failure turned into one sentence: a
 * {@link ConduitApiError} with the service's own message, or a
 * {@link ServiceUnreachableError} naming the URL.
 *
 * ```ts
 * const client = new Client();
 * const functionId = await client.registerFunction((a: number, b: number) => a + b);
 * const { task_ids } = await client.submit(endpointId, {
 *   tasks: [{ task_id: crypto.randomUUID(), function_id: functionId, args: serializeArguments([1, 2]) }],
 * });
 * await client.cancelTask(task_ids[0]); // { task_id, cancelled: true, state: "cancelled" } if it had not started
 * ```
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  API_PREFIX,
  type ApiMethod,
  type BatchStatusResponse,
  type CancelTaskResponse,
  ConduitError,
  type Credential,
  paths as conduitPaths,
  type DeleteResponse,
  type EndpointInfo,
  type EndpointStatusResponse,
  type FunctionInfo,
  type IdentityInfo,
  MAX_BATCH_STATUS_IDS,
  obtainCredential,
  type Payload,
  type RegisterEndpointRequest,
  type RegisterEndpointResponse,
  type RegisterFunctionRequest,
  type RegisterFunctionResponse,
  requestWithCredential,
  type SubmitRequest,
  type SubmitResponse,
  type TaskGroupDetail,
  type TaskGroupInfo,
  type TaskStatusResponse,
  terminalIo,
} from "@conduit/protocol";
import { ServiceUnreachableError } from "./errors.js";
import type { AnyFunction } from "./function-source.js";
import { OnceOnStderr } from "./once-on-stderr.js";
import { decodeOutcome, serializeFunction } from "./serialize.js";

export interface ClientOptions {
  /**
   * Base URL of the service.
   * @default `CONDUIT_SERVICE_URL`, else the URL in `$CONDUIT_USER_DIR/credentials.json`, else http://127.0.0.1:8400
   */
  serviceUrl?: string;
  /**
   * Bearer token; without one, the first call finds credentials in the one
   * order (README "Logging in"): `CONDUIT_CLIENT_ID`/`_SECRET` (or the
   * `GLOBUS_COMPUTE_` pair), `CONDUIT_TOKEN`, the login cached for this
   * service in `tokens.json` (refreshed as it expires), `credentials.json`
   * for this service; else, when stdin is a terminal, it logs in (the link on
   * stderr, the code read from stdin).
   */
  token?: string;
  /**
   * With no credentials found, log in on the terminal (link on stderr, code
   * read from stdin) instead of failing with a sentence naming `npx conduit login`.
   * @default true when stdin is a terminal
   */
  interactiveLogin?: boolean;
  /**
   * Further attempts after a connection error (refused, reset), with backoff, for calls
   * that are safe to repeat (reads, and submits: their task ids are chosen by the SDK).
   * @default 3
   */
  retries?: number;
}

type Method = ApiMethod;

export interface RegisterFunctionOptions {
  /** Shown in listings. @default the function's own name */
  name?: string;
  /**
   * Makes it a High-Assurance function of this High-Assurance endpoint: a
   * submit of it to any other endpoint is refused (403), and the service
   * deletes it once unused for its retention period (90 days by default).
   */
  haEndpointId?: string;
}

/** A task's state, and its result or error once it finished (GET /v1/tasks/:task_id). */
export type TaskStatus = TaskStatusResponse;
export type {
  BatchStatusResponse,
  CancelTaskResponse,
  DeleteResponse,
  EndpointInfo,
  EndpointStatusResponse,
  FunctionInfo,
  IdentityInfo,
  RegisterEndpointRequest,
  RegisterEndpointResponse,
  RegisterFunctionResponse,
  SubmitRequest,
  SubmitResponse,
  TaskGroupDetail,
  TaskGroupInfo,
};

/** First retry delay; doubled on each further attempt. */
const RETRY_DELAY_MS = 200;

export class Client {
  /** Base URL of the service, without a trailing slash. */
  readonly serviceUrl: string;
  private readonly retries: number;
  private readonly interactiveLogin: boolean;
  private credential: Promise<Credential> | undefined;
  private readonly disclaimer = new OnceOnStderr();

  constructor(options: ClientOptions = {}) {
    const serviceUrl = (options.serviceUrl ?? conduitPaths.serviceUrl()).replace(/\/+$/, "");
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
    this.interactiveLogin = options.interactiveLogin ?? process.stdin.isTTY === true;
    if (options.token !== undefined) this.credential = Promise.resolve(fixedToken(options.token));
  }

  /** The identity the token belongs to. */
  whoami(): Promise<IdentityInfo> {
    return this.request("GET", "/whoami");
  }

  /** Registers an endpoint; with `endpoint_id`, re-registers that endpoint (safe to repeat). */
  registerEndpoint(request: RegisterEndpointRequest): Promise<RegisterEndpointResponse> {
    return this.request("POST", "/endpoints", request, request.endpoint_id !== undefined);
  }

  /** The endpoints the caller owns. */
  listEndpoints(): Promise<EndpointInfo[]> {
    return this.request("GET", "/endpoints");
  }

  /** One of the caller's endpoints, or a multi-user endpoint. */
  getEndpoint(endpointId: string): Promise<EndpointInfo> {
    return this.request("GET", `/endpoints/${segment(endpointId)}`);
  }

  getEndpointStatus(endpointId: string): Promise<EndpointStatusResponse> {
    return this.request("GET", `/endpoints/${segment(endpointId)}/status`);
  }

  /**
   * Deletes one of the caller's endpoints (its tasks stay as history). The
   * service refuses (409) while it has unfinished tasks, unless `force`, which
   * fails them.
   */
  deleteEndpoint(endpointId: string, options: { force?: boolean } = {}): Promise<DeleteResponse> {
    const query = options.force ? "?force=true" : "";
    return this.request("DELETE", `/endpoints/${segment(endpointId)}${query}`, undefined, false);
  }

  /**
   * Registers a function (a JS function, shipped as `conduit.SourceCode`, or a
   * payload serialized elsewhere) and resolves its id. With `haEndpointId` it
   * is a High-Assurance function of that HA endpoint: it runs there only, and
   * the service deletes it after its retention period (90 days by default)
   * unused; the service's disclaimer is printed to stderr, once per Client.
   * @param options.name shown in listings; defaults to the function's own name
   */
  async registerFunction(fnOrPayload: AnyFunction | Payload, options: RegisterFunctionOptions = {}): Promise<string> {
    const response = await this.registerFunctionReply(fnOrPayload, options);
    if (response.disclaimer !== undefined) this.disclaimer.show(response.disclaimer);
    return response.function_id;
  }

  /** As {@link registerFunction}, but resolves the service's whole answer (its `disclaimer` too) and prints nothing. */
  registerFunctionReply(
    fnOrPayload: AnyFunction | Payload,
    options: RegisterFunctionOptions = {},
  ): Promise<RegisterFunctionResponse> {
    const body: RegisterFunctionRequest =
      typeof fnOrPayload === "function" ? { function: serializeFunction(fnOrPayload) } : { function: fnOrPayload };
    const name = options.name ?? (typeof fnOrPayload === "function" ? fnOrPayload.name : undefined);
    if (name) body.name = name;
    if (options.haEndpointId !== undefined) body.ha_endpoint_id = checkId("haEndpointId", options.haEndpointId);
    // A repeat after a lost answer registers a second copy: harmless, so it is retried too.
    return this.request<RegisterFunctionResponse>("POST", "/functions", body);
  }

  getFunction(functionId: string): Promise<FunctionInfo> {
    return this.request("GET", `/functions/${segment(functionId)}`);
  }

  /** Deletes one of the caller's functions; later submits naming it are refused (404). */
  deleteFunction(functionId: string): Promise<DeleteResponse> {
    return this.request("DELETE", `/functions/${segment(functionId)}`, undefined, false);
  }

  /** Submits tasks; safe to repeat, since the SDK chose the task ids. */
  submit(endpointId: string, request: SubmitRequest): Promise<SubmitResponse> {
    return this.request("POST", `/endpoints/${segment(endpointId)}/submit`, request);
  }

  getTask(taskId: string): Promise<TaskStatus> {
    return this.request("GET", `/tasks/${segment(taskId)}`);
  }

  /**
   * The states of many tasks; unknown ids (and other identities' tasks) are
   * left out. Any number of ids: they are asked for in requests of at most
   * MAX_BATCH_STATUS_IDS, one after another, as the service requires.
   */
  async getBatchStatus(taskIds: string[]): Promise<BatchStatusResponse> {
    const tasks: BatchStatusResponse["tasks"] = {};
    for (let i = 0; i < taskIds.length; i += MAX_BATCH_STATUS_IDS) {
      const chunk = taskIds.slice(i, i + MAX_BATCH_STATUS_IDS);
      const reply = await this.request<BatchStatusResponse>("POST", "/tasks/batch_status", { task_ids: chunk });
      Object.assign(tasks, reply.tasks);
    }
    return { tasks };
  }

  /**
   * Cancels a task that has not started: it never runs, ends `cancelled`, and
   * its result (a CancelledError) is pushed to its task group's queue
   * (`cancelled: true`). A running or finished task is left alone
   * (`cancelled: false`, with its state).
   */
  cancelTask(taskId: string): Promise<CancelTaskResponse> {
    return this.request("POST", `/tasks/${segment(taskId)}/cancel`, undefined, false);
  }

  /** The caller's task groups, oldest first, with their tasks counted per state. */
  listTaskGroups(): Promise<TaskGroupInfo[]> {
    return this.request("GET", "/task_groups");
  }

  /** One of the caller's task groups: counts, unfinished tasks, and where its results are pushed. */
  getTaskGroup(taskGroupId: string): Promise<TaskGroupDetail> {
    return this.request("GET", `/task_groups/${segment(taskGroupId)}`);
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
    if (this.credential === undefined) {
      const pending = obtainCredential({
        serviceUrl: this.serviceUrl,
        loginCommand: "npx conduit login",
        interactive: this.interactiveLogin,
        io: terminalIo(process.stderr),
      });
      this.credential = pending;
      // A failure (no credentials, a login refused) is not kept: the next call tries again.
      pending.catch(() => {
        if (this.credential === pending) this.credential = undefined;
      });
    }
    const credential = await this.credential;
    const request = {
      method,
      url: `${this.serviceUrl}${API_PREFIX}${path}`,
      body,
      urlSetting: "serviceUrl",
      unreachable: (cause: unknown) => new ServiceUnreachableError(this.serviceUrl, cause),
    };
    for (let attempt = 0; ; attempt++) {
      try {
        return await requestWithCredential<T>(credential, request);
      } catch (err) {
        // A refused connection never reached the service, so any call may be repeated.
        const retry =
          err instanceof ServiceUnreachableError && attempt < this.retries && (repeatable || isRefused(err.cause));
        if (!retry) throw err;
        await sleep(RETRY_DELAY_MS * 2 ** attempt);
      }
    }
  }
}

/** The `token` option: used as given, never renewed. */
function fixedToken(token: string): Credential {
  return {
    kind: "token",
    origin: "the Client's token option",
    accessToken: () => Promise.resolve(token),
    renew: () => Promise.resolve(undefined),
  };
}

/** A non-empty id option, else a sentence naming the option. */
function checkId(option: string, id: unknown): string {
  if (typeof id !== "string" || id === "") {
    throw new ConduitError(
      "BAD_OPTION",
      `${option} must be an endpoint id (a UUID string), got ${JSON.stringify(id) ?? String(id)}.`,
    );
  }
  return id;
}

function segment(id: string): string {
  if (typeof id !== "string" || id === "") {
    throw new ConduitError("BAD_ID", `Expected an id, got ${JSON.stringify(id) ?? String(id)}; pass the id string.`);
  }
  return encodeURIComponent(id);
}

function isRefused(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if ((e as NodeJS.ErrnoException).code === "ECONNREFUSED") return true;
    if (e instanceof AggregateError && e.errors.some(isRefused)) return true;
  }
  return false;
}
