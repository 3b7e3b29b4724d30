/**
 * `engine.allowed_serializers`, as the seed describes it: a list of strategy
 * names, with `conduit.*Code` and `conduit.*Data` as the only two wildcards
 * (special values, not globs). It must allow at least one code and one data
 * strategy, or the UEP does not start. The UEP checks each task's payloads
 * against it before the task reaches the engine, so a refused payload is
 * never decoded by a worker; the task fails with a DeserializationError
 * worded as Globus Compute's.
 */
import {
  BUNDLED_CODE,
  CODE_STRATEGIES,
  DATA_STRATEGIES,
  JSON_DATA,
  type Payload,
  SOURCE_CODE,
  STRUCTURED_DATA,
  toWireError,
  type WireError,
} from "@conduit/protocol/wire";
import { ConfigError, TaskError } from "../errors.js";
import type { Field } from "../option-fields.js";

export const ALL_CODE = "conduit.*Code";
export const ALL_DATA = "conduit.*Data";

type Kind = "Code" | "Data";

/** Every name the list accepts. */
const KNOWN: readonly string[] = [...CODE_STRATEGIES, ...DATA_STRATEGIES, ALL_CODE, ALL_DATA];

/** Globus Compute's names an admin may carry over, and what to write instead. */
const GLOBUS_EQUIVALENTS: Record<string, string> = {
  JSONData: JSON_DATA,
  DillDataBase64: STRUCTURED_DATA,
  PickleData: STRUCTURED_DATA,
  DillData: STRUCTURED_DATA,
  PureSourceTextInspect: SOURCE_CODE,
  PureSourceDill: SOURCE_CODE,
  DillCodeSource: SOURCE_CODE,
  DillCodeTextInspect: SOURCE_CODE,
  CombinedCode: SOURCE_CODE,
  DillCode: BUNDLED_CODE,
  AllCodeStrategies: ALL_CODE,
  AllDataStrategies: ALL_DATA,
  "*Code": ALL_CODE,
  "*Data": ALL_DATA,
};

export class SerializerAllowlist {
  private constructor(private readonly allowed: readonly string[]) {}

  /**
   * The allowlist of an `engine:` block, or undefined when it sets none
   * (everything is allowed). Throws a ConfigError, which stops the UEP's
   * start, for a list that is not one or lacks a code or a data entry, a
   * Globus Compute name, or a name Conduit does not know.
   */
  static fromEngineConfig(engine: Record<string, unknown>): SerializerAllowlist | undefined {
    const list = engine.allowed_serializers;
    if (list === undefined || list === null) return undefined;
    if (!Array.isArray(list) || !list.every((s) => typeof s === "string")) {
      throw new ConfigError(
        `engine.allowed_serializers must be a list of serialization strategy names (got ${JSON.stringify(list)}); e.g. [${SOURCE_CODE}, ${JSON_DATA}].`,
      );
    }
    for (const name of list) {
      if (KNOWN.includes(name)) continue;
      const globus = /^globus_compute_sdk\.(?:serialize\.)?(.+)$/.exec(name);
      const equivalent = globus ? GLOBUS_EQUIVALENTS[globus[1]] : undefined;
      if (globus) {
        throw new ConfigError(
          equivalent
            ? `engine.allowed_serializers names ${name}, a Globus Compute serializer; write its Conduit equivalent ${equivalent} instead.`
            : `engine.allowed_serializers names ${name}, a Globus Compute serializer with no Conduit equivalent; use ${KNOWN.join(", ")}.`,
        );
      }
      throw new ConfigError(
        `engine.allowed_serializers names ${name}, which is not a Conduit serializer; use ${KNOWN.join(", ")}.`,
      );
    }
    const hasCode = list.some((s) => kindOf(s) === "Code");
    const hasData = list.some((s) => kindOf(s) === "Data");
    if (!hasCode || !hasData) {
      // Worded exactly as Globus Compute's, as the submitter's futures report it.
      throw new ConfigError(
        `Deserialization allowlists must contain at least one code and one data deserializer/wildcard (got: ${JSON.stringify(list)})`,
      );
    }
    return new SerializerAllowlist(list);
  }

  /** Why the task's payloads may not be deserialized here, or undefined. */
  check(task: { function: Payload; args: Payload }): WireError | undefined {
    return (
      this.refuse(task.function.strategy, "Code", "function") ?? this.refuse(task.args.strategy, "Data", "arguments")
    );
  }

  private allows(strategy: string, kind: Kind): boolean {
    if (kindOf(strategy) !== kind) return false;
    if (this.allowed.includes(strategy)) return true;
    const wildcard = kind === "Code" ? ALL_CODE : ALL_DATA;
    const known: readonly string[] = kind === "Code" ? CODE_STRATEGIES : DATA_STRATEGIES;
    return this.allowed.includes(wildcard) && known.includes(strategy);
  }

  private refuse(strategy: string, kind: Kind, what: string): WireError | undefined {
    if (this.allows(strategy, kind)) return undefined;
    const message = [
      "Deserialization failed:",
      `  ${kind} serializer ${strategy} disabled by current configuration.`,
      `  The current configuration requires the *${what}* to be serialized with one of the allowed ${kind} classes:`,
      "",
      `      Allowed serializers: ${this.allowed.join(", ")}`,
    ].join("\n");
    return toWireError(new TaskError("DESERIALIZATION_FAILED", message));
  }
}

/**
 * The `engine.allowed_serializers` option of every engine: checked when the
 * engine's options are, so a bad list is refused wherever a config is
 * validated (and the UEP does not start), with the same words.
 */
export function allowedSerializersField(): Field<readonly string[] | undefined> {
  return {
    expected: "a list of serialization strategy names with at least one code and one data entry",
    schema: () => ({ type: "array", items: { enum: [...KNOWN] }, minItems: 2 }),
    parse(value) {
      SerializerAllowlist.fromEngineConfig({ allowed_serializers: value });
      return Object.freeze([...(value as string[])]);
    },
    fallback: () => undefined,
  };
}

function kindOf(name: string): Kind | undefined {
  if (name === ALL_CODE || (CODE_STRATEGIES as readonly string[]).includes(name)) return "Code";
  if (name === ALL_DATA || (DATA_STRATEGIES as readonly string[]).includes(name)) return "Data";
  return undefined;
}
