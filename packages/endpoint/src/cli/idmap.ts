/**
 * `conduit-endpoint idmap test <endpoint> <identity.json>`: the admin's dry
 * run of identity mapping. Loads the endpoint's `identity_mapping_config_path`,
 * maps the identity and says which mapper and rule chose which local user and
 * whether that user exists here — without starting anything.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { ConduitError } from "@conduit/protocol/wire";
import { parseManagerConfig } from "../config/manager-config.js";
import { IdentityMapper } from "../identity-mapping/identity-mapper.js";
import { lookupLocalUser } from "../identity-mapping/local-user.js";
import type { IdentityRecord } from "../identity-mapping/mapping-types.js";
import type { Logger } from "../logging.js";
import { configuredEndpoint, readEndpointId } from "../manager/endpoint-dir.js";

export interface IdmapTestOptions {
  userDir: string;
  name: string;
  /** A JSON file holding one identity (`id` or `sub`, `username`, …). */
  identityPath: string;
  print: (line: string) => void;
  /** Mapper warnings (a failing mapper, an unknown DATA_TYPE). */
  warn: (line: string) => void;
}

// External mappers get the endpoint id after `-s`; before the first registration there is none.
const UNREGISTERED_ENDPOINT_ID = "00000000-0000-0000-0000-000000000000";

/** Resolves with the exit code: 0 when the identity maps to an existing local user, 1 otherwise. */
export async function testIdentityMapping(options: IdmapTestOptions): Promise<number> {
  const { name, print, warn } = options;
  const ep = configuredEndpoint(options.userDir, name);
  const config = parseManagerConfig(readFileSync(ep.config, "utf8"), ep.config);
  if (config.identity_mapping_config_path === null) {
    throw new ConduitError(
      "NO_IDENTITY_MAPPING",
      `Endpoint ${name} has no identity_mapping_config_path in ${ep.config}; set it to an identity mapping file (configure --multi-user writes example_identity_mapping_config.json).`,
    );
  }
  const mappingPath = isAbsolute(config.identity_mapping_config_path)
    ? config.identity_mapping_config_path
    : resolve(ep.dir, config.identity_mapping_config_path);
  const identity = readIdentity(options.identityPath);
  const log: Logger = { debug: () => {}, info: () => {}, warn, error: warn };
  let mapper: IdentityMapper;
  try {
    mapper = IdentityMapper.load(mappingPath, { endpointId: readEndpointId(ep) ?? UNREGISTERED_ENDPOINT_ID, log });
  } catch (err) {
    const e = err as Error;
    throw new ConduitError(
      "IDENTITY_MAPPING_INVALID",
      `(${e.name}) ${e.message} -- Unable to read identity mapping configuration from: ${mappingPath}`,
      { cause: err },
    );
  }

  print(`Identity: ${String(identity.username ?? "(no username)")} (${identity.id})`);
  print(`Identity mapping configuration: ${mappingPath} (${mapper.mappers.length} mapper(s))`);
  const mapped = await mapper.map(identity);
  if (!mapped) {
    print("No mapper matched this identity: Identity failed to map to a local user name.");
    return 1;
  }
  const rule = mapped.ruleIndex === undefined ? "" : `, rule ${mapped.ruleIndex}`;
  print(`Mapped by mapper ${mapped.mapperIndex} (${mapped.dataType})${rule} to local user: ${mapped.username}`);
  const user = lookupLocalUser(mapped.username);
  if (!user) {
    print(
      `Local user ${mapped.username} does not exist on this machine: Identity mapped to a local user name, but local user does not exist.`,
    );
    return 1;
  }
  print(
    `Local user ${user.uname} exists: uid ${user.uid}, gid ${user.gid}, groups ${user.groups.join(",")}, home ${user.dir}, shell ${user.shell}`,
  );
  return 0;
}

function readIdentity(path: string): IdentityRecord {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ConduitError(
      "BAD_IDENTITY_FILE",
      `Cannot read an identity from ${path} (${(err as Error).message}); give a JSON file such as {"id": "<uuid>", "username": "alice@example.edu"}.`,
      { cause: err },
    );
  }
  const record = (typeof data === "object" && data !== null && !Array.isArray(data) ? data : {}) as Record<
    string,
    unknown
  >;
  const id = typeof record.id === "string" ? record.id : record.sub;
  if (typeof id !== "string" || id === "") {
    throw new ConduitError(
      "BAD_IDENTITY_FILE",
      `${path} holds no identity with an "id" (or "sub"); give a JSON object such as {"id": "<uuid>", "username": "alice@example.edu"}.`,
    );
  }
  return { ...record, id };
}
