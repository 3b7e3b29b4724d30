/**
 * Projects, authentication policies and subscriptions (migration 0006). A
 * project is a named group of policies with an owner; a policy belongs to a
 * project and has the project's owner; subscriptions are ids the service's
 * administrator hands out. Deletes that would leave something dangling are
 * refused in the same statement that would delete.
 */
import { randomUUID } from "node:crypto";
import type { SqlExecutor } from "./sql-client.js";
import { selectList } from "./sql-select.js";

export interface ProjectRecord {
  id: string;
  displayName: string;
  description: string;
  contactEmail: string | null;
  ownerId: string;
  createdAt: Date;
}

export interface NewProject {
  displayName: string;
  description?: string;
  contactEmail?: string | null;
  ownerId: string;
}

/** What a policy requires of the identity behind a request. */
export interface AuthPolicyFields {
  displayName: string;
  description: string;
  /** Domain patterns (`*` matches any run of characters); empty: any domain. */
  domainInclude: string[];
  domainExclude: string[];
  highAssurance: boolean;
  /** Seconds the last login stays good; null: any age. */
  authTimeout: number | null;
  /** The last login must have had a second factor. */
  requiredMfa: boolean;
}

export interface AuthPolicyRecord extends AuthPolicyFields {
  id: string;
  projectId: string;
  ownerId: string;
  createdAt: Date;
}

export interface SubscriptionRecord {
  id: string;
  displayName: string;
  highAssurance: boolean;
  createdAt: Date;
}

/** How a delete went: done, refused because something still uses the row, or no such row. */
export type DeleteOutcome<T> = { deleted: T } | { inUse: true } | { missing: true };

const PROJECT_COLUMNS = selectList<ProjectRecord>({
  id: "id",
  displayName: "display_name",
  description: "description",
  contactEmail: "contact_email",
  ownerId: "owner_id",
  createdAt: "created_at",
});

const POLICY_COLUMNS = selectList<AuthPolicyRecord>({
  id: "id",
  projectId: "project_id",
  ownerId: "owner_id",
  displayName: "display_name",
  description: "description",
  domainInclude: "domain_include",
  domainExclude: "domain_exclude",
  highAssurance: "high_assurance",
  authTimeout: "auth_timeout",
  requiredMfa: "required_mfa",
  createdAt: "created_at",
});

const SUBSCRIPTION_COLUMNS = selectList<SubscriptionRecord>({
  id: "id",
  displayName: "display_name",
  highAssurance: "high_assurance",
  createdAt: "created_at",
});

// ---- shared shapes ----------------------------------------------------------------

type PolicyTable = "projects" | "auth_policies" | "subscriptions";

/** One row by id; undefined when there is none. */
async function rowById<T>(sql: SqlExecutor, table: PolicyTable, columns: string, id: string): Promise<T | undefined> {
  const { rows } = await sql.query<T>(`SELECT ${columns} FROM ${table} WHERE id = $1::uuid`, [id]);
  return rows[0];
}

/** An owner's rows (null: everyone's), oldest first. */
async function rowsOwnedBy<T>(
  sql: SqlExecutor,
  table: PolicyTable,
  columns: string,
  ownerId: string | null,
): Promise<T[]> {
  const { rows } = await sql.query<T>(
    `SELECT ${columns} FROM ${table} WHERE $1::uuid IS NULL OR owner_id = $1::uuid ORDER BY created_at, id`,
    [ownerId],
  );
  return rows;
}

/** Deletes a row unless `inUseWhere` (a condition on `$1`, the id) holds, in one statement. */
async function deleteUnlessUsed<T>(
  sql: SqlExecutor,
  table: PolicyTable,
  columns: string,
  id: string,
  inUseWhere: string,
): Promise<DeleteOutcome<T>> {
  const { rows } = await sql.query<T>(
    `DELETE FROM ${table} WHERE id = $1::uuid AND NOT EXISTS (${inUseWhere}) RETURNING ${columns}`,
    [id],
  );
  if (rows[0]) return { deleted: rows[0] };
  return (await rowById<T>(sql, table, columns, id)) ? { inUse: true } : { missing: true };
}

// ---- projects ----------------------------------------------------------------

export async function createProject(sql: SqlExecutor, p: NewProject): Promise<ProjectRecord> {
  const { rows } = await sql.query<ProjectRecord>(
    `INSERT INTO projects (id, display_name, description, contact_email, owner_id)
     VALUES ($1::uuid, $2, $3, $4, $5::uuid) RETURNING ${PROJECT_COLUMNS}`,
    [randomUUID(), p.displayName, p.description ?? "", p.contactEmail ?? null, p.ownerId],
  );
  return rows[0];
}

