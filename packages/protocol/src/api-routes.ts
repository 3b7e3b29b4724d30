/**
 * Every REST route as data: method, path, parameters, query, body and answers
 * (the error body included). The service registers its routes from these
 * objects, so Fastify's validation, its reply serialization and /openapi.json
 * all come from here; api.ts derives the request and response types the SDK
 * and the service share from them. A test checks the served /openapi.json
 * against these definitions.
 */
import { type Static, type TObject, type TSchema, Type } from "@sinclair/typebox";
import { MAX_BATCH_STATUS_IDS } from "./api.js";
import {
  AdminIdentityInfoSchema,
  AmqpInfoSchema,
  ApiErrorSchema,
  CreateIdentityResponseSchema,
  DeleteResponseSchema,
  EndpointAmqpInfoSchema,
  EndpointInfoSchema,
  EndpointStatusSchema,
  ExpiresInSeconds,
  IdentityInfoSchema,
  JsonObject,
  JsonObjectOrNull,
  NullableString,
  PayloadSchema,
  StringMap,
  TaskGroupInfoSchema,
  TaskStateSchema,
  TaskStatusSchema,
  UserRuntimeOrNull,
  Uuid,
} from "./api-shapes.js";
import { POLICY_ROUTES } from "./policy-routes.js";

export type ApiMethod = "GET" | "POST" | "PUT" | "DELETE";

/** One route of the REST API. */
export interface ApiRoute {
  method: ApiMethod;
  /** The path, with `:name` for a path parameter (Fastify's syntax). */
  url: string;
  summary: string;
  /** OpenAPI tags: the group the route is listed under. */
  tags: readonly string[];
  /** Answered without a token; every other route needs `Authorization: Bearer <token>`. */
  public?: boolean;
  params?: TObject;
  querystring?: TObject;
  body?: TSchema;
  /** The answers by status: the success one(s), and `4xx`/`5xx` for the error body. */
  response: { readonly [status: number]: TSchema; readonly "4xx"?: TSchema; readonly "5xx"?: TSchema };
}

const ApiErrorRef = Type.Ref(ApiErrorSchema);
/** The error answers every authenticated route can give: an ApiErrorBody. */
const errors = { "4xx": ApiErrorRef, "5xx": ApiErrorRef } as const;

const endpointIdParams = Type.Object({ endpoint_id: Uuid });
const functionIdParams = Type.Object({ function_id: Uuid });
const taskIdParams = Type.Object({ task_id: Uuid });
const usernameParams = Type.Object({ username: Type.String({ examples: ["alice@example.org"] }) });
const forceQuery = Type.Object({ force: Type.Optional(Type.Boolean({ default: false })) });

const TaskGroupDetailSchema = Type.Object({
  ...TaskGroupInfoSchema.properties,
  /** Tasks not yet in a terminal state, with their endpoint. */
  pending_tasks: Type.Array(Type.Object({ task_id: Uuid, endpoint_id: Uuid, state: TaskStateSchema })),
  /** Where the group's results are pushed (credentials reach only this group's queue when accounts are scoped). */
  amqp: AmqpInfoSchema,
  result_queue: Type.String(),
});

/** HA_DISCLAIMER, in answers that involve a High-Assurance endpoint. */
const Disclaimer = Type.String({
  description: "Given for a High-Assurance endpoint or function: a sentence for the caller to show its user.",
});

const health = {
  method: "GET",
  url: "/healthz",
  summary: "Liveness (no token).",
  tags: ["service"],
  public: true,
  response: { 200: Type.Object({ status: StringLiteral("ok"), version: Type.String() }) },
} as const satisfies ApiRoute;

const ready = {
  method: "GET",
  url: "/readyz",
  summary: "Readiness (no token): 200 when the store and the broker answer, 503 naming the one that does not.",
  tags: ["service"],
  public: true,
  response: { 200: Type.Object({ status: StringLiteral("ready"), version: Type.String() }), ...errors },
} as const satisfies ApiRoute;

const metrics = {
  method: "GET",
  url: "/metrics",
  summary: "Prometheus metrics in the text exposition format (the service's administrator only).",
  tags: ["service"],
  response: { 200: Type.String(), ...errors },
} as const satisfies ApiRoute;

