/**
 * `conduit-endpoint start <name>`: runs the MEP attached to the console until
 * a signal (Ctrl+C, Ctrl+\, `kill`, `conduit-endpoint stop`). Order matters:
 * the config is validated before anything changes; `daemon.pid` is claimed
 * before registering, so two `start`s never both run; it is released last.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import {
  ConduitApiError,
  ConduitError,
  type Credential,
  obtainCredential,
  paths,
  redactUrl,
  type StartUepCommand,
  terminalIo,
} from "@conduit/protocol";
import { type ManagerConfig, parseManagerConfig } from "../config/manager-config.js";
import { IdentityMapper } from "../identity-mapping/identity-mapper.js";
import { createLogger, type FileLogger } from "../logging.js";
import { AuditLog } from "../manager/audit-log.js";
import { acceptsDefaultLogin, defaultLoginRefusal } from "../manager/default-login.js";
import {
  claimPidFile,
  configuredEndpoint,
  type EndpointPaths,
  readEndpointId,
  readPidFile,
  releasePidFile,
  removePidFile,
  writeEndpointId,
} from "../manager/endpoint-dir.js";
import { clearFailure, recordFailure } from "../manager/endpoint-failure.js";
import { ManagerEndpoint } from "../manager/manager-endpoint.js";
import { localUser, type Registration, registerEndpoint } from "../manager/registration.js";
import { killLeftoverUeps, readUepRecords } from "../manager/uep-records.js";
import { startTicker } from "./ticker.js";

export interface StartOptions {
  userDir: string;
  name: string;
  /** Echo the log to stderr. */
  logToConsole: boolean;
  /** DEBUG lines in the log. */
  debug: boolean;
}

/** Exit codes of a start whose configuration cannot be loaded, as in Globus (sysexits.h). */
const EX_NOPERM = 77;
const EX_CONFIG = 78;

/**
 * Resolves with the exit code once the MEP has shut down; a configuration that
 * cannot be loaded ends the start at once with EX_NOPERM (77) for a permission
 * problem, EX_CONFIG (78) for anything else, its one sentence on stderr.
 * Whatever ends it on an error is recorded for `list` (Failed, and why),
 * except what says nothing about the endpoint: another instance running, or
 * a service or broker that cannot be reached (the endpoint stays as it was).
 */
export async function startEndpoint(options: StartOptions): Promise<number> {
  const ep = configuredEndpoint(options.userDir, options.name);
  const failure = new FailureNote();
  let code: number;
  try {
    code = await startAttached(options, ep, failure);
  } catch (err) {
    if (!(err instanceof ConduitError && NOT_A_FAILURE.has(err.code))) {
      failure.set(causeOf(err), (err as Error).message);
      record(ep, { cause: failure.cause ?? "", message: failure.message, exit_code: 1 });
    }
    throw err;
  }
  if (code !== 0) {
    record(ep, { cause: failure.cause ?? `exit code ${code}`, message: failure.message, exit_code: code });
  }
  return code;
}

/** Errors that end a start without saying anything about the endpoint. */
const NOT_A_FAILURE: ReadonlySet<string> = new Set(["ENDPOINT_RUNNING", "SERVICE_UNREACHABLE", "BROKER_UNREACHABLE"]);

/** Best effort: a user who cannot write the endpoint dir (its config unreadable to them, too) still gets the exit code and sentence. */
function record(ep: EndpointPaths, failure: Parameters<typeof recordFailure>[1]): void {
  try {
    recordFailure(ep, failure);
  } catch {
    // not recorded; the sentence was printed
  }
}

/** The first reason this start fails for, as `list` shows it and the sentence it printed. */
class FailureNote {
  cause: string | undefined;
  message = "";

  set(cause: string, message: string): void {
    if (this.cause !== undefined) return;
    this.cause = cause;
    this.message = message;
  }
}

/** `list`'s short cause for the errors that end a start; other codes read as themselves. */
const CAUSES: Record<string, string> = {
  UNAUTHORIZED: "credentials refused",
  TOKEN_EXPIRED: "credentials refused",
  NO_TOKEN: "no credentials",
  REGISTRATION_FAILED: "registration refused",
  ENDPOINT_ID_MISMATCH: "registration refused",
  BROKER_ACCOUNT_REFUSED: "broker account removed",
};

function causeOf(err: unknown): string {
  if (!(err instanceof ConduitError)) return "unexpected error";
  const cause = CAUSES[err.code] ?? err.code.toLowerCase().replaceAll("_", " ");
  return err.cause instanceof ConduitApiError ? `${cause} (HTTP ${err.cause.statusCode})` : cause;
}

