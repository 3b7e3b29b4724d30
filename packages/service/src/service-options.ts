/**
 * Options of {@link startService} (and of `conduit-service start`), validated
 * once here into a frozen config; a bad value or combination throws a sentence
 * that names the field(s) and the fix.
 */
import {
  ConduitError,
  DEFAULT_AMQP_URL,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_TASK_BYTES,
  paths,
  QUEUE_TYPES,
  type QueueType,
} from "@conduit/protocol";
import { managementUrlFor, vhostOf } from "./broker/management-api.js";
import { DEFAULT_TASK_BATCH_BYTES, DEFAULT_TASK_BATCH_COUNT } from "./broker/task-batches.js";
import type { StoreLocation } from "./store/open-store.js";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServiceOptions {
  /** Interface to listen on. @default "127.0.0.1" */
  host?: string;
  /** TCP port; 0 picks a free one (see `RunningService.url`). @default 8400 */
  port?: number;
  /** Where the embedded PGlite database lives (in `<dataDir>/pgdata`). Not used with `databaseUrl`. @default paths.serviceDataDir(), i.e. `$CONDUIT_USER_DIR/service` */
  dataDir?: string;
  /** Postgres URL (`postgres://user:pass@host:5432/db`); when set, the store is Postgres instead of PGlite. */
  databaseUrl?: string;
  /** RabbitMQ URL the service connects to. @default DEFAULT_AMQP_URL (`amqp://guest:guest@127.0.0.1:5672`) */
  amqpUrl?: string;
  /** RabbitMQ URL handed to endpoints and SDKs. @default amqpUrl */
  amqpPublicUrl?: string;
  /**
   * RabbitMQ management API of an administrator (`http://admin:pass@127.0.0.1:15672`),
   * through which each endpoint, each UEP and each task group gets its own RabbitMQ
   * account, reaching only its own queues. The service refuses to start when it
   * cannot use it.
   * @default the `amqpUrl` host on port 15672 (https on 15671 for `amqps://`), with the `amqpUrl` credentials
   */
  amqpManagementUrl?: string;
  /**
   * For development only: hand every endpoint and SDK the public URL's
   * credentials (the service's own account) instead of scoped accounts, with
   * no management API. Anyone holding them can read and forge every message,
   * so the service then serves the local administrator only: adding
   * identities and registering multi-user endpoints are refused, and it
   * refuses to start on a store holding other identities.
   * @default false
   */
  sharedBrokerAccount?: boolean;
  /**
   * How long a task group's results wait on the broker for an SDK: its result
   * queue expires after this long unused, and (with scoped accounts) the
   * group's broker account is deleted after this long without a submit. A
   * duration such as `7d`, `12h`, `30m`, `90s`, or milliseconds.
   * @default "7d"
   */
  resultRetention?: string | number;
  /**
   * Type of the queues the service declares (tasks, commands, results,
   * heartbeats, task group results): `quorum` replicates them over a RabbitMQ
   * cluster. Every replica must use the same; a queue that exists with another
   * type stops the service with a sentence naming `--amqp-queue-type`.
   * @default "classic"
   */
  amqpQueueType?: QueueType;
  /** Largest task (function payload + arguments), in bytes. @default DEFAULT_MAX_TASK_BYTES (10 MiB) */
  maxTaskBytes?: number;
  /** Largest request body, in bytes. @default DEFAULT_MAX_REQUEST_BYTES (32 MiB) */
  maxRequestBytes?: number;
  /**
   * Most tasks per message on the task hop (the tasks of one submit that go
   * to the same UEP travel together); 1 sends one message per task.
   * @default DEFAULT_TASK_BATCH_COUNT (128)
   */
  taskBatchCount?: number;
  /**
   * Most function + argument bytes per message on the task hop; a bigger task
   * goes alone. At most 16 MiB, RabbitMQ 4's default largest message.
   * @default DEFAULT_TASK_BATCH_BYTES (1 MiB)
   */
  taskBatchBytes?: number;
  /** Write `paths.credentialsFile()` (service URL and admin token, mode 0600) when missing or stale. @default true */
  writeCredentials?: boolean;
  /** @default "info" */
  logLevel?: LogLevel;
  /**
   * The URL people and tools reach the service at, when that is not the
   * listen address (behind a proxy: `https://conduit.example.edu`): the OpenID
   * issuer, the audience of its tokens and the login links use it. An origin,
   * without a path.
   * @default the listen address, e.g. `http://127.0.0.1:8400`
   */
  publicUrl?: string;
  /**
   * Days a High-Assurance function may go unused (neither registered again
   * nor submitted) before the retention job deletes it.
   * @default 90
   */
  haFunctionRetentionDays?: number;
  /**
   * The service's clock, in milliseconds since the epoch: what time-judged
   * decisions (the HA function retention, policies and the age of logins, which it
   * records with this clock too) read. For tests in-process; there is no HTTP
   * route or variable for it.
   * @default Date.now
   */
  clock?: () => number;
}

