/**
 * Option rows every engine shares, and the per-worker limits that only the
 * process-based engines (ProcessPoolEngine, HighThroughputEngine) take: a
 * worker thread shares the UEP's process, so a ThreadPoolEngine refuses them
 * with a sentence that says which engines take them.
 */

import { doc, integerField, notImplementedField, refusedField, stringField } from "../option-fields.js";
import { allowedSerializersField } from "./serializer-allowlist.js";

export const COMMON_ENGINE_FIELDS = {
  // Checked here; the UEP applies allowed_serializers to each task before it reaches the engine.
  allowed_serializers: doc(
    "Serialization strategies the UEP accepts (at least one code and one data strategy, or the wildcards `conduit.*Code`, `conduit.*Data`).",
    allowedSerializersField(),
    "all",
  ),
  result_size_limit: doc(
    "Largest encoded result a task may return, in bytes; a larger one fails the task in the worker.",
    integerField({ min: 1, fallback: 10_000_000 }),
  ),
  modules_dir: doc(
    "Where `conduit.BundledCode` externals resolve from (`<modules_dir>/node_modules`).",
    stringField(undefined),
    "`$CONDUIT_USER_DIR/modules`",
  ),
  label: notImplementedField("a name for the engine in logs"),
  working_dir: notImplementedField("the folder blocks and workers run in; they run in the UEP's folder"),
};

export const WORKER_LIMIT_FIELDS = {
  max_memory_per_worker: doc(
    "Each worker's JavaScript heap in MiB (V8's `--max-old-space-size`); where the UEP has a cgroup, also the memory of the worker and what it starts, plus 256 MiB.",
    integerField({ min: 16, fallback: undefined }),
    "no limit (V8's own)",
  ),
  max_open_files_per_worker: doc(
    "Open files of each worker and of every process its tasks start (`RLIMIT_NOFILE`, soft and hard); a worker needs about a hundred to load its modules.",
    integerField({ min: 256, fallback: undefined }),
    "the endpoint's own limit",
  ),
  max_user_processes: doc(
    "Processes of the endpoint's local user, counted by the kernel across the host (`RLIMIT_NPROC`), as seen by workers and what they start.",
    integerField({ min: 1, fallback: undefined }),
    "the endpoint's own limit",
  ),
};

function threadsShareTheProcess(path: string): string {
  return `\`${path}\` is not a ThreadPoolEngine option, because worker threads share the UEP's process; use ProcessPoolEngine or HighThroughputEngine for per-worker limits, or remove it.`;
}

const THREADS_REFUSE = "Refused: worker threads share the UEP's process; use a process-based engine.";

/** The same keys on a ThreadPoolEngine: refused, naming the engines that take them. */
export const THREAD_WORKER_LIMIT_FIELDS = {
  max_memory_per_worker: doc(THREADS_REFUSE, refusedField(threadsShareTheProcess)),
  max_open_files_per_worker: doc(THREADS_REFUSE, refusedField(threadsShareTheProcess)),
  max_user_processes: doc(THREADS_REFUSE, refusedField(threadsShareTheProcess)),
};
