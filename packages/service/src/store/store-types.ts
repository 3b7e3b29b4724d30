/**
 * What the store holds and answers, as the rest of the service sees it
 * (camelCase; each store module selects its rows in these shapes).
 */
import type { EndpointStatus, Payload, TaskState, UserRuntime, WireError } from "@conduit/protocol";

export interface Identity {
  id: string;
  /** `user@domain`. */
  username: string;
  name: string | null;
  email: string | null;
  organization: string | null;
  identityProvider: string | null;
  createdAt: Date;
}

/** What a token stands for: its identity, and when it stops working (null: never). */
export interface TokenIdentity {
  identity: Identity;
  expiresAt: Date | null;
}

/** One API token as the admin sees it (its value is never stored, so never shown). */
export interface TokenRecord {
  identityId: string;
  createdAt: Date;
  /** Null: it never expires. */
  expiresAt: Date | null;
  lastUsedAt: Date | null;
}

/** Whether a token with this expiry no longer works at `now`. */
export function tokenHasExpired(expiresAt: Date | null, now = Date.now()): boolean {
  return expiresAt !== null && expiresAt.getTime() <= now;
}

export interface IdentityFields {
  name?: string | null;
  email?: string | null;
  organization?: string | null;
  identityProvider?: string | null;
}

/** The ids whose broker accounts act for an identity (see {@link IdentityHoldings}). */
export interface IdentityBrokerIds {
  /** Its endpoints (`conduit-ep-<id>`). */
  endpointIds: string[];
  /** UEPs that ran its tasks, or ran on its endpoints (`conduit-uep-<id>`). */
  uepIds: string[];
  /** Its task groups (`conduit-tg-<id>`). */
  taskGroupIds: string[];
}

/** What an identity owns: counts that decide a removal without `force`, and its broker account ids. */
export interface IdentityHoldings extends IdentityBrokerIds {
  tasks: number;
}

/** What removing an identity did, and what the identity owned. */
export interface IdentityRemoval {
  removed: boolean;
  endpoints: number;
  tasks: number;
  /** Read in the removing transaction: the broker accounts to delete with the identity. */
  holdings: IdentityHoldings;
}

export interface EndpointRecord {
  id: string;
  ownerId: string;
  /** Owner's username, for listings. */
  ownerUsername: string;
  name: string;
  displayName: string | null;
  multiUser: boolean;
  /** null: every function may run here. */
  allowedFunctions: string[] | null;
  metadata: Record<string, unknown>;
  /** `online` iff the last MEP heartbeat is younger than 3 periods and its period is > 0. */
  status: EndpointStatus;
  lastHeartbeat: Date | null;
  /** Seconds; 0 once the MEP said it is shutting down. */
  heartbeatPeriod: number;
  lastError: WireError | null;
  /** High Assurance, fixed at the first registration. */
  highAssurance: boolean;
  createdAt: Date;
  /** The authentication policy checked on submit, task status and result fetch; null: none. */
  authPolicyId: string | null;
  subscriptionId: string | null;
  contactEmail: string | null;
}

export interface EndpointRegistration {
  id: string;
  ownerId: string;
  name: string;
  displayName?: string | null;
  multiUser?: boolean;
  /** null or absent: no restriction. */
  allowedFunctions?: string[] | null;
  metadata?: Record<string, unknown>;
  /** Only at the first registration; a later one must say the same. @default false */
  highAssurance?: boolean;
  authPolicyId?: string | null;
  subscriptionId?: string | null;
  contactEmail?: string | null;
}

/** What deleting an endpoint did. */
export interface EndpointDeletion {
  deleted: boolean;
  /** Tasks of the endpoint not yet terminal when it was asked. */
  activeTasks: number;
  /** Tasks failed by a forced delete. */
  failed: TaskRecord[];
}

export interface FunctionRecord {
  id: string;
  ownerId: string;
  name: string | null;
  payload: Payload;
  payloadSha256: string;
  /** A High-Assurance function runs only on this endpoint; null: anywhere. */
  haEndpointId: string | null;
  createdAt: Date;
}

