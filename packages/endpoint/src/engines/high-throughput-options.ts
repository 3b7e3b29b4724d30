/**
 * Options of the HighThroughputEngine (`GlobusComputeEngine` in Globus
 * configs), as a table: checked once, defaults applied, frozen.
 */

import { isIP } from "node:net";
import { ConfigError } from "../errors.js";
import {
  booleanField,
  choiceField,
  doc,
  type Field,
  integerField,
  mappingField,
  type Options,
  refusedField,
  secondsField,
  show,
  stringField,
} from "../option-fields.js";
import type { Provider } from "../providers/provider-types.js";
import { createProvider, providerSchema } from "../providers/registry.js";
import { CPU_AFFINITY_FORMS, type CpuAffinity, parseCpuAffinity } from "../worker/cpu-affinity.js";
import { CONTAINER_TYPES, type ContainerType, containerSettings } from "./container-command.js";
import { COMMON_ENGINE_FIELDS, WORKER_LIMIT_FIELDS } from "./engine-options.js";

/** A DNS host name (RFC 1123 labels), as JSON Schema's `hostname` format. */
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** `address` values that mean "every address of this host". */
export const EVERY_ADDRESS: readonly string[] = ["0.0.0.0", "::"];

/** How blocks follow the load. */
export type ScalingStrategy =
  /** Add blocks while tasks wait for a worker; remove blocks idle longer than max_idletime, down to min_blocks. */
  | "simple"
  /** `simple`, and while worker slots exceed the tasks (× parallelism) for max_idletime, partly idle blocks are drained (no new tasks), then cancelled once empty. */
  | "htex_auto_scale"
  /** Keep init_blocks blocks (at least one while tasks wait); never scale in. */
  | "none";

export const JOB_STATUS_FIELDS = {
  max_idletime: doc(
    "Seconds a block may stay idle before it is removed (down to `min_blocks`).",
    secondsField({ positive: false, fallback: 120 }),
  ),
  strategy_period: doc("Seconds between scaling decisions.", secondsField({ positive: true, fallback: 5 })),
  strategy: doc(
    "`simple` adds blocks while tasks wait and removes idle ones; `htex_auto_scale` also drains partly idle blocks while there are more worker slots than tasks; `none` keeps `init_blocks`.",
    choiceField<ScalingStrategy>(["simple", "htex_auto_scale", "none"], "simple"),
  ),
};

function providerField(): Field<Provider> {
  return {
    expected: "a provider mapping",
    schema: providerSchema,
    parse: (value, path, source) => createProvider(value, path, source),
    fallback: () => createProvider({ type: "LocalProvider" }),
    description: "Where blocks come from: a mapping with a `type` and that provider's options.",
    defaultText: "`{type: LocalProvider}`",
  };
}

function addressField(): Field<string | undefined> {
  const expected = "an IP address or host name of this host (0.0.0.0 or :: for every address)";
  return {
    expected,
    schema: () => ({ type: "string", anyOf: [{ format: "ipv4" }, { format: "ipv6" }, { format: "hostname" }] }),
    parse(value, path) {
      if (typeof value !== "string" || (isIP(value) === 0 && !HOST_NAME.test(value))) {
        throw new ConfigError(`${path} must be ${expected} (got ${show(value)}).`);
      }
      return value;
    },
    fallback: () => undefined,
  };
}

function portField(): Field<number | undefined> {
  return {
    ...integerField({ min: 1, fallback: undefined }),
    expected: "a port number (1-65535)",
    schema: () => ({ type: "integer", minimum: 1, maximum: 65535 }),
    parse(value, path) {
      if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
        throw new ConfigError(`${path} must be a port number (1-65535) (got ${show(value)}).`);
      }
      return value;
    },
  };
}

function portRangeField(): Field<readonly [number, number] | undefined> {
  const expected = "a list of two port numbers [low, high] with low ≤ high";
  return {
    expected,
    schema: () => ({
      type: "array",
      items: { type: "integer", minimum: 1, maximum: 65535 },
      minItems: 2,
      maxItems: 2,
    }),
    parse(value, path) {
      const ok =
        Array.isArray(value) &&
        value.length === 2 &&
        value.every((p) => Number.isInteger(p) && p >= 1 && p <= 65535) &&
        value[0] <= value[1];
      if (!ok) throw new ConfigError(`${path} must be ${expected} (got ${show(value)}).`);
      return Object.freeze([value[0], value[1]] as [number, number]);
    },
    fallback: () => undefined,
  };
}

