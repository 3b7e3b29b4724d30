/**
 * The JSON Schemas of the REST API's bodies (TypeBox), from which api.ts
 * derives its TypeScript types and api-routes.ts builds its routes. The
 * service validates and serializes with them and serves them as
 * /openapi.json, so a shape written here is written nowhere else.
 *
 * The shapes with an `$id` are shared: a route refers to them with
 * `Type.Ref`, and they appear once under the OpenAPI document's
 * `components.schemas`. Nullable fields are `type: [T, "null"]` (not TypeBox's
 * `anyOf`), which Fastify's serializer handles without a validator at reply time.
 */
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import type { WireError } from "./errors.js";
import type { UserRuntime } from "./messages.js";
import { ENDPOINT_STATUSES, TASK_STATES, type TaskState } from "./states.js";

/** A UUID string; the service compares them lower-cased. */
export const Uuid = Type.String({ format: "uuid" });
/** An ISO 8601 time. */
export const DateTime = Type.String({ format: "date-time" });

/** A string, or null. */
export function NullableString(options: { maxLength?: number; format?: string; description?: string } = {}) {
  return Type.Unsafe<string | null>({ type: ["string", "null"], ...options });
}

/** One of `values`, as `{type: "string", enum}` (TypeBox's own unions are `anyOf` lists). */
export function StringEnum<const T extends string>(values: readonly T[], options: { description?: string } = {}) {
  return Type.Unsafe<T>({ type: "string", enum: [...values], ...options });
}

/** An object of any keys, each value a `values` (TypeBox's Record would be `patternProperties`, which OpenAPI tools read less well). */
export function StringMap<T extends TSchema>(values: T) {
  return Type.Unsafe<Record<string, Static<T>>>({ type: "object", additionalProperties: values });
}

/** Any JSON object (a user's configuration, metadata): the service stores it as it is. */
export const JsonObject = Type.Unsafe<Record<string, unknown>>({ type: "object", additionalProperties: true });
export const JsonObjectOrNull = Type.Unsafe<Record<string, unknown> | null>({
  type: ["object", "null"],
  additionalProperties: true,
});

export const TaskStateSchema = StringEnum(TASK_STATES);
export const EndpointStatusSchema = StringEnum(ENDPOINT_STATUSES);

export const PayloadSchema = Type.Object(
  {
    strategy: Type.String({ minLength: 1, maxLength: 256, examples: ["conduit.JSONData"] }),
    data: Type.String(),
  },
  { $id: "Payload", description: "A serialized function, argument list or result; `strategy` names the serializer." },
);

/**
 * errors.ts's WireError; written as plain JSON Schema because it nests itself
 * (`cause`), and typed as that interface.
 */
export const WireErrorSchema = Type.Unsafe<WireError>({
  $id: "WireError",
  description: "An error as it crosses a process boundary.",
  type: "object",
  required: ["code", "name", "message"],
  properties: {
    code: { type: "string" },
    name: { type: "string" },
    message: { type: "string" },
    stack: { type: "string" },
    cause: { $ref: "WireError" },
  },
});

export const ApiErrorSchema = Type.Object(
  {
    statusCode: Type.Integer(),
    /** Stable code, e.g. `UNAUTHORIZED`, `FUNCTION_NOT_FOUND`, `TASK_PAYLOAD_TOO_LARGE`. */
    code: Type.String({ examples: ["FUNCTION_NOT_FOUND"] }),
    error: Type.String({ examples: ["Not Found"] }),
    /** One sentence naming the problem and the fix. */
    message: Type.String(),
    /**
     * With `AUTH_POLICY_UNMET` (403): what a new login must satisfy; the SDK
     * logs in again with these and retries the call once.
     */
    authorization_parameters: Type.Optional(
      Type.Object({
        session_message: Type.String(),
        session_required_policies: Type.Array(Type.String()),
        session_required_single_domain: Type.Array(Type.String()),
        session_required_mfa: Type.Boolean(),
      }),
    ),
  },
  {
    $id: "ApiError",
    description: "Every error answer: a stable code and one sentence naming the problem and the fix.",
  },
);

export const IdentityInfoSchema = Type.Object(
  {
    /** Stable UUID of the identity. */
    id: Uuid,
    /** `username@domain`. */
    username: Type.String({ examples: ["alice@example.org"] }),
    name: Type.Optional(Type.String()),
    email: Type.Optional(Type.String()),
    organization: Type.Optional(Type.String()),
    identity_provider: Type.Optional(Type.String()),
  },
  { $id: "IdentityInfo" },
);

