/**
 * `conduit-service start [options]`: runs the web service until SIGINT or
 * SIGTERM, then shuts down gracefully and exits 0. A setup problem (RabbitMQ or
 * the database unreachable, the data directory in use, a bad option) is one
 * sentence on stderr and exit code 1.
 */
import { ConduitError, DEFAULT_AMQP_URL, paths, redactUrl } from "@conduit/protocol";
import { Command, InvalidArgumentError } from "commander";
import { type RunningService, startService } from "./service.js";
import { LOG_LEVELS, type LogLevel, type ServiceOptions } from "./service-options.js";
import { SERVICE_VERSION } from "./version.js";

interface StartFlags {
  host: string;
  port: number;
  dataDir?: string;
  databaseUrl?: string;
  amqpUrl: string;
  amqpPublicUrl?: string;
  maxTaskBytes?: number;
  maxRequestBytes?: number;
  logLevel: LogLevel;
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a whole number.`);
  }
  return n;
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
    maxTaskBytes: flags.maxTaskBytes,
    maxRequestBytes: flags.maxRequestBytes,
    logLevel: flags.logLevel,
  };
  let service: RunningService;
  try {
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
  .option("--max-task-bytes <n>", "largest task (function + arguments) in bytes (default: 10 MiB)", wholeNumber)
  .option("--max-request-bytes <n>", "largest request body in bytes (default: 32 MiB)", wholeNumber)
  .option("--log-level <level>", `log level: ${LOG_LEVELS.join(", ")}`, logLevel, "info")
  .action((flags: StartFlags) => start(flags));

await program.parseAsync(process.argv);