export interface UepRecord {
  id: string;
  endpointId: string;
  identityId: string;
  config: Record<string, unknown>;
  runtime: UserRuntime | null;
  lastSeen: Date | null;
}

/** One task of a submit, as stored (its arguments travel only through the broker). */
export interface NewTask {
  id: string;
  functionId: string;
  argsBytes: number;
  /** SHA-256 of the argument payload: tells an idempotent retry from a reused id. */
  argsSha256: string;
}

/** Tasks of one submit: one endpoint, one UEP, one task group. */
export interface TaskBatch {
  ownerId: string;
  endpointId: string;
  uepId: string;
  /** Created with the tasks when absent. */
  taskGroupId: string;
  /** True when the SDK named the task group (then a retry must name the same one). */
  taskGroupGiven: boolean;
  uepConfig: Record<string, unknown>;
  uepRuntime: UserRuntime | null;
  tasks: NewTask[];
  /**
   * True when the tasks are being published while they are stored (the
   * submit's overlap): they are stored `waiting-for-endpoint` at once, with no
   * second statement. Unset: `received`, marked waiting after the publish.
   */
  published?: boolean;
}

/** Why a task id of a batch cannot be accepted. */
export interface TaskConflict {
  taskId: string;
  /** Completes "Task id X is already used …". */
  reason: string;
}

export type InsertTasksResult =
  | {
      ok: true;
      /** Ids stored now. */
      inserted: string[];
      /** Ids stored before by the same submit (an idempotent retry), with their state and group. */
      existing: Array<{ taskId: string; state: TaskState; taskGroupId: string }>;
    }
  | { ok: false; taskGroupConflict: true }
  | {
      ok: false;
      taskGroupConflict: false;
      conflict: TaskConflict;
      /** The batch's task ids stored for another UEP (another identity, endpoint or configuration). */
      otherUeps?: string[];
    };

export interface TaskRecord {
  id: string;
  ownerId: string;
  endpointId: string;
  uepId: string;
  functionId: string;
  taskGroupId: string;
  state: TaskState;
  argsBytes: number;
  result: Payload | null;
  error: WireError | null;
  createdAt: Date;
  completedAt: Date | null;
}

/** What cancelling a task found and did. */
export interface TaskCancellation {
  /** The task after the call. */
  task: TaskRecord;
  /** True when this call moved it to `cancelled`. */
  cancelled: boolean;
}

export interface TaskGroupRecord {
  id: string;
  ownerId: string;
  createdAt: Date;
  /** Tasks per state (states with at least one task). */
  taskCounts: Partial<Record<TaskState, number>>;
}

/**
 * Who sent a result or running report. Only the account of the UEP the task
 * was routed to, or of the endpoint it was submitted to, may report it; other
 * reports change nothing.
 */
export interface ReportSender {
  /** The message's `user-id`, which RabbitMQ checked against the publishing connection's user. */
  sender: string;
  /**
   * The sender is the one account every endpoint and UEP shares
   * (`--shared-broker-account`), which may report any task. @default false
   */
  sharedAccount?: boolean;
}

/** A result as a UEP (or, failing it, its MEP) reported it. */
export interface TaskResultInput extends ReportSender {
  taskId: string;
  /** The endpoint that reported it: a result for another endpoint's task is ignored. */
  endpointId: string;
  state: "success" | "failed";
  result?: Payload;
  error?: WireError;
  /** Milliseconds since the epoch. */
  completedAt: number;
}

export interface StoredResult {
  taskId: string;
  taskGroupId: string;
  /** The reporting account (one answer per task and sender). */
  sender: string;
  /** True when the sender may not report this task: nothing changed. */
  refused: boolean;
  /** False when the task was already terminal (a re-run or a redelivery) or the report was refused: nothing changed. */
  updated: boolean;
  /** The task's state after the call. */
  state: TaskState;
  /** The task's endpoint is High-Assurance: its result is not forwarded, only a notice that it is stored. */
  highAssurance: boolean;
}