export interface ServiceConfig {
  readonly host: string;
  readonly port: number;
  readonly store: StoreLocation;
  readonly amqpUrl: string;
  readonly amqpPublicUrl: string;
  /** The management API scoped accounts are made through (given or derived); undefined exactly when `sharedBrokerAccount`. */
  readonly amqpManagementUrl: string | undefined;
  readonly sharedBrokerAccount: boolean;
  readonly resultRetentionMs: number;
  readonly amqpQueueType: QueueType;
  readonly maxTaskBytes: number;
  readonly maxRequestBytes: number;
  /** The task hop's batch bounds. */
  readonly taskBatch: Readonly<{ maxCount: number; maxBytes: number }>;
  readonly writeCredentials: boolean;
  readonly logLevel: LogLevel;
  readonly publicUrl: string | undefined;
  readonly haFunctionRetentionMs: number;
  readonly clock: () => number;
}

function invalid(message: string): ConduitError {
  return new ConduitError("INVALID_OPTIONS", message);
}

const DURATION_UNITS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 };

/** RabbitMQ refuses a much longer `x-expires` (somewhere below 35 years); ten years is plenty. */
const MAX_RETENTION_MS = 3650 * 86_400_000;

/** `7d`, `12h`, `30m`, `90s` (or a number of milliseconds) in milliseconds; throws a sentence for anything else. */
export function parseDuration(name: string, value: string | number): number {
  const match = typeof value === "string" ? /^\s*(\d+)\s*([dhms])\s*$/.exec(value) : undefined;
  const ms = typeof value === "number" ? value : match ? Number(match[1]) * DURATION_UNITS[match[2]] : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0 || ms > MAX_RETENTION_MS) {
    throw invalid(
      `${name} must be a positive duration of at most 3650d, written as a whole number and a unit (d, h, m or s), e.g. 7d, 12h, 30m or 90s; got ${JSON.stringify(value)}.`,
    );
  }
  return ms;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const n = value ?? fallback;
  if (!Number.isSafeInteger(n) || n <= 0)
    throw invalid(`${name} must be a positive whole number of bytes; got ${value}.`);
  return n;
}

/** Most tasks per task-hop message: past a few thousand a batch only delays its first task's ack. */
const MAX_TASK_BATCH_COUNT = 10_000;
/** RabbitMQ 4 refuses messages over 16 MiB by default (`max_message_size`). */
const MAX_TASK_BATCH_BYTES = 16 * 1024 * 1024;

/** A whole number from `range[0]` to `range[1]`, or `fallback`; throws one sentence naming the option and its flag. */
function boundedWholeNumber(
  name: string,
  flag: string,
  value: number | undefined,
  fallback: number,
  [min, max]: [number, number],
  unit: string,
): number {
  const n = value ?? fallback;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw invalid(`${name} must be a whole number of ${unit} from ${min} to ${max} (${flag}); got ${value}.`);
  }
  return n;
}

