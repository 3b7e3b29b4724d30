/**
 * The hot path: a submit of N tasks to one endpoint. Checks everything first
 * (endpoint, permission, functions, sizes), stores the N tasks in one
 * statement, publishes them with their function payloads to the UEP's queue
 * and one start command to the MEP, awaits all confirms together, then marks
 * them waiting in one statement. Tasks sent while the endpoint is offline wait
 * in their durable queue.
 */

import { randomUUID } from "node:crypto";
import {
  type AmqpInfo,
  commandQueue,
  computeUepId,
  HA_DISCLAIMER,
  type IdentityInfo,
  payloadBytes,
  type StartUepCommand,
  type SubmitRequest,
  type SubmitResponse,
  type TaskMessage,
  taskGroupResultQueue,
  uepName,
  uepTaskQueue,
} from "@conduit/protocol";
import { sha256Hex } from "../auth/tokens.js";
import type { BrokerAccounts } from "../broker/broker-accounts.js";
import type { Outgoing, ServiceBroker } from "../broker/service-broker.js";
import {
  duplicateTaskId,
  endpointNotFound,
  endpointNotPermitted,
  functionNotFound,
  functionNotPermitted,
  haFunctionNotPermitted,
  taskGroupConflict,
  taskIdConflict,
  taskTooLarge,
} from "../errors.js";
import type { ServiceMetrics } from "../metrics.js";
import type { Store } from "../store/store.js";
import type { EndpointRecord, FunctionRecord, Identity } from "../store/store-types.js";
import { SizedLruCache, TtlCache } from "./memory-caches.js";

export interface TaskSubmitterOptions {
  maxTaskBytes: number;
  /** What SDKs are told to connect to for results. */
  amqpPublicUrl: string;
  /**
   * Scoped accounts (unset with `--shared-broker-account`): each start command
   * carries the UEP's own broker URL, and each submit response its task group's (read-only).
   */
  brokerAccounts?: BrokerAccounts;
  /** Told of every task published. */
  metrics?: Pick<ServiceMetrics, "tasksPublishing" | "tasksSubmitted">;
  /** The service's clock (ms): when a High-Assurance function was last used. @default Date.now */
  clock?: () => number;
  /** An HA function unused for longer than this is gone, whether or not the retention job deleted it yet. @default 90 days */
  haFunctionRetentionMs?: number;
}

/**
 * An endpoint re-registered on another replica (new allowed_functions,
 * multi_user) is seen here within this time; registrations here apply at once.
 */
const ENDPOINT_TTL_MS = 2_000;
/** Function payloads are immutable, so they are kept until memory says otherwise. */
const FUNCTION_CACHE_BYTES = 256 * 1024 * 1024;

export class TaskSubmitter {
  private readonly endpoints = new TtlCache<EndpointRecord>(ENDPOINT_TTL_MS);
  private readonly functions = new SizedLruCache<FunctionRecord>(FUNCTION_CACHE_BYTES, (f) => payloadBytes(f.payload));
  private readonly publicAmqp: AmqpInfo;

  constructor(
    private readonly store: Store,
    private readonly broker: ServiceBroker,
    private readonly options: TaskSubmitterOptions,
  ) {
    this.publicAmqp = { url: options.amqpPublicUrl, serviceUser: broker.user };
  }

  /**
   * Where an SDK re-attaching to a task group reads its results: the group's
   * own read-only account when accounts are scoped, else the public URL. The
   * group's queue is declared again first, so it exists (and its expiry clock
   * restarts) when the SDK checks it.
   */
  async taskGroupAmqp(taskGroupId: string): Promise<AmqpInfo> {
    const groupId = taskGroupId.toLowerCase();
    const [amqp] = await Promise.all([
      this.groupAmqp(groupId),
      this.broker.ensureQueues([taskGroupResultQueue(groupId)], true),
    ]);
    return amqp;
  }

  private async groupAmqp(taskGroupId: string): Promise<AmqpInfo> {
    const accounts = this.options.brokerAccounts;
    return accounts
      ? { url: await accounts.taskGroupUrl(taskGroupId), serviceUser: this.publicAmqp.serviceUser }
      : this.publicAmqp;
  }

  /** Called after a registration, so its new settings apply to the next submit. */
  forgetEndpoint(endpointId: string): void {
    this.endpoints.delete(endpointId);
  }

  rememberFunction(fn: FunctionRecord): void {
    this.functions.set(fn.id, fn);
  }

