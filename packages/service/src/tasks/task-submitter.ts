/**
 * The hot path: a submit of N tasks to one endpoint. Checks everything first
 * (endpoint, permission, functions, sizes), then stores the N tasks in one
 * statement (already `waiting-for-endpoint`) while it publishes them with
 * their function payloads to the UEP's queue and one start command to the MEP;
 * it answers once the statement committed and every confirm came. Tasks sent
 * while the endpoint is offline wait in their durable queue.
 */

import { randomUUID } from "node:crypto";
import {
  type AmqpInfo,
  type CancelTasksMessage,
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
  /** Where a task published but not stored is reported (a warning). @default console.warn */
  log?: (line: string) => void;
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
    const accounts = this.options.brokerAccounts;
    // Declared before anything is published (a task or a result must never find its queue missing).
    const declaring = this.broker.ensureQueues([queue, commandQueue(endpointId), taskGroupResultQueue(newGroupId)]);
    declaring.catch(noop);
    // The group's broker account and the UEP's: made (the first time only) while the tasks are stored.
    const groupAmqp = this.groupAmqp(newGroupId);
    groupAmqp.catch(noop);
    const uepUrl = accounts?.uepUrl(endpointId, uepId);
    uepUrl?.catch(noop);

    const taskIds = request.tasks.map((t) => t.task_id);
    const outgoing: Outgoing[] = request.tasks.map((task) => {
      const message: TaskMessage = {
        v: 1,
        kind: "task",
        taskId: task.task_id,
        functionId: task.function_id,
        endpointId,
        uepId,
        taskGroupId: newGroupId,
        function: functions.get(task.function_id)!.payload,
        args: task.args,
      };
      if (request.resource_specification) message.resourceSpecification = request.resource_specification;
      // user_runtime's fields are optional at submit; the UEP's check of the task needs both.
      if (runtime?.node_version !== undefined && runtime.sdk_version !== undefined) {
        message.submitter = { nodeVersion: runtime.node_version, sdkVersion: runtime.sdk_version };
      }
      return { queue, message, requestId };
    });
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

    // Overlap, don't serialise: the insert and the publish proceed together,
    // and the submit is answered only once both are durable (the insert
    // committed, every message confirmed). The tasks are stored
    // `waiting-for-endpoint` at once: no second statement. A task published
    // before its row exists is safe: a result that beats the row is held by
    // the result consumer until the row exists (then checked as any), and the
    // tasks of an insert that fails are discarded (see `discardPublished`).
    this.options.metrics?.tasksPublishing(taskIds);
    const storing = this.store.insertTasks({
      ownerId: identity.id,
      endpointId,
      uepId,
      taskGroupId: newGroupId,
      taskGroupGiven: request.task_group_id !== undefined,
      uepConfig: config,
      uepRuntime: runtime,
      published: true,
      tasks: request.tasks.map((t) => ({
        id: t.task_id,
        functionId: t.function_id,
        argsBytes: payloadBytes(t.args),
        argsSha256: sha256Hex(t.args.strategy, t.args.data),
      })),
    });
    storing.catch(noop);
    const publishing = declaring.then(() =>
      Promise.all([
        this.broker.publishAll(outgoing),
        // Only the start command waits for the UEP's account (made once per UEP, then
        // refreshed off this path): tasks in a durable queue wait for their UEP anyway.
        // The MEP dedupes start commands, so one per submit is cheap; it also restarts
        // a UEP that stopped while its queue still holds tasks.
        (uepUrl ?? Promise.resolve(undefined)).then((url) => {
          if (url !== undefined) command.amqpUrl = url;
          return this.broker.publishAll([{ queue: commandQueue(endpointId), message: command, requestId }]);
        }),
      ]),
    );
    publishing.catch(noop);

    let stored: Awaited<typeof storing>;
    try {
      stored = await storing;
    } catch (err) {
      await this.discardPublished(
        publishing,
        endpointId,
        uepId,
        taskIds,
        [],
        `they could not be stored (${(err as Error).message})`,
      );
      throw err;
    }
    if (!stored.ok) {
      const conflict = stored.taskGroupConflict ? undefined : stored.conflict;
      // Tasks stored under the same id for another UEP can never be this UEP's: cancel them on its queue.
      const foreign = stored.taskGroupConflict ? [] : (stored.otherUeps ?? []);
      await this.discardPublished(
        publishing,
        endpointId,
        uepId,
        taskIds,
        foreign,
        conflict
          ? `task id ${conflict.taskId} is already used ${conflict.reason}`
          : `task group ${newGroupId} is another identity's`,
      );
      if (!conflict) throw taskGroupConflict(newGroupId);
      throw taskIdConflict(conflict.taskId, conflict.reason);
    }
    // A pure retry without a named group answers with the group the tasks are in.
    const taskGroupId =
      stored.inserted.length === 0 && stored.existing.length > 0 ? stored.existing[0].taskGroupId : newGroupId;
    // Results go to each task's stored group: known tasks of a retry may be in an older one.
    const olderGroups = new Set(stored.existing.map((e) => e.taskGroupId).filter((g) => g !== newGroupId));

    const [amqp] = await Promise.all([
      taskGroupId === newGroupId ? groupAmqp : this.groupAmqp(taskGroupId),
      olderGroups.size > 0 ? this.broker.ensureQueues([...olderGroups].map(taskGroupResultQueue)) : undefined,
      publishing,
    ]);
    this.options.metrics?.tasksSubmitted(
      endpointId,
      stored.inserted.length + stored.existing.filter((e) => e.state === "received").length,
    );

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
   * The insert failed (or found a conflict) while, or after, the tasks were
   * published: they must not stand as this submit's. Logged, once the publish
   * settled. Task ids stored for another UEP (`foreign`) are cancelled on this
   * UEP's queue (it drops them unrun; should one run anyway, its result is
   * refused, since its sender is not the stored task's UEP). The others are not
   * cancelled (the UEP would then drop a retried submit of the same task too):
   * with no row, their results are held and then dropped by the result consumer
   * unless a retried submit stores the task; a task id stored for this same UEP
   * (the same identity, endpoint and configuration) was published as that
   * task's, and its first result is the task's.
   */
  private async discardPublished(
    publishing: Promise<unknown>,
    endpointId: string,
    uepId: string,
    taskIds: readonly string[],
    foreign: readonly string[],
    why: string,
  ): Promise<void> {
    const published = await publishing.then(
      () => true,
      () => false,
    );
    if (!published) return;
    this.log(
      `Submit to endpoint ${endpointId}: ${taskIds.length} task(s) were published to UEP ${uepId} but not stored, because ${why}; ${
        foreign.length > 0
          ? `cancelled ${foreign.join(", ")} on its queue, and any other result is dropped unless a retried submit stores the task.`
          : "their results are dropped unless a retried submit stores the task."
      }`,
    );
    if (foreign.length === 0) return;
    const cancel: CancelTasksMessage = { v: 1, kind: "cancel", endpointId, uepId, taskIds: [...foreign] };
    await this.broker
      .publishAll([{ queue: uepTaskQueue(endpointId, uepId), message: cancel }])
      .catch((err: unknown) =>
        this.log(`Could not cancel ${foreign.join(", ")} on UEP ${uepId}: ${(err as Error).message}`),
      );
  }

  private log(line: string): void {
    (this.options.log ?? ((l: string) => console.warn(l)))(line);
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

function noop(): void {}

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
