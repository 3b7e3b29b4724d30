/**
 * Providers by config `type`. Adding one is one entry here: the error for an
 * unknown type lists what this table holds, and the JSON Schema of a
 * `provider:` block is made from the same entries.
 */
import type { JsonSchema } from "../option-fields.js";
import { TypeRegistry } from "../type-registry.js";
import { GRID_ENGINE_PROVIDER_FIELDS, GridEngineProvider } from "./grid-engine-provider.js";
import { LOCAL_PROVIDER_FIELDS, LocalProvider } from "./local-provider.js";
import { LSF_PROVIDER_FIELDS, LSFProvider } from "./lsf-provider.js";
import { PBSPRO_PROVIDER_FIELDS, PBSProProvider } from "./pbspro-provider.js";
import type { Provider } from "./provider-types.js";
import { SLURM_PROVIDER_FIELDS, SlurmProvider } from "./slurm-provider.js";

const PROVIDERS = new TypeRegistry<Provider>("provider", "LocalProvider", {
  LocalProvider: {
    fields: LOCAL_PROVIDER_FIELDS,
    create: (options, path, source) => LocalProvider.parse(options, path, source),
  },
  PBSProProvider: {
    fields: PBSPRO_PROVIDER_FIELDS,
    create: (options, path, source) => PBSProProvider.parse(options, path, source),
  },
  LSFProvider: {
    fields: LSF_PROVIDER_FIELDS,
    create: (options, path, source) => LSFProvider.parse(options, path, source),
  },
  GridEngineProvider: {
    fields: GRID_ENGINE_PROVIDER_FIELDS,
    create: (options, path, source) => GridEngineProvider.parse(options, path, source),
  },
  SlurmProvider: {
    fields: SLURM_PROVIDER_FIELDS,
    create: (options, path, source) => SlurmProvider.parse(options, path, source),
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