async function startAttached(options: StartOptions, ep: EndpointPaths, failure: FailureNote): Promise<number> {
  const { name } = options;
  const loaded = loadConfig(ep, name, failure);
  if (typeof loaded === "number") return loaded;
  const { configText, config } = loaded;
  const log = createLogger({
    file: ep.log,
    console: options.logToConsole,
    debug: options.debug || config.debug === true,
    name: "MEP",
    fields: { endpoint: name },
  });

  const previous = readPidFile(ep);
  if (previous.state === "running") {
    throw new ConduitError(
      "ENDPOINT_RUNNING",
      `Another instance of this endpoint is running (pid ${previous.pid}); stop it with: conduit-endpoint stop ${name}`,
    );
  }
  // Before anything changes: on a terminal this may ask for a login; without one it fails at once.
  const serviceUrl = paths.serviceUrl();
  const credential = await obtainCredential({
    serviceUrl,
    loginCommand: "conduit-endpoint login",
    interactive: process.stdin.isTTY === true,
    io: terminalIo(process.stdout),
  });
  if (previous.state === "stale") {
    const note = "Previous endpoint instance failed to shutdown cleanly.  Removing PID file.";
    log.info(note);
    if (!options.logToConsole) process.stderr.write(`${note}\n`);
  }
  // Whatever the dead MEP left behind goes first (its UEPs would otherwise
  // keep consuming beside the new ones), then the pid file, then we claim it.
  // Their commands stay: those whose queues still hold tasks start again below.
  const leftoverUeps = readUepRecords(ep.uepRecords).flatMap((r) => (r.command ? [r.command] : []));
  await killLeftoverUeps(ep.uepRecords, log);
  if (previous.state === "stale") removePidFile(ep);
  if (!claimPidFile(ep)) {
    throw new ConduitError(
      "ENDPOINT_RUNNING",
      `Another instance of this endpoint is starting right now; stop it with: conduit-endpoint stop ${name}`,
    );
  }

  const stop = new StopRequests(log, () => releasePidFile(ep), failure);
  try {
    return await run(options, ep, { serviceUrl, credential }, configText, config, log, stop, leftoverUeps, failure);
  } finally {
    stop.dispose();
    releasePidFile(ep);
  }
}

/**
 * Reads and checks config.yaml, and what a multi-user start needs (root, an
 * identity mapping path), before anything changes. The exit code or the config.
 */
function loadConfig(
  ep: EndpointPaths,
  name: string,
  failure: FailureNote,
): { configText: string; config: ManagerConfig } | number {
  const fail = (code: number, message: string): number => {
    failure.set(code === EX_NOPERM ? "permission denied" : "config invalid", message);
    process.stderr.write(`Error: ${message}\n`);
    return code;
  };
  let configText: string;
  try {
    configText = readFileSync(ep.config, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return isPermissionError(err)
      ? fail(
          EX_NOPERM,
          `Cannot read ${ep.config} (${code}: permission denied); start the endpoint as the user who owns that file, or let this user read it.`,
        )
      : fail(EX_CONFIG, `Cannot read ${ep.config} (${code}); restore the file, or configure the endpoint again.`);
  }
  let config: ManagerConfig;
  try {
    config = parseManagerConfig(configText, ep.config);
  } catch (err) {
    return fail(EX_CONFIG, (err as Error).message);
  }
  if (config.multi_user) {
    if (process.getuid?.() !== 0) {
      return fail(
        EX_NOPERM,
        `Endpoint ${name} is configured as multi-user (multi_user: true in ${ep.config}), and multi-user endpoints must be started as root (they run each user's processes as that user); start it as root, or remove multi_user to run it single-user.`,
      );
    }
    if (!config.identity_mapping_config_path) {
      return fail(
        EX_CONFIG,
        `Multi-user endpoint ${name} has no identity_mapping_config_path in ${ep.config}; set it to a mapping file such as ${resolve(ep.dir, "example_identity_mapping_config.json")}.`,
      );
    }
  }
  return { configText, config };
}

function isPermissionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "EACCES" || code === "EPERM";
}

/**
 * Multi-user: loads the identity mapping (relative to the endpoint dir). A
 * file that cannot be read is a reason not to start at all: its exit code says
 * whether it was permissions (77) or the file itself (78).
 */
function loadIdentityMapper(
  ep: EndpointPaths,
  config: ManagerConfig,
  endpointId: string,
  log: FileLogger,
  failure: FailureNote,
): IdentityMapper | number {
  const path = resolve(ep.dir, config.identity_mapping_config_path as string);
  try {
    const mapper = IdentityMapper.load(path, { endpointId, log });
    log.info(`Loaded identity mapping configuration (${mapper.mappers.length} mapper(s)) from: ${path}`);
    return mapper;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const message = `(${e.name}) ${e.message} -- Unable to read identity mapping configuration from: ${path}`;
    log.error(message);
    process.stderr.write(`Error: ${message}\n`);
    failure.set(isPermissionError(err) ? "permission denied" : "identity mapping invalid", message);
    return isPermissionError(err) ? EX_NOPERM : EX_CONFIG;
  }
}

