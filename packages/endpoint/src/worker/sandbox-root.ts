/**
 * The variable that carries run_in_sandbox's root folder from a block manager
 * to its workers: a module of its own, so the block manager reads it without
 * loading the task runner (execute-task.ts) that only workers need.
 */
export const SANDBOX_ROOT_ENV = "CONDUIT_SANDBOX_ROOT";
