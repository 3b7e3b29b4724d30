/**
 * The service's errors. Each carries a stable `code` and the HTTP status it is
 * answered with, which is the code's status in protocol's ERROR_CODES; the API
 * turns any of them into an `ApiErrorBody`. Messages are one sentence naming
 * the problem and the fix. Why the service ends a task itself (a cancel, a
 * deleted endpoint, a result it cannot store) is a {@link TaskEndedError},
 * which travels as the task's WireError.
 */
import {
  type AuthorizationParameters,
  ConduitError,
  type ErrorCode,
  type HttpErrorCode,
  httpStatus,
  PayloadTooLargeError,
  ReportedError,
} from "@conduit/protocol";

/** An error the REST API answers with, at its code's status. */
export class ServiceError extends ConduitError {
  readonly statusCode: number;

  constructor(code: HttpErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "ServiceError";
    this.statusCode = httpStatus(code);
  }
}

/** The wire names of the task errors the service raises, as the SDK shows them. */
const TASK_ENDED_NAMES = {
  TASK_CANCELLED: "CancelledError",
  ENDPOINT_DELETED: "EndpointDeleted",
  RESULT_NOT_STORABLE: "ResultNotStorable",
} as const satisfies Partial<Record<ErrorCode, string>>;

/** Why the service ended a task itself; stored and sent as the task's error (toWireError). */
export class TaskEndedError extends ReportedError {
  constructor(code: keyof typeof TASK_ENDED_NAMES, message: string) {
    super(code, TASK_ENDED_NAMES[code], message);
  }
}

/**
 * Where the admin token is, without the service's own paths: these answers
 * reach anyone who can connect, so they name no file of the server.
 */
const ADMIN_TOKEN_HINT =
  "the token in credentials.json under CONDUIT_USER_DIR (default ~/.conduit) of the account that runs the service";

export function unauthorized(): ServiceError {
  return new ServiceError(
    "UNAUTHORIZED",
    `Missing or invalid API token; set CONDUIT_TOKEN to a token from the service's administrator (conduit-service user add or user token), or use ${ADMIN_TOKEN_HINT}.`,
  );
}

export function tokenExpired(username: string, expiresAt: Date): ServiceError {
  return new ServiceError(
    "TOKEN_EXPIRED",
    `This API token of ${username} expired at ${expiresAt.toISOString()}; ask the service's administrator for a new one (\`conduit-service user token ${username}\`) and set CONDUIT_TOKEN to it.`,
  );
}

/** The login's JWT access token, refused for `reason` (a clause). */
export function accessTokenInvalid(reason: string): ServiceError {
  return new ServiceError(
    "UNAUTHORIZED",
    `This access token is not accepted because ${reason}; log in again (conduit-endpoint login, or npx conduit login) or use client credentials.`,
  );
}

export function accessTokenExpired(expiresAt: Date | undefined): ServiceError {
  const when = expiresAt ? ` at ${expiresAt.toISOString()}` : "";
  return new ServiceError(
    "TOKEN_EXPIRED",
    `This access token expired${when}; refresh it with the login's refresh token, or log in again (conduit-endpoint login, or npx conduit login).`,
  );
}

export function invalidPassword(): ServiceError {
  return new ServiceError(
    "INVALID_PASSWORD",
    "A password must be 8 to 1024 characters with no control characters (no line breaks); choose another.",
  );
}

export function clientNotFound(clientId: string): ServiceError {
  return new ServiceError(
    "CLIENT_NOT_FOUND",
    `There is no client identity ${clientId}; see the existing ones with \`conduit-service client list\`.`,
  );
}

export function endpointNotFound(endpointId: string): ServiceError {
  return new ServiceError(
    "ENDPOINT_NOT_FOUND",
    `Endpoint ${endpointId} is not registered; start it once (conduit-endpoint start) and use the id it prints.`,
  );
}

export function endpointNotPermitted(endpointId: string): ServiceError {
  return new ServiceError(
    "ENDPOINT_NOT_PERMITTED",
    `Endpoint ${endpointId} is a single-user endpoint of another identity; submit to your own endpoint, or ask its administrator to configure it with --multi-user.`,
  );
}

/**
 * Another identity registered this endpoint id first, and keeps it. The owner
 * is named only to the service's administrator (`owner` is undefined otherwise).
 */