const openApi = {
  method: "GET",
  url: "/openapi.json",
  summary: "This OpenAPI 3 document (no token).",
  tags: ["service"],
  public: true,
  response: { 200: JsonObject },
} as const satisfies ApiRoute;

const whoami = {
  method: "GET",
  url: "/v1/whoami",
  summary: "The identity of the token.",
  tags: ["identity"],
  response: { 200: Type.Ref(IdentityInfoSchema), ...errors },
} as const satisfies ApiRoute;

const registerEndpoint = {
  method: "POST",
  url: "/v1/endpoints",
  summary: "Register a new endpoint, or re-register a known id (same owner).",
  tags: ["endpoints"],
  body: Type.Object({
    /** Re-register under a known id (the id kept in the endpoint directory). */
    endpoint_id: Type.Optional(Uuid),
    name: Type.String({ minLength: 1, maxLength: 256 }),
    display_name: Type.Optional(NullableString({ maxLength: 1024 })),
    multi_user: Type.Optional(Type.Boolean()),
    allowed_functions: Type.Optional(Type.Unsafe<string[] | null>({ type: ["array", "null"], items: Uuid })),
    metadata: Type.Optional(JsonObject),
    /** The authentication policy the service checks for this endpoint's tasks (config.yaml). */
    authentication_policy: Type.Optional(NullableString({ format: "uuid" })),
    subscription_id: Type.Optional(NullableString({ format: "uuid" })),
    contact_email: Type.Optional(NullableString({ maxLength: 1024 })),
    /** Fixed at the first registration. */
    high_assurance: Type.Optional(
      Type.Boolean({
        description:
          "High Assurance, fixed at the endpoint's first registration: a later registration saying otherwise is refused (409). Absent means false.",
      }),
    ),
  }),
  response: {
    200: Type.Object({
      endpoint_id: Uuid,
      amqp: EndpointAmqpInfoSchema,
      /** The MEP's command queue (see topology). */
      command_queue: Type.String(),
    }),
    ...errors,
  },
} as const satisfies ApiRoute;

const listEndpoints = {
  method: "GET",
  url: "/v1/endpoints",
  summary: "The endpoints the caller owns.",
  tags: ["endpoints"],
  response: { 200: Type.Array(Type.Ref(EndpointInfoSchema)), ...errors },
} as const satisfies ApiRoute;

const getEndpoint = {
  method: "GET",
  url: "/v1/endpoints/:endpoint_id",
  summary: "An endpoint (yours, or a multi-user endpoint).",
  tags: ["endpoints"],
  params: endpointIdParams,
  response: { 200: Type.Ref(EndpointInfoSchema), ...errors },
} as const satisfies ApiRoute;

const deleteEndpoint = {
  method: "DELETE",
  url: "/v1/endpoints/:endpoint_id",
  summary:
    "Delete your endpoint (its tasks stay as history); refused with 409 while it has unfinished tasks, unless force fails them.",
  tags: ["endpoints"],
  params: endpointIdParams,
  querystring: forceQuery,
  response: { 200: DeleteResponseSchema, ...errors },
} as const satisfies ApiRoute;

const endpointStatus = {
  method: "GET",
  url: "/v1/endpoints/:endpoint_id/status",
  summary: "Whether an endpoint is online (heartbeats younger than three periods).",
  tags: ["endpoints"],
  params: endpointIdParams,
  response: {
    200: Type.Object({
      endpoint_id: Uuid,
      status: EndpointStatusSchema,
      last_heartbeat: NullableString({ format: "date-time" }),
    }),
    ...errors,
  },
} as const satisfies ApiRoute;

const registerFunction = {
  method: "POST",
  url: "/v1/functions",
  summary: "Register a function; the same payload registered again keeps its id.",
  tags: ["functions"],
  body: Type.Object({
    function: Type.Ref(PayloadSchema),
    name: Type.Optional(Type.String({ maxLength: 1024 })),
    ha_endpoint_id: Type.Optional(
      Type.String({
        format: "uuid",
        description:
          "A High-Assurance function of this HA endpoint: it runs there only, and is deleted after the service's retention period unused.",
      }),
    ),
  }),
  response: { 200: Type.Object({ function_id: Uuid, disclaimer: Type.Optional(Disclaimer) }), ...errors },
} as const satisfies ApiRoute;

