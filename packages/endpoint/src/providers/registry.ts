/**
 * Providers by config `type`. Adding one (SlurmProvider, PBSProProvider) is
 * one line here: the error for an unknown type lists what this table holds,
 * and the JSON Schema of a `provider:` block is made from the same entries.
 */
import type { JsonSchema } from "../option-fields.js";
import { TypeRegistry } from "../type-registry.js";
import { LOCAL_PROVIDER_FIELDS, LocalProvider } from "./local-provider.js";
import type { Provider } from "./provider-types.js";

const PROVIDERS = new TypeRegistry<Provider>("provider", "LocalProvider", {
  LocalProvider: {
    fields: LOCAL_PROVIDER_FIELDS,
    create: (options, path, source) => LocalProvider.parse(options, path, source),
  },
});

export const PROVIDER_TYPES: readonly string[] = PROVIDERS.types;

/**
 * Checks a `provider:` block and builds its provider (no job starts until the
 * engine starts). `path` names the block in error messages, `source` the file.
 */
export function createProvider(config: unknown, path = "engine.provider", source?: string): Provider {
  return PROVIDERS.create(config, path, source);
}

/** The JSON Schema of a `provider:` block: one branch per provider type. */
export function providerSchema(): JsonSchema {
  return PROVIDERS.schema();
}
