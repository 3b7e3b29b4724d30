/**
 * Typed reads of the keys that config.yaml and a rendered user endpoint config
 * share. Each bad value is one ConfigError that names the file, the key, what
 * the key must be and how to fix it.
 */
import { ConfigError } from "../errors.js";
import { describeValue } from "./yaml-text.js";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Seconds between heartbeats when a file does not say. */
export const DEFAULT_HEARTBEAT_PERIOD = 30;
const MIN_HEARTBEAT_PERIOD = 1;

export class FieldReader {
  constructor(
    private readonly source: string,
    private readonly data: Record<string, unknown>,
  ) {}

  private value(key: string): unknown {
    return Object.hasOwn(this.data, key) ? this.data[key] : undefined;
  }

  private fail(key: string, what: string, fix: string): never {
    throw new ConfigError(`${this.source}: \`${key}\` must be ${what}, not ${describeValue(this.value(key))}; ${fix}.`);
  }

  /** A string, or null when absent or null. */
  nullableString(key: string, example: string): string | null {
    const value = this.value(key);
    if (value === undefined || value === null) return null;
    if (typeof value !== "string")
      this.fail(key, "a string", `write it as text (e.g. ${key}: ${example}) or remove it`);
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.value(key);
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "boolean")
      this.fail(key, "true or false", `set it to true or false, or remove it for ${fallback}`);
    return value;
  }

  /** A whole number ≥ 0. */
  count(key: string, fallback: number, meaning: string): number {
    const value = this.value(key);
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
      this.fail(key, `a whole number of ${meaning} (0 or more)`, `fix it or remove it for the default ${fallback}`);
    }
    return value;
  }

  heartbeatPeriod(): number {
    const key = "heartbeat_period";
    const value = this.value(key);
    if (value === undefined || value === null) return DEFAULT_HEARTBEAT_PERIOD;
    if (typeof value !== "number" || !Number.isFinite(value) || value < MIN_HEARTBEAT_PERIOD) {
      this.fail(
        key,
        `a number of seconds of at least ${MIN_HEARTBEAT_PERIOD}`,
        `fix it or remove it for the default ${DEFAULT_HEARTBEAT_PERIOD}`,
      );
    }
    return value;
  }

  /** A TCP port, or null for "keep the port of the URL the service gave". */
  nullablePort(key: string): number | null {
    const value = this.value(key);
    if (value === undefined || value === null) return null;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
      this.fail(
        key,
        "a port number from 1 to 65535 or null",
        "fix it, or set it to null to use the service's broker port",
      );
    }
    return value;
  }

  /** A list of function ids, or null for "no restriction". */
  nullableUuidList(key: string): string[] | null {
    const value = this.value(key);
    if (value === undefined || value === null) return null;
    if (!Array.isArray(value)) {
      this.fail(key, "a list of function ids", `write one "- <function id>" per line under ${key}:, or remove it`);
    }
    value.forEach((item, index) => {
      if (typeof item !== "string" || !UUID_RE.test(item)) {
        throw new ConfigError(
          `${this.source}: \`${key}\` item ${index + 1} must be a function id (a UUID such as 6d0ba55f-de15-4af2-827d-05c50c338aa7), not ${describeValue(item)}; fix or remove that item.`,
        );
      }
    });
    return value.map((id: string) => id.toLowerCase());
  }
}