const getFunction = {
  method: "GET",
  url: "/v1/functions/:function_id",
  summary: "A registered function.",
  tags: ["functions"],
  params: functionIdParams,
  response: {
    200: Type.Object({
      function_id: Uuid,
      name: NullableString(),
      function: Type.Ref(PayloadSchema),
      ha_endpoint_id: Type.Optional(Uuid),
    }),
    ...errors,
  },
} as const satisfies ApiRoute;

const deleteFunction = {
  method: "DELETE",
  url: "/v1/functions/:function_id",
  summary: "Delete your function; later submits naming it get 404 (its tasks stay as history).",
  tags: ["functions"],
  params: functionIdParams,
  response: { 200: DeleteResponseSchema, ...errors },
} as const satisfies ApiRoute;

const SubmitTaskSchema = Type.Object({
  /** Generated by the SDK (UUID), so a retried submit is idempotent. */
  task_id: Uuid,
  function_id: Uuid,
  args: Type.Ref(PayloadSchema),
});

const submit = {
  method: "POST",
  url: "/v1/endpoints/:endpoint_id/submit",
  summary: "Submit tasks to an endpoint; results are pushed to `result_queue`.",
  tags: ["tasks"],
  params: endpointIdParams,
  body: Type.Object({
    tasks: Type.Array(SubmitTaskSchema, { minItems: 1 }),
    task_group_id: Type.Optional(Uuid),
    user_endpoint_config: Type.Optional(JsonObjectOrNull),
    user_runtime: Type.Optional(UserRuntimeOrNull),
    resource_specification: Type.Optional(JsonObjectOrNull),
  }),
  response: {
    200: Type.Object({
      task_group_id: Uuid,
      uep_id: Uuid,
      task_ids: Type.Array(Uuid),
      /** Where the results of this task group are pushed. */
      amqp: AmqpInfoSchema,
      result_queue: Type.String(),
      disclaimer: Type.Optional(Disclaimer),
    }),
    ...errors,
  },
} as const satisfies ApiRoute;

const taskStatus = {
  method: "GET",
  url: "/v1/tasks/:task_id",
  summary: "A task's state, and its result or error once it finished.",
  tags: ["tasks"],
  params: taskIdParams,
  response: { 200: Type.Ref(TaskStatusSchema), ...errors },
} as const satisfies ApiRoute;

const batchStatus = {
  method: "POST",
  url: "/v1/tasks/batch_status",
  summary: "The states of many tasks; unknown ids (or other identities' tasks) are left out.",
  tags: ["tasks"],
  // More ids are answered 413 before validation (the service's task routes); the cap is here for clients to read.
  body: Type.Object({ task_ids: Type.Array(Uuid, { maxItems: MAX_BATCH_STATUS_IDS }) }),
  response: {
    200: Type.Object({ tasks: StringMap(Type.Ref(TaskStatusSchema)) }),
    ...errors,
  },
} as const satisfies ApiRoute;

const cancelTask = {
  method: "POST",
  url: "/v1/tasks/:task_id/cancel",
  summary:
    "Cancel your task if it has not started: it never runs and a `cancelled` result is pushed to its task group's queue.",
  tags: ["tasks"],
  params: taskIdParams,
  response: {
    200: Type.Object({
      task_id: Uuid,
      cancelled: Type.Boolean({ description: "False when the task was running or finished already." }),
      state: TaskStateSchema,
    }),
    ...errors,
  },
} as const satisfies ApiRoute;

const listTaskGroups = {
  method: "GET",
  url: "/v1/task_groups",
  summary: "Your task groups, oldest first, with their tasks counted per state.",
  tags: ["task_groups"],
  response: { 200: Type.Array(TaskGroupInfoSchema), ...errors },
} as const satisfies ApiRoute;

const getTaskGroup = {
  method: "GET",
  url: "/v1/task_groups/:task_group_id",
  summary: "One of your task groups: counts, unfinished tasks, and where its results are pushed.",
  tags: ["task_groups"],
  params: Type.Object({ task_group_id: Uuid }),
  response: { 200: TaskGroupDetailSchema, ...errors },
} as const satisfies ApiRoute;