export function endpointIdTaken(endpointId: string, name: string, caller: string, owner?: string): ServiceError {
  const whose = owner === undefined ? "another identity" : owner;
  return new ServiceError(
    "ENDPOINT_ID_CONFLICT",
    `Endpoint id ${endpointId} is registered to ${whose}, not to ${caller}; start it logged in as that identity (conduit-endpoint logout, then start it again), or give it a new id (conduit-endpoint delete ${name}, then configure it again; or remove endpoint.json from its directory).`,
  );
}

export function functionNotFound(functionId: string): ServiceError {
  return new ServiceError(
    "FUNCTION_NOT_FOUND",
    `Function ${functionId} is not registered; register it first (Client.registerFunction) and submit with the id it returns.`,
  );
}

/** The seed's exact wording. */
export function functionNotPermitted(functionId: string, endpointId: string): ServiceError {
  return new ServiceError("FUNCTION_NOT_PERMITTED", `Function ${functionId} not permitted on endpoint ${endpointId}`);
}

/** A re-registration that would change what the first registration fixed, either way. */
export function highAssuranceFixed(endpointId: string, name: string, highAssurance: boolean): ServiceError {
  const was = highAssurance ? "High-Assurance" : "not High-Assurance";
  const want = highAssurance ? "without High Assurance" : "with High Assurance";
  return new ServiceError(
    "HIGH_ASSURANCE_FIXED",
    `Endpoint ${endpointId} (${name}) was registered ${was} at its first registration, which cannot change; to run ${want}, configure a new endpoint (conduit-endpoint configure <new name>) and start that one.`,
  );
}

export function endpointNotHighAssurance(endpointId: string): ServiceError {
  return new ServiceError(
    "ENDPOINT_NOT_HIGH_ASSURANCE",
    `Endpoint ${endpointId} is not a High-Assurance endpoint, so it cannot have High-Assurance functions; name an endpoint configured with --high-assurance in haEndpointId, or register the function without haEndpointId.`,
  );
}

/** An HA function submitted to another endpoint than its own. */
export function haFunctionNotPermitted(functionId: string, haEndpointId: string, endpointId: string): ServiceError {
  return new ServiceError(
    "HA_FUNCTION_NOT_PERMITTED",
    `Function ${functionId} is a High-Assurance function of endpoint ${haEndpointId} and may not run on endpoint ${endpointId}; submit it to endpoint ${haEndpointId}, or register it for endpoint ${endpointId}.`,
  );
}

export function taskNotFound(taskId: string): ServiceError {
  return new ServiceError(
    "TASK_NOT_FOUND",
    `Task ${taskId} is not known to this service (or belongs to another identity); check the id returned by submit.`,
  );
}

export function taskTooLarge(taskId: string, size: number, limit: number): ServiceError {
  return payloadTooLarge(`Task ${taskId}`, size, limit);
}

export function functionTooLarge(size: number, limit: number): ServiceError {
  return payloadTooLarge("The function", size, limit);
}

/** The SDK's and the endpoint's sentence (PayloadTooLargeError), answered with the code's status. */
function payloadTooLarge(what: string, size: number, limit: number): ServiceError {
  const error = new PayloadTooLargeError(what, size, limit);
  return new ServiceError("TASK_PAYLOAD_TOO_LARGE", error.message);
}

export function requestTooLarge(limit: number, size: number | undefined): ServiceError {
  const what = size === undefined ? "The request body" : `The request body (${size} bytes)`;
  return new ServiceError(
    "REQUEST_TOO_LARGE",
    `${what} is over the limit of ${limit} bytes; submit fewer tasks per request or start the service with a larger --max-request-bytes.`,
  );
}

export function batchTooLarge(count: number, limit: number): ServiceError {
  return new ServiceError(
    "BATCH_TOO_LARGE",
    `batch_status takes at most ${limit} task ids per request, not ${count}; ask for them in requests of ${limit} or fewer (the SDK's Client.getBatchStatus does).`,
  );
}

export function taskIdConflict(taskId: string, reason: string): ServiceError {
  return new ServiceError(
    "TASK_ID_CONFLICT",
    `Task id ${taskId} is already used ${reason}; generate a new task id (crypto.randomUUID()) for a new task.`,
  );
}

