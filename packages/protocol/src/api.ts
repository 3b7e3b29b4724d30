/**
 * REST API shapes (JSON bodies), shared by the service and the SDK: each type
 * here is derived from a route definition in api-routes.ts (TypeBox), so the
 * service's validation, its /openapi.json and these types cannot disagree.
 * Routes:
 *
 * | method | path | body → response |
 * |---|---|---|
 * | GET | /healthz | → {@link HealthResponse} (no token) |
 * | GET | /openapi.json | → OpenAPI 3 document (no token) |
 * | GET | /v1/whoami | → {@link IdentityInfo} |
 * | POST | /v1/endpoints | {@link RegisterEndpointRequest} → {@link RegisterEndpointResponse} |
 * | GET | /v1/endpoints | → {@link EndpointInfo}[] |
 * | GET | /v1/endpoints/:endpoint_id/status | → {@link EndpointStatusResponse} |
 * | POST | /v1/functions | {@link RegisterFunctionRequest} → {@link RegisterFunctionResponse} |
 * | GET | /v1/functions/:function_id | → {@link FunctionInfo} |
 * | DELETE | /v1/functions/:function_id | → {@link DeleteResponse} (owner only) |
 * | GET | /v1/endpoints/:endpoint_id | → {@link EndpointInfo} |
 * | DELETE | /v1/endpoints/:endpoint_id | → {@link DeleteResponse} (owner only) |
 * | POST | /v1/tasks/:task_id/cancel | → {@link CancelTaskResponse} |
 * | GET | /v1/task_groups | → {@link TaskGroupInfo}[] (the caller's) |
 * | GET | /v1/task_groups/:task_group_id | → {@link TaskGroupDetail} |
 * | POST | /v1/endpoints/:endpoint_id/submit | {@link SubmitRequest} → {@link SubmitResponse} |
 * | GET | /v1/tasks/:task_id | → {@link TaskStatusResponse} |
 * | POST | /v1/tasks/batch_status | {@link BatchStatusRequest} → {@link BatchStatusResponse} |
 * | GET, POST | /v1/admin/identities | → {@link AdminIdentityInfo}[]; {@link CreateIdentityRequest} → {@link CreateIdentityResponse} (admin only) |
 * | POST | /v1/admin/identities/:username/tokens | → {@link IssueTokenResponse} (admin only) |
 * | DELETE | /v1/admin/identities/:username | → {@link RemoveIdentityResponse} (admin only) |
 * | POST | /v1/admin/keys/rotate | → {@link RotateKeysResponse} (admin only) |
 * | GET, POST | /v1/admin/clients | → {@link ClientInfo}[]; {@link CreateClientRequest} → {@link ClientSecretResponse} (admin only) |
 * | POST | /v1/admin/clients/:client_id/secret | → {@link ClientSecretResponse} (admin only) |
 * | DELETE | /v1/admin/clients/:client_id | → {@link RemoveClientResponse} (admin only) |
 * | GET, POST | /v1/admin/idps | → {@link IdpInfo}[]; {@link AddIdpRequest} → {@link IdpInfo} (admin only) |
 * | DELETE | /v1/admin/idps/:domain | → {@link IdpInfo} (admin only) |
 * | … | /v1/projects, /v1/auth_policies, /v1/subscriptions | see policy-routes.ts |
 *
 * Every route but /healthz and /openapi.json needs `Authorization: Bearer <token>`.
 * Errors are {@link ApiErrorBody} with an HTTP status.
 */
import type { Static } from "@sinclair/typebox";
import type { API_ROUTES, RouteBody, RouteReply } from "./api-routes.js";
import type {
  AmqpInfoSchema,
  ApiErrorSchema,
  EndpointAmqpInfoSchema,
  EndpointInfoSchema,
  TaskGroupInfoSchema,
  TaskStatusSchema,
  TokenInfoSchema,
} from "./api-shapes.js";
import type { IdentityInfo } from "./messages.js";

export const API_PREFIX = "/v1";
export const DEFAULT_SERVICE_URL = "http://127.0.0.1:8400";
export const DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672";

/**
 * The RabbitMQ management plugin's default port beside an AMQP listener, by
 * the AMQP URL's protocol: http on 15672, https on 15671 beside `amqps://`.
 */
export const DEFAULT_MANAGEMENT_PORT = { "amqp:": 15672, "amqps:": 15671 } as const;
/** Largest task (function + arguments) accepted by default. */
export const DEFAULT_MAX_TASK_BYTES = 10 * 1024 * 1024;
/** Largest submit request body accepted by default; the SDK splits batches to fit. */
export const DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024;
/** Most task ids one `batch_status` request may name (more get 413); the SDK splits longer lists. */
export const MAX_BATCH_STATUS_IDS = 1_000;
/**
 * The `disclaimer` of every answer to a submit to a High-Assurance endpoint
 * and to a registration of a High-Assurance function; the SDK prints it.
 */
export const HA_DISCLAIMER =
  "It is your responsibility to ensure disclosure of regulated data, such as Protected Health Information, resulting from the submission of this function and its arguments is legally authorized.";

type Routes = typeof API_ROUTES;