// ---- admin (admin@localhost only) ---------------------------------------------

const listIdentities = {
  method: "GET",
  url: "/v1/admin/identities",
  summary: "Every identity, by username, with when each of its API tokens expires (admin only).",
  tags: ["admin"],
  response: { 200: Type.Array(AdminIdentityInfoSchema), ...errors },
} as const satisfies ApiRoute;

const createIdentity = {
  method: "POST",
  url: "/v1/admin/identities",
  summary: "Create an identity `user@domain` and its first API token (admin only).",
  tags: ["admin"],
  body: Type.Object({
    username: Type.String({ maxLength: 512, examples: ["alice@example.org"] }),
    name: Type.Optional(Type.String({ maxLength: 1024 })),
    email: Type.Optional(Type.String({ maxLength: 1024 })),
    organization: Type.Optional(Type.String({ maxLength: 1024 })),
    identity_provider: Type.Optional(Type.String({ maxLength: 1024 })),
    token_expires_in_seconds: Type.Optional(ExpiresInSeconds()),
    password: Type.Optional(
      Type.String({
        maxLength: 1024,
        description: "A password for the service's login page, 8 to 1024 characters (kept as a scrypt hash).",
      }),
    ),
  }),
  response: { 201: CreateIdentityResponseSchema, ...errors },
} as const satisfies ApiRoute;

const issueToken = {
  method: "POST",
  url: "/v1/admin/identities/:username/tokens",
  summary: "A new API token for an identity; older ones keep working unless revoke_others (admin only).",
  tags: ["admin"],
  params: usernameParams,
  querystring: Type.Object({
    revoke_others: Type.Optional(Type.Boolean({ default: false })),
    expires_in_seconds: Type.Optional(ExpiresInSeconds()),
  }),
  response: {
    200: Type.Object({
      ...CreateIdentityResponseSchema.properties,
      revoked: Type.Integer({ description: "How many older tokens were revoked." }),
    }),
    ...errors,
  },
} as const satisfies ApiRoute;

const removeIdentity = {
  method: "DELETE",
  url: "/v1/admin/identities/:username",
  summary: "Remove an identity and its tokens; with force, also its endpoints, functions and tasks (admin only).",
  tags: ["admin"],
  params: usernameParams,
  querystring: forceQuery,
  response: {
    200: Type.Object({
      identity: Type.Ref(IdentityInfoSchema),
      endpoints: Type.Integer({ description: "Endpoints removed with it." }),
      tasks: Type.Integer({ description: "Tasks removed with it." }),
    }),
    ...errors,
  },
} as const satisfies ApiRoute;

const rotateKeys = {
  method: "POST",
  url: "/v1/admin/keys/rotate",
  summary: "A new token signing key; the old one still verifies until the tokens it signed have expired (admin only).",
  tags: ["admin"],
  response: {
    200: Type.Object({
      kid: Type.String({ description: "The new signing key's id." }),
      retired: Type.Array(Type.String(), { description: "The keys it replaced." }),
      retired_keys_verify_until: Type.String({ format: "date-time" }),
    }),
    ...errors,
  },
} as const satisfies ApiRoute;

const ClientInfoSchema = Type.Object({
  client_id: Uuid,
  name: Type.String(),
  username: Type.String({ description: "The client identity's username: <client_id>@clients.conduit." }),
  owner: Type.Union([Type.String(), Type.Null()], { description: "The identity responsible for it, if any." }),
  created_at: Type.String({ format: "date-time" }),
});

const clientParams = Type.Object({ client_id: Uuid });

const listClients = {
  method: "GET",
  url: "/v1/admin/clients",
  summary: "Every client identity (admin only).",
  tags: ["admin"],
  response: { 200: Type.Array(ClientInfoSchema), ...errors },
} as const satisfies ApiRoute;

const createClient = {
  method: "POST",
  url: "/v1/admin/clients",
  summary: "Create a client identity; its secret is in this answer only (admin only).",
  tags: ["admin"],
  body: Type.Object({
    name: Type.String({ minLength: 1, maxLength: 256, examples: ["ci-bot"] }),
    owner: Type.Optional(Type.String({ maxLength: 512, examples: ["alice@example.org"] })),
  }),
  response: { 201: Type.Object({ client: ClientInfoSchema, client_secret: Type.String() }), ...errors },
} as const satisfies ApiRoute;