/** `available_accelerators`: a count N (devices "0" to "N-1") or the device ids; none: no accelerators. */
function acceleratorsField(): Field<readonly string[]> {
  const expected = "a positive integer or a list of device ids (strings)";
  return {
    expected,
    schema: () => ({
      anyOf: [
        { type: "integer", minimum: 1 },
        { type: "array", items: { type: "string" }, minItems: 1 },
      ],
    }),
    parse(value, path) {
      if (typeof value === "number" && Number.isInteger(value) && value >= 1) {
        return Object.freeze(Array.from({ length: value }, (_, i) => String(i)));
      }
      if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "string")) {
        return Object.freeze([...(value as string[])]);
      }
      throw new ConfigError(`${path} must be ${expected} (got ${show(value)}).`);
    },
    fallback: () => Object.freeze([]),
    defaultText: "none",
  };
}

function cpuAffinityField(): Field<CpuAffinity> {
  const expected = CPU_AFFINITY_FORMS;
  return {
    expected,
    schema: () => ({
      type: "string",
      anyOf: [
        { enum: ["none", "block", "block-reverse", "alternating"] },
        { pattern: "^list:\\d+(-\\d+)?(,\\d+(-\\d+)?)*(:\\d+(-\\d+)?(,\\d+(-\\d+)?)*)*$" },
      ],
    }),
    parse(value, path) {
      try {
        if (typeof value !== "string") throw new Error();
        return Object.freeze(parseCpuAffinity(value));
      } catch {
        throw new ConfigError(`${path} must be ${expected} (got ${show(value)}).`);
      }
    },
    fallback: () => Object.freeze({ kind: "none" }),
    defaultText: "`none`",
  };
}

/** `drain_period`: seconds, or none (never drain). */
function optionalSecondsField(): Field<number | undefined> {
  const expected = "a number of seconds > 0";
  return {
    expected,
    schema: () => ({ type: "number", exclusiveMinimum: 0 }),
    parse(value, path) {
      if (typeof value !== "number" || !Number.isFinite(value) || !(value > 0)) {
        throw new ConfigError(`${path} must be ${expected}, or left out to never drain (got ${show(value)}).`);
      }
      return value;
    },
    fallback: () => undefined,
  };
}

function positiveNumberField(fallback: number): Field<number> {
  return {
    expected: "a number > 0",
    schema: () => ({ type: "number", exclusiveMinimum: 0 }),
    parse(value, path) {
      if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
        throw new ConfigError(`${path} must be a number > 0 (got ${show(value)}).`);
      }
      return value;
    },
    fallback: () => fallback,
  };
}

