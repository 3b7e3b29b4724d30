/**
 * config.yaml: what the manager endpoint process (MEP) reads at start, as a
 * table of its keys. The table is the whole list: any other key is refused
 * (naming the nearest valid one), and a key of a Globus feature Conduit does
 * not implement yet (`public`, `admins`) is refused with a
 * sentence saying so, never silently ignored. The High-Assurance keys are
 * checked together: `high_assurance: true` needs a policy and a subscription,
 * and `audit_log_path` needs `high_assurance: true`.
 */

import { ConfigError } from "../errors.js";
import { doc, type JsonSchema, type Options, parseOptions } from "../option-fields.js";
import {
  flagField,
  functionIdsField,
  HA_NEEDS_POLICY_AND_SUBSCRIPTION,
  HIGH_ASSURANCE_MANAGER_FIELDS,
  heartbeatPeriodField,
  NOT_IMPLEMENTED_MANAGER_FIELDS,
  portField,
  textField,
} from "./config-fields.js";
import { ENDPOINT_FILES } from "./defaults.js";
import { asMapping, parseYamlText } from "./yaml-text.js";

export const MANAGER_FIELDS = {
  amqp_port: doc(
    "Replaces the port of the broker URL the service hands out at registration; null keeps it.",
    portField(),
  ),
  display_name: doc("How the endpoint appears in listings and the web UI.", textField('"My Endpoint"')),
  heartbeat_period: doc("Seconds between the MEP's heartbeats, at least 1.", heartbeatPeriodField()),
  user_config_template_path: doc(
    "The user config template.",
    textField("/path/to/template.yaml.j2"),
    `\`${ENDPOINT_FILES.template}\` in the endpoint directory`,
  ),
  user_config_schema_path: doc(
    "The JSON Schema of the users' variables.",
    textField("/path/to/schema.json"),
    `\`${ENDPOINT_FILES.schema}\` in the endpoint directory`,
  ),
  user_environment_path: doc(
    "Environment variables for every UEP.",
    textField("/path/to/user_environment.yaml"),
    `\`${ENDPOINT_FILES.environment}\` in the endpoint directory`,
  ),
  allowed_functions: doc(
    "Function ids the endpoint runs; sent to the service and overrides every template's list.",
    functionIdsField(),
    "any function",
  ),
  multi_user: doc("Map identities to local accounts and run each user's UEP as that account.", flagField(false)),
  identity_mapping_config_path: doc(
    "Identity mapping rules (multi-user only), relative to the endpoint directory.",
    textField("/path/to/idmap.json"),
  ),
  // Off by default, as in Globus: a mapping rule that is too broad must not hand out the manager's privileges.
  allow_privileged_user_mapping: doc(
    "Multi-user only: let an identity map to root or to the MEP's own account.",
    flagField(false),
  ),
  allow_default_broker_login: doc(
    "Multi-user only, for tests on a shared broker: start even though the broker accepts guest/guest (logged as a warning).",
    flagField(false),
  ),
  debug: doc("Log at DEBUG level.", flagField(false)),
  metrics_port: doc(
    "Serve Prometheus metrics (UEPs, workers, blocks, tasks running) on http://127.0.0.1:<port>/metrics.",
    portField("for no metrics"),
    "no metrics",
  ),
  ...HIGH_ASSURANCE_MANAGER_FIELDS,
  ...NOT_IMPLEMENTED_MANAGER_FIELDS,
};

export type ManagerConfig = Options<typeof MANAGER_FIELDS>;

/**
 * Parses and checks the text of config.yaml; `source` (its path) names the
 * file in every error.
 */
export function parseManagerConfig(yamlText: string, source: string): ManagerConfig {
  const data = asMapping(parseYamlText(yamlText, source), source);
  if (Object.hasOwn(data, "engine")) {
    throw new ConfigError(
      `${source} has an \`engine\` block, but engines belong to the user endpoint processes; move the \`engine\` block to ${ENDPOINT_FILES.template}.`,
    );
  }
  const config = parseOptions(data, "", ENDPOINT_FILES.config, MANAGER_FIELDS, source);
  checkHighAssurance(config, source);
  return config;
}

/** "`a` holds only if `b` does", as JSON Schema: not `a`, or `b`. */
function implies(a: JsonSchema, b: JsonSchema): JsonSchema {
  return { anyOf: [{ not: a }, b] };
}

/** `key` is present with a value of `schema` (a null value is an absent key). */
function present(key: string, schema: JsonSchema): JsonSchema {
  return { required: [key], properties: { [key]: schema } };
}

/** {@link checkHighAssurance}'s rules as JSON Schema. */
export const HIGH_ASSURANCE_SCHEMA_RULES: JsonSchema[] = [
  implies(present("audit_log_path", { type: "string" }), present("high_assurance", { const: true })),
  implies(present("high_assurance", { const: true }), {
    allOf: [present("authentication_policy", { type: "string" }), present("subscription_id", { type: "string" })],
  }),
];

/** The rules between the High-Assurance keys (each key's own value is checked by its field). */
function checkHighAssurance(config: ManagerConfig, source: string): void {
  if (config.audit_log_path !== null && !config.high_assurance) {
    throw new ConfigError(
      `${source}: \`audit_log_path\` is set but \`high_assurance\` is not true, and audit logging is only for High-Assurance endpoints; set high_assurance: true (with an HA authentication_policy and subscription_id) or remove audit_log_path.`,
    );
  }
  if (config.high_assurance && (config.authentication_policy === null || config.subscription_id === null)) {
    const missing = [
      config.authentication_policy === null ? "authentication_policy" : undefined,
      config.subscription_id === null ? "subscription_id" : undefined,
    ].filter((key) => key !== undefined);
    throw new ConfigError(
      `${source}: ${HA_NEEDS_POLICY_AND_SUBSCRIPTION}, and ${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} not set; set ${missing.join(" and ")} to HA ids or remove high_assurance.`,
    );
  }
}
