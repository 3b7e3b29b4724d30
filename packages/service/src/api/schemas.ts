/**
 * JSON schemas of every route (protocol/api.ts in schema form). Fastify
 * validates bodies and params with them, serializes responses with them, and
 * @fastify/swagger builds /openapi.json from them. Shared shapes are added once
 * by `$id` and appear under `components.schemas`.
 */

import { MAX_BATCH_STATUS_IDS } from "@conduit/protocol";

const uuid = { type: "string", format: "uuid" } as const;
const dateTimeOrNull = { type: ["string", "null"], format: "date-time" } as const;
const jsonObject = { type: "object", additionalProperties: true } as const;
const jsonObjectOrNull = { type: ["object", "null"], additionalProperties: true } as const;
/** protocol's AmqpInfo: where to connect, and the only user-id a message from the service carries. */
const amqpInfo = {
  type: "object",
  required: ["url", "serviceUser"],
  properties: { url: { type: "string" }, serviceUser: { type: "string" } },
} as const;
/** protocol's EndpointAmqpInfo: AmqpInfo and where the management API is, for the MEP's guest/guest check. */
const endpointAmqpInfo = {
  type: "object",
  required: ["url", "serviceUser"],
  properties: { ...amqpInfo.properties, managementPort: { type: "integer", minimum: 1, maximum: 65535 } },
} as const;

const identityInfoProperties = {
  id: uuid,
  username: { type: "string", examples: ["alice@example.org"] },
  name: { type: "string" },
  email: { type: "string" },
  organization: { type: "string" },
  identity_provider: { type: "string" },
} as const;

/** Shapes referenced as `{ $ref: "<Name>#" }`. */
export const sharedSchemas = [
  {
    $id: "Payload",
    description: "A serialized function, argument list or result; `strategy` names the serializer.",
    type: "object",
    required: ["strategy", "data"],
    properties: {
      strategy: { type: "string", minLength: 1, maxLength: 256, examples: ["conduit.JSONData"] },
      data: { type: "string" },
    },
  },
  {
    $id: "WireError",
    description: "An error as it crosses a process boundary.",
    type: "object",
    required: ["code", "name", "message"],
    properties: {
      code: { type: "string" },
      name: { type: "string" },
      message: { type: "string" },
      stack: { type: "string" },
      cause: { $ref: "WireError#" },
    },
  },
  {
    $id: "ApiError",
    description: "Every error answer: a stable code and one sentence naming the problem and the fix.",
    type: "object",
    required: ["statusCode", "code", "error", "message"],
    properties: {
      statusCode: { type: "integer" },
      code: { type: "string", examples: ["FUNCTION_NOT_FOUND"] },
      error: { type: "string", examples: ["Not Found"] },
      message: { type: "string" },
    },
  },
  { $id: "IdentityInfo", type: "object", required: ["id", "username"], properties: identityInfoProperties },
  {
    $id: "EndpointInfo",
    type: "object",
    required: ["endpoint_id", "name", "display_name", "owner", "multi_user", "status", "last_heartbeat"],
    properties: {
      endpoint_id: uuid,
      name: { type: "string" },
      display_name: { type: ["string", "null"] },
      owner: { type: "string", description: "The owner's username." },
      multi_user: { type: "boolean" },
      status: { type: "string", enum: ["online", "offline"] },
      last_heartbeat: dateTimeOrNull,
    },
  },
  {
    $id: "TaskStatus",
    type: "object",
    required: ["task_id", "state", "endpoint_id", "function_id", "task_group_id", "created_at", "completed_at"],
    properties: {
      task_id: uuid,
      state: {
        type: "string",
        enum: ["received", "waiting-for-endpoint", "running", "success", "failed", "cancelled"],
      },
      endpoint_id: uuid,
      function_id: uuid,
      task_group_id: uuid,
      result: { $ref: "Payload#" },
      error: { $ref: "WireError#" },
      created_at: { type: "string", format: "date-time" },
      completed_at: dateTimeOrNull,
    },
  },
] as const;

/** Error answers every authenticated route can give. */
const errors = { "4xx": { $ref: "ApiError#" }, "5xx": { $ref: "ApiError#" } } as const;

