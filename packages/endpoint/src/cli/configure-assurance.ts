/**
 * `configure`'s policy and High-Assurance options: upstream's rules checked on
 * the flags alone (no network), then, when a policy is to be created or an
 * endpoint is to be High-Assurance, the service's projects, policies and
 * subscriptions routes with the user's login. The result is the keys
 * `configure` writes into config.yaml.
 */
import {
  API_PREFIX,
  ConduitApiError,
  ConduitError,
  type Credential,
  type LoginIo,
  obtainCredential,
  requestWithCredential,
} from "@conduit/protocol";
import { HA_NEEDS_POLICY_AND_SUBSCRIPTION, isEmail, isUuid } from "../config/config-fields.js";
import { serviceUnreachable } from "../manager/registration.js";

/** The options as commander hands them over (strings as typed). */
export interface AssuranceFlags {
  authPolicy?: string;
  authPolicyProjectId?: string;
  authPolicyDisplayName?: string;
  authPolicyDescription?: string;
  allowedDomains?: string;
  excludedDomains?: string;
  authTimeout?: string;
  authPolicyMfaRequired?: boolean;
  highAssurance?: boolean;
  subscriptionId?: string;
  contactEmail?: string;
}

/** The body of `POST /auth_policies`, without the project (chosen later, possibly on the terminal). */
export interface NewPolicy {
  display_name: string;
  description: string;
  domain_constraints_include?: string[];
  domain_constraints_exclude?: string[];
  high_assurance: boolean;
  authentication_assurance_timeout?: number;
  required_mfa: boolean;
}

/** What the flags ask for, checked. */
export interface AssurancePlan {
  existingPolicy?: string;
  newPolicy?: { projectId?: string; body: NewPolicy };
  highAssurance: boolean;
  subscriptionId?: string;
  contactEmail?: string;
}

/** The config.yaml keys `configure` writes. */
export interface AssuranceKeys {
  authenticationPolicy?: string;
  highAssurance: boolean;
  subscriptionId?: string;
  contactEmail?: string;
}

export const DEFAULT_POLICY_DISPLAY_NAME = "Conduit Authentication Policy";
export const DEFAULT_POLICY_DESCRIPTION = "This policy was created automatically by Conduit.";

/** The options that create a policy, as they are typed (MFA alone does not: upstream refuses it without creation). */
const CREATION_OPTIONS = [
  ["authPolicyProjectId", "--auth-policy-project-id"],
  ["authPolicyDisplayName", "--auth-policy-display-name"],
  ["authPolicyDescription", "--auth-policy-description"],
  ["allowedDomains", "--allowed-domains"],
  ["excludedDomains", "--excluded-domains"],
  ["authTimeout", "--auth-timeout"],
] as const satisfies ReadonlyArray<readonly [keyof AssuranceFlags, string]>;

function refuse(sentence: string): never {
  throw new ConduitError("BAD_OPTION", sentence);
}

function checkUuid(value: string | undefined, option: string, what: string): void {
  if (value !== undefined && !isUuid(value)) {
    refuse(
      `${option} must be ${what} id (a UUID such as 498c6a5c-0a3d-4ab6-8a9b-6bcfb9f8a6bd), not ${JSON.stringify(value)}; pass the id.`,
    );
  }
}

function domainList(value: string | undefined, option: string): string[] | undefined {
  if (value === undefined) return undefined;
  const domains = value.split(",").map((d) => d.trim());
  if (domains.some((d) => d === "" || /\s/.test(d))) {
    refuse(
      `${option} must be a comma-separated list of domains (wildcards allowed), not ${JSON.stringify(value)}; pass e.g. ${option} "example.edu,*.example.edu".`,
    );
  }
  return domains;
}

