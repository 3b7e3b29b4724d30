/**
 * Options of the HighThroughputEngine (`GlobusComputeEngine` in Globus
 * configs), as a table: checked once, defaults applied, frozen.
 */

import {
  booleanField,
  choiceField,
  doc,
  type Field,
  integerField,
  mappingField,
  notImplementedField,
  type Options,
  partlyImplementedField,
  refusedField,
  secondsField,
  stringField,
} from "../option-fields.js";
import type { Provider } from "../providers/provider-types.js";
import { createProvider, providerSchema } from "../providers/registry.js";
import { COMMON_ENGINE_FIELDS, WORKER_LIMIT_FIELDS } from "./engine-options.js";

/** What `address` may be: the interchange listens on loopback only. */
const LOOPBACK_ADDRESSES: readonly string[] = ["127.0.0.1", "localhost", "::1"];

/** How blocks follow the load. */
export type ScalingStrategy =
  /** Add blocks while tasks wait for a worker; remove blocks idle longer than max_idletime, down to min_blocks. */
  | "simple"
  /** The same as `simple` here (Globus adds partial scale-in; Conduit's `simple` already scales in per block). */
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
    "`simple` and `htex_auto_scale` add blocks while tasks wait and remove idle ones; `none` keeps `init_blocks`.",
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
   */
  prefetch_capacity: doc(
    "Tasks a block holds beyond one per worker, handed to its workers as they free up; 0 for long, uneven tasks.",
    integerField({ min: 0, fallback: 2 }),
  ),
  max_retries_on_system_failure: doc(
    "Times a task runs again after its worker or block died under it.",
    integerField({ min: 0, fallback: 0 }),
  ),
  job_status_kwargs: doc(
    "Scaling: `max_idletime`, `strategy_period`, `strategy`.",
    mappingField("job_status_kwargs", JOB_STATUS_FIELDS),
  ),
  provider: providerField(),
  ...COMMON_ENGINE_FIELDS,
  ...WORKER_LIMIT_FIELDS,
  encrypted: doc(
    "Encryption between the interchange and its workers; only `false` is implemented.",
    partlyImplementedField(booleanField(undefined), {
      expected: "false",
      schema: { const: false },
      allows: (value) => value === false,
      what: (path) => `\`${path}: true\` (encrypted traffic between the interchange and its workers)`,
      fix: "remove it or set it to false",
    }),
    "`false`",
  ),
  address: doc(
    "The address blocks reach the interchange at; only loopback is implemented (it listens on 127.0.0.1).",
    partlyImplementedField(stringField(undefined), {
      expected: `a loopback address (${LOOPBACK_ADDRESSES.join(", ")})`,
      schema: { enum: [...LOOPBACK_ADDRESSES] },
      allows: (value) => LOOPBACK_ADDRESSES.includes(value as string),
      what: (path, value) =>
        `an \`${path}\` other than loopback (${JSON.stringify(value)}: blocks on other hosts reaching the interchange)`,
      fix: "remove it or set it to 127.0.0.1",
    }),
    "`127.0.0.1`",
  ),
  container_type: notImplementedField("running tasks in containers; they would run on the host"),
  container_uri: notImplementedField("the image of a task container; tasks would run on the host"),
  container_cmd_options: notImplementedField("options of the container command; tasks would run on the host"),
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