/**
 * Multi-user: EX_CONFIG when RabbitMQ accepts guest/guest from this host (any
 * local user, any task, could then log in as the broker's administrator),
 * unless config.yaml's `allow_default_broker_login` lets a test go on.
 */
async function refuseDefaultBrokerLogin(
  ep: EndpointPaths,
  config: ManagerConfig,
  amqpUrl: string,
  managementPort: number | undefined,
  log: FileLogger,
  failure: FailureNote,
): Promise<number | undefined> {
  if (config.allow_default_broker_login) {
    log.warn(
      `allow_default_broker_login: true in ${ep.config}, so this endpoint does not check whether RabbitMQ accepts the default guest/guest login, with which any local user could act as the Conduit service; use it only for tests on a shared broker.`,
    );
    return undefined;
  }
  const host = await acceptsDefaultLogin(amqpUrl, managementPort);
  if (host === undefined) return undefined;
  const message = defaultLoginRefusal(host);
  log.error(message);
  process.stderr.write(`Error: ${message}\n`);
  failure.set("broker accepts guest/guest", message);
  return EX_CONFIG;
}

async function run(
  options: StartOptions,
  ep: EndpointPaths,
  service: { serviceUrl: string; credential: Credential },
  configText: string,
  config: ManagerConfig,
  log: FileLogger,
  stop: StopRequests,
  leftoverUeps: readonly StartUepCommand[],
  failure: FailureNote,
): Promise<number> {
  const { name, userDir } = options;
  const { serviceUrl, credential } = service;
  let registration: Registration | undefined;
  try {
    const registering = registerEndpoint({
      serviceUrl,
      credential,
      name,
      endpointId: readEndpointId(ep),
      displayName: config.display_name,
      allowedFunctions: config.allowed_functions,
      configText,
      amqpPort: config.amqp_port,
      multiUser: config.multi_user,
      assurance: {
        authenticationPolicy: config.authentication_policy,
        subscriptionId: config.subscription_id,
        contactEmail: config.contact_email,
        highAssurance: config.high_assurance,
      },
    });
    registration = await Promise.race([registering, stop.requested.then(() => undefined)]);
  } catch (err) {
    log.error((err as Error).message);
    throw err;
  }
  if (registration === undefined) {
    log.info("Stopped before registration completed.");
    return stop.exitCode;
  }
  const { endpointId, amqpUrl, serviceUser, managementPort } = registration;
  writeEndpointId(ep, endpointId);

  log.info(`========== Endpoint Manager begins: ${endpointId}`);
  log.info(`Registered with ${serviceUrl}; broker ${redactUrl(amqpUrl)}`);
  let identityMapper: IdentityMapper | undefined;
  if (config.multi_user) {
    const loaded = loadIdentityMapper(ep, config, endpointId, log, failure);
    if (typeof loaded === "number") return loaded;
    identityMapper = loaded;
    identityMapper.watch();
    const refused = await refuseDefaultBrokerLogin(ep, config, amqpUrl, managementPort, log, failure);
    if (refused !== undefined) {
      identityMapper.stop();
      return refused;
    }
  } else if (process.getuid?.() === 0) {
    log.warn(
      "Running as root without multi-user mode: this endpoint is single-user and every user endpoint process runs as root; configure a multi-user endpoint to map identities to local accounts.",
    );
  }
  const audit = openAuditLog(config, endpointId, log, failure, (message) => {
    if (!options.logToConsole) process.stderr.write(`Error: ${message}\n`);
    stop.fail("the audit log could not be written");
  });
  if (audit === "failed") {
    identityMapper?.stop();
    return 1;
  }
  const manager = new ManagerEndpoint({
    name,
    ep,
    config,
    endpointId,
    amqpUrl,
    serviceUser,
    userDir,
    localUser: localUser(),
    identityMapper,
    audit,
    log,
    leftoverUeps,
    onAccountRefused: (message) => {
      if (!options.logToConsole) process.stderr.write(`Error: ${message}\n`);
      failure.set("broker account removed", message);
      stop.fail("the broker refused the endpoint's account");
    },
  });
  stop.onForce = () => manager.killAll();
  try {
    await manager.start();
  } catch (err) {
    identityMapper?.stop();
    await manager.shutdown();
    await audit?.end(AUDIT_DRAIN_MS);
    const failure =
      err instanceof ConduitError && err.code === "BROKER_UNREACHABLE"
        ? new ConduitError(
            err.code,
            `Cannot connect to RabbitMQ at ${redactUrl(amqpUrl)}, the broker URL the service at ${serviceUrl} handed out${config.amqp_port === null ? "" : ` with amqp_port ${config.amqp_port} from ${ep.config}`} (${(err.cause as Error)?.message ?? err.message}); check that RabbitMQ listens there, or fix amqp_port in config.yaml or the service's --amqp-public-url.`,
            { cause: err },
          )
        : err;
    log.error((failure as Error).message);
    throw failure;
  }
  // This start succeeded: whatever the last one failed for is history.
  clearFailure(ep);
  // Printed once the MEP takes commands: whoever waits for this line can submit.
  process.stdout.write(`        >>> Endpoint ID: ${endpointId} <<<\n`);
  const stopTicker = process.stderr.isTTY && !options.logToConsole ? startTicker(process.stderr) : undefined;

  const reason = await stop.requested;
  stopTicker?.();
  log.info(`Shutting down (${reason})`);
  await manager.shutdown();
  await audit?.end(AUDIT_DRAIN_MS);
  identityMapper?.stop();
  releasePidFile(ep);
  log.info("Shutdown complete.");
  log.info(`---------- Endpoint Manager ends: ${endpointId}`);
  return stop.exitCode;
}

