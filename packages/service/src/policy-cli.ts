/**
 * `conduit-service project|policy|subscription …` and `user totp`: the
 * authentication policy routes from the command line, with the caller's
 * credentials (anyone manages their own projects and policies; subscriptions
 * and one-time-code enrolment are the administrator's). Each command that
 * creates something prints a sentence and then the new id alone on a line,
 * for scripts.
 */
import type { AuthPolicyInfo } from "@conduit/protocol";
import { type Command, InvalidArgumentError } from "commander";
import type { AdminClient } from "./admin-client.js";

/** What cli.ts shares with these commands. */
export interface CliParts {
  /** Runs one command against the service: its output on stdout, its error as one sentence. */
  admin(command: (client: AdminClient) => Promise<string>): () => Promise<void>;
  table(header: string[], rows: string[][]): string;
  wholeNumber(value: string): number;
}

function domainList(value: string): string[] {
  const domains = value
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d !== "");
  if (domains.length === 0) throw new InvalidArgumentError("give one or more domains separated by commas, e.g. *.edu.");
  return domains;
}

function policyLine(p: AuthPolicyInfo): string[] {
  const constraints = [
    ...p.domain_constraints_include.map((d) => `+${d}`),
    ...p.domain_constraints_exclude.map((d) => `-${d}`),
    ...(p.authentication_assurance_timeout === null ? [] : [`timeout ${p.authentication_assurance_timeout}s`]),
    ...(p.required_mfa ? ["mfa"] : []),
  ];
  return [p.display_name, p.id, p.high_assurance ? "yes" : "no", constraints.join(" ") || "-"];
}

interface PolicyFlags {
  project: string;
  name: string;
  description?: string;
  allowedDomains?: string[];
  excludedDomains?: string[];
  authTimeout?: number;
  highAssurance?: boolean;
  mfaRequired?: boolean;
}

export function addPolicyCommands(program: Command, { admin, table, wholeNumber }: CliParts): void {
  const project = program
    .command("project")
    .description("Projects: named groups of authentication policies (yours; the administrator sees all).");
  project
    .command("create")
    .description("Create a project and print its id.")
    .requiredOption("--name <name>", "its display name")
    .option("--description <text>", "what it is for")
    .option("--contact-email <email>", "whom to ask about it")
    .action((flags: { name: string; description?: string; contactEmail?: string }) =>
      admin(async (client) => {
        const p = await client.createProject({
          display_name: flags.name,
          description: flags.description,
          contact_email: flags.contactEmail,
        });
        return `Created project ${p.display_name}.\n${p.id}\n`;
      })(),
    );
  project
    .command("list")
    .description("List your projects.")
    .action(
      admin(async (client) =>
        table(
          ["Name", "Project ID", "Contact"],
          (await client.listProjects()).map((p) => [p.display_name, p.id, p.contact_email ?? "-"]),
        ),
      ),
    );
  project
    .command("remove <project_id>")
    .description("Delete a project (refused while policies belong to it).")
    .action((id: string) =>
      admin(async (client) => `Removed project ${(await client.removeProject(id)).display_name} (${id}).\n`)(),
    );

  const policy = program
    .command("policy")
    .description("Authentication policies an endpoint can name (authentication_policy in its config).");
  policy
    .command("create")
    .description("Create an authentication policy in one of your projects and print its id.")
    .requiredOption("--project <project_id>", "the project it belongs to")
    .requiredOption("--name <name>", "its display name")
    .option("--description <text>", "what it is for")
    .option(
      "--allowed-domains <list>",
      "identities must be of one of these domains (* matches any characters)",
      domainList,
    )
    .option("--excluded-domains <list>", "identities of these domains are refused", domainList)
    .option("--auth-timeout <seconds>", "the last login must be younger than this", wholeNumber)
    .option("--high-assurance", "a High-Assurance policy")
    .option("--mfa-required", "the last login must have had a second factor (High-Assurance policies only)")
    .action((flags: PolicyFlags) =>
      admin(async (client) => {
        const p = await client.createPolicy({
          project_id: flags.project,
          display_name: flags.name,
          description: flags.description,
          domain_constraints_include: flags.allowedDomains,
          domain_constraints_exclude: flags.excludedDomains,
          authentication_assurance_timeout: flags.authTimeout,
          high_assurance: flags.highAssurance,
          required_mfa: flags.mfaRequired,
        });
        for (const warning of p.warnings ?? []) process.stderr.write(`Warning: ${warning}\n`);
        return `Created authentication policy ${p.display_name}.\n${p.id}\n`;
      })(),
    );
  policy
    .command("list")
    .description("List your authentication policies.")
    .action(
      admin(async (client) =>
        table(["Name", "Policy ID", "HA", "Constraints"], (await client.listPolicies()).map(policyLine)),
      ),
    );
  policy
    .command("show <policy_id>")
    .description("Print a policy as JSON (any policy, by its id).")
    .action((id: string) => admin(async (client) => `${JSON.stringify(await client.getPolicy(id), null, 2)}\n`)());
  policy
    .command("remove <policy_id>")
    .description("Delete an authentication policy (refused while endpoints name it).")
    .action((id: string) =>
      admin(
        async (client) => `Removed authentication policy ${(await client.removePolicy(id)).display_name} (${id}).\n`,
      )(),
    );

  const subscription = program
    .command("subscription")
    .description("Subscriptions endpoints name (subscription_id), optionally High-Assurance (local admin only).");
  subscription
    .command("create")
    .description("Create a subscription and print its id.")
    .requiredOption("--name <name>", "its display name")
    .option("--high-assurance", "a High-Assurance subscription")
    .action((flags: { name: string; highAssurance?: boolean }) =>
      admin(async (client) => {
        const s = await client.createSubscription({ display_name: flags.name, high_assurance: flags.highAssurance });
        return `Created ${s.high_assurance ? "High-Assurance " : ""}subscription ${s.display_name}.\n${s.id}\n`;
      })(),
    );
  subscription
    .command("list")
    .description("List the subscriptions.")
    .action(
      admin(async (client) =>
        table(
          ["Name", "Subscription ID", "HA"],
          (await client.listSubscriptions()).map((s) => [s.display_name, s.id, s.high_assurance ? "yes" : "no"]),
        ),
      ),
    );
}

/** `conduit-service user totp NAME`, under the `user` command. */
export function addTotpCommand(user: Command, { admin }: Pick<CliParts, "admin">): void {
  user
    .command("totp <username>")
    .description("Turn on a one-time code (TOTP) for a local account and print its secret (shown only now).")
    .action((username: string) =>
      admin(async (client) => {
        const r = await client.enrolTotp(username);
        return `From now on ${r.username} signs in with a one-time code after the password. Add this to an authenticator app (the secret is shown only now):\n${r.secret}\n${r.otpauth_uri}\n`;
      })(),
    );
}
