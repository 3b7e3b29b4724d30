/**
 * config.yaml and the rendered user endpoint config are described once, by
 * the field tables: the README's option tables and the JSON Schema files are
 * generated from them (and fail here when they drift), and the JSON Schema
 * accepts exactly what the parsers accept.
 */
import { readFileSync } from "node:fs";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { managerConfigSchema, schemaFiles, userEndpointConfigSchema } from "../src/config/config-schema.js";
import { RENDERED_CONFIG_SOURCE } from "../src/config/defaults.js";
import { MANAGER_FIELDS, parseManagerConfig } from "../src/config/manager-config.js";
import { OPTION_TABLES_BEGIN, OPTION_TABLES_END, optionTablesMarkdown } from "../src/config/option-tables.js";
import { parseUserEndpointConfig, USER_ENDPOINT_FIELDS } from "../src/config/user-endpoint-config.js";
import { HIGH_THROUGHPUT_FIELDS, JOB_STATUS_FIELDS } from "../src/engines/high-throughput-options.js";
import { PROCESS_POOL_FIELDS } from "../src/engines/process-pool-engine.js";
import { createEngine } from "../src/engines/registry.js";
import { THREAD_POOL_FIELDS } from "../src/engines/thread-pool-engine.js";
import { ConfigError } from "../src/errors.js";
import type { Fields } from "../src/option-fields.js";
import { LOCAL_PROVIDER_FIELDS } from "../src/providers/local-provider.js";

const ROOT = new URL("../../../", import.meta.url);

describe("the README's option tables", () => {
  it("are exactly what `npm run gen:docs` generates from the field tables", () => {
    const readme = readFileSync(new URL("README.md", ROOT), "utf8");
    const begin = readme.indexOf(OPTION_TABLES_BEGIN);
    const end = readme.indexOf(OPTION_TABLES_END);
    expect(begin, "README.md has the option tables' markers").toBeGreaterThan(0);
    expect(readme.slice(begin, end + OPTION_TABLES_END.length), "run `npm run gen:docs`").toBe(optionTablesMarkdown());
  });

  it("describe every key of every table", () => {
    const tables: Record<string, Fields> = {
      MANAGER_FIELDS,
      USER_ENDPOINT_FIELDS,
      HIGH_THROUGHPUT_FIELDS,
      JOB_STATUS_FIELDS,
      LOCAL_PROVIDER_FIELDS,
      PROCESS_POOL_FIELDS,
      THREAD_POOL_FIELDS,
    };
    const undescribed = Object.entries(tables).flatMap(([table, fields]) =>
      Object.entries(fields)
        .filter(([, field]) => !field.description)
        .map(([key]) => `${table}.${key}`),
    );
    expect(undescribed).toEqual([]);
  });
});

