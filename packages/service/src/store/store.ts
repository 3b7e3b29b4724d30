/**
 * The service's domain store over a {@link SqlClient} (PGlite or Postgres, the
 * same SQL). Hot-path methods take whole batches and run one statement each:
 * inserting N tasks, marking N tasks, storing N results.
 *
 * This class is the one door the rest of the service uses; each aggregate's
 * statements live in its own module, where each method's contract is
 * documented. A new aggregate is a new module and a few lines here.
 */
import type { EngineStatusReport, Payload, WireError } from "@conduit/protocol";
import * as consoleQueries from "./console-queries.js";
import * as endpoints from "./endpoint-store.js";
import * as functions from "./function-store.js";
import * as identities from "./identity-store.js";
import { insertTasks } from "./insert-tasks.js";
import * as metrics from "./metrics-queries.js";
import * as policies from "./policy-store.js";
import { serviceSecret } from "./service-secret-store.js";
import type { SqlClient, SqlExecutor } from "./sql-client.js";
import type {
  EndpointDeletion,
  EndpointRecord,
  EndpointRegistration,
  FunctionRecord,
  Identity,
  IdentityFields,
  IdentityHoldings,
  IdentityRemoval,
  InsertTasksResult,
  ReportSender,
  StoredResult,
  TaskBatch,
  TaskCancellation,
  TaskGroupRecord,
  TaskRecord,
  TaskResultInput,
  TokenIdentity,
  TokenRecord,
  UepRecord,
} from "./store-types.js";
import * as taskGroups from "./task-group-store.js";
import * as reports from "./task-reports.js";
import * as tasks from "./task-store.js";
import * as tokens from "./token-store.js";
import * as ueps from "./uep-store.js";

export type {
  AuthPolicyFields,
  AuthPolicyRecord,
  DeleteOutcome,
  NewProject,
  ProjectRecord,
  SubscriptionRecord,
} from "./policy-store.js";
export type {
  EndpointDeletion,
  IdentityBrokerIds,
  IdentityHoldings,
  IdentityRemoval,
  TaskCancellation,
  TaskGroupRecord,
} from "./store-types.js";

export class Store {
  constructor(private readonly sql: SqlClient) {}