export const healthSchema = {
  summary: "Liveness (no token).",
  tags: ["service"],
  security: [],
  response: {
    200: {
      type: "object",
      required: ["status", "version"],
      properties: { status: { type: "string", enum: ["ok"] }, version: { type: "string" } },
    },
  },
} as const;

export const openApiSchema = {
  summary: "This OpenAPI 3 document (no token).",
  tags: ["service"],
  security: [],
  response: { 200: jsonObject },
} as const;

export const whoamiSchema = {
  summary: "The identity of the token.",
  tags: ["identity"],
  response: { 200: { $ref: "IdentityInfo#" }, ...errors },
} as const;

const endpointIdParams = {
  type: "object",
  required: ["endpoint_id"],
  properties: { endpoint_id: uuid },
} as const;

export const registerEndpointSchema = {
  summary: "Register a new endpoint, or re-register a known id (same owner).",
  tags: ["endpoints"],
  body: {
    type: "object",
    required: ["name"],
    properties: {
      endpoint_id: uuid,
      name: { type: "string", minLength: 1, maxLength: 256 },
      display_name: { type: ["string", "null"], maxLength: 1024 },
      multi_user: { type: "boolean" },
      allowed_functions: { type: ["array", "null"], items: uuid },
      metadata: jsonObject,
    },
  },
  response: {
    200: {
      type: "object",
      required: ["endpoint_id", "amqp", "command_queue"],
      properties: {
        endpoint_id: uuid,
        amqp: endpointAmqpInfo,
        command_queue: { type: "string" },
      },
    },
    ...errors,
  },
} as const;

export const listEndpointsSchema = {
  summary: "The endpoints the caller owns.",
  tags: ["endpoints"],
  response: { 200: { type: "array", items: { $ref: "EndpointInfo#" } }, ...errors },
} as const;

export const endpointStatusSchema = {
  summary: "Whether an endpoint is online (heartbeats younger than three periods).",
  tags: ["endpoints"],
  params: endpointIdParams,
  response: {
    200: {
      type: "object",
      required: ["endpoint_id", "status", "last_heartbeat"],
      properties: {
        endpoint_id: uuid,
        status: { type: "string", enum: ["online", "offline"] },
        last_heartbeat: dateTimeOrNull,
      },
    },
    ...errors,
  },
} as const;

export const registerFunctionSchema = {
  summary: "Register a function; the same payload registered again keeps its id.",
  tags: ["functions"],
  body: {
    type: "object",
    required: ["function"],
    properties: { function: { $ref: "Payload#" }, name: { type: "string", maxLength: 1024 } },
  },
  response: {
    200: { type: "object", required: ["function_id"], properties: { function_id: uuid } },
    ...errors,
  },
} as const;

export const getFunctionSchema = {
  summary: "A registered function.",
  tags: ["functions"],
  params: { type: "object", required: ["function_id"], properties: { function_id: uuid } },
  response: {
    200: {
      type: "object",
      required: ["function_id", "name", "function"],
      properties: { function_id: uuid, name: { type: ["string", "null"] }, function: { $ref: "Payload#" } },
    },
    ...errors,
  },
} as const;

export const submitSchema = {
  summary: "Submit tasks to an endpoint; results are pushed to `result_queue`.",
  tags: ["tasks"],
  params: endpointIdParams,
  body: {
    type: "object",
    required: ["tasks"],
    properties: {
      tasks: {
        type: "array",
        minItems: 1,
        items: {
          type: "object",
          required: ["task_id", "function_id", "args"],
          properties: { task_id: uuid, function_id: uuid, args: { $ref: "Payload#" } },
        },
      },
      task_group_id: uuid,
      user_endpoint_config: jsonObjectOrNull,
      // Other fields are accepted too (no additionalProperties keyword, so the
      // generated SDK type takes the protocol's UserRuntime as it is).
      user_runtime: {
        type: ["object", "null"],
        properties: {
          node_version: { type: "string" },
          sdk_version: { type: "string" },
          platform: { type: "string" },
          arch: { type: "string" },
          hostname: { type: "string" },
        },
      },
      resource_specification: jsonObjectOrNull,
    },
  },
  response: {
    200: {
      type: "object",
      required: ["task_group_id", "uep_id", "task_ids", "amqp", "result_queue"],
      properties: {
        task_group_id: uuid,
        uep_id: uuid,
        task_ids: { type: "array", items: uuid },
        amqp: amqpInfo,
        result_queue: { type: "string" },
      },
    },
    ...errors,
  },
} as const;

