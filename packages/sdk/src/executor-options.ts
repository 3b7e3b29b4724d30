/**
 * Executor options: what the user passes, checked once and compiled into a
 * frozen object with every default filled in.
 */
import {
  ConduitError,
  DATA_STRATEGIES,
  type DataStrategy,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_TASK_BYTES,
  isDataStrategy,
  STRUCTURED_DATA,
} from "@conduit/protocol";
import { Client } from "./client.js";

export interface ExecutorOptions {
  /** The endpoint that runs the tasks. */
  endpointId: string;
  /**
   * Variables for the endpoint's `user_config_template.yaml.j2`. Each submit takes a
   * snapshot, so changing them (in place or by assignment to `executor.userEndpointConfig`)
   * affects later submits only; different values run in different user endpoint processes.
   * @default {}
   */
  userEndpointConfig?: Record<string, unknown>;
  /** Resources per task (e.g. `{ num_nodes: 2, ranks_per_node: 4 }` for MPI functions); snapshotted like `userEndpointConfig`. */
  resourceSpecification?: Record<string, unknown>;
  /**
   * Submit into (and receive the results of) this existing task group; needed by `reload()`.
   * @default a new group, created by the first submit
   */
  taskGroupId?: string;
  /** Most tasks per submit request. @default 128 */
  batchSize?: number;
  /**
   * Port of the broker to use instead of the one in the AMQP URL the service returns
   * (for a tunnel or a proxy in front of RabbitMQ); host, vhost and credentials are kept.
   * @default the URL's own port
   */
  amqpPort?: number;
  /**
   * Data strategy for the arguments (`conduit.StructuredData`: Node's structured clone;
   * `conduit.JSONData`: plain JSON only). The endpoint must allow it (`allowed_serializers`).
   * @default "conduit.StructuredData"
   */
  serializer?: DataStrategy;
  /** @default a Client with the default service URL and token (see ClientOptions) */
  client?: Client;
  /** Largest task (function source + arguments, in bytes); a larger one is refused before upload. @default DEFAULT_MAX_TASK_BYTES (10 MiB) */
  maxTaskBytes?: number;
  /** Largest submit request body in bytes; batches are split to stay under it. @default DEFAULT_MAX_REQUEST_BYTES (32 MiB) */
  maxRequestBytes?: number;
}

export interface CompiledExecutorOptions {
  readonly endpointId: string;
  readonly taskGroupId: string | undefined;
  readonly batchSize: number;
  readonly client: Client;
  readonly amqpPort: number | undefined;
  readonly serializer: DataStrategy;
  readonly maxTaskBytes: number;
  readonly maxRequestBytes: number;
}

export function compileExecutorOptions(options: ExecutorOptions): CompiledExecutorOptions {
  if (typeof options !== "object" || options === null) {
    throw badOption('Executor needs options; pass { endpointId: "<endpoint id>" }.');
  }
  const { endpointId, taskGroupId, batchSize = 128, amqpPort, serializer = STRUCTURED_DATA } = options;
  const { maxTaskBytes = DEFAULT_MAX_TASK_BYTES, maxRequestBytes = DEFAULT_MAX_REQUEST_BYTES } = options;
  if (typeof endpointId !== "string" || endpointId === "") {
    throw badOption(
      "endpointId is missing; pass the id that `conduit-endpoint list` shows for the endpoint to run on.",
    );
  }
  if (taskGroupId !== undefined && (typeof taskGroupId !== "string" || taskGroupId === "")) {
    throw badOption("taskGroupId must be a task group id string; leave it out to start a new group.");
  }
  positiveInteger("batchSize", batchSize);
  if (amqpPort !== undefined && (!Number.isInteger(amqpPort) || amqpPort < 1 || amqpPort > 65535)) {
    throw badOption(
      `amqpPort must be a TCP port (1-65535), got ${String(amqpPort)}; leave it out to use the service's.`,
    );
  }
  if (typeof serializer !== "string" || !isDataStrategy(serializer)) {
    throw badOption(
      `serializer ${JSON.stringify(serializer) ?? String(serializer)} is not a data strategy; use one of ${DATA_STRATEGIES.map((name) => JSON.stringify(name)).join(", ")}.`,
    );
  }
  positiveInteger("maxTaskBytes", maxTaskBytes);
  positiveInteger("maxRequestBytes", maxRequestBytes);
  if (maxTaskBytes > maxRequestBytes) {
    throw badOption(
      `maxTaskBytes (${maxTaskBytes}) is larger than maxRequestBytes (${maxRequestBytes}), so a task could fit one but not the other; lower maxTaskBytes or raise maxRequestBytes.`,
    );
  }
  checkRecord("userEndpointConfig", options.userEndpointConfig);
  checkRecord("resourceSpecification", options.resourceSpecification);
  if (options.client !== undefined && !(options.client instanceof Client)) {
    throw badOption("client must be a Client from @conduit/sdk; leave it out to use the default one.");
  }
  return Object.freeze({
    endpointId,
    taskGroupId,
    batchSize,
    client: options.client ?? new Client(),
    amqpPort,
    serializer,
    maxTaskBytes,
    maxRequestBytes,
  });
}

/** Throws unless `value` is a plain object (or absent); used at construction and at each submit. */
export function checkRecord(field: string, value: unknown): void {
  if (value === undefined || value === null) return;
  const proto = typeof value === "object" ? Object.getPrototypeOf(value) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    const example =
      field === "resourceSpecification" ? "{ num_nodes: 2 }" : '{ worker_init: "source venv/bin/activate" }';
    throw badOption(`${field} must be an object of named values, e.g. ${example}.`);
  }
}

function positiveInteger(field: string, value: unknown): void {
  if (!Number.isInteger(value) || (value as number) < 1) {
    throw badOption(`${field} must be a positive whole number, got ${String(value)}.`);
  }
}

function badOption(message: string): ConduitError {
  return new ConduitError("BAD_OPTION", message);
}