  /** Which backend, for logs. */
  get description(): string {
    return this.sql.description;
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  /** Resolves when the database answers a query (readiness). */
  async ping(): Promise<void> {
    await this.sql.query("SELECT 1");
  }

  // ---- metrics, read when /metrics is scraped (metrics-queries.ts) -----------

  countOpenTasks(): Promise<metrics.OpenTaskCount[]> {
    return metrics.countOpenTasks(this.sql);
  }

  countUeps(recentSeconds: number): Promise<metrics.UepCount[]> {
    return metrics.countUeps(this.sql, recentSeconds);
  }

  // ---- identities (identity-store.ts) ----------------------------------------

  createIdentity(username: string, fields: IdentityFields = {}): Promise<Identity> {
    return identities.createIdentity(this.sql, username, fields);
  }

  insertIdentity(username: string, fields: IdentityFields = {}): Promise<Identity | undefined> {
    return identities.insertIdentity(this.sql, username, fields);
  }

  getIdentity(id: string): Promise<Identity | undefined> {
    return identities.findIdentity(this.sql, "id", id);
  }

  findIdentityByUsername(username: string): Promise<Identity | undefined> {
    return identities.findIdentity(this.sql, "username", username);
  }

  listIdentities(): Promise<Identity[]> {
    return identities.listIdentities(this.sql);
  }

  /** On `q`, a transaction's client, when given. */
  identityHoldings(identityId: string, q: SqlExecutor = this.sql): Promise<IdentityHoldings> {
    return identities.identityHoldings(q, identityId);
  }

  removeIdentity(identityId: string, force: boolean): Promise<IdentityRemoval> {
    return identities.removeIdentity(this.sql, identityId, force);
  }

  // ---- API tokens (token-store.ts) -------------------------------------------

  createToken(identityId: string, expiresAt: Date | null = null): Promise<string> {
    return tokens.createToken(this.sql, identityId, expiresAt);
  }

  identityForToken(token: string): Promise<Identity | undefined> {
    return tokens.identityForToken(this.sql, token);
  }

  lookupToken(token: string): Promise<TokenIdentity | undefined> {
    return tokens.lookupToken(this.sql, token);
  }

  listTokens(): Promise<TokenRecord[]> {
    return tokens.listTokens(this.sql);
  }

  touchToken(token: string): Promise<void> {
    return tokens.touchToken(this.sql, token);
  }

  tokenLastUsed(token: string): Promise<Date | null | undefined> {
    return tokens.tokenLastUsed(this.sql, token);
  }

  revokeTokensExcept(identityId: string, keep: string): Promise<number> {
    return tokens.revokeTokensExcept(this.sql, identityId, keep);
  }

  // ---- endpoints (endpoint-store.ts) -----------------------------------------

  registerEndpoint(reg: EndpointRegistration): Promise<EndpointRecord | undefined> {
    return endpoints.registerEndpoint(this.sql, reg);
  }

  getEndpoint(id: string): Promise<EndpointRecord | undefined> {
    return endpoints.getEndpoint(this.sql, id);
  }

  listEndpoints(ownerId: string): Promise<EndpointRecord[]> {
    return endpoints.listEndpoints(this.sql, ownerId);
  }

  recordEndpointHeartbeat(endpointId: string, period: number, error?: WireError): Promise<boolean> {
    return endpoints.recordEndpointHeartbeat(this.sql, endpointId, period, error);
  }

  deleteEndpoint(id: string, ownerId: string, force: boolean, error: WireError): Promise<EndpointDeletion> {
    return endpoints.deleteEndpoint(this.sql, id, ownerId, force, error);
  }

  // ---- user endpoints (uep-store.ts) -----------------------------------------

  getUep(id: string): Promise<UepRecord | undefined> {
    return ueps.getUep(this.sql, id);
  }

  recordUepHeartbeat(
    endpointId: string,
    uepId: string,
    error?: WireError,
    engine?: EngineStatusReport,
  ): Promise<boolean> {
    return ueps.recordUepHeartbeat(this.sql, endpointId, uepId, error, engine);
  }

  uepHeartbeatAges(uepIds: readonly string[]): Promise<Map<string, number | null>> {
    return ueps.uepHeartbeatAges(this.sql, uepIds);
  }

  // ---- functions (function-store.ts) -----------------------------------------

  /** `haEndpointId` makes it a High-Assurance function of that endpoint, last used `now` (ms). */
  registerFunction(
    ownerId: string,
    payload: Payload,
    name?: string | null,
    ha?: { haEndpointId: string; now: number },
  ): Promise<FunctionRecord> {
    return functions.registerFunction(this.sql, ownerId, payload, name ?? null, ha?.haEndpointId ?? null, ha?.now ?? 0);
  }

  async getFunction(id: string): Promise<FunctionRecord | undefined> {
    return (await functions.getFunctions(this.sql, [id]))[0];
  }

  getFunctions(ids: readonly string[]): Promise<FunctionRecord[]> {
    return functions.getFunctions(this.sql, ids);
  }

  deleteFunction(id: string, ownerId: string): Promise<boolean> {
    return functions.deleteFunction(this.sql, id, ownerId);
  }

  touchHaFunctions(ids: readonly string[], now: number, retentionMs: number): Promise<Set<string>> {
    return functions.touchHaFunctions(this.sql, ids, now, retentionMs);
  }

  purgeIdleHaFunctions(now: number, retentionMs: number): Promise<string[]> {
    return functions.purgeIdleHaFunctions(this.sql, now, retentionMs);
  }

  // ---- tasks (insert-tasks.ts, task-store.ts, task-reports.ts) ---------------

  insertTasks(batch: TaskBatch): Promise<InsertTasksResult> {
    return insertTasks(this.sql, batch);
  }

  async getTask(id: string): Promise<TaskRecord | undefined> {
    return (await tasks.getTasks(this.sql, [id]))[0];
  }

  getTasks(ids: readonly string[]): Promise<TaskRecord[]> {
    return tasks.getTasks(this.sql, ids);
  }

  markTasksWaiting(taskIds: readonly string[]): Promise<void> {
    return tasks.markTasksWaiting(this.sql, taskIds);
  }

  cancelTask(taskId: string, ownerId: string, error: WireError): Promise<TaskCancellation | undefined> {
    return tasks.cancelTask(this.sql, taskId, ownerId, error);
  }

  markTasksRunning(
    items: ReadonlyArray<{ taskId: string; endpointId: string } & ReportSender>,
  ): Promise<{ changed: number; refused: Array<{ taskId: string; sender: string }> }> {
    return reports.markTasksRunning(this.sql, items);
  }

  storeResults(results: readonly TaskResultInput[]): Promise<StoredResult[]> {
    return reports.storeResults(this.sql, results);
  }

  // ---- task groups (task-group-store.ts) -------------------------------------

  taskGroupOwner(id: string): Promise<string | undefined> {
    return taskGroups.taskGroupOwner(this.sql, id);
  }

  listTaskGroups(ownerId: string): Promise<TaskGroupRecord[]> {
    return taskGroups.listTaskGroups(this.sql, ownerId);
  }

  getTaskGroup(id: string): Promise<(TaskGroupRecord & { pending: TaskRecord[] }) | undefined> {
    return taskGroups.getTaskGroup(this.sql, id);
  }

  recentTaskGroups(taskGroupIds: readonly string[], withinMs: number): Promise<Set<string>> {
    return taskGroups.recentTaskGroups(this.sql, taskGroupIds, withinMs);
  }

  // ---- the web console's reads (console-queries.ts) --------------------------

  listTasks(filter: consoleQueries.TaskFilter): Promise<TaskRecord[]> {
    return consoleQueries.listTasks(this.sql, filter);
  }

  taskTimeline(id: string): Promise<consoleQueries.TaskTimeline | undefined> {
    return consoleQueries.taskTimeline(this.sql, id);
  }

  listUeps(endpointId: string, identityId?: string): Promise<consoleQueries.UepSummary[]> {
    return consoleQueries.listUeps(this.sql, endpointId, identityId);
  }

  listFunctions(ownerId: string): Promise<consoleQueries.FunctionSummary[]> {
    return consoleQueries.listFunctions(this.sql, ownerId);
  }

  liveFigures(ownerId: string, endpointId: string, windowSeconds: number): Promise<consoleQueries.LiveFigures> {
    return consoleQueries.liveFigures(this.sql, ownerId, endpointId, windowSeconds);
  }

  // ---- projects, authentication policies, subscriptions (policy-store.ts) ----

  createProject(project: policies.NewProject): Promise<policies.ProjectRecord> {
    return policies.createProject(this.sql, project);
  }

  getProject(id: string): Promise<policies.ProjectRecord | undefined> {
    return policies.getProject(this.sql, id);
  }

  /** An owner's projects; null: everyone's. */
  listProjects(ownerId: string | null): Promise<policies.ProjectRecord[]> {
    return policies.listProjects(this.sql, ownerId);
  }

  deleteProject(id: string): Promise<policies.DeleteOutcome<policies.ProjectRecord>> {
    return policies.deleteProject(this.sql, id);
  }

  createAuthPolicy(
    project: Pick<policies.ProjectRecord, "id" | "ownerId">,
    fields: policies.AuthPolicyFields,
  ): Promise<policies.AuthPolicyRecord> {
    return policies.createPolicy(this.sql, project, fields);
  }

  getAuthPolicy(id: string): Promise<policies.AuthPolicyRecord | undefined> {
    return policies.getPolicy(this.sql, id);
  }

  /** An owner's policies; null: everyone's. */
  listAuthPolicies(ownerId: string | null): Promise<policies.AuthPolicyRecord[]> {
    return policies.listPolicies(this.sql, ownerId);
  }

  updateAuthPolicy(id: string, fields: policies.AuthPolicyFields): Promise<policies.AuthPolicyRecord | undefined> {
    return policies.updatePolicy(this.sql, id, fields);
  }

  deleteAuthPolicy(id: string): Promise<policies.DeleteOutcome<policies.AuthPolicyRecord>> {
    return policies.deletePolicy(this.sql, id);
  }

  createSubscription(displayName: string, highAssurance: boolean): Promise<policies.SubscriptionRecord> {
    return policies.createSubscription(this.sql, displayName, highAssurance);
  }

  getSubscription(id: string): Promise<policies.SubscriptionRecord | undefined> {
    return policies.getSubscription(this.sql, id);
  }

  listSubscriptions(): Promise<policies.SubscriptionRecord[]> {
    return policies.listSubscriptions(this.sql);
  }

  // ---- service secrets (service-secret-store.ts) -----------------------------

  serviceSecret(name: string, generate: () => string): Promise<string> {
    return serviceSecret(this.sql, name, generate);
  }
}