export const taskStatusSchema = {
  summary: "A task's state, and its result or error once it finished.",
  tags: ["tasks"],
  params: { type: "object", required: ["task_id"], properties: { task_id: uuid } },
  response: { 200: { $ref: "TaskStatus#" }, ...errors },
} as const;

export const batchStatusSchema = {
  summary: "The states of many tasks; unknown ids (or other identities' tasks) are left out.",
  tags: ["tasks"],
  body: {
    type: "object",
    required: ["task_ids"],
    // More ids are answered 413 before validation (task-routes.ts); the cap is here for clients to read.
    properties: { task_ids: { type: "array", maxItems: MAX_BATCH_STATUS_IDS, items: uuid } },
  },
  response: {
    200: {
      type: "object",
      required: ["tasks"],
      properties: { tasks: { type: "object", additionalProperties: { $ref: "TaskStatus#" } } },
    },
    ...errors,
  },
} as const;

// ---- deletes, cancel, task groups -----------------------------------------------

const taskStates = ["received", "waiting-for-endpoint", "running", "success", "failed", "cancelled"] as const;
const taskState = { type: "string", enum: taskStates } as const;

const deleteResponse = {
  type: "object",
  required: ["id", "deleted"],
  properties: { id: uuid, deleted: { type: "boolean", enum: [true] } },
} as const;

const taskGroupInfoProperties = {
  task_group_id: uuid,
  created_at: { type: "string", format: "date-time" },
  task_counts: {
    type: "object",
    description: "Tasks of the group per state (only states with at least one task).",
    properties: Object.fromEntries(taskStates.map((state) => [state, { type: "integer" }])) as Record<
      (typeof taskStates)[number],
      { type: "integer" }
    >,
    additionalProperties: false,
  },
} as const;

export const getEndpointSchema = {
  summary: "An endpoint (yours, or a multi-user endpoint).",
  tags: ["endpoints"],
  params: endpointIdParams,
  response: { 200: { $ref: "EndpointInfo#" }, ...errors },
} as const;

export const deleteEndpointSchema = {
  summary:
    "Delete your endpoint (its tasks stay as history); refused with 409 while it has unfinished tasks, unless force fails them.",
  tags: ["endpoints"],
  params: endpointIdParams,
  querystring: {
    type: "object",
    properties: { force: { type: "boolean", default: false } },
  },
  response: { 200: deleteResponse, ...errors },
} as const;

export const deleteFunctionSchema = {
  summary: "Delete your function; later submits naming it get 404 (its tasks stay as history).",
  tags: ["functions"],
  params: { type: "object", required: ["function_id"], properties: { function_id: uuid } },
  response: { 200: deleteResponse, ...errors },
} as const;

export const cancelTaskSchema = {
  summary:
    "Cancel your task if it has not started: it never runs and a `cancelled` result is pushed to its task group's queue.",
  tags: ["tasks"],
  params: { type: "object", required: ["task_id"], properties: { task_id: uuid } },
  response: {
    200: {
      type: "object",
      required: ["task_id", "cancelled", "state"],
      properties: {
        task_id: uuid,
        cancelled: { type: "boolean", description: "False when the task was running or finished already." },
        state: taskState,
      },
    },
    ...errors,
  },
} as const;

export const listTaskGroupsSchema = {
  summary: "Your task groups, oldest first, with their tasks counted per state.",
  tags: ["task_groups"],
  response: {
    200: {
      type: "array",
      items: {
        type: "object",
        required: ["task_group_id", "created_at", "task_counts"],
        properties: taskGroupInfoProperties,
      },
    },
    ...errors,
  },
} as const;