describe("the JSON Schema files", () => {
  it("hold what `npm run gen:docs` generates from the field tables", () => {
    for (const [name, text] of Object.entries(schemaFiles())) {
      const file = readFileSync(new URL(`packages/endpoint/schemas/${name}`, ROOT), "utf8");
      expect(JSON.parse(file), `${name}: run \`npm run gen:docs\``).toEqual(JSON.parse(text));
    }
  });

  const ajv = new Ajv2020({ strict: true, allErrors: true });
  // As the UEP's own schema check does (config/user-config-schema.ts): `address` is an ipv4 or ipv6 format.
  addFormats.default(ajv);
  const manager = ajv.compile(managerConfigSchema());
  const rendered = ajv.compile(userEndpointConfigSchema());

  function parserAccepts(parse: () => unknown): boolean {
    try {
      parse();
      return true;
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return false;
    }
  }

  const FN = "6d0ba55f-de15-4af2-827d-05c50c338aa7";
  const managerCases: Array<Record<string, unknown>> = [
    {},
    { amqp_port: null, display_name: null },
    { amqp_port: 5671, display_name: "x", heartbeat_period: 2.5, debug: true, multi_user: false },
    { allowed_functions: [FN, FN.toUpperCase()], allow_default_broker_login: true },
    { high_assurance: null, audit_log_path: null },
    { amqp_port: 0 },
    { amqp_port: "5672" },
    { heartbeat_period: 0.5 },
    { allowed_functions: ["nope"] },
    { allowed_functions: FN },
    { multi_user: "yes" },
    { display_nam: "x" },
    { email: "admin@example.org" },
    { high_assurance: true },
    { high_assurance: true, authentication_policy: FN, subscription_id: FN, audit_log_path: "/var/log/audit.log" },
    { high_assurance: true, authentication_policy: FN, subscription_id: null },
    { high_assurance: false },
    { audit_log_path: "/var/log/audit.log" },
    { audit_log_path: "/var/log/audit.log", high_assurance: false },
    { audit_log_path: null, high_assurance: null },
    { authentication_policy: FN },
    { authentication_policy: "policy" },
    { subscription_id: FN.toUpperCase() },
    { contact_email: "ops@example.org" },
    { contact_email: "ops" },
    { public: true },
    { admins: [FN] },
  ];

  it.each(managerCases)("agrees with parseManagerConfig on config.yaml %j", (config) => {
    const parsed = parserAccepts(() => parseManagerConfig(JSON.stringify(config), "config.yaml"));
    expect(manager(config), JSON.stringify(manager.errors)).toBe(parsed);
  });

  const engines: Array<Record<string, unknown>> = [
    { type: "ThreadPoolEngine" },
    { type: "ThreadPoolEngine", max_workers: 2, allowed_serializers: ["conduit.*Code", "conduit.JSONData"] },
    { type: "ProcessPoolEngine", max_memory_per_worker: 256, max_open_files_per_worker: 256, max_user_processes: 9 },
    { type: "GlobusComputeEngine", max_workers_per_node: 1, provider: { type: "LocalProvider", worker_init: null } },
    {
      type: "HighThroughputEngine",
      encrypted: false,
      address: "127.0.0.1",
      job_status_kwargs: { max_idletime: 0, strategy: "none" },
    },
    { type: "HighThroughputEngine", max_memory_per_worker: 1024 },
    { type: "ThreadPoolEngine", max_memory_per_worker: 256 },
    { type: "ThreadPoolEngine", max_worker: 2 },
    { type: "ThreadPoolEngine", max_workers: 0 },
    { type: "ProcessPoolEngine", max_user_processes: -1 },
    { type: "DaskEngine" },
    { max_workers: 2 },
    { type: "HighThroughputEngine", encrypted: true, address: "0.0.0.0", worker_port_range: [54000, 55000] },
    { type: "HighThroughputEngine", address: "::1", worker_port: 54321, heartbeat_period: 5, heartbeat_threshold: 20 },
    { type: "HighThroughputEngine", address: "login 1" },
    { type: "HighThroughputEngine", worker_port: 70000 },
    { type: "HighThroughputEngine", heartbeat_period: 0 },
    { type: "HighThroughputEngine", container_type: "docker", container_uri: "worker:1" },
    { type: "HighThroughputEngine", container_type: "bogus", container_uri: "worker:1" },
    { type: "HighThroughputEngine", container_type: "podman", container_uri: "w", container_cmd_options: "-v /t:/t" },
    { type: "ProcessPoolEngine", label: "x" },
    { type: "ThreadPoolEngine", working_dir: "tasks" },
    { type: "HighThroughputEngine", provider: { type: "SlurmProvider" } },
    { type: "HighThroughputEngine", provider: { type: "LocalProvider", walltime: "1:00" } },
    { type: "HighThroughputEngine", job_status_kwargs: { strategy: "eager" } },
    { type: "HighThroughputEngine", allowed_serializers: ["conduit.NopeData"] },
  ];
  const renderedCases: Array<Record<string, unknown>> = [
    ...engines.map((engine) => ({ engine })),
    { engine: { type: "ThreadPoolEngine" }, idle_heartbeats_soft: 10, endpoint_setup: "true", allowed_functions: [FN] },
    {},
    { engine: null },
    { engine: { type: "ThreadPoolEngine" }, idle_heartbeat_soft: 3 },
    { engine: { type: "ThreadPoolEngine" }, idle_heartbeats_hard: 2.5 },
    { engine: { type: "ThreadPoolEngine" }, high_assurance: true },
  ];

  it.each(renderedCases)("agrees with the UEP on the rendered config %j", (config) => {
    const parsed = parserAccepts(() => {
      const uep = parseUserEndpointConfig(JSON.stringify(config));
      createEngine(uep.engine, "engine", RENDERED_CONFIG_SOURCE);
    });
    expect(rendered(config), JSON.stringify(rendered.errors)).toBe(parsed);
  });
});
