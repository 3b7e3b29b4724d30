/**
 * Field kinds of config.yaml and of a rendered user endpoint config, for the
 * tables in manager-config.ts and user-endpoint-config.ts. Each bad value is
 * one ConfigError that names the file, the key, what the key must be and how
 * to fix it: "<file>: `<key>` must be <what>, not <value>; <fix>."
 */

import { ConfigError } from "../errors.js";
import { doc, type Field, type JsonSchema, notImplementedField } from "../option-fields.js";
import { describeValue } from "./yaml-text.js";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// The same for JSON Schema, which has no case-insensitive flag.
const CASELESS_UUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/** Seconds between heartbeats when a file does not say. */
export const DEFAULT_HEARTBEAT_PERIOD = 30;
const MIN_HEARTBEAT_PERIOD = 1;

/** A config-file field: `check` returns the value, or the fix for a bad one (with the `expected` words). */
function configField<T>(options: {
  expected: string;
  schema: JsonSchema;
  fallback: T;
  check(value: unknown, key: string): { ok: T } | { fix: string };
}): Field<T> {
  return {
    expected: options.expected,
    schema: () => options.schema,
    parse(value, key, source) {
      const result = options.check(value, key);
      if ("ok" in result) return result.ok;
      throw new ConfigError(
        `${source}: \`${key}\` must be ${options.expected}, not ${describeValue(value)}; ${result.fix}.`,
      );
    },
    fallback: () => options.fallback,
  };
}

/** A string, or null when absent or null; `example` shows how to write one. */
export function textField(example: string): Field<string | null> {
  return configField<string | null>({
    expected: "a string",
    schema: { type: "string" },
    fallback: null,
    check: (value, key) =>
      typeof value === "string" ? { ok: value } : { fix: `write it as text (e.g. ${key}: ${example}) or remove it` },
  });
}

export function flagField(fallback: boolean): Field<boolean> {
  return configField<boolean>({
    expected: "true or false",
    schema: { type: "boolean" },
    fallback,
    check: (value) =>
      typeof value === "boolean" ? { ok: value } : { fix: `set it to true or false, or remove it for ${fallback}` },
  });
}

/** A whole number ≥ 0 of `meaning` (e.g. "heartbeats"). */
export function countField(fallback: number, meaning: string): Field<number> {
  return configField<number>({
    expected: `a whole number of ${meaning} (0 or more)`,
    schema: { type: "integer", minimum: 0 },
    fallback,
    check: (value) =>
      typeof value === "number" && Number.isInteger(value) && value >= 0
        ? { ok: value }
        : { fix: `fix it or remove it for the default ${fallback}` },
  });
}

export function heartbeatPeriodField(): Field<number> {
  return configField<number>({
    expected: `a number of seconds of at least ${MIN_HEARTBEAT_PERIOD}`,
    schema: { type: "number", minimum: MIN_HEARTBEAT_PERIOD },
    fallback: DEFAULT_HEARTBEAT_PERIOD,
    check: (value) =>
      typeof value === "number" && Number.isFinite(value) && value >= MIN_HEARTBEAT_PERIOD
        ? { ok: value }
        : { fix: `fix it or remove it for the default ${DEFAULT_HEARTBEAT_PERIOD}` },
  });
}

/** A TCP port, or null for "keep the port of the URL the service gave". */
/** A port or null; `whenNull` says what null means (e.g. "to use the service's broker port"). */
export function portField(whenNull = "to use the service's broker port"): Field<number | null> {
  return configField<number | null>({
    expected: "a port number from 1 to 65535 or null",
    schema: { type: "integer", minimum: 1, maximum: 65535 },
    fallback: null,
    check: (value) =>
      typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65535
        ? { ok: value }
        : { fix: `fix it, or set it to null ${whenNull}` },
  });
}

/** A list of function ids (lower-cased), or null for "no restriction". */
export function functionIdsField(): Field<string[] | null> {
  const list = configField<string[] | null>({
    expected: "a list of function ids",
    schema: { type: "array", items: { type: "string", pattern: CASELESS_UUID } },
    fallback: null,
    check: (value, key) =>
      Array.isArray(value)
        ? { ok: value }
        : { fix: `write one "- <function id>" per line under ${key}:, or remove it` },
  });
  return {
    ...list,
    parse(value, key, source) {
      const ids = list.parse(value, key, source) as unknown[];
      ids.forEach((item, index) => {
        if (typeof item !== "string" || !UUID_RE.test(item)) {
          throw new ConfigError(
            `${source}: \`${key}\` item ${index + 1} must be a function id (a UUID such as 6d0ba55f-de15-4af2-827d-05c50c338aa7), not ${describeValue(item)}; fix or remove that item.`,
          );
        }
      });
      return ids.map((id) => (id as string).toLowerCase());
    },
  };
}

/** An id (a UUID, lower-cased), or null when absent; `what` names the thing it identifies. */
export function uuidField(what: string, example: string): Field<string | null> {
  return configField<string | null>({
    expected: `${what} id (a UUID)`,
    schema: { type: "string", pattern: CASELESS_UUID },
    fallback: null,
    check: (value, key) =>
      typeof value === "string" && UUID_RE.test(value)
        ? { ok: value.toLowerCase() }
        : { fix: `write it as ${key}: ${example}, or remove it` },
  });
}

/** A UUID as the command line and config.yaml accept it. */
export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

const EMAIL_RE = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

/** An email address (one `@`, a dotted domain, no spaces), or null when absent. */
export function emailField(): Field<string | null> {
  return configField<string | null>({
    expected: "an email address",
    schema: { type: "string", pattern: "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$" },
    fallback: null,
    check: (value, key) =>
      typeof value === "string" && EMAIL_RE.test(value)
        ? { ok: value }
        : { fix: `write it as ${key}: admin@example.org or remove it` },
  });
}

export function isEmail(value: string): boolean {
  return EMAIL_RE.test(value);
}

/** Upstream's sentence for an HA endpoint without an HA policy and an HA subscription. */
export const HA_NEEDS_POLICY_AND_SUBSCRIPTION =
  "High Assurance(HA) endpoints require both a HA policy and a HA subscription id";

/** config.yaml's High-Assurance keys, with what they do. */
export const HIGH_ASSURANCE_MANAGER_FIELDS = {
  high_assurance: doc(
    "High-Assurance endpoint: needs `authentication_policy` and `subscription_id` (both HA), an HA-compliant engine, and is fixed at first registration.",
    flagField(false),
  ),
  audit_log_path: doc(
    "HA only: the audit log of task events (created 0600 if absent).",
    textField("/var/log/conduit/audit.log"),
  ),
  authentication_policy: doc(
    "The authentication policy the service checks for every submit, status and result of this endpoint's tasks.",
    uuidField("an authentication policy", "498c6a5c-0a3d-4ab6-8a9b-6bcfb9f8a6bd"),
  ),
  subscription_id: doc(
    "The subscription the endpoint belongs to (an HA one for an HA endpoint).",
    uuidField("a subscription", "2c94f030-d346-11e9-939f-02ff96a5aa76"),
  ),
  contact_email: doc("Whom to contact about this endpoint; sent at registration.", emailField()),
};

/** Keys of Globus features that this version of Conduit refuses (never silently ignores) in config.yaml. */
export const NOT_IMPLEMENTED_MANAGER_FIELDS = {
  public: notImplementedField("listing the endpoint for everyone"),
  admins: notImplementedField("endpoint administrators other than its owner"),
};
