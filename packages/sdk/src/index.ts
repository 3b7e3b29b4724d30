/**
 * @conduit/sdk: run JavaScript functions on Conduit compute endpoints.
 *
 * - {@link Executor}: `submit(fn, ...args)` returns a {@link TaskFuture} at once; tasks
 *   are batched, and results are pushed back over AMQP (no polling).
 * - {@link Client}: the REST API (endpoints, functions, tasks, results).
 *
 * The service URL comes from `CONDUIT_SERVICE_URL`, else `$CONDUIT_USER_DIR/credentials.json`;
 * credentials in one order: a client identity (`CONDUIT_CLIENT_ID`/`_SECRET`),
 * `CONDUIT_TOKEN`, the login cached in `tokens.json` (`npx conduit login`), `credentials.json`
 * for that service; on a terminal, the first call logs in when none is found.
 *
 * ```ts
 * import { Executor } from "@conduit/sdk";
 *
 * const add = (a: number, b: number) => a + b;
 * const ex = new Executor({ endpointId, userEndpointConfig: { worker_init: "" } });
 * console.log(await ex.submit(add, 30, 12).result()); // 42
 * ex.userEndpointConfig.worker_init = "true"; // later submits run in a second user endpoint process
 * console.log(await ex.submit(add, 21, 21).result()); // 42
 * await ex.shutdown();
 * ```
 *
 * Functions travel as source text: a submitted function must not rely on
 * variables or imports from outside its body (pass values as arguments, import
 * inside the body). Call `shutdown()` (or use `await using ex = new Executor(…)`)
 * when done: the broker connection keeps the process alive until then.
 */

export {
  ConduitError,
  type ErrorCode,
  PayloadTooLargeError,
  TaskExecutionFailed,
  type WireError,
} from "@conduit/protocol";
export { BundledCode, type BundledCodeOptions } from "./bundled-code.js";
export {
  type BatchStatusResponse,
  type CancelTaskResponse,
  Client,
  type ClientOptions,
  type DeleteResponse,
  type EndpointInfo,
  type EndpointStatusResponse,
  type FunctionInfo,
  type IdentityInfo,
  type RegisterEndpointRequest,
  type RegisterEndpointResponse,
  type RegisterFunctionOptions,
  type RegisterFunctionResponse,
  type SubmitRequest,
  type SubmitResponse,
  type TaskGroupDetail,
  type TaskGroupInfo,
  type TaskStatus,
} from "./client.js";
export {
  AuthPolicyUnmetError,
  CancelledError,
  type CancelReason,
  ConduitApiError,
  FutureCancelledError,
  ServiceUnreachableError,
} from "./errors.js";
export {
  Executor,
  type ExecutorEvents,
  type ProgressEvent,
  type ResultEvent,
  type ShutdownOptions,
} from "./executor.js";
export type { ExecutorOptions } from "./executor-options.js";
export { type AnyFunction, functionSource } from "./function-source.js";
export { serializeArguments, serializeFunction } from "./serialize.js";
export { MPIFunction, ShellFunction, type ShellFunctionOptions, type ShellResult } from "./shell-function.js";
export { TaskFuture } from "./task-future.js";
export { SDK_VERSION } from "./user-runtime.js";