/** Upstream's rules on the flags, in upstream's order, plus the format of each value. */
export function planAssurance(flags: AssuranceFlags): AssurancePlan {
  const creating = CREATION_OPTIONS.filter(([key]) => flags[key] !== undefined).map(([, option]) => option);
  if (flags.authPolicy !== undefined && creating.length > 0) {
    refuse(
      `Cannot specify an existing auth policy and create a new one at the same time; drop --auth-policy, or drop ${creating.join(", ")}.`,
    );
  }
  const highAssurance = flags.highAssurance === true;
  if (
    highAssurance &&
    !(flags.subscriptionId !== undefined && (flags.authPolicy !== undefined || creating.length > 0))
  ) {
    refuse(
      `${HA_NEEDS_POLICY_AND_SUBSCRIPTION}; pass --subscription-id with an HA subscription, and --auth-policy with an HA policy (or --auth-policy-project-id to create one).`,
    );
  }
  const mfa = flags.authPolicyMfaRequired === true;
  if (mfa && creating.length === 0) {
    refuse(
      "MFA may only be specified when creating a policy; add --auth-policy-project-id (or another policy creation option), or drop --auth-policy-mfa-required.",
    );
  }
  // As the seed says, a timeout makes the new policy High-Assurance too.
  const policyHighAssurance = highAssurance || flags.authTimeout !== undefined;
  if (mfa && !policyHighAssurance) {
    refuse(
      "MFA may only be enabled for High Assurance(HA) policies; add --high-assurance (or --auth-timeout), or drop --auth-policy-mfa-required.",
    );
  }
  checkUuid(flags.authPolicy, "--auth-policy", "an authentication policy");
  checkUuid(flags.authPolicyProjectId, "--auth-policy-project-id", "a project");
  checkUuid(flags.subscriptionId, "--subscription-id", "a subscription");
  if (flags.contactEmail !== undefined && !isEmail(flags.contactEmail)) {
    refuse(
      `--contact-email must be an email address, not ${JSON.stringify(flags.contactEmail)}; pass e.g. --contact-email admin@example.org.`,
    );
  }
  let timeout: number | undefined;
  if (flags.authTimeout !== undefined) {
    timeout = Number(flags.authTimeout);
    if (!/^\d+$/.test(flags.authTimeout) || !Number.isSafeInteger(timeout)) {
      refuse(
        `--auth-timeout must be a whole number of seconds (0 or more), not ${JSON.stringify(flags.authTimeout)}; pass e.g. --auth-timeout 1800.`,
      );
    }
  }
  const plan: AssurancePlan = {
    highAssurance,
    ...(flags.authPolicy === undefined ? {} : { existingPolicy: flags.authPolicy.toLowerCase() }),
    ...(flags.subscriptionId === undefined ? {} : { subscriptionId: flags.subscriptionId.toLowerCase() }),
    ...(flags.contactEmail === undefined ? {} : { contactEmail: flags.contactEmail }),
  };
  if (creating.length > 0) {
    const include = domainList(flags.allowedDomains, "--allowed-domains");
    const exclude = domainList(flags.excludedDomains, "--excluded-domains");
    plan.newPolicy = {
      ...(flags.authPolicyProjectId === undefined ? {} : { projectId: flags.authPolicyProjectId.toLowerCase() }),
      body: {
        display_name: flags.authPolicyDisplayName ?? DEFAULT_POLICY_DISPLAY_NAME,
        description: flags.authPolicyDescription ?? DEFAULT_POLICY_DESCRIPTION,
        ...(include === undefined ? {} : { domain_constraints_include: include }),
        ...(exclude === undefined ? {} : { domain_constraints_exclude: exclude }),
        high_assurance: policyHighAssurance,
        ...(timeout === undefined ? {} : { authentication_assurance_timeout: timeout }),
        required_mfa: mfa,
      },
    };
  }
  return plan;
}

/** Whether carrying out `plan` needs the service (and so a login). */
export function needsService(plan: AssurancePlan): boolean {
  return plan.newPolicy !== undefined || plan.highAssurance;
}

export interface AssuranceContext {
  serviceUrl: string;
  /** A person is at the terminal: may log in, and choose or create a project. */
  interactive: boolean;
  io: LoginIo;
  /** A warning from the service (e.g. a timeout under the policy cache's 60 s). */
  warn(line: string): void;
}

interface Project {
  id: string;
  display_name: string;
}

interface Policy {
  id: string;
  high_assurance?: boolean;
  warnings?: string[];
}

interface Subscription {
  id: string;
  high_assurance?: boolean;
}

