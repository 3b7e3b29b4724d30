/**
 * Options of the HighThroughputEngine (`GlobusComputeEngine` in Globus
 * configs), as a table: checked once, defaults applied, frozen.
 */

import type { Provider } from "../providers/provider-types.js";
import { createProvider } from "../providers/registry.js";
import { allowedSerializersField } from "../user-endpoint/serializer-allowlist.js";
import {
  booleanField,
  choiceField,
  type Field,
  integerField,
  mappingField,
  type Options,
  secondsField,
  stringField,
  WORKER_LIMIT_FIELDS,
} from "./option-fields.js";

/** How blocks follow the load. */
export type ScalingStrategy =
  /** Add blocks while tasks wait for a worker; remove blocks idle longer than max_idletime, down to min_blocks. */
  | "simple"
  /** The same as `simple` here (Globus adds partial scale-in; Conduit's `simple` already scales in per block). */
  | "htex_auto_scale"
  /** Keep init_blocks blocks (at least one while tasks wait); never scale in. */
  | "none";

export const JOB_STATUS_FIELDS = {
  /** Seconds a block may stay idle before it is removed (down to min_blocks). @default 120 */
  max_idletime: secondsField({ positive: false, fallback: 120 }),
  /** Seconds between scaling decisions. @default 5 */
  strategy_period: secondsField({ positive: true, fallback: 5 }),
  /** @default "simple" */
  strategy: choiceField<ScalingStrategy>(["simple", "htex_auto_scale", "none"], "simple"),
};

function providerField(): Field<Provider> {
  return {
    expected: "a provider mapping",
    parse: (value, path) => createProvider(value, path),
    fallback: () => createProvider({ type: "LocalProvider" }),
  };
}

export const HIGH_THROUGHPUT_FIELDS = {
  /** Worker processes each block (node) runs. @default 1 */
  max_workers_per_node: integerField({ min: 1, fallback: 1 }),
  /**
   * Tasks a block holds beyond one per worker, queued in its block manager and
   * handed to its workers as they free up (Parsl/Globus HTEX: a manager takes up
   * to `workers + prefetch_capacity` tasks). @default 2
   *
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
  prefetch_capacity: integerField({ min: 0, fallback: 2 }),
  /** Times a task runs again after its worker or block died under it. @default 0 */
  max_retries_on_system_failure: integerField({ min: 0, fallback: 0 }),
  /** Scaling: `{max_idletime, strategy_period, strategy}`. */
  job_status_kwargs: mappingField("job_status_kwargs", JOB_STATUS_FIELDS),
  /** Where blocks come from. @default {type: LocalProvider} */
  provider: providerField(),
  // Checked here; the UEP applies allowed_serializers to each task before it reaches the engine.
  allowed_serializers: allowedSerializersField(),
  /** Largest encoded result a task may return, in bytes; a larger one fails the task in the worker. @default 10000000 */
  result_size_limit: integerField({ min: 1, fallback: 10_000_000 }),
  /** Where `conduit.BundledCode` externals resolve from (`<modules_dir>/node_modules`). @default "$CONDUIT_USER_DIR/modules" (~/.conduit/modules) */
  modules_dir: stringField(undefined),
  ...WORKER_LIMIT_FIELDS,
  encrypted: booleanField(undefined),
  label: stringField(undefined),
  container_type: stringField(undefined),
  container_uri: stringField(undefined),
  container_cmd_options: stringField(undefined),
  working_dir: stringField(undefined),
  address: stringField(undefined),
};

export type HighThroughputOptions = Options<typeof HIGH_THROUGHPUT_FIELDS>;