/** Every error answer: `code` is stable (e.g. `FUNCTION_NOT_FOUND`), `message` one sentence naming the problem and the fix. */
export type ApiErrorBody = Static<typeof ApiErrorSchema>;
export type HealthResponse = RouteReply<Routes["health"]>;
/** How a MEP or an SDK reaches the broker: the URL, and `serviceUser`, the only `user-id` the service's messages carry. */
export type AmqpInfo = Static<typeof AmqpInfoSchema>;
/** AmqpInfo and, unless the broker account is shared, `managementPort` for a multi-user MEP's guest/guest check. */
export type EndpointAmqpInfo = Static<typeof EndpointAmqpInfoSchema>;
export type RegisterEndpointRequest = RouteBody<Routes["registerEndpoint"]>;
export type RegisterEndpointResponse = RouteReply<Routes["registerEndpoint"]>;
export type EndpointInfo = Static<typeof EndpointInfoSchema>;
export type EndpointStatusResponse = RouteReply<Routes["endpointStatus"]>;
export type RegisterFunctionRequest = RouteBody<Routes["registerFunction"]>;
export type RegisterFunctionResponse = RouteReply<Routes["registerFunction"]>;
export type FunctionInfo = RouteReply<Routes["getFunction"]>;
export type SubmitRequest = RouteBody<Routes["submit"]>;
/** One task of a submit; its `task_id` is chosen by the SDK, so a retried submit is idempotent. */
export type SubmitTask = SubmitRequest["tasks"][number];
export type SubmitResponse = RouteReply<Routes["submit"]>;
export type DeleteResponse = RouteReply<Routes["deleteFunction"]>;
/**
 * `cancelled: true`: the task had not started; it is now `cancelled`, never
 * runs, and a `cancelled` result is pushed to its task group's queue.
 * `cancelled: false`: it was running or finished already; `state` says which.
 */
export type CancelTaskResponse = RouteReply<Routes["cancelTask"]>;
/** A task group, with its tasks counted per state (only states with at least one task). */
export type TaskGroupInfo = Static<typeof TaskGroupInfoSchema>;
/** What `Executor.reload()` needs to re-attach to a group: its unfinished tasks and where its results are pushed. */
export type TaskGroupDetail = RouteReply<Routes["getTaskGroup"]>;
export type TaskStatusResponse = Static<typeof TaskStatusSchema>;
export type BatchStatusRequest = RouteBody<Routes["batchStatus"]>;
export type BatchStatusResponse = RouteReply<Routes["batchStatus"]>;

/** POST /v1/admin/identities: `username` is `user@domain`. */
export type CreateIdentityRequest = RouteBody<Routes["createIdentity"]>;
/** POST /v1/admin/identities (201): the token is shown only in this answer; the service keeps its hash. */
export type CreateIdentityResponse = RouteReply<Routes["createIdentity"]>;
/** One API token of an identity, as GET /v1/admin/identities lists it (its value is never shown again). */
export type TokenInfo = Static<typeof TokenInfoSchema>;
/** GET /v1/admin/identities: an identity with its tokens, oldest first. */
export type AdminIdentityInfo = RouteReply<Routes["listIdentities"]>[number];
/** POST /v1/admin/identities/:username/tokens: `revoked` counts the older tokens revoked (0 unless `revoke_others`). */
export type IssueTokenResponse = RouteReply<Routes["issueToken"]>;
/** DELETE /v1/admin/identities/:username: the endpoints and tasks removed with it (only with `force`). */
export type RemoveIdentityResponse = RouteReply<Routes["removeIdentity"]>;
/** `POST /v1/admin/keys/rotate`. */
export type RotateKeysResponse = RouteReply<Routes["rotateKeys"]>;
/** A client identity, as the admin routes show it. */
export type ClientInfo = RouteReply<Routes["listClients"]>[number];
export type CreateClientRequest = RouteBody<Routes["createClient"]>;
/** The new client (or its new secret): the secret is shown in this answer only. */
export type ClientSecretResponse = RouteReply<Routes["createClient"]>;
export type RemoveClientResponse = RouteReply<Routes["removeClient"]>;
/** An upstream identity provider, as the admin routes show it (never its secret). */
export type IdpInfo = RouteReply<Routes["listIdps"]>[number];
export type AddIdpRequest = RouteBody<Routes["addIdp"]>;
/** What a new login must satisfy, carried by a 403 `AUTH_POLICY_UNMET`. */
export type AuthorizationParameters = NonNullable<ApiErrorBody["authorization_parameters"]>;
export type ProjectInfo = RouteReply<Routes["createProject"]>;
export type CreateProjectRequest = RouteBody<Routes["createProject"]>;
export type AuthPolicyInfo = RouteReply<Routes["createAuthPolicy"]>;
export type CreateAuthPolicyRequest = RouteBody<Routes["createAuthPolicy"]>;
export type UpdateAuthPolicyRequest = RouteBody<Routes["updateAuthPolicy"]>;
export type SubscriptionInfo = RouteReply<Routes["createSubscription"]>;
export type CreateSubscriptionRequest = RouteBody<Routes["createSubscription"]>;
/** A TOTP secret the administrator enrolled; shown once. */
export type TotpEnrolment = RouteReply<Routes["enrolTotp"]>;

export type { IdentityInfo };