export function getProject(sql: SqlExecutor, id: string): Promise<ProjectRecord | undefined> {
  return rowById(sql, "projects", PROJECT_COLUMNS, id);
}

/** An owner's projects (null: everyone's), oldest first. */
export function listProjects(sql: SqlExecutor, ownerId: string | null): Promise<ProjectRecord[]> {
  return rowsOwnedBy(sql, "projects", PROJECT_COLUMNS, ownerId);
}

/** Deletes a project that no policy belongs to. */
export function deleteProject(sql: SqlExecutor, id: string): Promise<DeleteOutcome<ProjectRecord>> {
  return deleteUnlessUsed(
    sql,
    "projects",
    PROJECT_COLUMNS,
    id,
    "SELECT 1 FROM auth_policies WHERE project_id = $1::uuid",
  );
}

// ---- authentication policies ------------------------------------------------

function policyParams(f: AuthPolicyFields): Array<string | number | boolean | null> {
  return [
    f.displayName,
    f.description,
    JSON.stringify(f.domainInclude),
    JSON.stringify(f.domainExclude),
    f.highAssurance,
    f.authTimeout,
    f.requiredMfa,
  ];
}

/** Creates a policy in a project; its owner is the project's. */
export async function createPolicy(
  sql: SqlExecutor,
  project: Pick<ProjectRecord, "id" | "ownerId">,
  fields: AuthPolicyFields,
): Promise<AuthPolicyRecord> {
  const { rows } = await sql.query<AuthPolicyRecord>(
    `INSERT INTO auth_policies (id, project_id, owner_id, display_name, description, domain_include,
       domain_exclude, high_assurance, auth_timeout, required_mfa)
     VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10)
     RETURNING ${POLICY_COLUMNS}`,
    [randomUUID(), project.id, project.ownerId, ...policyParams(fields)],
  );
  return rows[0];
}

export function getPolicy(sql: SqlExecutor, id: string): Promise<AuthPolicyRecord | undefined> {
  return rowById(sql, "auth_policies", POLICY_COLUMNS, id);
}

/** An owner's policies (null: everyone's), oldest first. */
export function listPolicies(sql: SqlExecutor, ownerId: string | null): Promise<AuthPolicyRecord[]> {
  return rowsOwnedBy(sql, "auth_policies", POLICY_COLUMNS, ownerId);
}

/** Replaces a policy's fields; undefined when there is no such policy. */
export async function updatePolicy(
  sql: SqlExecutor,
  id: string,
  fields: AuthPolicyFields,
): Promise<AuthPolicyRecord | undefined> {
  const { rows } = await sql.query<AuthPolicyRecord>(
    `UPDATE auth_policies SET display_name = $2, description = $3, domain_include = $4::jsonb,
       domain_exclude = $5::jsonb, high_assurance = $6, auth_timeout = $7, required_mfa = $8
     WHERE id = $1::uuid RETURNING ${POLICY_COLUMNS}`,
    [id, ...policyParams(fields)],
  );
  return rows[0];
}

/** Deletes a policy that no endpoint names. */
export function deletePolicy(sql: SqlExecutor, id: string): Promise<DeleteOutcome<AuthPolicyRecord>> {
  return deleteUnlessUsed(
    sql,
    "auth_policies",
    POLICY_COLUMNS,
    id,
    "SELECT 1 FROM endpoints WHERE auth_policy_id = $1::uuid",
  );
}

// ---- subscriptions -------------------------------------------------------------

export async function createSubscription(
  sql: SqlExecutor,
  displayName: string,
  highAssurance: boolean,
): Promise<SubscriptionRecord> {
  const { rows } = await sql.query<SubscriptionRecord>(
    `INSERT INTO subscriptions (id, display_name, high_assurance) VALUES ($1::uuid, $2, $3)
     RETURNING ${SUBSCRIPTION_COLUMNS}`,
    [randomUUID(), displayName, highAssurance],
  );
  return rows[0];
}

export function getSubscription(sql: SqlExecutor, id: string): Promise<SubscriptionRecord | undefined> {
  return rowById(sql, "subscriptions", SUBSCRIPTION_COLUMNS, id);
}

export async function listSubscriptions(sql: SqlExecutor): Promise<SubscriptionRecord[]> {
  const { rows } = await sql.query<SubscriptionRecord>(
    `SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions ORDER BY created_at, id`,
  );
  return rows;
}
