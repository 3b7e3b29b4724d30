/**
 * The console's pages and forms for projects, authentication policies and
 * subscriptions. They use the store methods, validation and ownership rules
 * of the REST routes (api/routes/policy-routes.ts): each identity sees and
 * changes its own projects and policies, the administrator everyone's, and
 * only the administrator sees or makes subscriptions.
 */
import { isAdmin, ownedProject, policyFields, policyWarnings } from "../api/routes/policy-routes.js";
import { adminOnly, ServiceError } from "../errors.js";
import type { Store } from "../store/store.js";
import type { Identity } from "../store/store-types.js";
import { policiesPage, policyPage, projectsPage, subscriptionsPage } from "./console-policy-views.js";
import type { SignedIn } from "./console-routes.js";
import { CONSOLE_PATH } from "./console-views.js";
import type { Html } from "./html.js";

/** A submitted form's fields. */
export type FormBody = Record<string, string | undefined>;

export interface ConsolePolicyDeps {
  store: Store;
  /** Registers a page for the signed-in (console-routes.ts). */
  page(url: string, render: (who: SignedIn, params: Record<string, string>) => Promise<[string, Html]>): void;
  /** Registers a form's target: signed in and its CSRF token checked, `act` answers where to go next. */
  action(url: string, act: (who: SignedIn, body: FormBody) => Promise<string>): void;
  /** A 404 naming what is not there or not the caller's. */
  notFound(what: string, id: string): ServiceError;
}

const MAX_TIMEOUT_S = 31_536_000;

function text(body: FormBody, field: string, label: string, max: number, required = false): string {
  const value = (body[field] ?? "").trim();
  if (required && !value) throw new ServiceError("INVALID_REQUEST", `Enter a ${label}; it may not be empty.`);
  if (value.length > max) {
    throw new ServiceError("INVALID_REQUEST", `The ${label} has ${value.length} characters; shorten it to ${max}.`);
  }
  return value;
}

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
}

function timeout(value: string | undefined): number | null {
  const raw = (value ?? "").trim();
  if (!raw) return null;
  const seconds = Number(raw);
  if (!/^\d+$/.test(raw) || seconds > MAX_TIMEOUT_S) {
    throw new ServiceError(
      "INVALID_REQUEST",
      `The login timeout ${raw} is not a whole number of seconds from 0 to ${MAX_TIMEOUT_S}; enter one, or leave it empty for none.`,
    );
  }
  return seconds;
}

function requireAdmin(identity: Identity): void {
  if (!isAdmin(identity)) throw adminOnly(identity.username, "manage subscriptions");
}

export function consolePolicyRoutes(deps: ConsolePolicyDeps): void {
  const { store, page, action } = deps;
  /** Whose rows a listing shows: the caller's, or everyone's for the administrator (as the REST listings). */
  const owner = (identity: Identity) => (isAdmin(identity) ? null : identity.id);

  page(`${CONSOLE_PATH}/projects`, async ({ identity, viewer }) => [
    "Projects",
    projectsPage(await store.listProjects(owner(identity)), viewer),
  ]);

  action(`${CONSOLE_PATH}/projects`, async ({ identity }, body) => {
    const contactEmail = text(body, "contact_email", "contact email", 320);
    await store.createProject({
      displayName: text(body, "display_name", "display name", 256, true),
      description: text(body, "description", "description", 4096),
      contactEmail: contactEmail || null,
      ownerId: identity.id,
    });
    return `${CONSOLE_PATH}/projects`;
  });

  page(`${CONSOLE_PATH}/policies`, async ({ identity, viewer }) => {
    const [policies, projects] = await Promise.all([
      store.listAuthPolicies(owner(identity)),
      store.listProjects(owner(identity)),
    ]);
    return ["Authentication policies", policiesPage(policies, projects, viewer)];
  });

  action(`${CONSOLE_PATH}/policies`, async ({ identity }, body) => {
    const project = await ownedProject(store, identity, text(body, "project_id", "project", 64, true));
    const { fields } = policyFields({
      display_name: text(body, "display_name", "display name", 256, true),
      description: text(body, "description", "description", 4096),
      domain_constraints_include: list(body.domain_constraints_include),
      domain_constraints_exclude: list(body.domain_constraints_exclude),
      high_assurance: body.high_assurance === "on",
      authentication_assurance_timeout: timeout(body.authentication_assurance_timeout),
      required_mfa: body.required_mfa === "on",
    });
    const policy = await store.createAuthPolicy(project, fields);
    return `${CONSOLE_PATH}/policies/${policy.id}`;
  });

  page(`${CONSOLE_PATH}/policies/:id`, async ({ identity }, params) => {
    const id = params.id.toLowerCase();
    const policy = /^[0-9a-f-]{36}$/.test(id) ? await store.getAuthPolicy(id) : undefined;
    // Only its owner and the administrator see it here, as they alone may change it.
    if (!policy || (policy.ownerId !== identity.id && !isAdmin(identity))) {
      throw deps.notFound("Authentication policy", params.id);
    }
    const project = await store.getProject(policy.projectId);
    return [policy.displayName, policyPage(policy, project, policyWarnings(policy))];
  });

  page(`${CONSOLE_PATH}/subscriptions`, async ({ identity, viewer }) => {
    requireAdmin(identity);
    return ["Subscriptions", subscriptionsPage(await store.listSubscriptions(), viewer)];
  });

  action(`${CONSOLE_PATH}/subscriptions`, async ({ identity }, body) => {
    requireAdmin(identity);
    await store.createSubscription(text(body, "display_name", "display name", 256, true), body.high_assurance === "on");
    return `${CONSOLE_PATH}/subscriptions`;
  });
}