  /** Called after a function was deleted, so later submits naming it get 404. */
  forgetFunction(functionId: string): void {
    this.functions.delete(functionId);
  }

  /** `requestId`: the REST request's id, carried to the MEP and UEP as each message's correlation-id. */
  async submit(
    identity: Identity,
    anyCaseEndpointId: string,
    anyCaseRequest: SubmitRequest,
    requestId?: string,
  ): Promise<SubmitResponse> {
    // Ids become queue names and map keys: one spelling (the database's lowercase) for all.
    const endpointId = anyCaseEndpointId.toLowerCase();
    const request = lowercaseIds(anyCaseRequest);
    const seen = new Set<string>();
    for (const task of request.tasks) {
      if (seen.has(task.task_id)) throw duplicateTaskId(task.task_id);
      seen.add(task.task_id);
    }

    const endpoint = await this.endpoint(endpointId);
    if (!endpoint.multiUser && endpoint.ownerId !== identity.id) throw endpointNotPermitted(endpointId);

    const functions = await this.functionsOf(request);
    for (const fn of functions.values()) {
      if (fn.haEndpointId !== null && fn.haEndpointId !== endpointId) {
        throw haFunctionNotPermitted(fn.id, fn.haEndpointId, endpointId);
      }
      if (endpoint.allowedFunctions && !endpoint.allowedFunctions.includes(fn.id)) {
        throw functionNotPermitted(fn.id, endpointId);
      }
    }
    await this.useHaFunctions(functions);
    for (const task of request.tasks) {
      const size = payloadBytes(functions.get(task.function_id)!.payload) + payloadBytes(task.args);
      if (size > this.options.maxTaskBytes) throw taskTooLarge(task.task_id, size, this.options.maxTaskBytes);
    }

    const config = request.user_endpoint_config ?? {};
    const runtime = request.user_runtime ?? null;
    const uepId = computeUepId(endpointId, identity.id, config, runtime);
    const newGroupId = request.task_group_id ?? randomUUID();
    const queue = uepTaskQueue(endpointId, uepId);
    // Declared before anything is published (a task or a result must never find
    // its queue missing), while the tasks are being stored.
    const declaring = this.broker.ensureQueues([queue, commandQueue(endpointId), taskGroupResultQueue(newGroupId)]);
    declaring.catch(() => undefined);
    // The group's broker account, likewise made while the tasks are being stored.
    const groupAmqp = this.groupAmqp(newGroupId);
    groupAmqp.catch(() => undefined);
    const stored = await this.store.insertTasks({
      ownerId: identity.id,
      endpointId,
      uepId,
      taskGroupId: newGroupId,
      taskGroupGiven: request.task_group_id !== undefined,
      uepConfig: config,
      uepRuntime: runtime,
      tasks: request.tasks.map((t) => ({
        id: t.task_id,
        functionId: t.function_id,
        argsBytes: payloadBytes(t.args),
        argsSha256: sha256Hex(t.args.strategy, t.args.data),
      })),
    });
    if (!stored.ok) {
      if (stored.taskGroupConflict) throw taskGroupConflict(newGroupId);
      throw taskIdConflict(stored.conflict.taskId, stored.conflict.reason);
    }
    // A pure retry without a named group answers with the group the tasks are in.
    const taskGroupId =
      stored.inserted.length === 0 && stored.existing.length > 0 ? stored.existing[0].taskGroupId : newGroupId;

    // New tasks, and known ones a failed earlier submit stored but never published.
    const groupOf = new Map<string, string>(stored.inserted.map((id) => [id, newGroupId]));
    for (const e of stored.existing) if (e.state === "received") groupOf.set(e.taskId, e.taskGroupId);
    const outgoing: Outgoing[] = [];
    for (const task of request.tasks) {
      const group = groupOf.get(task.task_id);
      if (!group) continue;
      const message: TaskMessage = {
        v: 1,
        kind: "task",
        taskId: task.task_id,
        functionId: task.function_id,
        endpointId,
        uepId,
        taskGroupId: group,
        function: functions.get(task.function_id)!.payload,
        args: task.args,
      };
      if (request.resource_specification) message.resourceSpecification = request.resource_specification;
      // user_runtime's fields are optional at submit; the UEP's check of the task needs both.
      if (runtime?.node_version !== undefined && runtime.sdk_version !== undefined) {
        message.submitter = { nodeVersion: runtime.node_version, sdkVersion: runtime.sdk_version };
      }
      outgoing.push({ queue, message, requestId });
    }
    const command: StartUepCommand = {
      v: 1,
      kind: "start_uep",
      endpointId,
      uepId,
      uepName: uepName(endpointId, uepId),
      identity: identityInfo(identity),
      userEndpointConfig: config,
      userRuntime: runtime,
      sentAt: Date.now(),
    };
    // The UEP's own account, made by the first submit that needs it; the MEP hands it to the UEP.
    if (this.options.brokerAccounts) command.amqpUrl = await this.options.brokerAccounts.uepUrl(endpointId, uepId);
    // The MEP dedupes start commands, so one per submit is cheap; it also
    // restarts a UEP that stopped while its queue still holds tasks.
    outgoing.push({ queue: commandQueue(endpointId), message: command, requestId });

    // Before publishing: should the account fail, the tasks stay `received` and a retried submit publishes them.
    const amqp = taskGroupId === newGroupId ? await groupAmqp : await this.groupAmqp(taskGroupId);
    await declaring;
    await this.broker.ensureQueues(new Set([taskGroupId, ...groupOf.values()].map(taskGroupResultQueue)));
    const published = [...groupOf.keys()];
    this.options.metrics?.tasksPublishing(published);
    await this.broker.publishAll(outgoing);
    await this.store.markTasksWaiting(published);
    this.options.metrics?.tasksSubmitted(endpointId, groupOf.size);

    return {
      task_group_id: taskGroupId,
      uep_id: uepId,
      task_ids: request.tasks.map((t) => t.task_id),
      amqp,
      result_queue: taskGroupResultQueue(taskGroupId),
      ...(endpoint.highAssurance ? { disclaimer: HA_DISCLAIMER } : {}),
    };
  }

