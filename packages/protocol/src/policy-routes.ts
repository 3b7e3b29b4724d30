/**
 * The REST routes of authentication policies (as data, like api-routes.ts,
 * which lists them in API_ROUTES): projects, which own policies; the policies
 * an endpoint names at registration, which the service checks on every
 * submit, task status and result fetch; and subscriptions, which the
 * service's administrator hands out (optionally High-Assurance).
 *
 * | method | path | who |
 * |---|---|---|
 * | POST, GET | /v1/projects | anyone (GET: the caller's; the admin sees all) |
 * | DELETE | /v1/projects/:project_id | owner or admin; refused while a policy uses it |
 * | POST, GET | /v1/auth_policies | the project's owner or admin (GET: the caller's) |
 * | GET | /v1/auth_policies/:policy_id | anyone |
 * | PUT, DELETE | /v1/auth_policies/:policy_id | owner or admin |
 * | POST, GET | /v1/subscriptions | admin |
 * | GET | /v1/subscriptions/:subscription_id | anyone |
 * | POST | /v1/admin/identities/:username/totp | admin: enrols a TOTP second factor |
 */
import { Type } from "@sinclair/typebox";
import type { ApiRoute } from "./api-routes.js";
import { ApiErrorSchema, DateTime, NullableString, Uuid } from "./api-shapes.js";

const errors = { "4xx": Type.Ref(ApiErrorSchema), "5xx": Type.Ref(ApiErrorSchema) } as const;

/** `example.edu`, `*.edu`: a domain, where `*` stands for any run of characters. */
const DomainPattern = Type.String({ minLength: 1, maxLength: 253, examples: ["*.edu"] });

export const ProjectSchema = Type.Object({
  id: Uuid,
  display_name: Type.String(),
  description: Type.String(),
  contact_email: NullableString(),
  owner_id: Uuid,
  created_at: DateTime,
});

/** What a policy says; every field but `display_name` has a default. */
const policyFields = {
  display_name: Type.String({ minLength: 1, maxLength: 256 }),
  description: Type.Optional(Type.String({ maxLength: 4096 })),
  /** The submitter's domain must match one of these (none: any domain). */
  domain_constraints_include: Type.Optional(Type.Array(DomainPattern, { maxItems: 100 })),
  /** …and none of these. */
  domain_constraints_exclude: Type.Optional(Type.Array(DomainPattern, { maxItems: 100 })),
  high_assurance: Type.Optional(Type.Boolean()),
  /** Seconds: the submitter's last login must be younger than this (absent or null: any age). */
  authentication_assurance_timeout: Type.Optional(
    Type.Unsafe<number | null>({ type: ["integer", "null"], minimum: 0, maximum: 31_536_000 }),
  ),
  /** The last login must have used a second factor (High-Assurance policies only). */
  required_mfa: Type.Optional(Type.Boolean()),
};

export const AuthPolicySchema = Type.Object({
  id: Uuid,
  project_id: Uuid,
  owner_id: Uuid,
  display_name: Type.String(),
  description: Type.String(),
  domain_constraints_include: Type.Array(Type.String()),
  domain_constraints_exclude: Type.Array(Type.String()),
  high_assurance: Type.Boolean(),
  authentication_assurance_timeout: Type.Unsafe<number | null>({ type: ["integer", "null"] }),
  required_mfa: Type.Boolean(),
  created_at: DateTime,
  /** Sentences about accepted but doubtful values (a timeout under the 60 s lookup cache). */
  warnings: Type.Optional(Type.Array(Type.String())),
});

export const SubscriptionSchema = Type.Object({
  id: Uuid,
  display_name: Type.String(),
  high_assurance: Type.Boolean(),
  created_at: DateTime,
});

const projectParams = Type.Object({ project_id: Uuid });
const policyParams = Type.Object({ policy_id: Uuid });

