/**
 * The configuration of one user endpoint process (UEP): the YAML that
 * user_config_template.yaml.j2 renders to, as a table of its keys. Every
 * top-level key is listed (a typo is an error naming the nearest valid key,
 * not a silently ignored setting); the `engine` block is checked only for its
 * `type` here, and `createEngine` checks the rest of its keys against the
 * engine's own table.
 */
import type { EngineConfig } from "../engines/engine-types.js";
import { engineSchema } from "../engines/registry.js";
import { ConfigError } from "../errors.js";
import { doc, type Field, type Options, parseOptions, refusedField } from "../option-fields.js";
import { countField, flagField, functionIdsField, heartbeatPeriodField, textField } from "./config-fields.js";
import { ENDPOINT_FILES, RENDERED_CONFIG_SOURCE } from "./defaults.js";
import { asMapping, describeValue, parseYamlText } from "./yaml-text.js";

const SOURCE = RENDERED_CONFIG_SOURCE;

function engineField(): Field<EngineConfig> {
  return {
    expected: "a mapping with a `type` key",
    schema: engineSchema,
    parse: readEngine,
    fallback: () => readEngine(undefined),
    description: "How tasks run: a mapping with a `type` and that engine's options.",
    defaultText: "required",
  };
}

export const USER_ENDPOINT_FIELDS = {
  engine: engineField(),
  endpoint_setup: doc(
    "Shell script run (by /bin/sh) before the engine starts; must succeed.",
    textField("module load conda"),
  ),
  endpoint_teardown: doc("Shell script run after the engine stops.", textField("rm -rf /tmp/scratch")),
  idle_heartbeats_soft: doc(
    "Heartbeats without task movement, after work was done and none is outstanding, before the UEP stops; 0 = never.",
    countField(0, "heartbeats"),
  ),
  idle_heartbeats_hard: doc(
    "Heartbeats without any task movement before the UEP stops regardless (5760 is 48 h at 30 s); its unfinished tasks then fail with UepIdleHardLimit, and it is not restarted for them.",
    countField(5760, "heartbeats"),
  ),
  heartbeat_period: doc("Seconds between heartbeats (and idle checks), at least 1.", heartbeatPeriodField()),
  debug: doc("Log at DEBUG level and print the rendered config to the UEP's log.", flagField(false)),
  display_name: doc("How the UEP appears in listings.", textField('"My Endpoint"')),
  allowed_functions: doc(
    "Function ids this UEP runs (config.yaml's list, when set, replaces it).",
    functionIdsField(),
    "any function",
  ),
  // Only the administrator decides: a template that could set it would let a user's variables turn it off.
  // The sentence starts with upstream's (endpoint_manager.py).
  high_assurance: doc(
    "Refused: a UEP is High-Assurance when its manager's config.yaml says so.",
    refusedField(
      (path) =>
        `\`${path}\` may not be specified in template; remove it: a user endpoint is High-Assurance exactly when high_assurance is set in the manager's ${ENDPOINT_FILES.config}.`,
    ),
  ),
};

export type UserEndpointConfig = Options<typeof USER_ENDPOINT_FIELDS>;

/** Parses and checks the rendered text of the user config template. */
export function parseUserEndpointConfig(yamlText: string): UserEndpointConfig {
  const data = asMapping(parseYamlText(yamlText, SOURCE), SOURCE);
  return parseOptions(data, "", "user endpoint config", USER_ENDPOINT_FIELDS, SOURCE);
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
