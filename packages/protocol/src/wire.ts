/**
 * `@conduit/protocol/wire`: what the processes that run tasks need (broker
 * messages and topology, serialization strategies, errors, states, paths)
 * without the REST API's schemas, the OAuth client and the login flows, whose
 * modules cost a UEP, a block manager and each worker about a quarter of a CPU
 * second to load. `@conduit/protocol` re-exports all of it.
 */

export type {
  AddIdpRequest,
  AdminIdentityInfo,
  AmqpInfo,
  ApiErrorBody,
  AuthorizationParameters,
  AuthPolicyInfo,
  BatchStatusRequest,
  BatchStatusResponse,
  CancelTaskResponse,
  ClientInfo,
  ClientSecretResponse,
  CreateAuthPolicyRequest,
  CreateClientRequest,
  CreateIdentityRequest,
  CreateIdentityResponse,
  CreateProjectRequest,
  CreateSubscriptionRequest,
  DeleteResponse,
  EndpointAmqpInfo,
  EndpointInfo,
  EndpointStatusResponse,
  FunctionInfo,
  HealthResponse,
  IdpInfo,
  IssueTokenResponse,
  ProjectInfo,
  RegisterEndpointRequest,
  RegisterEndpointResponse,
  RegisterFunctionRequest,
  RegisterFunctionResponse,
  RemoveClientResponse,
  RemoveIdentityResponse,
  RotateKeysResponse,
  SubmitRequest,
  SubmitResponse,
  SubmitTask,
  SubscriptionInfo,
  TaskGroupDetail,
  TaskGroupInfo,
  TaskStatusResponse,
  TokenInfo,
  TotpEnrolment,
  UpdateAuthPolicyRequest,
} from "./api.js";
export {
  API_PREFIX,
  DEFAULT_AMQP_URL,
  DEFAULT_MANAGEMENT_PORT,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_TASK_BYTES,
  DEFAULT_SERVICE_URL,
  HA_DISCLAIMER,
  MAX_BATCH_STATUS_IDS,
} from "./api.js";
export type { AmqpOptions, BrokerLink, BrokerOptions, ConfirmChannel, ConsumeMessage } from "./broker.js";
export { brokerUser, connectBroker, isAccountRefused, redactUrl } from "./broker.js";
export type { BundledCodeData } from "./bundled-code.js";
export { bundleHash, checkBundleHash, decodeBundledCode, encodeBundledCode } from "./bundled-code.js";
export type { ErrorCode, ErrorCodeInfo, HttpErrorCode } from "./error-codes.js";
export { ERROR_CODES, httpStatus, isErrorCode } from "./error-codes.js";
export type { WireError } from "./errors.js";
export {
  AuthPolicyUnmetError,
  BadMessageError,
  ConduitApiError,
  ConduitError,
  fromWireError,
  PayloadTooLargeError,
  ReportedError,
  TaskExecutionFailed,
  toWireError,
} from "./errors.js";
export type {
  BrokerMessage,
  CancelTasksMessage,
  CommandMessage,
  EngineStatusReport,
  HeartbeatMessage,
  IdentityInfo,
  MessageKind,
  ResultBatchMessage,
  ResultMessage,
  StartUepCommand,
  TaskBatchMessage,
  TaskMessage,
  TaskStatusMessage,
  UserRuntime,
} from "./messages.js";
export {
  decodeMessage,
  decodeMessageKeepingGoodResults,
  encodeMessage,
  MESSAGE_SCHEMAS,
  PROTOCOL_VERSION,
} from "./messages.js";
export type { ConduitPaths, Credentials } from "./paths.js";
export { paths } from "./paths.js";
export { RefusedSenders, routingKeyEndpoint, senderOf } from "./sender-check.js";
export type { CallArguments, CodeStrategy, DataStrategy, DeserializeOptions, Payload } from "./serialization.js";
export {
  BUNDLED_CODE,
  CODE_STRATEGIES,
  checkJsonValue,
  checkStructuredValue,
  DATA_STRATEGIES,
  deserializationError,
  deserializeData,
  isCodeStrategy,
  isDataStrategy,
  JSON_DATA,
  payloadBytes,
  SOURCE_CODE,
  STRUCTURED_DATA,
  serializeCall,
  serializeData,
  serializeJson,
  serializeStructured,
} from "./serialization.js";
export {
  formatShellCommand,
  SHELL_CODE,
  type ShellResult,
  type ShellSpec,
  shellQuote,
  shellTemplateFields,
} from "./shell-code.js";
export type { EndpointStatus, TaskState } from "./states.js";
export { ENDPOINT_STATUSES, TASK_STATES, TERMINAL_TASK_STATES } from "./states.js";
export type { ExchangeSpec, QueueChecker, QueueSpec, QueueType, TopologyChannel } from "./topology.js";
export {
  checkExchanges,
  commandQueue,
  commandQueueSpec,
  declareExchanges,
  declareQueue,
  declareTopology,
  directQueueSpec,
  endpointBrokerUser,
  ensureQueue,
  HEARTBEATS_EXCHANGE,
  HEARTBEATS_QUEUE,
  heartbeatsRoutingKey,
  QUEUE_OPTIONS,
  QUEUE_TYPES,
  queueMismatchError,
  queueOptions,
  RESULTS_EXCHANGE,
  RESULTS_QUEUE,
  resultsRoutingKey,
  TASKS_EXCHANGE,
  TOPOLOGY,
  taskGroupBrokerUser,
  taskGroupQueueOptions,
  taskGroupQueueSpec,
  taskGroupResultQueue,
  uepBrokerUser,
  uepName,
  uepTaskQueue,
  uepTaskQueueSpec,
} from "./topology.js";
export { canonicalJson, computeUepId, uuidV5 } from "./uep-id.js";
