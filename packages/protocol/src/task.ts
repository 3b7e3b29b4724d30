/**
 * `@conduit/protocol/task`: what a process that only runs tasks needs (a
 * block manager and its workers): errors, the serialization strategies,
 * bundled code, shell functions and paths. Unlike `@conduit/protocol/wire` it
 * has no broker link, message schemas or topology, which such a process never
 * uses and each of them would load at its start (and keep in its heap).
 */
export type { BundledCodeData } from "./bundled-code.js";
export { bundleHash, checkBundleHash, decodeBundledCode, encodeBundledCode } from "./bundled-code.js";
export type { ErrorCode } from "./error-codes.js";
export type { WireError } from "./errors.js";
export { ConduitError, ReportedError, TaskExecutionFailed, toWireError } from "./errors.js";
export type { ConduitPaths } from "./paths.js";
export { paths } from "./paths.js";
export type { CallArguments, CodeStrategy, DataStrategy, DeserializeOptions, Payload } from "./serialization.js";
export {
  BUNDLED_CODE,
  CODE_STRATEGIES,
  DATA_STRATEGIES,
  deserializeData,
  isCodeStrategy,
  isDataStrategy,
  JSON_DATA,
  payloadBytes,
  SOURCE_CODE,
  STRUCTURED_DATA,
  serializeData,
} from "./serialization.js";
export {
  formatShellCommand,
  SHELL_CODE,
  type ShellResult,
  type ShellSpec,
  shellQuote,
} from "./shell-code.js";