export const getTaskGroupSchema = {
  summary: "One of your task groups: counts, unfinished tasks, and where its results are pushed.",
  tags: ["task_groups"],
  params: { type: "object", required: ["task_group_id"], properties: { task_group_id: uuid } },
  response: {
    200: {
      type: "object",
      required: ["task_group_id", "created_at", "task_counts", "pending_tasks", "amqp", "result_queue"],
      properties: {
        ...taskGroupInfoProperties,
        pending_tasks: {
          type: "array",
          items: {
            type: "object",
            required: ["task_id", "endpoint_id", "state"],
            properties: { task_id: uuid, endpoint_id: uuid, state: taskState },
          },
        },
        amqp: amqpInfo,
        result_queue: { type: "string" },
      },
    },
    ...errors,
  },
} as const;

// ---- admin (admin@localhost only) ---------------------------------------------

const usernameParams = {
  type: "object",
  required: ["username"],
  properties: { username: { type: "string", examples: ["alice@example.org"] } },
} as const;

const identityWithToken = {
  type: "object",
  required: ["identity", "token", "token_expires_at"],
  properties: {
    identity: { $ref: "IdentityInfo#" },
    token: { type: "string", description: "A new API token; it is shown only in this answer." },
    token_expires_at: { ...dateTimeOrNull, description: "When the token stops working; null: never." },
  },
} as const;

/** What `--expires` accepts (service-options.ts parseDuration): at most 3650 days. */
const expiresInSeconds = {
  type: "integer",
  minimum: 1,
  maximum: 3650 * 86_400,
  description: "The new token stops working this many seconds from now; without it, it never expires.",
} as const;

export const listIdentitiesSchema = {
  summary: "Every identity, by username, with when each of its API tokens expires (admin only).",
  tags: ["admin"],
  response: {
    200: {
      type: "array",
      items: {
        type: "object",
        required: ["id", "username", "tokens"],
        properties: {
          ...identityInfoProperties,
          tokens: {
            type: "array",
            description: "Its API tokens, oldest first (expired ones too, until revoked).",
            items: {
              type: "object",
              required: ["created_at", "expires_at", "last_used_at"],
              properties: {
                created_at: { type: "string", format: "date-time" },
                expires_at: { ...dateTimeOrNull, description: "Null: it never expires." },
                last_used_at: dateTimeOrNull,
              },
            },
          },
        },
      },
    },
    ...errors,
  },
} as const;

export const createIdentitySchema = {
  summary: "Create an identity `user@domain` and its first API token (admin only).",
  tags: ["admin"],
  body: {
    type: "object",
    required: ["username"],
    properties: {
      username: { type: "string", maxLength: 512, examples: ["alice@example.org"] },
      name: { type: "string", maxLength: 1024 },
      email: { type: "string", maxLength: 1024 },
      organization: { type: "string", maxLength: 1024 },
      identity_provider: { type: "string", maxLength: 1024 },
      token_expires_in_seconds: expiresInSeconds,
    },
  },
  response: { 201: identityWithToken, ...errors },
} as const;

export const issueTokenSchema = {
  summary: "A new API token for an identity; older ones keep working unless revoke_others (admin only).",
  tags: ["admin"],
  params: usernameParams,
  querystring: {
    type: "object",
    properties: { revoke_others: { type: "boolean", default: false }, expires_in_seconds: expiresInSeconds },
  },
  response: {
    200: {
      ...identityWithToken,
      required: [...identityWithToken.required, "revoked"],
      properties: {
        ...identityWithToken.properties,
        revoked: { type: "integer", description: "How many older tokens were revoked." },
      },
    },
    ...errors,
  },
} as const;

export const removeIdentitySchema = {
  summary: "Remove an identity and its tokens; with force, also its endpoints, functions and tasks (admin only).",
  tags: ["admin"],
  params: usernameParams,
  querystring: {
    type: "object",
    properties: { force: { type: "boolean", default: false } },
  },
  response: {
    200: {
      type: "object",
      required: ["identity", "endpoints", "tasks"],
      properties: {
        identity: { $ref: "IdentityInfo#" },
        endpoints: { type: "integer", description: "Endpoints removed with it." },
        tasks: { type: "integer", description: "Tasks removed with it." },
      },
    },
    ...errors,
  },
} as const;
