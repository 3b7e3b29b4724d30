/**
 * The identity mapping configuration: a JSON list of mapper configurations,
 * tried in order. Each item's `DATA_TYPE` is `<name>#<version>`; the name picks
 * the mapper (the version is not checked, as in Globus's loader).
 */
import type { Logger } from "../logging.js";
import { EXPRESSION_MAPPING_NAME, ExpressionIdentityMapping } from "./expression-mapping.js";
import { EXTERNAL_MAPPING_NAME, ExternalIdentityMapping } from "./external-mapping.js";
import { type IdentityMapping, InvalidMappingError } from "./mapping-types.js";

/** Globus Connect Server's POSIX connector id, passed to external mappers after `-c` (as Globus Compute does). */
export const POSIX_CONNECTOR_ID = "145812c8-decc-41f1-83cf-bb2a85a2a70b";

export interface LoadMappersOptions {
  /** The manager endpoint's id, passed to external mappers after `-s`. */
  endpointId: string;
  /** Receives the warning for each item of an unknown type. */
  log: Pick<Logger, "warn">;
  /** Time limit of external mapping programs. @default 5000 */
  externalTimeoutMs?: number;
}

/** A loaded mapper and the index of its item in the configuration list. */
export interface LoadedMapper {
  index: number;
  mapper: IdentityMapping;
}

/** Builds the mappers of a parsed configuration; throws InvalidMappingError on a malformed item. */
export function loadMappers(config: unknown, options: LoadMappersOptions): LoadedMapper[] {
  if (config === null) return [];
  if (!Array.isArray(config)) {
    throw new InvalidMappingError(
      "The identity mapping configuration must be a JSON list of mapper configurations, each with a DATA_TYPE; see example_identity_mapping_config.json.",
    );
  }
  const loaded: LoadedMapper[] = [];
  config.forEach((item: unknown, index) => {
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      throw new InvalidMappingError(`Invalid mapping or map config (index: ${index})`);
    }
    const document = item as Record<string, unknown>;
    const dataType = document.DATA_TYPE;
    if (typeof dataType !== "string" || dataType === "") {
      throw new InvalidMappingError(`Invalid map config (index: ${index})`);
    }
    const name = dataType.split("#", 1)[0];
    if (name === EXPRESSION_MAPPING_NAME) {
      loaded.push({ index, mapper: ExpressionIdentityMapping.fromDocument(document, index) });
    } else if (name === EXTERNAL_MAPPING_NAME) {
      const mapper = ExternalIdentityMapping.fromDocument(document, index, {
        connector: POSIX_CONNECTOR_ID,
        storageGateway: options.endpointId,
        timeoutMs: options.externalTimeoutMs,
      });
      loaded.push({ index, mapper });
    } else {
      options.log.warn(`No identity mapper found for: ${dataType} (index: ${index})`);
    }
  });
  return loaded;
}
