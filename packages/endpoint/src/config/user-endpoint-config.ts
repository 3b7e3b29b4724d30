/**
 * The configuration of one user endpoint process (UEP): the YAML that
 * user_config_template.yaml.j2 renders to. Every top-level key is known (a typo
 * is an error, not a silently ignored setting); the `engine` block is checked
 * only for its `type` here, the engine checks the rest of its keys.
 */
import type { EngineConfig } from "../engines/engine-types.js";
import { ConfigError } from "../errors.js";
import { FieldReader } from "./config-fields.js";
import { ENDPOINT_FILES } from "./defaults.js";
import { asMapping, describeValue, parseYamlText } from "./yaml-text.js";

export interface UserEndpointConfig {
  engine: EngineConfig;
  /** Shell script run (by /bin/sh) before the engine starts; must succeed. @default null */
  endpoint_setup: string | null;
  /** Shell script run after the engine stops. @default null */
  endpoint_teardown: string | null;
  /** Heartbeats without task movement, after work was done and none is outstanding, before the UEP stops; 0 = never. @default 0 */
  idle_heartbeats_soft: number;
  /** Heartbeats without any task movement before the UEP stops regardless. @default 5760 (48 h at 30 s) */
  idle_heartbeats_hard: number;
  /** Seconds between heartbeats (and idle checks), at least 1. @default 30 */
  heartbeat_period: number;
  /** Log at DEBUG level and print the rendered config to the UEP's log. @default false */
  debug: boolean;
  /** @default null */
  display_name: string | null;
  /** Function ids this UEP runs (config.yaml's list, when set, replaces it). @default null (any) */
  allowed_functions: string[] | null;
}

const KEYS: readonly (keyof UserEndpointConfig)[] = [
  "engine",
  "endpoint_setup",
  "endpoint_teardown",
  "idle_heartbeats_soft",
  "idle_heartbeats_hard",
  "heartbeat_period",
  "debug",
  "display_name",
  "allowed_functions",
];

const SOURCE = `The rendered ${ENDPOINT_FILES.template}`;

/** Parses and checks the rendered text of the user config template. */
export function parseUserEndpointConfig(yamlText: string): UserEndpointConfig {
  const data = asMapping(parseYamlText(yamlText, SOURCE), SOURCE);
  const unknown = Object.keys(data).filter((key) => !(KEYS as readonly string[]).includes(key));
  if (unknown.length > 0) {
    throw new ConfigError(
      `${SOURCE} has unknown key${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `\`${k}\``).join(", ")}; valid top-level keys are ${KEYS.join(", ")}.`,
    );
  }
  const fields = new FieldReader(SOURCE, data);
  return Object.freeze({
    engine: readEngine(data.engine),
    endpoint_setup: fields.nullableString("endpoint_setup", "module load conda"),
    endpoint_teardown: fields.nullableString("endpoint_teardown", "rm -rf /tmp/scratch"),
    idle_heartbeats_soft: fields.count("idle_heartbeats_soft", 0, "heartbeats"),
    idle_heartbeats_hard: fields.count("idle_heartbeats_hard", 5760, "heartbeats"),
    heartbeat_period: fields.heartbeatPeriod(),
    debug: fields.boolean("debug", false),
    display_name: fields.nullableString("display_name", '"My Endpoint"'),
    allowed_functions: fields.nullableUuidList("allowed_functions"),
  });
}

function readEngine(value: unknown): EngineConfig {
  if (value === undefined || value === null) {
    throw new ConfigError(
      `${SOURCE} has no \`engine\` block; add one to ${ENDPOINT_FILES.template}, e.g. "engine:" followed by an indented "type: ThreadPoolEngine".`,
    );
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(
      `${SOURCE}: \`engine\` must be a mapping with a \`type\` key, not ${describeValue(value)}; indent the engine's keys under "engine:".`,
    );
  }
  const engine = value as Record<string, unknown>;
  if (typeof engine.type !== "string" || engine.type === "") {
    throw new ConfigError(
      `${SOURCE}: \`engine\` has no \`type\`; add e.g. "type: ThreadPoolEngine" (or ProcessPoolEngine, HighThroughputEngine) under "engine:".`,
    );
  }
  return engine as EngineConfig;
}
