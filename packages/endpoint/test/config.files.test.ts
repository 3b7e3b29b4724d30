/**
 * The endpoint's files: the defaults `configure` writes are the seed's, and
 * config.yaml, user_environment.yaml and a rendered user endpoint config parse
 * to typed values, with one sentence naming the file, the key and the fix for
 * anything wrong.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_CONFIG_YAML,
  DEFAULT_SCHEMA,
  DEFAULT_TEMPLATE,
  DEFAULT_USER_ENVIRONMENT,
  ENDPOINT_FILES,
} from "../src/config/defaults.js";
import { parseManagerConfig } from "../src/config/manager-config.js";
import { parseUserEndpointConfig } from "../src/config/user-endpoint-config.js";
import { parseUserEnvironment } from "../src/config/user-environment.js";
import { ConfigError } from "../src/errors.js";

const SOURCE = "/home/admin/.conduit/ep/config.yaml";
const FN_A = "6d0ba55f-de15-4af2-827d-05c50c338aa7";

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error("expected a ConfigError");
}

describe("default files", () => {
  it("are the files under packages/endpoint/templates", () => {
    const read = (name: string) => readFileSync(new URL(`../templates/${name}`, import.meta.url), "utf8");
    expect(DEFAULT_CONFIG_YAML).toBe(read(ENDPOINT_FILES.config));
    expect(DEFAULT_TEMPLATE).toBe(read(ENDPOINT_FILES.template));
    expect(DEFAULT_SCHEMA).toBe(read(ENDPOINT_FILES.schema));
    expect(DEFAULT_USER_ENVIRONMENT).toBe(read(ENDPOINT_FILES.environment));
  });

  it("keep the seed's template and schema verbatim", () => {
    expect(DEFAULT_TEMPLATE).toBe(
      [
        "endpoint_setup: {{ endpoint_setup|default() }}",
        "",
        "engine:",
        "   type: GlobusComputeEngine",
        "   max_workers_per_node: 1",
        "",
        "   provider:",
        "      type: LocalProvider",
        "      min_blocks: 0",
        "      max_blocks: 1",
        "      init_blocks: 1",
        "      worker_init: {{ worker_init|default() }}",
        "",
        "idle_heartbeats_soft: 10",
        "idle_heartbeats_hard: 5760",
        "",
      ].join("\n"),
    );
    expect(DEFAULT_SCHEMA).toBe(
      [
        "{",
        '  "$schema": "https://json-schema.org/draft/2020-12/schema",',
        '  "type": "object",',
        '  "properties": {',
        '    "endpoint_setup": { "type": "string" },',
        '    "worker_init": { "type": "string" }',
        "  },",
        '  "additionalProperties": true',
        "}",
        "",
      ].join("\n"),
    );
  });

  it("write amqp_port: null with a comment, then display_name: null", () => {
    expect(DEFAULT_CONFIG_YAML).toMatch(/^#[^\n]*amqp_port[\s\S]*\namqp_port: null\ndisplay_name: null\n$/);
    const config = parseManagerConfig(DEFAULT_CONFIG_YAML, "config.yaml");
    expect(config.amqp_port).toBeNull();
    expect(config.display_name).toBeNull();
  });

  it("give an environment file that sets nothing", () => {
    expect(DEFAULT_USER_ENVIRONMENT).toMatch(/^#/m);
    expect(parseUserEnvironment(DEFAULT_USER_ENVIRONMENT, "user_environment.yaml")).toEqual({});
  });
});

describe("parseManagerConfig", () => {
  it("fills in the defaults", () => {
    expect({ ...parseManagerConfig("", SOURCE) }).toEqual({
      amqp_port: null,
      display_name: null,
      heartbeat_period: 30,
      user_config_template_path: null,
      user_config_schema_path: null,
      user_environment_path: null,
      allowed_functions: null,
      multi_user: false,
      identity_mapping_config_path: null,
      allow_privileged_user_mapping: false,
      allow_default_broker_login: false,
      debug: false,
      metrics_port: null,
      high_assurance: false,
      audit_log_path: null,
      authentication_policy: null,
      subscription_id: null,
      contact_email: null,
    });
  });

  it("reads every key", () => {
    const config = parseManagerConfig(
      [
        "amqp_port: 5671",
        "display_name: Cluster login",
        "heartbeat_period: 5",
        "user_config_template_path: /etc/conduit/t.yaml.j2",
        "allowed_functions:",
        `  - ${FN_A.toUpperCase()}`,
        "multi_user: true",
        "identity_mapping_config_path: /etc/conduit/idmap.json",
        "debug: true",
        "allow_default_broker_login: true",
        "metrics_port: 9100",
      ].join("\n"),
      SOURCE,
    );
    expect(config).toMatchObject({
      amqp_port: 5671,
      display_name: "Cluster login",
      heartbeat_period: 5,
      user_config_template_path: "/etc/conduit/t.yaml.j2",
      allowed_functions: [FN_A],
      multi_user: true,
      identity_mapping_config_path: "/etc/conduit/idmap.json",
      debug: true,
      allow_default_broker_login: true,
      metrics_port: 9100,
    });
  });

  it("refuses a metrics_port that is not a port, saying what null means", () => {
    expect(errorOf(() => parseManagerConfig("metrics_port: 70000\n", SOURCE))).toBe(
      `${SOURCE}: \`metrics_port\` must be a port number from 1 to 65535 or null, not 70000; fix it, or set it to null for no metrics.`,
    );
  });

  it("refuses an unknown key, naming the file, the nearest valid key and every valid one", () => {
    const valid =
      "allow_default_broker_login, allow_privileged_user_mapping, allowed_functions, amqp_port, audit_log_path, authentication_policy, contact_email, debug, display_name, heartbeat_period, high_assurance, identity_mapping_config_path, metrics_port, multi_user, subscription_id, user_config_schema_path, user_config_template_path, user_environment_path";
    expect(errorOf(() => parseManagerConfig("display_nam: x\n", SOURCE))).toBe(
      `${SOURCE}: \`display_nam\` is not a valid config.yaml key (did you mean \`display_name\`?); valid config.yaml keys are: ${valid}.`,
    );
    expect(errorOf(() => parseManagerConfig("email: admin@example.org\n", SOURCE))).toBe(
      `${SOURCE}: \`email\` is not a valid config.yaml key; valid config.yaml keys are: ${valid}.`,
    );
    expect(errorOf(() => parseManagerConfig("allowed_function: []\n", SOURCE))).toMatch(
      /did you mean `allowed_functions`\?/,
    );
    expect(errorOf(() => parseManagerConfig("allow_default_broker_logins: true\n", SOURCE))).toMatch(
      /did you mean `allow_default_broker_login`\?/,
    );
  });

  it.each([
    ["public: true", "public", "listing the endpoint for everyone"],
    ["admins:\n  - 498c6a5c-0a3d-4ab6-8a9b-6bcfb9f8a6bd", "admins", "endpoint administrators other than its owner"],
  ])("refuses %j, saying this version of Conduit does not implement it", (text, key, feature) => {
    expect(errorOf(() => parseManagerConfig(`display_name: x\n${text}\n`, SOURCE))).toBe(
      `${SOURCE}: this version of Conduit does not implement \`${key}\` (${feature}); remove it.`,
    );
  });

  it("takes null for a key it does not implement, as for any key (null is the default)", () => {
    expect(parseManagerConfig("public:\nadmins: null\n", SOURCE)).not.toHaveProperty("public");
  });

  it("sends an engine block to the template", () => {
    expect(errorOf(() => parseManagerConfig("engine:\n  type: ThreadPoolEngine\n", SOURCE))).toBe(
      `${SOURCE} has an \`engine\` block, but engines belong to the user endpoint processes; move the \`engine\` block to user_config_template.yaml.j2.`,
    );
  });

  it.each([
    ["heartbeat_period: 0.5", "`heartbeat_period` must be a number of seconds of at least 1, not 0.5"],
    ["heartbeat_period: soon", '`heartbeat_period` must be a number of seconds of at least 1, not "soon"'],
    ["amqp_port: 70000", "`amqp_port` must be a port number from 1 to 65535 or null, not 70000"],
    ["amqp_port: '5672'", '`amqp_port` must be a port number from 1 to 65535 or null, not "5672"'],
    ["multi_user: yes", '`multi_user` must be true or false, not "yes"'],
    ["display_name: [a]", "`display_name` must be a string, not a list"],
    ["allowed_functions: " + FN_A, "`allowed_functions` must be a list of function ids"],
    ["allowed_functions:\n  - not-a-uuid", "`allowed_functions` item 1 must be a function id"],
  ])("names the file, the key and the fix for %j", (text, what) => {
    const message = errorOf(() => parseManagerConfig(text, SOURCE));
    expect(message.startsWith(`${SOURCE}: ${what}`)).toBe(true);
    expect(message).toMatch(/; .+\.$/);
  });

  it("names the file and the line of a YAML syntax error", () => {
    expect(errorOf(() => parseManagerConfig("display_name: ok\nextra:\n  a: 1\n b: 2\n", SOURCE))).toBe(
      `${SOURCE} line 4: All mapping items must start at the same column; fix the YAML syntax.`,
    );
    expect(errorOf(() => parseManagerConfig("debug: true\ndebug: false\n", SOURCE))).toMatch(
      new RegExp(`^${SOURCE} line 2: Map keys must be unique; fix the YAML syntax\\.$`),
    );
  });

  it("refuses a file that is not a mapping", () => {
    expect(errorOf(() => parseManagerConfig("- a\n- b\n", SOURCE))).toBe(
      `${SOURCE} must be a YAML mapping of keys to values, not a list; write one "key: value" per line.`,
    );
  });
});

describe("parseUserEnvironment", () => {
  const ENV = "/home/admin/.conduit/ep/user_environment.yaml";

  it("reads flat pairs as strings, as Globus's str() does", () => {
    const env = parseUserEnvironment(
      [
        "COMPILER_PATH: /opt/compiler/3.2.9/bin",
        "LD_LIBRARY_PATH: /opt/compiler/lib:/opt/cray/lib64",
        "QUOTED: 'a: b'",
        "THREADS: 4",
        "RATIO: 1.50",
        "UMASK: 0077",
        "DEBUG: true",
        "OFF: false",
        "EMPTY:",
        "NULLISH: null",
        "__proto__: x",
      ].join("\n"),
      ENV,
    );
    expect(env).toEqual({
      COMPILER_PATH: "/opt/compiler/3.2.9/bin",
      LD_LIBRARY_PATH: "/opt/compiler/lib:/opt/cray/lib64",
      QUOTED: "a: b",
      THREADS: "4",
      RATIO: "1.50",
      UMASK: "0077",
      DEBUG: "True",
      OFF: "False",
      EMPTY: "None",
      NULLISH: "None",
      ["__proto__"]: "x",
    });
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
  });

  it("reads an empty or comment-only file as no variables", () => {
    expect(parseUserEnvironment("", ENV)).toEqual({});
    expect(parseUserEnvironment("# nothing\n", ENV)).toEqual({});
  });

  it("refuses nesting, naming the variable", () => {
    expect(errorOf(() => parseUserEnvironment("PATH:\n  - /a\n  - /b\n", ENV))).toBe(
      `${ENV}: PATH has a nested list or mapping, but environment variables are plain strings; write its value on one line (e.g. PATH: /a:/b).`,
    );
    expect(errorOf(() => parseUserEnvironment("- A\n", ENV))).toMatch(new RegExp(`^${ENV} must be a mapping`));
    expect(errorOf(() => parseUserEnvironment("A=B: 1\n", ENV))).toMatch(/is not an environment variable name/);
    expect(errorOf(() => parseUserEnvironment("A: 'x\n", ENV))).toMatch(new RegExp(`^${ENV} line \\d+: `));
  });
});

describe("parseUserEndpointConfig", () => {
  const RENDERED = "The rendered user_config_template.yaml.j2";

  it("fills in the defaults", () => {
    expect({ ...parseUserEndpointConfig("engine:\n  type: ThreadPoolEngine\n") }).toEqual({
      engine: { type: "ThreadPoolEngine" },
      endpoint_setup: null,
      endpoint_teardown: null,
      idle_heartbeats_soft: 0,
      idle_heartbeats_hard: 5760,
      heartbeat_period: 30,
      debug: false,
      display_name: null,
      allowed_functions: null,
    });
  });

  it("reads every key, leaving the engine's own keys to the engine", () => {
    const config = parseUserEndpointConfig(
      [
        "debug: true",
        "display_name: Debugging template",
        "endpoint_setup: |",
        "  conda create -n env",
        "endpoint_teardown: conda remove -n env --all",
        "idle_heartbeats_soft: 10",
        "idle_heartbeats_hard: 20",
        "heartbeat_period: 2",
        "allowed_functions:",
        `  - ${FN_A}`,
        "engine:",
        "  type: HighThroughputEngine",
        "  max_workers_per_node: 2",
        "  provider: {type: LocalProvider, init_blocks: 1}",
      ].join("\n"),
    );
    expect(config).toEqual({
      engine: {
        type: "HighThroughputEngine",
        max_workers_per_node: 2,
        provider: { type: "LocalProvider", init_blocks: 1 },
      },
      endpoint_setup: "conda create -n env\n",
      endpoint_teardown: "conda remove -n env --all",
      idle_heartbeats_soft: 10,
      idle_heartbeats_hard: 20,
      heartbeat_period: 2,
      debug: true,
      display_name: "Debugging template",
      allowed_functions: [FN_A],
    });
  });

  it("names an unknown key, the nearest valid one and every valid one", () => {
    expect(errorOf(() => parseUserEndpointConfig("engine: {type: ThreadPoolEngine}\nidle_heartbeat_soft: 3\n"))).toBe(
      `${RENDERED}: \`idle_heartbeat_soft\` is not a valid user endpoint config key (did you mean \`idle_heartbeats_soft\`?); valid user endpoint config keys are: allowed_functions, debug, display_name, endpoint_setup, endpoint_teardown, engine, heartbeat_period, idle_heartbeats_hard, idle_heartbeats_soft.`,
    );
    expect(errorOf(() => parseUserEndpointConfig("engine: {type: ThreadPoolEngine}\nhigh_assurance: true\n"))).toMatch(
      /^The rendered user_config_template\.yaml\.j2: `high_assurance` may not be specified in template; remove it/,
    );
  });

  it("asks for an engine block when there is none", () => {
    expect(errorOf(() => parseUserEndpointConfig("debug: true\n"))).toMatch(
      new RegExp(`^${RENDERED} has no \`engine\` block; add one to user_config_template\\.yaml\\.j2`),
    );
    expect(errorOf(() => parseUserEndpointConfig(""))).toMatch(/has no `engine` block/);
    expect(errorOf(() => parseUserEndpointConfig("engine: ThreadPoolEngine\n"))).toMatch(
      /`engine` must be a mapping with a `type` key, not "ThreadPoolEngine"/,
    );
    expect(errorOf(() => parseUserEndpointConfig("engine:\n  max_workers: 2\n"))).toMatch(/`engine` has no `type`/);
  });

  it.each([
    ["idle_heartbeats_soft: -1", "`idle_heartbeats_soft` must be a whole number of heartbeats (0 or more), not -1"],
    ["idle_heartbeats_hard: 2.5", "`idle_heartbeats_hard` must be a whole number of heartbeats (0 or more), not 2.5"],
    ["heartbeat_period: 0", "`heartbeat_period` must be a number of seconds of at least 1, not 0"],
    ["endpoint_setup: 5", "`endpoint_setup` must be a string, not 5"],
    ["debug: 'true'", '`debug` must be true or false, not "true"'],
  ])("names the key and the fix for %j", (line, what) => {
    const message = errorOf(() => parseUserEndpointConfig(`engine: {type: ThreadPoolEngine}\n${line}\n`));
    expect(message.startsWith(`${RENDERED}: ${what}`)).toBe(true);
  });

  it("names the line of a YAML error in the rendered text", () => {
    expect(errorOf(() => parseUserEndpointConfig("engine:\n  type: X\n bad: [\n"))).toMatch(
      new RegExp(`^${RENDERED} line \\d+: .+; fix the YAML syntax\\.$`),
    );
  });
});
