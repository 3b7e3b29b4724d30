/**
 * Every error code a Conduit program raises, as data: the REST error bodies
 * (`ApiErrorBody.code`), the broker's WireErrors (`WireError.code`) and the
 * errors the CLIs and the SDK throw locally. A code that the service answers
 * with carries its HTTP status here, and the service takes the status from
 * this table (never a number of its own), so a code means one status
 * everywhere. `error-codes.test.ts` fails when a code used in any package's
 * `src` is missing here. Besides these, a REST client reports an error answer
 * that is not a Conduit error body (a proxy's 502 page) as `HTTP_<status>`.
 *
 * ```ts
 * import { ERROR_CODES, type ErrorCode } from "@conduit/protocol";
 * const code: ErrorCode = "TASK_NOT_FOUND";
 * ERROR_CODES[code].status; // 404
 * ```
 */

/** What the table knows of a code. */
export interface ErrorCodeInfo {
  /** The HTTP status the service answers with; absent for codes that never come from the REST API. */
  readonly status?: number;
}

export const ERROR_CODES = {
  // REST API: authentication and the request itself (service/src/api/error-reply.ts, errors.ts).
  UNAUTHORIZED: { status: 401 },
  TOKEN_EXPIRED: { status: 401 },
  ROUTE_NOT_FOUND: { status: 404 },
  INVALID_REQUEST: { status: 400 },
  INVALID_JSON: { status: 400 },
  INVALID_TEXT: { status: 400 },
  MALFORMED_REQUEST: { status: 400 },
  /** Another client error Fastify raised: answered with Fastify's own 4xx status and message. */
  BAD_REQUEST: {},
  REQUEST_TIMEOUT: { status: 408 },
  REQUEST_TOO_LARGE: { status: 413 },
  UNSUPPORTED_MEDIA_TYPE: { status: 415 },
  HEADERS_TOO_LARGE: { status: 431 },
  INTERNAL_ERROR: { status: 500 },
  BROKER_UNAVAILABLE: { status: 503 },
  BROKER_ACCOUNTS_FAILED: { status: 503 },
  DATABASE_UNREACHABLE: { status: 503 },
  SHARED_BROKER_ACCOUNT: { status: 403 },
  /** A provider route or login page asked for before the provider is up (it starts right after listen). */
  SERVICE_STARTING: { status: 503 },

  // REST API: endpoints, functions, tasks, task groups.
  ENDPOINT_NOT_FOUND: { status: 404 },
  ENDPOINT_NOT_PERMITTED: { status: 403 },
  ENDPOINT_NOT_OWNED: { status: 403 },
  ENDPOINT_ID_CONFLICT: { status: 409 },
  ENDPOINT_HAS_TASKS: { status: 409 },
  FUNCTION_NOT_FOUND: { status: 404 },
  FUNCTION_NOT_PERMITTED: { status: 403 },
  FUNCTION_NOT_OWNED: { status: 403 },
  TASK_NOT_FOUND: { status: 404 },
  TASK_PAYLOAD_TOO_LARGE: { status: 413 },
  BATCH_TOO_LARGE: { status: 413 },
  TASK_ID_CONFLICT: { status: 409 },
  DUPLICATE_TASK_ID: { status: 400 },
  TASK_GROUP_NOT_FOUND: { status: 404 },
  TASK_GROUP_CONFLICT: { status: 409 },
  // High Assurance: fixed at the first registration; HA functions run on their endpoint only.
  HIGH_ASSURANCE_FIXED: { status: 409 },
  ENDPOINT_NOT_HIGH_ASSURANCE: { status: 400 },
  HA_FUNCTION_NOT_PERMITTED: { status: 403 },

  // REST API: the admin's identities.
  ADMIN_ONLY: { status: 403 },
  ADMIN_NOT_REMOVABLE: { status: 409 },
  INVALID_USERNAME: { status: 400 },
  IDENTITY_EXISTS: { status: 409 },
  IDENTITY_NOT_FOUND: { status: 404 },
  IDENTITY_IN_USE: { status: 409 },
  INVALID_PASSWORD: { status: 400 },
  CLIENT_NOT_FOUND: { status: 404 },
  IDP_DISCOVERY_FAILED: { status: 400 },
  IDP_NOT_FOUND: { status: 404 },

  // REST API: authentication policies, projects, subscriptions (policy-routes.ts).
  AUTH_POLICY_UNMET: { status: 403 },
  AUTH_POLICY_NOT_FOUND: { status: 404 },
  AUTH_POLICY_NOT_OWNED: { status: 403 },
  AUTH_POLICY_IN_USE: { status: 409 },
  AUTH_POLICY_INVALID: { status: 400 },
  PROJECT_NOT_FOUND: { status: 404 },
  PROJECT_NOT_OWNED: { status: 403 },
  PROJECT_IN_USE: { status: 409 },
  SUBSCRIPTION_NOT_FOUND: { status: 404 },
  NOT_HIGH_ASSURANCE: { status: 400 },

  // A task's error (WireError in a result): what the function raised, or why it did not run.
  TASK_EXCEPTION: {},
  TASK_FAILED: {},
  TASK_CANCELLED: {},
  TASK_SUBMIT_FAILED: {},
  BAD_TASK: {},
  FUNCTION_NOT_ALLOWED: {},
  FUNCTION_INVALID: {},
  /** A ShellFunction's command template is malformed, or a value for one of its fields is missing or not text. */
  SHELL_TEMPLATE_INVALID: {},
  INVALID_RESOURCE_SPECIFICATION: {},
  SERIALIZATION_FAILED: {},
  DESERIALIZATION_FAILED: {},
  RESULT_TOO_LARGE: {},
  RESULT_NOT_STORABLE: {},
  ENDPOINT_DELETED: {},
  IDENTITY_NOT_MAPPED: {},
  UEP_START_FAILED: {},
  UEP_CRASHED: {},
  UEP_IDLE_HARD_LIMIT: {},
  ENGINE_SHUTDOWN: {},
  WORKER_START_FAILED: {},
  WORKER_LOST: {},
  WORKER_OUT_OF_MEMORY: {},
  BLOCK_START_FAILED: {},
  BLOCK_WALLTIME: {},
  BLOCK_CANCELLED: {},
  SCHEDULER_COMMAND_FAILED: {},
  INTERCHANGE_TLS_FAILED: {},
  MPI_NODES_UNKNOWN: {},
  MPI_NODES_INVALID: {},
  // The endpoint CLI's calls to the service (configure's policy options).
  BAD_REPLY: {},
  SERVICE_REFUSED: {},
  BUNDLE_EXPORT_INVALID: {},
  BUNDLE_EXTERNAL_MISSING: {},

  // The broker and its messages.
  BAD_MESSAGE: {},
  PROTOCOL_VERSION: {},
  BROKER_UNREACHABLE: {},
  BROKER_CLOSED: {},
  BROKER_ACCOUNT_REFUSED: {},

  // REST clients (SDK Client, endpoint registration, admin CLI): the service's answer.
  SERVICE_UNREACHABLE: {},
  BAD_RESPONSE: {},
  REGISTRATION_FAILED: {},
  ENDPOINT_ID_MISMATCH: {},

  // SDK.
  BAD_OPTION: {},
  BAD_ID: {},
  // Credentials and logins (protocol/src/credentials.ts, login-flows.ts, oauth-client.ts).
  NO_CREDENTIALS: {},
  BAD_CLIENT_CREDENTIALS: {},
  CLIENT_CREDENTIALS_REFUSED: {},
  LOGIN_EXPIRED: {},
  LOGIN_FAILED: {},
  LOGIN_UNAVAILABLE: {},
  BAD_TOKENS_FILE: {},
  OAUTH_ERROR: {},
  BAD_CREDENTIALS_FILE: {},
  NO_TASK_GROUP: {},
  EXECUTOR_SHUT_DOWN: {},
  FUTURE_CANCELLED: {},
  TASK_PENDING: {},
  RESULT_QUEUE_MISSING: {},
  FUNCTION_NOT_SERIALIZABLE: {},
  BUNDLE_FAILED: {},
  BUNDLE_EXPORT_MISSING: {},
  BUNDLE_MODULE_NOT_FOUND: {},

  // Endpoint: CLI, configuration, identity mapping, UEP and engines.
  BAD_ENDPOINT_NAME: {},
  BAD_ENDPOINT_JSON: {},
  ENDPOINT_EXISTS: {},
  ENDPOINT_RUNNING: {},
  SYSTEMD_NOT_FOUND: {},
  UNIT_EXISTS: {},
  UNIT_NOT_FOUND: {},
  CONFIRMATION_NEEDED: {},
  NOT_PERMITTED: {},
  CONFIG_INVALID: {},
  UNKNOWN_USER: {},
  USER_LOOKUP_FAILED: {},
  NO_IDENTITY_MAPPING: {},
  IDENTITY_MAPPING_INVALID: {},
  IDENTITY_MAPPING_FAILED: {},
  BAD_IDENTITY_FILE: {},
  UEP_BOOTSTRAP_INVALID: {},
  ENGINE_START_FAILED: {},
  ENGINE_NOT_STARTED: {},
  PROVIDER_NOT_STARTED: {},
  PROVIDER_SUBMIT_FAILED: {},
  WORKER_ENTRY_MISSING: {},

  // Service: start-up.
  INVALID_OPTIONS: {},
  /** A broker queue exists with other arguments than this service declares (another --amqp-queue-type). */
  QUEUE_ARGUMENTS_DIFFER: {},
  LISTEN_FAILED: {},
  DATA_DIR_LOCKED: {},
} as const satisfies Record<string, ErrorCodeInfo>;

/** Every code of {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** A code of the table whose errors the REST API answers with. */
export type HttpErrorCode = {
  [C in ErrorCode]: (typeof ERROR_CODES)[C] extends { status: number } ? C : never;
}[ErrorCode];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(ERROR_CODES, value);
}

/** The HTTP status the service answers `code` with. */
export function httpStatus(code: HttpErrorCode): number {
  return ERROR_CODES[code].status;
}