export function compileOptions(options: ServiceOptions = {}): ServiceConfig {
  const port = options.port ?? 8400;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalid(`port must be a whole number from 0 to 65535 (0 picks a free port); got ${options.port}.`);
  }
  if (options.dataDir !== undefined && options.databaseUrl !== undefined) {
    throw invalid(
      "dataDir (PGlite) and databaseUrl (Postgres) both choose the store; pass only one of --data-dir and --database-url.",
    );
  }
  if (options.databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(options.databaseUrl)) {
    throw invalid(`databaseUrl must be a postgres:// URL, e.g. postgres://user@127.0.0.1:5432/conduit.`);
  }
  const amqpUrl = options.amqpUrl ?? DEFAULT_AMQP_URL;
  const amqpPublicUrl = options.amqpPublicUrl ?? amqpUrl;
  for (const [name, url] of [
    ["amqpUrl", amqpUrl],
    ["amqpPublicUrl", amqpPublicUrl],
  ]) {
    if (!/^amqps?:\/\//.test(url) || !URL.canParse(url))
      throw invalid(`${name} must be an amqp:// or amqps:// URL, e.g. ${DEFAULT_AMQP_URL}.`);
  }
  // The vhost travels in the AMQP handshake, so no proxy can change it: endpoints and SDKs must name the service's.
  if (vhostOf(amqpPublicUrl) !== vhostOf(amqpUrl)) {
    throw invalid(
      `amqpPublicUrl names the vhost ${JSON.stringify(vhostOf(amqpPublicUrl))} but amqpUrl names ${JSON.stringify(vhostOf(amqpUrl))}; endpoints and SDKs must reach the service's vhost, so give --amqp-public-url the same path as --amqp-url.`,
    );
  }
  const sharedBrokerAccount = options.sharedBrokerAccount ?? false;
  if (sharedBrokerAccount && options.amqpManagementUrl !== undefined) {
    throw invalid(
      "amqpManagementUrl (scoped broker accounts) and sharedBrokerAccount (one account for everyone) contradict each other; pass only one of --amqp-management-url and --shared-broker-account.",
    );
  }
  const amqpManagementUrl = sharedBrokerAccount ? undefined : (options.amqpManagementUrl ?? managementUrlFor(amqpUrl));
  if (options.amqpManagementUrl !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(options.amqpManagementUrl);
    } catch {}
    if (!u || !/^https?:$/.test(u.protocol) || !u.username) {
      throw invalid(
        "amqpManagementUrl must be an http(s) URL with an administrator's credentials, e.g. http://guest:guest@127.0.0.1:15672.",
      );
    }
  }
  const resultRetentionMs = parseDuration("resultRetention", options.resultRetention ?? "7d");
  const amqpQueueType = options.amqpQueueType ?? "classic";
  if (!QUEUE_TYPES.includes(amqpQueueType)) {
    throw invalid(
      `amqpQueueType ${JSON.stringify(amqpQueueType)} is not one of ${QUEUE_TYPES.join(", ")} (--amqp-queue-type).`,
    );
  }
  const maxTaskBytes = positiveInteger("maxTaskBytes", options.maxTaskBytes, DEFAULT_MAX_TASK_BYTES);
  const maxRequestBytes = positiveInteger("maxRequestBytes", options.maxRequestBytes, DEFAULT_MAX_REQUEST_BYTES);
  if (maxRequestBytes < maxTaskBytes) {
    throw invalid(
      `maxRequestBytes (${maxRequestBytes}) is below maxTaskBytes (${maxTaskBytes}), so a task at the limit could never be sent; raise maxRequestBytes or lower maxTaskBytes.`,
    );
  }
  const taskBatch = Object.freeze({
    maxCount: boundedWholeNumber(
      "taskBatchCount",
      "--task-batch-count",
      options.taskBatchCount,
      DEFAULT_TASK_BATCH_COUNT,
      [1, MAX_TASK_BATCH_COUNT],
      "tasks",
    ),
    maxBytes: boundedWholeNumber(
      "taskBatchBytes",
      "--task-batch-bytes",
      options.taskBatchBytes,
      DEFAULT_TASK_BATCH_BYTES,
      [1024, MAX_TASK_BATCH_BYTES],
      "bytes",
    ),
  });
  let publicUrl: string | undefined;
  if (options.publicUrl !== undefined) {
    const u = URL.canParse(options.publicUrl) ? new URL(options.publicUrl) : undefined;
    if (!u || !/^https?:$/.test(u.protocol) || u.pathname !== "/" || u.search || u.hash || u.username) {
      throw invalid(
        `publicUrl must be the http(s) origin the service is reached at, without a path, e.g. https://conduit.example.edu; got ${JSON.stringify(options.publicUrl)}.`,
      );
    }
    publicUrl = u.origin;
  }
  const logLevel = options.logLevel ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) {
    throw invalid(`logLevel ${JSON.stringify(logLevel)} is not one of ${LOG_LEVELS.join(", ")}.`);
  }
  const retentionDays = options.haFunctionRetentionDays ?? 90;
  if (!Number.isSafeInteger(retentionDays) || retentionDays <= 0 || retentionDays > 3650) {
    throw invalid(
      `haFunctionRetentionDays must be a whole number of days from 1 to 3650 (--ha-function-retention-days); got ${JSON.stringify(options.haFunctionRetentionDays)}.`,
    );
  }
  if (options.clock !== undefined && typeof options.clock !== "function") {
    throw invalid("clock must be a function returning milliseconds since the epoch, such as Date.now.");
  }
  const store: StoreLocation =
    options.databaseUrl !== undefined
      ? { kind: "postgres", url: options.databaseUrl }
      : { kind: "pglite", dataDir: options.dataDir ?? paths.serviceDataDir() };
  return Object.freeze({
    host: options.host ?? "127.0.0.1",
    port,
    store: Object.freeze(store),
    amqpUrl,
    amqpPublicUrl,
    amqpManagementUrl,
    sharedBrokerAccount,
    resultRetentionMs,
    amqpQueueType,
    maxTaskBytes,
    maxRequestBytes,
    taskBatch,
    writeCredentials: options.writeCredentials ?? true,
    logLevel,
    publicUrl,
    haFunctionRetentionMs: retentionDays * 86_400_000,
    clock: options.clock ?? Date.now,
  });
}
