/**
 * What every identity mapper shares: the identity record it reads, the shape
 * of its answer, and its two errors. Names and messages follow Globus's
 * `globus-identity-mapping` library so an admin's Globus rules and scripts
 * behave (and fail) the same way here.
 */
import { ConduitError } from "@conduit/protocol/wire";

/**
 * An identity as mapping rules see it: Conduit's `IdentityInfo` fields, plus
 * `sub` (= `id`) and `status` (= `"used"`) when absent, so Globus-style rules
 * (`{sub}`) and external scripts that read them work unchanged.
 */
export interface IdentityRecord {
  readonly id: string;
  readonly [field: string]: unknown;
}

/**
 * One mapper's answer, as Globus's `map_identities` gives it: one entry per
 * rule (one in all for an external mapper), each `{identity id: [local
 * usernames…]}`; an entry is empty when its rule matched nothing.
 */
export type MapperResult = Array<Record<string, string[]>>;

export interface IdentityMapping {
  /** `DATA_TYPE` as written in the configuration, e.g. `expression_identity_mapping#1.0.0`. */
  readonly dataType: string;
  /** Globus's class name, used in log lines (`ExpressionIdentityMapping`, `ExternalIdentityMapping`). */
  readonly className: string;
  mapIdentities(identities: readonly IdentityRecord[]): Promise<MapperResult>;
}

/** A rule or the mapping configuration is malformed (Globus's `InvalidMappingError`). */
export class InvalidMappingError extends ConduitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("IDENTITY_MAPPING_INVALID", message, options);
    this.name = "InvalidMappingError";
  }
}

/** Mapping one identity failed: a missing property, a bad group reference, a failing script. */
export class IdentityMappingError extends ConduitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("IDENTITY_MAPPING_FAILED", message, options);
    this.name = "IdentityMappingError";
  }
}

/** The record rules and scripts see for `identity`; fields already present are kept as they are. */
export function toIdentityRecord(identity: { readonly id: string }): IdentityRecord {
  const record: Record<string, unknown> = { ...identity };
  if (record.sub === undefined) record.sub = identity.id;
  // Globus's expression mapper only considers identities whose status is "used" or "private";
  // the identity Conduit's service authenticated is in use.
  if (record.status === undefined) record.status = "used";
  return record as IdentityRecord;
}