/**
 * High-Assurance with `audit_log_path`: the audit log, its `Begin MEP session`
 * written; undefined without one; "failed" (logged, on stderr and recorded)
 * when it cannot be opened or written. A later failed write calls `onFailure`
 * with the logged sentence: the MEP stops (fail closed).
 */
function openAuditLog(
  config: ManagerConfig,
  endpointId: string,
  log: FileLogger,
  failure: FailureNote,
  onFailure: (message: string) => void,
): AuditLog | undefined | "failed" {
  if (!config.high_assurance || !config.audit_log_path) return undefined;
  const refuse = (message: string): "failed" => {
    log.error(message);
    process.stderr.write(`Error: ${message}\n`);
    failure.set("audit log failed", message);
    return "failed";
  };
  let audit: AuditLog;
  try {
    audit = AuditLog.open({
      path: config.audit_log_path,
      endpointId,
      log,
      onFailure: (message) => {
        failure.set("audit log failed", message);
        onFailure(message);
      },
    });
  } catch (err) {
    return refuse((err as Error).message);
  }
  const problem = audit.session("begin");
  if (problem === undefined) {
    log.info(`Audit log: ${config.audit_log_path}`);
    return audit;
  }
  // Logged, on stderr and recorded by onFailure already.
  audit.close();
  return "failed";
}

/** How long the UEPs' last task records may take to arrive once they stopped. */
const AUDIT_DRAIN_MS = 5_000;

const STOP_SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP"];

/**
 * Turns SIGINT (Ctrl+C), SIGQUIT (Ctrl+\), SIGTERM and SIGHUP (terminal
 * closed), and any unexpected error, into one graceful stop. A second signal
 * during the shutdown forces the exit: UEP process groups killed, pid file
 * removed, exit code 1.
 */
class StopRequests {
  readonly requested: Promise<string>;
  /** 0 after a signal, 1 after an unexpected error or a refused broker account. */
  exitCode = 0;
  onForce: (() => void) | undefined;
  private resolve!: (reason: string) => void;
  private stopping = false;
  private readonly onSignal = (signal: NodeJS.Signals) => this.request(signal);
  private readonly onError = (err: unknown) => {
    this.log.error(`Unexpected error: ${(err as Error)?.stack ?? String(err)}`);
    this.failure.set("unexpected error", (err as Error)?.message ?? String(err));
    this.exitCode = 1;
    this.request("unexpected error");
  };

  constructor(
    private readonly log: FileLogger,
    private readonly pidFileRelease: () => void,
    private readonly failure: FailureNote,
  ) {
    this.requested = new Promise((resolve) => {
      this.resolve = resolve;
    });
    for (const s of STOP_SIGNALS) process.on(s, this.onSignal);
    process.on("uncaughtException", this.onError);
    process.on("unhandledRejection", this.onError);
  }

  /** A stop for a reason that makes the exit a failure (exit code 1). */
  fail(reason: string): void {
    this.exitCode = 1;
    // Not a second stop request: that would force the exit in the middle of the shutdown.
    if (!this.stopping) this.request(reason);
  }

  private request(reason: string): void {
    if (!this.stopping) {
      this.stopping = true;
      this.resolve(reason);
      return;
    }
    this.log.warn(`Received ${reason} during shutdown; killing the user endpoint processes and exiting now`);
    this.onForce?.();
    this.pidFileRelease();
    process.exit(1);
  }

  dispose(): void {
    for (const s of STOP_SIGNALS) process.off(s, this.onSignal);
    process.off("uncaughtException", this.onError);
    process.off("unhandledRejection", this.onError);
  }
}