export const EndpointInfoSchema = Type.Object(
  {
    endpoint_id: Uuid,
    name: Type.String(),
    display_name: NullableString(),
    owner: Type.String({ description: "The owner's username." }),
    multi_user: Type.Boolean(),
    high_assurance: Type.Boolean({ description: "Fixed at the endpoint's first registration." }),
    status: EndpointStatusSchema,
    last_heartbeat: NullableString({ format: "date-time" }),
  },
  { $id: "EndpointInfo" },
);

export const TaskStatusSchema = Type.Object(
  {
    task_id: Uuid,
    state: TaskStateSchema,
    endpoint_id: Uuid,
    function_id: Uuid,
    task_group_id: Uuid,
    result: Type.Optional(Type.Ref(PayloadSchema)),
    error: Type.Optional(Type.Ref(WireErrorSchema)),
    created_at: DateTime,
    completed_at: NullableString({ format: "date-time" }),
  },
  { $id: "TaskStatus" },
);

/** The shapes routes refer to by `$id`; the service adds each once (Fastify's `addSchema`). */
export const API_SHARED_SCHEMAS: readonly TSchema[] = [
  PayloadSchema,
  WireErrorSchema,
  ApiErrorSchema,
  IdentityInfoSchema,
  EndpointInfoSchema,
  TaskStatusSchema,
];

/** How a MEP or an SDK reaches the broker. */
export const AmqpInfoSchema = Type.Object({
  /** AMQP URL with credentials, e.g. `amqp://guest:guest@127.0.0.1:5672`. */
  url: Type.String(),
  /**
   * The RabbitMQ user the service publishes as: commands, tasks, cancels and
   * forwarded results are accepted only with this `user-id` (which RabbitMQ
   * checks against the publishing connection's user).
   */
  serviceUser: Type.String(),
});

/** What a MEP's registration adds to AmqpInfo. */
export const EndpointAmqpInfoSchema = Type.Object({
  ...AmqpInfoSchema.properties,
  /**
   * Port of the broker's management API as the service reaches it (absent with
   * `--shared-broker-account`): a multi-user MEP checks that guest/guest does
   * not work there.
   */
  managementPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
});

/**
 * messages.ts's UserRuntime. Fields beyond these are accepted too (no
 * `additionalProperties`), so an older service takes a newer SDK's runtime.
 */
export const UserRuntimeOrNull = Type.Unsafe<UserRuntime | null>({
  type: ["object", "null"],
  properties: {
    node_version: { type: "string" },
    sdk_version: { type: "string" },
    platform: { type: "string" },
    arch: { type: "string" },
    hostname: { type: "string" },
  },
});

export const DeleteResponseSchema = Type.Object({
  /** The id of what was deleted. */
  id: Uuid,
  deleted: Type.Unsafe<true>({ type: "boolean", enum: [true] }),
});

export const TaskCountsSchema = Type.Unsafe<Partial<Record<TaskState, number>>>({
  type: "object",
  description: "Tasks of the group per state (only states with at least one task).",
  properties: Object.fromEntries(TASK_STATES.map((state) => [state, { type: "integer" }])),
  additionalProperties: false,
});

export const TaskGroupInfoSchema = Type.Object({
  task_group_id: Uuid,
  created_at: DateTime,
  task_counts: TaskCountsSchema,
});

// ---- admin (admin@localhost only) ---------------------------------------------

/** What `--expires` accepts (service-options.ts parseDuration): at most 3650 days. */
export function ExpiresInSeconds() {
  return Type.Integer({
    minimum: 1,
    maximum: 3650 * 86_400,
    description: "The new token stops working this many seconds from now; without it, it never expires.",
  });
}

/** One API token of an identity, as the admin's list shows it (its value is never shown again). */
export const TokenInfoSchema = Type.Object({
  created_at: DateTime,
  expires_at: NullableString({ format: "date-time", description: "Null: it never expires." }),
  last_used_at: NullableString({ format: "date-time" }),
});

/** An identity with its tokens, oldest first. */
export const AdminIdentityInfoSchema = Type.Object({
  ...IdentityInfoSchema.properties,
  tokens: Type.Array(TokenInfoSchema, {
    description: "Its API tokens, oldest first (expired ones too, until revoked).",
  }),
});

export const CreateIdentityResponseSchema = Type.Object({
  identity: Type.Ref(IdentityInfoSchema),
  token: Type.String({ description: "A new API token; it is shown only in this answer." }),
  token_expires_at: NullableString({
    format: "date-time",
    description: "When the token stops working; null: never.",
  }),
});
