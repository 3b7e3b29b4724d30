/**
 * Projects, authentication policies and subscriptions (protocol's
 * policy-routes.ts). Owners manage their own projects and policies, the
 * administrator anyone's; anyone may read one policy or subscription by id
 * (an endpoint's configure checks whether the one it names is
 * High-Assurance). Subscriptions are made by the administrator only.
 */
import type { AuthPolicyInfo, ProjectInfo, SubscriptionInfo, UpdateAuthPolicyRequest } from "@conduit/protocol";
import { API_ROUTES } from "@conduit/protocol";
import type { FastifyRequest } from "fastify";
import { POLICY_CACHE_MS } from "../../auth/policy-gate.js";
import { newTotpSecret, otpauthUri, totpStep } from "../../auth/totp.js";
import { checkUsername } from "../../auth/username.js";
import { ADMIN_USERNAME } from "../../credentials.js";
import {
  adminOnly,
  authPolicyInUse,
  authPolicyInvalid,
  authPolicyNotFound,
  authPolicyNotOwned,
  identityNotFound,
  projectInUse,
  projectNotFound,
  projectNotOwned,
  subscriptionNotFound,
} from "../../errors.js";
import type {
  AuthPolicyFields,
  AuthPolicyRecord,
  ProjectRecord,
  Store,
  SubscriptionRecord,
} from "../../store/store.js";
import type { Identity } from "../../store/store-types.js";
import type { ApiContext, RouteRegistrar } from "../api-context.js";
import { addRoute } from "../api-route.js";

const DOMAIN_PATTERN = /^[a-z0-9*]([a-z0-9*.-]*[a-z0-9*])?$/;

/** Upstream's sentence, with the way out. */
const MFA_NEEDS_HA =
  "MFA may only be enabled for High Assurance(HA) policies; set high_assurance: true or leave required_mfa out.";

export function isAdmin(identity: Identity): boolean {
  return identity.username === ADMIN_USERNAME;
}

function domainPatterns(field: string, values: readonly string[] | undefined): string[] {
  return (values ?? []).map((raw) => {
    const value = raw.trim().toLowerCase();
    if (!DOMAIN_PATTERN.test(value)) {
      throw authPolicyInvalid(
        `${field} entry ${JSON.stringify(raw)} is not a domain pattern; give a domain such as example.edu, where * stands for any characters (*.edu).`,
      );
    }
    return value;
  });
}

/** A policy's fields from a body (create or replace), validated, with the warnings to answer. */
export function policyFields(body: UpdateAuthPolicyRequest): { fields: AuthPolicyFields; warnings: string[] } {
  const fields: AuthPolicyFields = {
    displayName: body.display_name,
    description: body.description ?? "",
    domainInclude: domainPatterns("domain_constraints_include", body.domain_constraints_include),
    domainExclude: domainPatterns("domain_constraints_exclude", body.domain_constraints_exclude),
    highAssurance: body.high_assurance ?? false,
    authTimeout: body.authentication_assurance_timeout ?? null,
    requiredMfa: body.required_mfa ?? false,
  };
  if (fields.requiredMfa && !fields.highAssurance) throw authPolicyInvalid(MFA_NEEDS_HA);
  return { fields, warnings: policyWarnings(fields) };
}

/** Sentences about a policy's accepted but doubtful values: a timeout under the lookup cache. */
export function policyWarnings(fields: Pick<AuthPolicyFields, "authTimeout">): string[] {
  const cacheSeconds = POLICY_CACHE_MS / 1000;
  if (fields.authTimeout === null || fields.authTimeout >= cacheSeconds) return [];
  return [
    `authentication_assurance_timeout is ${fields.authTimeout} seconds, under the ${cacheSeconds} seconds for which the service caches policy lookups, so a login may pass for up to ${cacheSeconds} seconds longer; use ${cacheSeconds} or more.`,
  ];
}

function projectInfo(p: ProjectRecord): ProjectInfo {
  return {
    id: p.id,
    display_name: p.displayName,
    description: p.description,
    contact_email: p.contactEmail,
    owner_id: p.ownerId,
    created_at: p.createdAt.toISOString(),
  };
}

