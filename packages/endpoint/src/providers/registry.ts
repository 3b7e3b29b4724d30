/**
 * Providers by config `type`. Adding one (SlurmProvider, PBSProProvider) is
 * one line here: the error for an unknown type lists what this table holds,
 * and the JSON Schema of a `provider:` block is made from the same entries.
 */

import { ConfigError } from "../errors.js";
import { type Fields, type JsonSchema, show, typedBlockSchema } from "../option-fields.js";
import { LOCAL_PROVIDER_FIELDS, LocalProvider } from "./local-provider.js";
import type { Provider } from "./provider-types.js";

interface ProviderEntry {
  /** The provider's options (without `type`). */
  readonly fields: Fields;
  create(options: Record<string, unknown>, path: string, source?: string): Provider;
}

const PROVIDERS: Readonly<Record<string, ProviderEntry>> = {
  LocalProvider: {
    fields: LOCAL_PROVIDER_FIELDS,
    create: (options, path, source) => LocalProvider.parse(options, path, source),
  },
};

export const PROVIDER_TYPES: readonly string[] = Object.freeze(Object.keys(PROVIDERS).sort());

/**
 * Checks a `provider:` block and builds its provider (no job starts until the
 * engine starts). `path` names the block in error messages, `source` the file.
 */
export function createProvider(config: unknown, path = "engine.provider", source?: string): Provider {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ConfigError(`${path} must be a mapping with a type, e.g. {type: LocalProvider} (got ${show(config)}).`);
  }
  const { type, ...options } = config as Record<string, unknown>;
  if (type === undefined || type === null) {
    throw new ConfigError(`${path}.type is missing; set it to one of: ${PROVIDER_TYPES.join(", ")}.`);
  }
  const entry = typeof type === "string" && Object.hasOwn(PROVIDERS, type) ? PROVIDERS[type] : undefined;
  if (!entry) {
    throw new ConfigError(
      `'${typeof type === "string" ? type : show(type)}' is not a valid provider. Valid options are: ${PROVIDER_TYPES.join(", ")}`,
    );
  }
  return entry.create(options, path, source);
}

/** The JSON Schema of a `provider:` block: one branch per provider type. */
export function providerSchema(): JsonSchema {
  return typedBlockSchema(PROVIDERS);
}
