/**
 * A table of implementations by config `type`: engines, providers (and, to
 * come, launchers). The table is the list: the error for an unknown type names
 * every entry, the JSON Schema of a block is made from the entries' option
 * tables, and adding an implementation is one entry.
 *
 * ```ts
 * const PROVIDERS = new TypeRegistry<Provider>("provider", "LocalProvider", {
 *   LocalProvider: { fields: LOCAL_PROVIDER_FIELDS, create: (options, path, source) => LocalProvider.parse(options, path, source) },
 * });
 * PROVIDERS.create({ type: "SlurmProvider" }, "engine.provider");
 * // ConfigError: 'SlurmProvider' is not a valid provider. Valid options are: LocalProvider
 * ```
 */
import { ConfigError } from "./errors.js";
import { type Fields, type JsonSchema, show, typedBlockSchema } from "./option-fields.js";

export interface TypeEntry<T> {
  /** The options of this type (without `type`). */
  readonly fields: Fields;
  /** Checks the options (a bad one throws a ConfigError naming `path` and `source`) and builds the instance. */
  create(options: Record<string, unknown>, path: string, source?: string): T;
}

export class TypeRegistry<T> {
  /** The valid `type` values, sorted. */
  readonly types: readonly string[];

  /**
   * @param kind what an unknown type is not, in its error: `engine type`, `provider`.
   * @param example the type a "must be a mapping" error shows.
   */
  constructor(
    private readonly kind: string,
    private readonly example: string,
    private readonly entries: Readonly<Record<string, TypeEntry<T>>>,
  ) {
    this.types = Object.freeze(Object.keys(entries).sort());
  }

  /**
   * Builds the instance a `{type, ...options}` block describes. `path` names
   * the block in error messages (`engine`, `engine.provider`), `source` the file.
   */
  create(config: unknown, path: string, source?: string): T {
    if (typeof config !== "object" || config === null || Array.isArray(config)) {
      throw new ConfigError(
        `${path} must be a mapping with a type, e.g. {type: ${this.example}} (got ${show(config)}).`,
      );
    }
    const { type, ...options } = config as Record<string, unknown>;
    if (type === undefined || type === null) {
      throw new ConfigError(`${path}.type is missing; set it to one of: ${this.types.join(", ")}.`);
    }
    const entry = typeof type === "string" && Object.hasOwn(this.entries, type) ? this.entries[type] : undefined;
    if (!entry) {
      throw new ConfigError(
        `'${typeof type === "string" ? type : show(type)}' is not a valid ${this.kind}. Valid options are: ${this.types.join(", ")}`,
      );
    }
    return entry.create(options, path, source);
  }

  /** The JSON Schema of a block: one branch per option table (aliases share their entry's). */
  schema(): JsonSchema {
    return typedBlockSchema(this.entries);
  }
}