const rotateClientSecret = {
  method: "POST",
  url: "/v1/admin/clients/:client_id/secret",
  summary: "A new secret for a client identity; the old one stops working (admin only).",
  tags: ["admin"],
  params: clientParams,
  response: { 200: Type.Object({ client: ClientInfoSchema, client_secret: Type.String() }), ...errors },
} as const satisfies ApiRoute;

const removeClient = {
  method: "DELETE",
  url: "/v1/admin/clients/:client_id",
  summary: "Remove a client identity; with force, also its endpoints, functions and tasks (admin only).",
  tags: ["admin"],
  params: clientParams,
  querystring: forceQuery,
  response: {
    200: Type.Object({
      client: ClientInfoSchema,
      endpoints: Type.Integer({ description: "Endpoints removed with it." }),
      tasks: Type.Integer({ description: "Tasks removed with it." }),
    }),
    ...errors,
  },
} as const satisfies ApiRoute;

const IdpInfoSchema = Type.Object({
  domain: Type.String(),
  issuer: Type.String(),
  client_id: Type.String(),
  created_at: Type.String({ format: "date-time" }),
});

const listIdps = {
  method: "GET",
  url: "/v1/admin/idps",
  summary: "The upstream identity providers, by domain (admin only).",
  tags: ["admin"],
  response: { 200: Type.Array(IdpInfoSchema), ...errors },
} as const satisfies ApiRoute;

const addIdp = {
  method: "POST",
  url: "/v1/admin/idps",
  summary:
    "Send the users of a domain to an upstream OpenID Connect provider to sign in (admin only); replaces the domain's provider.",
  tags: ["admin"],
  body: Type.Object({
    domain: Type.String({ minLength: 1, maxLength: 253, examples: ["example.edu"] }),
    issuer: Type.String({ minLength: 1, maxLength: 2048, examples: ["https://login.example.edu"] }),
    client_id: Type.String({ minLength: 1, maxLength: 1024 }),
    client_secret: Type.String({ minLength: 1, maxLength: 4096 }),
  }),
  response: { 201: IdpInfoSchema, ...errors },
} as const satisfies ApiRoute;

const removeIdp = {
  method: "DELETE",
  url: "/v1/admin/idps/:domain",
  summary: "Stop sending a domain's users to an upstream provider (admin only).",
  tags: ["admin"],
  params: Type.Object({ domain: Type.String({ maxLength: 253 }) }),
  response: { 200: IdpInfoSchema, ...errors },
} as const satisfies ApiRoute;

/** `{type: "string", enum: [value]}`, typed as that one value. */
function StringLiteral<const T extends string>(value: T) {
  return Type.Unsafe<T>({ type: "string", enum: [value] });
}

/** Every route of the REST API, by the name the SDK's and the service's code use. */
export const API_ROUTES = {
  health,
  ready,
  metrics,
  openApi,
  whoami,
  registerEndpoint,
  listEndpoints,
  getEndpoint,
  deleteEndpoint,
  endpointStatus,
  registerFunction,
  getFunction,
  deleteFunction,
  submit,
  taskStatus,
  batchStatus,
  cancelTask,
  listTaskGroups,
  getTaskGroup,
  listIdentities,
  createIdentity,
  issueToken,
  removeIdentity,
  rotateKeys,
  listClients,
  createClient,
  rotateClientSecret,
  removeClient,
  listIdps,
  addIdp,
  removeIdp,
  ...POLICY_ROUTES,
} as const;

type Defined<S> = S extends TSchema ? Static<S> : undefined;
/** A route's path parameters. */
export type RouteParams<R extends ApiRoute> = Defined<R["params"]>;
/** A route's query parameters (those with a default are filled in by the service's validator). */
export type RouteQuery<R extends ApiRoute> = Defined<R["querystring"]>;
/** A route's JSON body. */
export type RouteBody<R extends ApiRoute> = Defined<R["body"]>;
/** A route's success answer (its 2xx body). */
export type RouteReply<R extends ApiRoute> = {
  [S in keyof R["response"]]: S extends 200 | 201 ? Static<R["response"][S]> : never;
}[keyof R["response"]];
