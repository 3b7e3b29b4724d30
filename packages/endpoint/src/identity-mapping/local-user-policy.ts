/**
 * Multi-user: the local account a command's identity runs as. The identity
 * mappers name an account; it must exist, and unless
 * `allow_privileged_user_mapping` is set it may be neither root nor the
 * MEP's own account. A refusal is the sentence the MEP logs and fails the
 * UEP's queued tasks with (IDENTITY_NOT_MAPPED).
 *
 * ```ts
 * const decision = await chooseLocalUser(mapper, command.identity, { allowPrivileged: false, configFile });
 * if ("refusal" in decision) fail(decision.refusal);
 * else launchAs(decision.user); // decision.mappedBy: "identity mapper 1 (expression_identity_mapping_v1, rule 2)"
 * ```
 */
import type { IdentityInfo } from "@conduit/protocol/wire";
import type { IdentityMapper, IdentityMapResult } from "./identity-mapper.js";
import { type LocalUser, lookupLocalUser } from "./local-user.js";

export interface LocalUserPolicy {
  /** `allow_privileged_user_mapping` of config.yaml: root and the MEP's own account are allowed. */
  allowPrivileged: boolean;
  /** config.yaml's path, named in the fix of a refusal. */
  configFile: string;
  /** The MEP's uid. @default process.getuid() */
  mepUid?: number;
}

export type LocalUserDecision =
  /** `mappedBy` names the mapper (and rule) that chose the account. */
  { user: LocalUser; mappedBy: string } | { refusal: string };

export async function chooseLocalUser(
  mapper: IdentityMapper,
  identity: IdentityInfo,
  policy: LocalUserPolicy,
): Promise<LocalUserDecision> {
  const { id, username } = identity;
  let mapped: IdentityMapResult | null;
  try {
    mapped = await mapper.map(identity);
  } catch (err) {
    const e = err as Error;
    return {
      refusal: `Identity failed to map to a local user name.  (${e.name}) ${e.message}\n  Conduit effective identity: ${id}\n  Conduit username: ${username}`,
    };
  }
  if (mapped === null) {
    return {
      refusal: `Identity failed to map to a local user name.  (LookupError) \n  Conduit effective identity: ${id}\n  Conduit username: ${username}`,
    };
  }
  const rule = mapped.ruleIndex === undefined ? "" : `, rule ${mapped.ruleIndex + 1}`;
  const mappedBy = `identity mapper ${mapped.mapperIndex + 1} (${mapped.dataType}${rule})`;
  const user = lookupLocalUser(mapped.username);
  if (user === null) {
    return {
      refusal: `Identity mapped to a local user name, but local user does not exist.\n  Local user name: ${mapped.username}\n  Conduit effective identity: ${id}\n  Mapped by: ${mappedBy}`,
    };
  }
  if (!policy.allowPrivileged) {
    const fix = `Fix the identity mapping, or set allow_privileged_user_mapping: true in ${policy.configFile}.`;
    if (user.uid === (policy.mepUid ?? process.getuid?.())) {
      return {
        refusal: `Requested UID is same as Manager Endpoint UID on a user-mapped Manager Endpoint; refusing to start a user endpoint as ${user.uname} (uid ${user.uid}).\n  Conduit effective identity: ${id}\n  Mapped by: ${mappedBy}\n  ${fix}`,
      };
    }
    if (user.uid === 0) {
      return {
        refusal: `Requested UID is root (uid 0); refusing to start a user endpoint as ${user.uname} on a user-mapped Manager Endpoint.\n  Conduit effective identity: ${id}\n  Mapped by: ${mappedBy}\n  ${fix}`,
      };
    }
  }
  return { user, mappedBy };
}
