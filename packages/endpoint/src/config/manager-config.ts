/**
 * config.yaml: what the manager endpoint process (MEP) reads at start. Keys
 * Conduit acts on are typed and checked here, once; any other key (e.g.
 * `authentication_policy`, `subscription_id`, `email`) is kept as written for
 * the code that registers the endpoint.
 */
import { ConfigError } from "../errors.js";
import { FieldReader } from "./config-fields.js";
import { ENDPOINT_FILES } from "./defaults.js";
import { asMapping, parseYamlText } from "./yaml-text.js";

export interface ManagerConfig {
  /** Replaces the port of the broker URL the service hands out at registration; null keeps it. @default null */
  amqp_port: number | null;
  /** How the endpoint appears in listings and the web UI. @default null */
  display_name: string | null;
  /** Seconds between the MEP's heartbeats, at least 1. @default 30 */
  heartbeat_period: number;
  /** @default null (user_config_template.yaml.j2 in the endpoint directory) */
  user_config_template_path: string | null;
  /** @default null (user_config_schema.json in the endpoint directory) */
  user_config_schema_path: string | null;
  /** @default null (user_environment.yaml in the endpoint directory) */
  user_environment_path: string | null;
  /** Function ids the endpoint runs; sent to the service and overrides every template's list. @default null */
  allowed_functions: string[] | null;
  /** Map identities to local accounts and run each user's UEP as that account. @default false */
  multi_user: boolean;
  /** Identity mapping rules (multi-user only), relative to the endpoint directory. @default null */
  identity_mapping_config_path: string | null;
  /**
   * Multi-user only: let an identity map to root or to the MEP's own account.
   * Off by default, as in Globus: a mapping rule that is too broad must not
   * hand out the manager's privileges. @default false
   */
  allow_privileged_user_mapping: boolean;
  /**
   * Multi-user only: start even though RabbitMQ accepts the default
   * guest/guest login from this host (logged as a warning at every start).
   * For tests on a shared broker only: with it, any local user could act as
   * the Conduit service. @default false
   */
  allow_default_broker_login: boolean;
  /** Log at DEBUG level. @default false */
  debug: boolean;
  /** Any other key, kept as written. */
  [key: string]: unknown;
}

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
  const fields = new FieldReader(source, data);
  return Object.freeze({
    ...data,
    amqp_port: fields.nullablePort("amqp_port"),
    display_name: fields.nullableString("display_name", '"My Endpoint"'),
    heartbeat_period: fields.heartbeatPeriod(),
    user_config_template_path: fields.nullableString("user_config_template_path", "/path/to/template.yaml.j2"),
    user_config_schema_path: fields.nullableString("user_config_schema_path", "/path/to/schema.json"),
    user_environment_path: fields.nullableString("user_environment_path", "/path/to/user_environment.yaml"),
    allowed_functions: fields.nullableUuidList("allowed_functions"),
    multi_user: fields.boolean("multi_user", false),
    identity_mapping_config_path: fields.nullableString("identity_mapping_config_path", "/path/to/idmap.json"),
    allow_privileged_user_mapping: fields.boolean("allow_privileged_user_mapping", false),
    allow_default_broker_login: fields.boolean("allow_default_broker_login", false),
    debug: fields.boolean("debug", false),
  });
}
