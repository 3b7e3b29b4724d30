/**
 * `conduit-service start [options]`: runs the web service until SIGINT or
 * SIGTERM, then shuts down gracefully and exits 0. A setup problem (RabbitMQ or
 * the database unreachable, the data directory in use, a bad option) is one
 * sentence on stderr and exit code 1.
 *
 * `conduit-service user add|list|token|remove`, `client create|list|remove|rotate-secret`
 * and `keys rotate`: the admin's identity tools. They
 * calls the RUNNING service's admin routes with the local admin credentials
 * (PGlite admits one process, so it cannot open the store beside the service).
 */
import { ConduitError, DEFAULT_AMQP_URL, paths, QUEUE_TYPES, type QueueType, redactUrl } from "@conduit/protocol";
import { Command, InvalidArgumentError } from "commander";
import { AdminClient } from "./admin-client.js";
import { plural } from "./errors.js";
import { addPolicyCommands, addTotpCommand } from "./policy-cli.js";
import type { RunningService } from "./service.js";
import { compileOptions, LOG_LEVELS, type LogLevel, parseDuration, type ServiceOptions } from "./service-options.js";
import { SERVICE_VERSION } from "./version.js";

interface StartFlags {
  host: string;
  port: number;
  dataDir?: string;
  databaseUrl?: string;
  amqpUrl: string;
  amqpPublicUrl?: string;
  amqpManagementUrl?: string;
  sharedBrokerAccount?: boolean;
  resultRetention?: string;
  amqpQueueType?: QueueType;
  maxTaskBytes?: number;
  maxRequestBytes?: number;
  taskBatchCount?: number;
  taskBatchBytes?: number;
  logLevel: LogLevel;
  publicUrl?: string;
  haFunctionRetentionDays?: number;
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a whole number.`);
  }
  return n;
}

function queueType(value: string): QueueType {
  if (!(QUEUE_TYPES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`Choose one of ${QUEUE_TYPES.join(", ")}.`);
  }
  return value as QueueType;
}

function logLevel(value: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`Choose one of ${LOG_LEVELS.join(", ")}.`);
  }
  return value as LogLevel;
}

async function start(flags: StartFlags): Promise<void> {
  const options: ServiceOptions = {
    host: flags.host,
    port: flags.port,
    dataDir: flags.dataDir,
    databaseUrl: flags.databaseUrl,
    amqpUrl: flags.amqpUrl,
    amqpPublicUrl: flags.amqpPublicUrl,
    amqpManagementUrl: flags.amqpManagementUrl,
    sharedBrokerAccount: flags.sharedBrokerAccount,
    resultRetention: flags.resultRetention,
    amqpQueueType: flags.amqpQueueType,
    maxTaskBytes: flags.maxTaskBytes,
    maxRequestBytes: flags.maxRequestBytes,
    taskBatchCount: flags.taskBatchCount,
    taskBatchBytes: flags.taskBatchBytes,
    logLevel: flags.logLevel,
    publicUrl: flags.publicUrl,
    haFunctionRetentionDays: flags.haFunctionRetentionDays,
  };
  let service: RunningService;
  try {
    // Options first: a bad one gets its sentence alone, before the OpenID provider's
    // import prints its runtime notice (it asks for Node 22; Conduit runs it on 20.19+).
    compileOptions(options);
    // Loaded here only: the admin commands need none of the service (nor the provider's import-time checks).
    const { startService } = await import("./service.js");
    service = await startService(options);
  } catch (err) {
    const message = err instanceof ConduitError ? err.message : `${(err as Error).stack ?? err}`;
    process.stderr.write(`conduit-service: ${message}\n`);
    process.exit(1);
  }
  const { config } = service;
  const store =
    config.store.kind === "pglite" ? `PGlite at ${config.store.dataDir}` : `Postgres at ${redactUrl(config.store.url)}`;
  process.stdout.write(
    `Conduit service listening on ${service.url} (store: ${store}; broker: ${redactUrl(config.amqpUrl)})\n` +
      `Admin credentials (service URL and token) are in ${paths.credentialsFile()}\n`,
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`conduit-service: ${signal} received, shutting down.\n`);
    service.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`conduit-service: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

const program = new Command("conduit-service")
  .description("Conduit web service: REST API, store and broker side of Conduit.")
  .version(SERVICE_VERSION);

program
  .command("start")
  .description("Run the web service until SIGINT/SIGTERM.")
  .option("--host <host>", "interface to listen on", "127.0.0.1")
  .option("--port <port>", "TCP port (0 picks a free one)", wholeNumber, 8400)
  .option("--data-dir <dir>", "PGlite data directory (default: $CONDUIT_USER_DIR/service)")
  .option("--database-url <url>", "use Postgres at this URL instead of PGlite")
  .option("--amqp-url <url>", "RabbitMQ URL the service connects to", DEFAULT_AMQP_URL)
  .option("--amqp-public-url <url>", "RabbitMQ URL handed to endpoints and SDKs (default: --amqp-url)")
  .option(
    "--amqp-management-url <url>",
    "RabbitMQ management API of an administrator, through which each endpoint, UEP and task group gets an account reaching only its own queues (default: the --amqp-url host on port 15672, or https on 15671 for amqps://, with the --amqp-url login; the service refuses to start when it cannot use it)",
  )
  .option(
    "--shared-broker-account",
    "for development only: hand endpoints and SDKs the --amqp-public-url login instead of scoped accounts (no management API needed); serves one identity, the local admin",
  )
  .option(
    "--result-retention <duration>",
    "how long a task group's results wait on the broker unused, e.g. 7d, 12h, 30m, 90s (default: 7d)",
  )
  .option(
    "--amqp-queue-type <type>",
    "type of the queues the service declares: classic, or quorum (replicated over a RabbitMQ cluster); every replica must use the same (default: classic)",
    queueType,
  )
  .option("--max-task-bytes <n>", "largest task (function + arguments) in bytes (default: 10 MiB)", wholeNumber)
  .option("--max-request-bytes <n>", "largest request body in bytes (default: 32 MiB)", wholeNumber)
  .option(
    "--task-batch-count <n>",
    "most tasks per message to a user endpoint, from one submit (default: 128; 1 sends one message per task)",
    wholeNumber,
  )
  .option(
    "--task-batch-bytes <n>",
    "most function + argument bytes per message to a user endpoint, 1024 to 16 MiB; a bigger task goes alone (default: 1 MiB)",
    wholeNumber,
  )
  .option("--log-level <level>", `log level: ${LOG_LEVELS.join(", ")}`, logLevel, "info")
  .option(
    "--public-url <url>",
    "the origin people and tools reach the service at, behind a proxy (the OpenID issuer and login links; default: the listen address)",
  )
  .option(
    "--ha-function-retention-days <days>",
    "days a High-Assurance function may go unused before it is deleted (default: 90)",
    wholeNumber,
  )
  .action((flags: StartFlags) => start(flags));

/** Runs one admin command: its output on stdout, or its error as one sentence on stderr and exit 1. */
function admin(command: (client: AdminClient) => Promise<string>): () => Promise<void> {
  return async () => {
    try {
      process.stdout.write(await command(AdminClient.fromEnvironment()));
    } catch (err) {
      const message = err instanceof ConduitError ? err.message : `${(err as Error).stack ?? err}`;
      process.stderr.write(`conduit-service: ${message}\n`);
      process.exit(1);
    }
  };
}

/** `--expires 90d` in whole seconds; a bad duration throws the sentence of parseDuration. */
function expiresInSeconds(expires: string | undefined): number | undefined {
  return expires === undefined ? undefined : parseDuration("--expires", expires) / 1000;
}

/** `2027-03-07T09:04:14Z`: the second is precise enough for an expiry. */
function shortTime(iso: string): string {
  return iso.replace(/\.\d+Z$/, "Z");
}

/** What `user list` says of one token's expiry. */
function expiryCell(expiresAt: string | null, now: number): string {
  if (expiresAt === null) return "never";
  return Date.parse(expiresAt) <= now ? `expired ${shortTime(expiresAt)}` : shortTime(expiresAt);
}

/** The token on a line of its own (for scripts), then how to use it. */
function tokenLines(token: string): string {
  return `${token}\nexport CONDUIT_TOKEN=${token}\n`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `${cells
      .map((c, i) => c.padEnd(widths[i]))
      .join(" | ")
      .trimEnd()}\n`;
  return line(header) + line(widths.map((w) => "-".repeat(w))) + rows.map(line).join("");
}

/** All of stdin, without its final line break: a password piped in (`--password-stdin`). */
async function readStdin(flag = "--password-stdin"): Promise<string> {
  if (process.stdin.isTTY) {
    throw new ConduitError(
      "INVALID_OPTIONS",
      `${flag} reads the secret from standard input; pipe it in, e.g. \`printf %s "$SECRET" | conduit-service … ${flag}\`.`,
    );
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

interface AddFlags {
  passwordStdin?: boolean;
  name?: string;
  email?: string;
  organization?: string;
  identityProvider?: string;
  expires?: string;
}

const EXPIRES_HELP = "the token stops working after this long, e.g. 90d, 12h, 30m (default: never)";

const user = program.command("user").description("Manage identities on the running service (local admin only).");

user
  .command("add <username>")
  .description("Create an identity user@domain and print its API token.")
  .option("--name <name>", "display name")
  .option("--email <email>", "e-mail address")
  .option("--organization <organization>", "organization")
  .option("--identity-provider <provider>", "identity provider")
  .option("--expires <duration>", EXPIRES_HELP)
  .option("--password-stdin", "read a password for the login page from standard input")
  .action((username: string, flags: AddFlags) =>
    admin(async (client) => {
      const password = flags.passwordStdin ? await readStdin() : undefined;
      const { identity, token, token_expires_at } = await client.createIdentity({
        username,
        password,
        name: flags.name,
        email: flags.email,
        organization: flags.organization,
        identity_provider: flags.identityProvider,
        token_expires_in_seconds: expiresInSeconds(flags.expires),
      });
      const expiry = token_expires_at ? ` (it expires at ${shortTime(token_expires_at)})` : "";
      return (
        `Created identity ${identity.username} (id ${identity.id}). Its API token${expiry}, shown only now:\n` +
        tokenLines(token)
      );
    })(),
  );

user
  .command("list")
  .description("List the identities.")
  .action(
    admin(async (client) => {
      const identities = await client.listIdentities();
      const now = Date.now();
      return table(
        ["Username", "Identity ID", "Name", "Email", "Token expiry"],
        identities.map((i) => [
          i.username,
          i.id,
          i.name ?? "-",
          i.email ?? "-",
          i.tokens.map((t) => expiryCell(t.expires_at, now)).join(", ") || "no tokens",
        ]),
      );
    }),
  );

user
  .command("token <username>")
  .description("Print a new API token for an identity; its older tokens keep working unless --revoke-others.")
  .option("--revoke-others", "revoke the identity's other tokens")
  .option("--expires <duration>", EXPIRES_HELP)
  .action((username: string, flags: { revokeOthers?: boolean; expires?: string }) =>
    admin(async (client) => {
      const { identity, token, token_expires_at, revoked } = await client.issueToken(username, {
        revokeOthers: flags.revokeOthers,
        expiresInSeconds: expiresInSeconds(flags.expires),
      });
      const older = flags.revokeOthers
        ? `${plural(revoked, "older token")} revoked`
        : "older tokens still work; --revoke-others revokes them";
      const expiry = token_expires_at ? `it expires at ${shortTime(token_expires_at)}; ` : "";
      return `New API token for ${identity.username} (${expiry}${older}):\n` + tokenLines(token);
    })(),
  );

user
  .command("remove <username>")
  .description("Remove an identity and its tokens; --force also removes its endpoints, functions and tasks.")
  .option("--force", "remove it even if it owns endpoints or tasks")
  .action((username: string, flags: { force?: boolean }) =>
    admin(async (client) => {
      const removed = await client.removeIdentity(username, { force: flags.force });
      const owned =
        removed.endpoints + removed.tasks > 0
          ? `, ${plural(removed.endpoints, "endpoint")} and ${plural(removed.tasks, "task")}`
          : "";
      return `Removed identity ${removed.identity.username} (id ${removed.identity.id}) with its tokens${owned}.\n`;
    })(),
  );

const keys = program.command("keys").description("Token signing keys of the running service (local admin only).");

keys
  .command("rotate")
  .description("Sign new tokens with a new key; tokens signed by the old one keep working until they expire.")
  .action(
    admin(async (client) => {
      const r = await client.rotateKeys();
      const old =
        r.retired.length > 0
          ? `; ${r.retired.join(", ")} verifies until ${shortTime(r.retired_keys_verify_until)}`
          : "";
      return `New signing key ${r.kid}${old}.\n`;
    }),
  );

const clients = program
  .command("client")
  .description("Client identities (client credentials, for robots and CI) on the running service (local admin only).");

/** The id and secret (each on a line of its own, for scripts), then how to use them. */
function clientSecretLines(clientId: string, secret: string): string {
  return `${clientId}\n${secret}\nexport CONDUIT_CLIENT_ID=${clientId}\nexport CONDUIT_CLIENT_SECRET=${secret}\n`;
}

clients
  .command("create")
  .description("Create a client identity and print its id and secret (the secret is shown only now).")
  .requiredOption("--name <name>", "what it is for, e.g. ci-bot")
  .option("--owner <username>", "the identity responsible for it, user@domain")
  .action((flags: { name: string; owner?: string }) =>
    admin(async (client) => {
      const r = await client.createClient({ name: flags.name, owner: flags.owner });
      return (
        `Created client identity ${r.client.name} (${r.client.username}). Its id and secret, the secret shown only now:\n` +
        clientSecretLines(r.client.client_id, r.client_secret)
      );
    })(),
  );

clients
  .command("list")
  .description("List the client identities.")
  .action(
    admin(async (client) => {
      const list = await client.listClients();
      return table(
        ["Name", "Client ID", "Owner", "Created"],
        list.map((c) => [c.name, c.client_id, c.owner ?? "-", shortTime(c.created_at)]),
      );
    }),
  );

clients
  .command("rotate-secret <client_id>")
  .description("Give a client identity a new secret; the old one stops working at once.")
  .action((clientId: string) =>
    admin(async (client) => {
      const r = await client.rotateClientSecret(clientId);
      return `New secret for client ${r.client.name} (the old one no longer works):\n${clientSecretLines(r.client.client_id, r.client_secret)}`;
    })(),
  );

clients
  .command("remove <client_id>")
  .description(
    "Remove a client identity and its broker accounts; --force also removes its endpoints, functions and tasks.",
  )
  .option("--force", "remove it even if it owns endpoints or tasks")
  .action((clientId: string, flags: { force?: boolean }) =>
    admin(async (client) => {
      const r = await client.removeClient(clientId, { force: flags.force });
      const owned =
        r.endpoints + r.tasks > 0 ? `, ${plural(r.endpoints, "endpoint")} and ${plural(r.tasks, "task")}` : "";
      return `Removed client identity ${r.client.name} (${r.client.client_id})${owned}.\n`;
    })(),
  );

const idp = program
  .command("idp")
  .description("Upstream OpenID Connect providers a domain's users sign in at (local admin only).");

idp
  .command("add")
  .description("Send the users of --domain to the provider at --issuer; they become user@domain here.")
  .requiredOption("--issuer <url>", "the provider's issuer URL (its /.well-known/openid-configuration is read)")
  .requiredOption("--client-id <id>", "this service's client id at that provider")
  .requiredOption("--client-secret-stdin", "read this service's client secret at that provider from standard input")
  .requiredOption("--domain <domain>", "the users' domain, e.g. example.edu")
  .action((flags: { issuer: string; clientId: string; domain: string }) =>
    admin(async (client) => {
      const secret = await readStdin("--client-secret-stdin");
      const r = await client.addIdp({
        issuer: flags.issuer,
        client_id: flags.clientId,
        client_secret: secret,
        domain: flags.domain,
      });
      return `Users of ${r.domain} now sign in at ${r.issuer}; register ${client.serviceUrl}/login/federated as the redirect URI of client ${r.client_id} there.\n`;
    })(),
  );

idp
  .command("list")
  .description("List the upstream providers.")
  .action(
    admin(async (client) => {
      const list = await client.listIdps();
      return table(
        ["Domain", "Issuer", "Client ID"],
        list.map((i) => [i.domain, i.issuer, i.client_id]),
      );
    }),
  );

idp
  .command("remove <domain>")
  .description("Stop sending a domain's users to its upstream provider.")
  .action((domain: string) =>
    admin(async (client) => {
      const r = await client.removeIdp(domain);
      return `Users of ${r.domain} no longer sign in at ${r.issuer}.\n`;
    })(),
  );

addPolicyCommands(program, { admin, table, wholeNumber });
addTotpCommand(user, { admin });

await program.parseAsync(process.argv);