  /**
   * Records the submit of the High-Assurance functions among `functions` (one
   * statement, only when there are any); one unused for longer than the
   * retention period is gone (404), even before the retention job deletes it,
   * and so is one another replica's job deleted while this one cached it.
   */
  private async useHaFunctions(functions: Map<string, FunctionRecord>): Promise<void> {
    const ha = [...functions.values()].filter((fn) => fn.haEndpointId !== null).map((fn) => fn.id);
    if (ha.length === 0) return;
    const now = (this.options.clock ?? Date.now)();
    const used = await this.store.touchHaFunctions(ha, now, this.options.haFunctionRetentionMs ?? 90 * 86_400_000);
    const gone = ha.find((id) => !used.has(id));
    if (gone !== undefined) {
      this.forgetFunction(gone);
      throw functionNotFound(gone);
    }
  }

  private async endpoint(endpointId: string): Promise<EndpointRecord> {
    let endpoint = this.endpoints.get(endpointId);
    if (!endpoint) {
      endpoint = await this.store.getEndpoint(endpointId);
      if (!endpoint) throw endpointNotFound(endpointId);
      this.endpoints.set(endpointId, endpoint);
    }
    return endpoint;
  }

  /** The functions a submit names, from memory or in one statement; 404 for the first unknown. */
  private async functionsOf(request: SubmitRequest): Promise<Map<string, FunctionRecord>> {
    const found = new Map<string, FunctionRecord>();
    const missing = new Set<string>();
    for (const task of request.tasks) {
      if (found.has(task.function_id)) continue;
      const fn = this.functions.get(task.function_id);
      if (fn) found.set(fn.id, fn);
      else missing.add(task.function_id);
    }
    if (missing.size > 0) {
      for (const fn of await this.store.getFunctions([...missing])) {
        this.functions.set(fn.id, fn);
        found.set(fn.id, fn);
      }
      const unknown = [...missing].find((id) => !found.has(id));
      if (unknown) throw functionNotFound(unknown);
    }
    return found;
  }
}

function lowercaseIds(request: SubmitRequest): SubmitRequest {
  return {
    ...request,
    task_group_id: request.task_group_id?.toLowerCase(),
    tasks: request.tasks.map((t) => ({
      ...t,
      task_id: t.task_id.toLowerCase(),
      function_id: t.function_id.toLowerCase(),
    })),
  };
}

export function identityInfo(identity: Identity): IdentityInfo {
  const info: IdentityInfo = { id: identity.id, username: identity.username };
  if (identity.name) info.name = identity.name;
  if (identity.email) info.email = identity.email;
  if (identity.organization) info.organization = identity.organization;
  if (identity.identityProvider) info.identity_provider = identity.identityProvider;
  return info;
}
