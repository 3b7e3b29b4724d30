/**
 * Providers by config `type`. Adding one (SlurmProvider, PBSProProvider) is
 * one line here: the error for an unknown type lists what this table holds.
 */
import { show } from "../engines/option-fields.js";
import { ConfigError } from "../errors.js";
import { LocalProvider } from "./local-provider.js";
import type { Provider } from "./provider-types.js";

type ProviderFactory = (options: Record<string, unknown>, path: string) => Provider;

const PROVIDERS: Record<string, ProviderFactory> = {
  LocalProvider: (options, path) => LocalProvider.parse(options, path),
};

export const PROVIDER_TYPES: readonly string[] = Object.freeze(Object.keys(PROVIDERS).sort());

/**
 * Checks a `provider:` block and builds its provider (no job starts until the
 * engine starts). `path` names the block in error messages.
 */
export function createProvider(config: unknown, path = "engine.provider"): Provider {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ConfigError(`${path} must be a mapping with a type, e.g. {type: LocalProvider} (got ${show(config)}).`);
  }
  const { type, ...options } = config as Record<string, unknown>;
  if (type === undefined || type === null) {
    throw new ConfigError(`${path}.type is missing; set it to one of: ${PROVIDER_TYPES.join(", ")}.`);
  }
  const factory = typeof type === "string" && Object.hasOwn(PROVIDERS, type) ? PROVIDERS[type] : undefined;
  if (!factory) {
    throw new ConfigError(
      `'${typeof type === "string" ? type : show(type)}' is not a valid provider. Valid options are: ${PROVIDER_TYPES.join(", ")}`,
    );
  }
  return factory(options, path);
}
