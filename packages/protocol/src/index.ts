/**
 * @conduit/protocol: what the service, the endpoint and the SDK agree on — the
 * REST routes and their shapes (as data: {@link API_ROUTES}), broker messages
 * and topology, serialization strategies, task states, the UEP id, and the
 * shared errors.
 *
 * ```ts
 * import { encodeMessage, decodeMessage, uepTaskQueue } from "@conduit/protocol";
 * const body = encodeMessage({ v: 1, kind: "heartbeat", role: "mep", endpointId, period: 30, sentAt: Date.now() });
 * const msg = decodeMessage(body, "heartbeat");
 * ```
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
export type { ApiMethod, ApiRoute, RouteBody, RouteParams, RouteQuery, RouteReply } from "./api-routes.js";
export { API_ROUTES } from "./api-routes.js";
export { API_SHARED_SCHEMAS } from "./api-shapes.js";
export type { AmqpOptions, BrokerLink, BrokerOptions, ConfirmChannel, ConsumeMessage } from "./broker.js";
export { brokerUser, connectBroker, isAccountRefused, redactUrl } from "./broker.js";
export type { BundledCodeData } from "./bundled-code.js";
export { bundleHash, checkBundleHash, decodeBundledCode, encodeBundledCode } from "./bundled-code.js";
export type { Credential, CredentialKind, ObtainOptions, ResolveOptions } from "./credentials.js";
export {
  obtainCredential,
  requestWithCredential,
  requireCredential,
  resolveCredential,
  trimUrl,
} from "./credentials.js";
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
export type { LoginCommandOptions } from "./login-commands.js";
export { fetchIdentity, loginCommand, logoutCommand, whoamiCommand } from "./login-commands.js";
export type { DeviceFlowOptions, LoginIo } from "./login-flows.js";
export { loginWithCode, loginWithDevice, logout, terminalIo } from "./login-flows.js";
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
export type { ProviderMetadata, TokenResponse } from "./oauth-client.js";
export {
  API_SCOPE,
  DISCOVERY_PATH,
  discover,
  LOGIN_CODE_PATH,
  loginRedirectUri,
  OAUTH_CLIENT_ID,
  OAUTH_SCOPES,
  OAuthError,
  tokenRequest,
} from "./oauth-client.js";
export type { ConduitPaths, Credentials } from "./paths.js";
export { paths } from "./paths.js";
export type { RestRequest } from "./rest-request.js";
export { requestJson } from "./rest-request.js";
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
export type { CachedLogin } from "./token-store.js";
export { readLogin, tokensFile } from "./token-store.js";
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
