/**
 * Serialization strategies. Every payload names the strategy that produced it,
 * so the worker decodes it with the same one (and an endpoint can refuse a
 * strategy through `allowed_serializers`).
 */
import { ConduitError } from "./errors.js";

/** A serialized function, argument list or result. */
export interface Payload {
  /** Strategy name, e.g. `conduit.SourceCode`, `conduit.JSONData`. */
  strategy: string;
  data: string;
}

/** Code strategy: the function's source text. */
export const SOURCE_CODE = "conduit.SourceCode";
/** Data strategy: JSON text. */
export const JSON_DATA = "conduit.JSONData";

/** The arguments of a call, as the worker receives them. */
export interface CallArguments {
  args: unknown[];
  kwargs?: Record<string, unknown>;
}

export function serializeJson(value: unknown): Payload {
  const data = JSON.stringify(value);
  if (data === undefined) {
    throw new ConduitError(
      "SERIALIZATION_FAILED",
      `A value of type ${typeof value} cannot be serialized as JSON; pass plain data (objects, arrays, strings, numbers, booleans, null).`,
    );
  }
  return { strategy: JSON_DATA, data };
}

export function deserializeData(payload: Payload): unknown {
  if (payload.strategy !== JSON_DATA) {
    throw new ConduitError(
      "DESERIALIZATION_FAILED",
      `Data strategy ${payload.strategy} is not known here; known: ${JSON_DATA}.`,
    );
  }
  return JSON.parse(payload.data);
}

/** Byte length of a payload on the wire (UTF-8). */
export function payloadBytes(payload: Payload): number {
  return Buffer.byteLength(payload.data, "utf8") + Buffer.byteLength(payload.strategy, "utf8");
}