/** Carries out `plan` against the service: creates the policy, checks that an HA endpoint's policy and subscription are HA. */
export async function resolveAssurance(plan: AssurancePlan, context: AssuranceContext): Promise<AssuranceKeys> {
  const keys: AssuranceKeys = {
    highAssurance: plan.highAssurance,
    ...(plan.existingPolicy === undefined ? {} : { authenticationPolicy: plan.existingPolicy }),
    ...(plan.subscriptionId === undefined ? {} : { subscriptionId: plan.subscriptionId }),
    ...(plan.contactEmail === undefined ? {} : { contactEmail: plan.contactEmail }),
  };
  if (!needsService(plan)) return keys;
  const api = new ServiceApi(
    context.serviceUrl,
    await obtainCredential({
      serviceUrl: context.serviceUrl,
      loginCommand: "conduit-endpoint login",
      interactive: context.interactive,
      io: context.io,
    }),
  );
  if (plan.highAssurance && plan.subscriptionId !== undefined) {
    const subscription = await api.call<Subscription>("GET", `/subscriptions/${plan.subscriptionId}`);
    if (subscription.high_assurance !== true) {
      refuse(
        `${HA_NEEDS_POLICY_AND_SUBSCRIPTION}, and subscription ${plan.subscriptionId} is not High-Assurance; pass --subscription-id with an HA subscription (the service's administrator creates them).`,
      );
    }
  }
  if (plan.highAssurance && plan.existingPolicy !== undefined) {
    const policy = await api.call<Policy>("GET", `/auth_policies/${plan.existingPolicy}`);
    if (policy.high_assurance !== true) {
      refuse(
        `${HA_NEEDS_POLICY_AND_SUBSCRIPTION}, and authentication policy ${plan.existingPolicy} is not High-Assurance; pass --auth-policy with an HA policy, or create one with --auth-policy-project-id.`,
      );
    }
  }
  if (plan.newPolicy !== undefined) {
    const projectId = plan.newPolicy.projectId ?? (await chooseProject(api, context, plan.contactEmail));
    const policy = await api.call<Policy>("POST", "/auth_policies", { project_id: projectId, ...plan.newPolicy.body });
    if (typeof policy?.id !== "string" || !isUuid(policy.id)) {
      throw new ConduitError(
        "BAD_REPLY",
        `The Conduit service at ${context.serviceUrl} answered the policy creation without a policy id; check that CONDUIT_SERVICE_URL points at a Conduit service of the same version.`,
      );
    }
    for (const warning of policy.warnings ?? []) context.warn(warning);
    keys.authenticationPolicy = policy.id.toLowerCase();
  }
  return keys;
}

/**
 * Without a terminal: the error naming the option. On one, as upstream: pick
 * one of the user's projects by number, or leave it blank to create one
 * (name, contact email, confirmation).
 */
async function chooseProject(api: ServiceApi, context: AssuranceContext, contactEmail?: string): Promise<string> {
  if (!context.interactive) {
    refuse(
      "Creating an authentication policy needs a project, and there is no terminal to choose or create one on; pass --auth-policy-project-id with one of your projects' ids.",
    );
  }
  const { io } = context;
  const { projects } = await api.call<{ projects: Project[] }>("GET", "/projects");
  if (projects.length > 0) {
    io.print("Please select a project to contain new auth policy (leave blank to create a new one):");
    projects.forEach((p, i) => {
      io.print(`  ${i + 1}. id: ${p.id}, name: ${p.display_name}`);
    });
    for (;;) {
      const answer = (await io.prompt(`Project number (1-${projects.length}, or blank): `)).trim();
      if (answer === "") break;
      const index = /^\d+$/.test(answer) ? Number(answer) - 1 : -1;
      if (index >= 0 && index < projects.length) return projects[index].id;
      io.print(`Enter a number from 1 to ${projects.length}, or nothing to create a new project.`);
    }
  }
  io.print("Creating a new auth project.");
  for (;;) {
    const displayName = (await io.prompt("Enter a name for this project: ")).trim();
    const hint = contactEmail === undefined ? "" : ` [${contactEmail}]`;
    const email = (await io.prompt(`Enter the contact email for this project${hint}: `)).trim() || contactEmail;
    const confirm = (
      await io.prompt("Create this auth project? (Y/y to confirm, Q/q to quit, otherwise start over): ")
    ).toLowerCase();
    if (confirm === "q") {
      refuse(
        "Canceled: no project was created and nothing was configured; run configure again, or pass --auth-policy-project-id.",
      );
    }
    if (confirm !== "y") continue;
    if (displayName === "") {
      io.print("A project needs a name; start over.");
      continue;
    }
    if (email !== undefined && email !== "" && !isEmail(email)) {
      io.print(`${JSON.stringify(email)} is not an email address; start over.`);
      continue;
    }
    const project = await api.call<Project>("POST", "/projects", {
      display_name: displayName,
      ...(email ? { contact_email: email } : {}),
    });
    io.print(`Created project ${project.display_name} (${project.id})`);
    return project.id;
  }
}

/** The routes of the policies issue, with one sentence for every failure. */
class ServiceApi {
  constructor(
    private readonly serviceUrl: string,
    private readonly credential: Credential,
  ) {}

  async call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    try {
      return await requestWithCredential<T>(this.credential, {
        method,
        url: `${this.serviceUrl}${API_PREFIX}${path}`,
        body,
        signal: AbortSignal.timeout(30_000),
        urlSetting: "CONDUIT_SERVICE_URL",
        unreachable: (err) => serviceUnreachable(this.serviceUrl, err),
      });
    } catch (err) {
      if (!(err instanceof ConduitApiError)) throw err;
      throw new ConduitError(
        "SERVICE_REFUSED",
        `The Conduit service at ${this.serviceUrl} refused ${method} ${API_PREFIX}${path} (HTTP ${err.statusCode}): ${err.message}`,
        { cause: err },
      );
    }
  }
}