export const POLICY_ROUTES = {
  createProject: {
    method: "POST",
    url: "/v1/projects",
    summary: "Create a project, a named group of authentication policies owned by the caller.",
    tags: ["policies"],
    body: Type.Object({
      display_name: Type.String({ minLength: 1, maxLength: 256 }),
      description: Type.Optional(Type.String({ maxLength: 4096 })),
      contact_email: Type.Optional(NullableString({ maxLength: 320 })),
    }),
    response: { 201: ProjectSchema, ...errors },
  },
  listProjects: {
    method: "GET",
    url: "/v1/projects",
    summary: "The caller's projects (the administrator's: all).",
    tags: ["policies"],
    response: { 200: Type.Object({ projects: Type.Array(ProjectSchema) }), ...errors },
  },
  deleteProject: {
    method: "DELETE",
    url: "/v1/projects/:project_id",
    summary: "Delete a project (its owner or the administrator); refused while policies belong to it.",
    tags: ["policies"],
    params: projectParams,
    response: { 200: ProjectSchema, ...errors },
  },
  createAuthPolicy: {
    method: "POST",
    url: "/v1/auth_policies",
    summary: "Create an authentication policy in one of the caller's projects.",
    tags: ["policies"],
    body: Type.Object({ project_id: Uuid, ...policyFields }),
    response: { 201: AuthPolicySchema, ...errors },
  },
  listAuthPolicies: {
    method: "GET",
    url: "/v1/auth_policies",
    summary: "The caller's authentication policies (the administrator's: all).",
    tags: ["policies"],
    response: { 200: Type.Object({ policies: Type.Array(AuthPolicySchema) }), ...errors },
  },
  getAuthPolicy: {
    method: "GET",
    url: "/v1/auth_policies/:policy_id",
    summary: "An authentication policy (any identity may read one by id).",
    tags: ["policies"],
    params: policyParams,
    response: { 200: AuthPolicySchema, ...errors },
  },
  updateAuthPolicy: {
    method: "PUT",
    url: "/v1/auth_policies/:policy_id",
    summary: "Replace an authentication policy's fields (its owner or the administrator); absent fields get defaults.",
    tags: ["policies"],
    params: policyParams,
    body: Type.Object(policyFields),
    response: { 200: AuthPolicySchema, ...errors },
  },
  deleteAuthPolicy: {
    method: "DELETE",
    url: "/v1/auth_policies/:policy_id",
    summary: "Delete an authentication policy (its owner or the administrator); refused while endpoints name it.",
    tags: ["policies"],
    params: policyParams,
    response: { 200: AuthPolicySchema, ...errors },
  },
  createSubscription: {
    method: "POST",
    url: "/v1/subscriptions",
    summary: "Create a subscription (administrator only), optionally High-Assurance.",
    tags: ["policies"],
    body: Type.Object({
      display_name: Type.String({ minLength: 1, maxLength: 256 }),
      high_assurance: Type.Optional(Type.Boolean()),
    }),
    response: { 201: SubscriptionSchema, ...errors },
  },
  listSubscriptions: {
    method: "GET",
    url: "/v1/subscriptions",
    summary: "Every subscription (administrator only).",
    tags: ["policies"],
    response: { 200: Type.Object({ subscriptions: Type.Array(SubscriptionSchema) }), ...errors },
  },
  getSubscription: {
    method: "GET",
    url: "/v1/subscriptions/:subscription_id",
    summary: "A subscription (any identity may read one by id).",
    tags: ["policies"],
    params: Type.Object({ subscription_id: Uuid }),
    response: { 200: SubscriptionSchema, ...errors },
  },
  enrolTotp: {
    method: "POST",
    url: "/v1/admin/identities/:username/totp",
    summary:
      "Give a local account a new TOTP secret, on at once (administrator only); the login then asks for its codes.",
    tags: ["admin"],
    params: Type.Object({ username: Type.String({ examples: ["alice@example.org"] }) }),
    response: {
      200: Type.Object({ username: Type.String(), secret: Type.String(), otpauth_uri: Type.String() }),
      ...errors,
    },
  },
} as const satisfies Record<string, ApiRoute>;