export const HIGH_THROUGHPUT_FIELDS = {
  max_workers_per_node: doc("Worker processes each block (node) runs.", integerField({ min: 1, fallback: 1 })),
  /*
   * Parsl/Globus HTEX: a block manager takes up to `workers + prefetch_capacity` tasks.
   * Why 2 and not Parsl's 0: with 0, a worker that finishes a task idles for a
   * whole round trip (block manager → interchange → block manager) before its
   * next task arrives, which for short tasks is as long as the task itself.
   * Two queued tasks hide that gap, and a burst then travels in batched frames.
   * The cost is fairness: a prefetched task waits behind the task running on
   * its block, even if another block frees up first. The interchange limits
   * that by prefetching only when no block, connected or starting, has a worker
   * free for the task, and by counting prefetched tasks as waiting when it
   * decides to add blocks; a small number bounds how many tasks one long task
   * can hold up. Set 0 for long, uneven tasks, where that matters more.
   * Above 0 it is a floor: a block running short tasks may hold what it
   * answers in about 20 ms (interchange.ts, prefetchDepth), since there the
   * round trip, not fairness, is what costs.
   */
  cores_per_worker: doc(
    "CPU cores each worker takes: a block runs at most (the node's CPUs ÷ cores_per_worker) workers, at least one.",
    positiveNumberField(1),
  ),
  available_accelerators: doc(
    "Accelerators of each node (a count or device ids): one worker per accelerator (at most `max_workers_per_node`), each seeing only its own through `CUDA_VISIBLE_DEVICES`, `ROCR_VISIBLE_DEVICES` and `ZE_AFFINITY_MASK`.",
    acceleratorsField(),
  ),
  mem_per_worker: doc(
    "GB of memory each worker needs: a block runs at most (the node's available memory ÷ mem_per_worker) workers, at least one; only sizes the block (`max_memory_per_worker` is the enforced limit).",
    { ...positiveNumberField(1), fallback: () => undefined } as Field<number | undefined>,
    "none (memory does not limit the worker count)",
  ),
  cpu_affinity: doc(
    "CPUs each worker may run on (`taskset -c`): `none`; `block` (adjacent CPUs per worker), `block-reverse` (the same from the last CPU), `alternating` (round robin), or `list:0,1:2-3` (one entry per worker).",
    cpuAffinityField(),
  ),
  drain_period: doc(
    "Seconds after which a block manager drains: it takes no new tasks, finishes the ones it holds and exits; scaling starts a new block if tasks wait.",
    optionalSecondsField(),
    "none (never drain)",
  ),
  run_in_sandbox: doc(
    "Run each task in a folder of its own, `<working_dir>/<task id>`, named by `CONDUIT_TASK_SANDBOX_DIR`.",
    booleanField(false),
  ),
  prefetch_capacity: doc(
    "Tasks a block holds beyond one per worker, handed to its workers as they free up (a block that answers faster than it can be refilled holds more: what it answers in about 20 ms, at most 32 per worker); 0 for long, uneven tasks (then never more).",
    integerField({ min: 0, fallback: 2 }),
  ),
  max_retries_on_system_failure: doc(
    "Times a task runs again after its worker or block died under it.",
    integerField({ min: 0, fallback: 0 }),
  ),
  job_status_kwargs: doc(
    "Scaling: `max_idletime`, `strategy_period`, `strategy` (with the provider's `parallelism`).",
    mappingField("job_status_kwargs", JOB_STATUS_FIELDS),
  ),
  provider: providerField(),
  ...COMMON_ENGINE_FIELDS,
  working_dir: doc(
    "The folder block managers and workers run in (relative paths: below the UEP's folder); also the root of `run_in_sandbox` folders.",
    stringField(undefined),
    "the UEP's folder; `tasks_working_dir` for sandboxes",
  ),
  ...WORKER_LIMIT_FIELDS,
  encrypted: doc(
    "TLS between the interchange and its block managers, with certificates made at each start and checked both ways; `false`: plain TCP with the secret only.",
    booleanField(true),
  ),
  address: doc(
    "The address the interchange listens on and blocks reach it at; `0.0.0.0` or `::`: every address, and blocks try each address of this host.",
    addressField(),
    "`127.0.0.1` (blocks on this host only)",
  ),
  worker_port: doc("The port the interchange listens on for block managers.", portField(), "any free port"),
  worker_port_range: doc(
    "Ports `[low, high]` the interchange may listen on (the first free one, tried in random order).",
    portRangeField(),
    "any free port",
  ),
  heartbeat_period: doc(
    "Seconds between a block manager's heartbeats to the interchange.",
    secondsField({ positive: true, fallback: 30 }),
  ),
  heartbeat_threshold: doc(
    "Seconds without a heartbeat after which the interchange counts a block as lost (and the block manager, the interchange).",
    secondsField({ positive: true, fallback: 120 }),
  ),
  container_type: doc(
    "Runs each block in a container: `docker`, `podman`, `podman-hpc`, `apptainer`, `singularity`, `custom` (your own command, in `container_cmd_options`) or `None`.",
    choiceField<ContainerType>(CONTAINER_TYPES, "None"),
  ),
  container_uri: doc(
    "The image blocks run in (required with a container_type other than `custom`); it needs Node and Conduit's endpoint package.",
    stringField(undefined),
  ),
  container_cmd_options: doc(
    "Options of `<container_type> run`, as shell words; with `custom`, the whole command, where `{EXECUTOR_RUNDIR}` and `{EXECUTOR_LAUNCH_CMD}` are replaced.",
    stringField(undefined),
  ),
  // As upstream's GlobusComputeEngine: MPI tasks need the MPI engine.
  mpi_launcher: doc(
    "Refused: MPI tasks run on the MPIEngine.",
    refusedField(
      (path) =>
        `\`${path}\` is not a HighThroughputEngine option; use \`type: MPIEngine\` (or GlobusMPIEngine) for MPI tasks, or remove it.`,
    ),
  ),
};

export type HighThroughputOptions = Options<typeof HIGH_THROUGHPUT_FIELDS>;

/** Checks the combinations one field alone cannot: throws a ConfigError naming both fields. */
export function checkHighThroughputOptions(options: HighThroughputOptions, path: string, source?: string): void {
  if (options.worker_port !== undefined && options.worker_port_range !== undefined) {
    throw new ConfigError(
      `${path}.worker_port and ${path}.worker_port_range are both set; keep one (worker_port for one port, worker_port_range for any of several).`,
    );
  }
  containerSettings(options, path, source);
  if (options.heartbeat_threshold < 2 * options.heartbeat_period) {
    throw new ConfigError(
      `${path}.heartbeat_threshold (${options.heartbeat_threshold} s) is less than twice ${path}.heartbeat_period (${options.heartbeat_period} s), so one late heartbeat would count a block as lost; raise heartbeat_threshold or lower heartbeat_period.`,
    );
  }
  const affinity = options.cpu_affinity;
  if (affinity.kind === "list" && affinity.workers.length !== options.max_workers_per_node) {
    throw new ConfigError(
      `${path}.cpu_affinity lists the CPUs of ${affinity.workers.length} worker(s) but ${path}.max_workers_per_node is ${options.max_workers_per_node}; give one \`:\`-separated entry per worker, or change max_workers_per_node.`,
    );
  }
}
