/**
 * `engine.allowed_serializers`, as the seed describes it: a list of strategy
 * names, with `conduit.*Code` and `conduit.*Data` as the only two wildcards
 * (not globs). It must allow at least one code and one data strategy. The UEP
 * checks each task's payloads against it before the task reaches the engine,
 * so a refused payload is never decoded by a worker.
 */
import type { Payload, WireError } from "@conduit/protocol";
import { ConfigError } from "../errors.js";

const ALL_CODE = "conduit.*Code";
const ALL_DATA = "conduit.*Data";

type Kind = "Code" | "Data";

export class SerializerAllowlist {
  private constructor(private readonly allowed: readonly string[]) {}

  /** The allowlist of an `engine:` block, or undefined when it sets none (everything is allowed). */
  static fromEngineConfig(engine: Record<string, unknown>): SerializerAllowlist | undefined {
    const list = engine.allowed_serializers;
    if (list === undefined || list === null) return undefined;
    if (!Array.isArray(list) || !list.every((s) => typeof s === "string")) {
      throw new ConfigError(
        `engine.allowed_serializers must be a list of serialization strategy names (got ${JSON.stringify(list)}); e.g. [conduit.SourceCode, conduit.JSONData].`,
      );
    }
    const hasCode = list.some((s) => kindOf(s) === "Code");
    const hasData = list.some((s) => kindOf(s) === "Data");
    if (!hasCode || !hasData) {
      throw new ConfigError(
        `engine.allowed_serializers must contain at least one code and one data serializer or wildcard (got: ${JSON.stringify(list)}); add e.g. ${ALL_CODE} and ${ALL_DATA}.`,
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

  private refuse(strategy: string, kind: Kind, what: string): WireError | undefined {
    const wildcard = kind === "Code" ? ALL_CODE : ALL_DATA;
    if (kindOf(strategy) === kind) {
      if (this.allowed.includes(strategy)) return undefined;
      if (strategy.startsWith("conduit.") && this.allowed.includes(wildcard)) return undefined;
    }
    return {
      code: "DESERIALIZATION_FAILED",
      name: "DeserializationError",
      message: `Deserialization failed: ${kind === "Code" ? "code" : "data"} serializer ${strategy} is disabled by this endpoint's configuration; serialize the ${what} with one of the allowed serializers: ${this.allowed.join(", ")}.`,
    };
  }
}

function kindOf(name: string): Kind | undefined {
  if (name.endsWith("Code")) return "Code";
  if (name.endsWith("Data")) return "Data";
  return undefined;
}