function policyInfo(p: AuthPolicyRecord, warnings: string[] = []): AuthPolicyInfo {
  return {
    id: p.id,
    project_id: p.projectId,
    owner_id: p.ownerId,
    display_name: p.displayName,
    description: p.description,
    domain_constraints_include: p.domainInclude,
    domain_constraints_exclude: p.domainExclude,
    high_assurance: p.highAssurance,
    authentication_assurance_timeout: p.authTimeout,
    required_mfa: p.requiredMfa,
    created_at: p.createdAt.toISOString(),
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}

function subscriptionInfo(s: SubscriptionRecord): SubscriptionInfo {
  return {
    id: s.id,
    display_name: s.displayName,
    high_assurance: s.highAssurance,
    created_at: s.createdAt.toISOString(),
  };
}

/** The project, when `identity` may change it (its owner, or the administrator). */
export async function ownedProject(
  store: Pick<Store, "getProject">,
  identity: Identity,
  projectId: string,
): Promise<ProjectRecord> {
  const project = await store.getProject(projectId.toLowerCase());
  if (!project) throw projectNotFound(projectId);
  if (project.ownerId !== identity.id && !isAdmin(identity)) throw projectNotOwned(projectId);
  return project;
}

async function ownedPolicy(ctx: ApiContext, identity: Identity, policyId: string): Promise<AuthPolicyRecord> {
  const policy = await ctx.store.getAuthPolicy(policyId.toLowerCase());
  if (!policy) throw authPolicyNotFound(policyId);
  if (policy.ownerId !== identity.id && !isAdmin(identity)) throw authPolicyNotOwned(policyId);
  return policy;
}

export const policyRoutes: RouteRegistrar = (app, ctx) => {
  addRoute(app, API_ROUTES.createProject, {}, async (request, reply) => {
    const { body, identity } = request;
    const project = await ctx.store.createProject({
      displayName: body.display_name,
      description: body.description,
      contactEmail: body.contact_email ?? null,
      ownerId: identity.id,
    });
    reply.code(201);
    return projectInfo(project);
  });

  addRoute(app, API_ROUTES.listProjects, {}, async (request) => {
    const owner = isAdmin(request.identity) ? null : request.identity.id;
    return { projects: (await ctx.store.listProjects(owner)).map(projectInfo) };
  });

  addRoute(app, API_ROUTES.deleteProject, {}, async (request) => {
    const project = await ownedProject(ctx.store, request.identity, request.params.project_id);
    const outcome = await ctx.store.deleteProject(project.id);
    if ("inUse" in outcome) throw projectInUse(project.id);
    if ("missing" in outcome) throw projectNotFound(project.id);
    return projectInfo(outcome.deleted);
  });

  addRoute(app, API_ROUTES.createAuthPolicy, {}, async (request, reply) => {
    const project = await ownedProject(ctx.store, request.identity, request.body.project_id);
    const { fields, warnings } = policyFields(request.body);
    const policy = await ctx.store.createAuthPolicy(project, fields);
    reply.code(201);
    return policyInfo(policy, warnings);
  });

  addRoute(app, API_ROUTES.listAuthPolicies, {}, async (request) => {
    const owner = isAdmin(request.identity) ? null : request.identity.id;
    return { policies: (await ctx.store.listAuthPolicies(owner)).map((p) => policyInfo(p)) };
  });

  addRoute(app, API_ROUTES.getAuthPolicy, {}, async (request) => {
    const policy = await ctx.store.getAuthPolicy(request.params.policy_id.toLowerCase());
    if (!policy) throw authPolicyNotFound(request.params.policy_id);
    return policyInfo(policy);
  });

  addRoute(app, API_ROUTES.updateAuthPolicy, {}, async (request) => {
    const existing = await ownedPolicy(ctx, request.identity, request.params.policy_id);
    const { fields, warnings } = policyFields(request.body);
    const policy = await ctx.store.updateAuthPolicy(existing.id, fields);
    if (!policy) throw authPolicyNotFound(existing.id);
    ctx.policies.forgetPolicy(policy.id);
    return policyInfo(policy, warnings);
  });

  addRoute(app, API_ROUTES.deleteAuthPolicy, {}, async (request) => {
    const existing = await ownedPolicy(ctx, request.identity, request.params.policy_id);
    const outcome = await ctx.store.deleteAuthPolicy(existing.id);
    if ("inUse" in outcome) throw authPolicyInUse(existing.id);
    if ("missing" in outcome) throw authPolicyNotFound(existing.id);
    ctx.policies.forgetPolicy(existing.id);
    return policyInfo(outcome.deleted);
  });

  const adminOnlyHook = { onRequest: requireAdministrator };
  addRoute(app, API_ROUTES.createSubscription, adminOnlyHook, async (request, reply) => {
    const subscription = await ctx.store.createSubscription(
      request.body.display_name,
      request.body.high_assurance ?? false,
    );
    reply.code(201);
    return subscriptionInfo(subscription);
  });

  addRoute(app, API_ROUTES.listSubscriptions, adminOnlyHook, async () => ({
    subscriptions: (await ctx.store.listSubscriptions()).map(subscriptionInfo),
  }));

  // The administrator's way to turn on a second factor (tests compute codes from the secret).
  addRoute(app, API_ROUTES.enrolTotp, adminOnlyHook, async (request) => {
    const identity = await ctx.store.findIdentityByUsername(checkUsername(request.params.username));
    if (!identity) throw identityNotFound(request.params.username);
    const secret = newTotpSecret();
    // No code of it has been used: any step before now's counts as taken.
    await ctx.authStore.setTotpSecret(identity.id, secret, { confirmedAtStep: totpStep(ctx.clock()) - 2 });
    return { username: identity.username, secret, otpauth_uri: otpauthUri(secret, identity.username, "Conduit") };
  });

  addRoute(app, API_ROUTES.getSubscription, {}, async (request) => {
    const subscription = await ctx.store.getSubscription(request.params.subscription_id.toLowerCase());
    if (!subscription) throw subscriptionNotFound(request.params.subscription_id);
    return subscriptionInfo(subscription);
  });
};

async function requireAdministrator(request: FastifyRequest): Promise<void> {
  if (!isAdmin(request.identity)) {
    const action = request.routeOptions.url?.endsWith("/totp") ? "enrol one-time codes" : "manage subscriptions";
    throw adminOnly(request.identity.username, action);
  }
}