export function taskGroupConflict(taskGroupId: string): ServiceError {
  return new ServiceError(
    "TASK_GROUP_CONFLICT",
    `Task group ${taskGroupId} belongs to another identity; omit task_group_id to get a new group, or use one of yours.`,
  );
}

export function duplicateTaskId(taskId: string): ServiceError {
  return new ServiceError(
    "DUPLICATE_TASK_ID",
    `Task id ${taskId} appears twice in one submit; give every task its own id.`,
  );
}

/** Text the store cannot hold (NUL, an unpaired surrogate) or JSON nested too deep; `problem` names the field. */
export function invalidText(problem: string): ServiceError {
  return new ServiceError("INVALID_TEXT", `Invalid request: ${problem}`);
}

export function invalidUsername(username: string): ServiceError {
  return new ServiceError(
    "INVALID_USERNAME",
    `Username ${JSON.stringify(username)} is not of the form user@domain; pass e.g. alice@example.org.`,
  );
}

export function adminOnly(username: string, action = "manage identities"): ServiceError {
  return new ServiceError(
    "ADMIN_ONLY",
    `Only the local administrator (admin@localhost) may ${action}, not ${username}; use ${ADMIN_TOKEN_HINT}.`,
  );
}

export function identityExists(username: string): ServiceError {
  return new ServiceError(
    "IDENTITY_EXISTS",
    `Identity ${username} already exists; give it a new token with \`conduit-service user token ${username}\` instead.`,
  );
}

export function identityNotFound(username: string): ServiceError {
  return new ServiceError(
    "IDENTITY_NOT_FOUND",
    `There is no identity ${username}; see the existing ones with \`conduit-service user list\`.`,
  );
}

export function adminNotRemovable(username: string): ServiceError {
  return new ServiceError(
    "ADMIN_NOT_REMOVABLE",
    `${username} is the local administrator and cannot be removed; remove other identities only.`,
  );
}

export function identityInUse(username: string, endpoints: number, tasks: number): ServiceError {
  return new ServiceError(
    "IDENTITY_IN_USE",
    `Identity ${username} owns ${plural(endpoints, "endpoint")} and ${plural(tasks, "task")}; remove it with --force (?force=true) to delete those too.`,
  );
}

export function functionNotOwned(functionId: string): ServiceError {
  return new ServiceError(
    "FUNCTION_NOT_OWNED",
    `Function ${functionId} belongs to another identity; only its owner may delete it (register your own copy instead).`,
  );
}

export function endpointNotOwned(endpointId: string): ServiceError {
  return new ServiceError(
    "ENDPOINT_NOT_OWNED",
    `Endpoint ${endpointId} belongs to another identity; only its owner may delete it.`,
  );
}

export function endpointHasTasks(endpointId: string, tasks: number): ServiceError {
  return new ServiceError(
    "ENDPOINT_HAS_TASKS",
    `Endpoint ${endpointId} has ${plural(tasks, "task")} not yet finished; wait for them, or delete with ?force=true to fail them.`,
  );
}

export function taskGroupNotFound(taskGroupId: string): ServiceError {
  return new ServiceError(
    "TASK_GROUP_NOT_FOUND",
    `Task group ${taskGroupId} is not known to this service (or belongs to another identity); check the id returned by submit.`,
  );
}

/**
 * The management API cannot make or delete broker accounts: at start the
 * service refuses to run (it never falls back to one shared account), later
 * the request that needed an account gets 503.
 */
export function brokerAccountsFailed(managementBase: string, reason: string, cause?: unknown): ServiceError {
  return new ServiceError(
    "BROKER_ACCOUNTS_FAILED",
    `The service cannot use the RabbitMQ management API at ${managementBase} to give each endpoint, UEP and task group its own broker account (${reason}); enable it with \`sudo rabbitmq-plugins enable rabbitmq_management\`, or pass --amqp-management-url http://user:pass@host:15672 with an administrator's login.`,
    { cause },
  );
}

const SHARED_ACCOUNT =
  "This service runs with --shared-broker-account, which hands everyone the service's own RabbitMQ account";

/** `--shared-broker-account` serves the local administrator only. */
export function sharedAccountOneIdentity(): ServiceError {
  return new ServiceError(
    "SHARED_BROKER_ACCOUNT",
    `${SHARED_ACCOUNT}, so it serves the local administrator only; restart it without --shared-broker-account (scoped broker accounts, the default) to add identities.`,
  );
}

export function sharedAccountMultiUser(): ServiceError {
  return new ServiceError(
    "SHARED_BROKER_ACCOUNT",
    `${SHARED_ACCOUNT}, so it cannot serve a multi-user endpoint; restart the service without --shared-broker-account (scoped broker accounts, the default), or set multi_user: false in the endpoint's config.yaml.`,
  );
}

export function sharedAccountStoreHasIdentities(usernames: readonly string[]): ConduitError {
  const shown = usernames.slice(0, 3).join(", ") + (usernames.length > 3 ? `, and ${usernames.length - 3} more` : "");
  return new ConduitError(
    "SHARED_BROKER_ACCOUNT",
    `The store holds identities besides the local administrator (${shown}), but --shared-broker-account would hand each of them the service's own RabbitMQ account; start without --shared-broker-account (scoped broker accounts, the default).`,
  );
}

// ---- authentication policies -------------------------------------------------

/**
 * A request whose identity does not satisfy the endpoint's authentication
 * policy (403): the sentence names the failed constraint, and the
 * parameters say what a new login must satisfy.
 */
export class AuthPolicyUnmetError extends ServiceError {
  readonly authorizationParameters: AuthorizationParameters;

  constructor(message: string, authorizationParameters: AuthorizationParameters) {
    super("AUTH_POLICY_UNMET", message);
    this.name = "AuthPolicyUnmetError";
    this.authorizationParameters = authorizationParameters;
  }
}

export function projectNotFound(projectId: string): ServiceError {
  return new ServiceError(
    "PROJECT_NOT_FOUND",
    `There is no project ${projectId}; list yours with \`GET /v1/projects\` (conduit-service project list).`,
  );
}

export function projectNotOwned(projectId: string): ServiceError {
  return new ServiceError(
    "PROJECT_NOT_OWNED",
    `Project ${projectId} belongs to another identity; only its owner or the administrator may change it or add policies to it.`,
  );
}

export function projectInUse(projectId: string): ServiceError {
  return new ServiceError(
    "PROJECT_IN_USE",
    `Project ${projectId} still has authentication policies; delete them first (conduit-service policy remove ID).`,
  );
}

export function authPolicyNotFound(policyId: string): ServiceError {
  return new ServiceError(
    "AUTH_POLICY_NOT_FOUND",
    `There is no authentication policy ${policyId}; list yours with \`GET /v1/auth_policies\` (conduit-service policy list).`,
  );
}

export function authPolicyNotOwned(policyId: string): ServiceError {
  return new ServiceError(
    "AUTH_POLICY_NOT_OWNED",
    `Authentication policy ${policyId} belongs to another identity; only its owner or the administrator may change or delete it.`,
  );
}

export function authPolicyInUse(policyId: string): ServiceError {
  return new ServiceError(
    "AUTH_POLICY_IN_USE",
    `Authentication policy ${policyId} is named by registered endpoints; register them without it (or delete them) first.`,
  );
}

export function authPolicyInvalid(message: string): ServiceError {
  return new ServiceError("AUTH_POLICY_INVALID", message);
}

export function subscriptionNotFound(subscriptionId: string): ServiceError {
  return new ServiceError(
    "SUBSCRIPTION_NOT_FOUND",
    `There is no subscription ${subscriptionId}; ask the service's administrator for one (conduit-service subscription create).`,
  );
}

/** `why`: what is missing, e.g. `subscription X is not HA`. */
export function notHighAssurance(why: string): ServiceError {
  return new ServiceError(
    "NOT_HIGH_ASSURANCE",
    `High Assurance(HA) endpoints require both a HA policy and a HA subscription id, but ${why}; name an HA policy (authentication_policy) and an HA subscription (subscription_id), or register without high_assurance.`,
  );
}

/** Client side: nothing answers at the service URL. */
export function serviceUnreachable(url: string, cause: unknown): ConduitError {
  return new ConduitError(
    "SERVICE_UNREACHABLE",
    `No Conduit service answers at ${url}; start it with \`conduit-service start\` (or set CONDUIT_SERVICE_URL to where it runs).`,
    { cause },
  );
}

export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
