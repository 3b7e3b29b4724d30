/**
 * `conduit-endpoint configure <name>`: creates the endpoint directory and its
 * four files from the defaults. Works with the service down (unless a policy
 * is to be created or checked, see configure-assurance.ts); never overwrites
 * an existing endpoint.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { ConduitError } from "@conduit/protocol/wire";
import { DEFAULT_CONFIG_YAML, DEFAULT_SCHEMA, DEFAULT_TEMPLATE, DEFAULT_USER_ENVIRONMENT } from "../config/defaults.js";
import { EXAMPLE_IDENTITY_MAPPING_CONFIG, exampleIdentityMappingPath } from "../config/example-identity-mapping.js";
import { parseManagerConfig } from "../config/manager-config.js";
import { type EndpointPaths, endpointPaths, validateEndpointName } from "../manager/endpoint-dir.js";
import type { AssuranceKeys } from "./configure-assurance.js";

/** The audit log `configure --high-assurance` names, in the endpoint directory. */
export const AUDIT_LOG_FILE = "audit.log";

export interface ConfigureOptions {
  userDir: string;
  name: string;
  /** Written as `display_name` in config.yaml. */
  displayName?: string;
  /** Written as `multi_user: true` in config.yaml, with `identity_mapping_config_path` naming the example mapping file written next to it. */
  multiUser?: boolean;
  /** The policy and High-Assurance keys (see configure-assurance.ts), already checked with the service. */
  assurance?: AssuranceKeys;
}

/** One file `configure` wrote, as its message names it. */
export interface WrittenFile {
  label: string;
  path: string;
  /** Read by the MEP (config, identity mapping) or by each UEP (template, schema, environment). */
  readBy: "manager" | "user endpoint";
}

export interface ConfiguredEndpoint {
  ep: EndpointPaths;
  multiUser: boolean;
  /** Every file written, in order. */
  files: readonly WrittenFile[];
}

/**
 * The paths of endpoint `name`, which must not exist yet: checked before
 * anything else happens (a policy created for a name that is taken would be
 * left behind).
 */
export function newEndpointPaths(userDir: string, name: string): EndpointPaths {
  validateEndpointName(name);
  const ep = endpointPaths(userDir, name);
  if (existsSync(ep.config)) {
    throw new ConduitError(
      "ENDPOINT_EXISTS",
      `Endpoint ${name} already exists (${ep.config}); start it with: conduit-endpoint start ${name}, or choose another name.`,
    );
  }
  if (existsSync(ep.dir)) {
    throw new ConduitError(
      "ENDPOINT_EXISTS",
      `${ep.dir} already exists but holds no config.yaml; move it away or choose another name.`,
    );
  }
  return ep;
}

export function configureEndpoint(options: ConfigureOptions): ConfiguredEndpoint {
  const { userDir, name } = options;
  const ep = newEndpointPaths(userDir, name);
  // The file is checked as `start` will read it, before anything is written: configure never leaves a config start refuses.
  const config = configText(options, ep);
  parseManagerConfig(config, ep.config);
  mkdirSync(userDir, { recursive: true, mode: 0o700 });
  const files: Array<[WrittenFile, string]> = [
    [{ label: "Configuration file", path: ep.config, readBy: "manager" }, config],
  ];
  if (options.multiUser) {
    const path = exampleIdentityMappingPath(ep.dir);
    files.push([{ label: "Identity mapping configuration", path, readBy: "manager" }, EXAMPLE_IDENTITY_MAPPING_CONFIG]);
  }
  files.push(
    [{ label: "User endpoint configuration template", path: ep.template, readBy: "user endpoint" }, DEFAULT_TEMPLATE],
    [{ label: "User endpoint configuration schema", path: ep.schema, readBy: "user endpoint" }, DEFAULT_SCHEMA],
    [
      { label: "User endpoint environment variables", path: ep.environment, readBy: "user endpoint" },
      DEFAULT_USER_ENVIRONMENT,
    ],
  );
  // Not recursive: of two `configure`s racing, the second fails here.
  mkdirSync(ep.dir, { mode: 0o700 });
  try {
    for (const [file, text] of files) writeFileSync(file.path, text, { mode: 0o600, flag: "wx" });
  } catch (err) {
    // A half-written endpoint would be listed and started; leave nothing behind.
    rmSync(ep.dir, { recursive: true, force: true });
    throw err;
  }
  return { ep, multiUser: options.multiUser === true, files: files.map(([file]) => file) };
}

/** The default config.yaml with the options applied, keeping its comments. */
function configText(options: ConfigureOptions, ep: EndpointPaths): string {
  let text = DEFAULT_CONFIG_YAML;
  if (options.displayName !== undefined) text = setKey(text, "display_name", JSON.stringify(options.displayName));
  if (options.multiUser) {
    text = setKey(text, "multi_user", "true");
    text = setKey(text, "identity_mapping_config_path", JSON.stringify(resolve(exampleIdentityMappingPath(ep.dir))));
  }
  const assurance = options.assurance;
  if (assurance?.contactEmail !== undefined)
    text = setKey(text, "contact_email", JSON.stringify(assurance.contactEmail));
  if (assurance?.authenticationPolicy !== undefined) {
    text = setKey(text, "authentication_policy", assurance.authenticationPolicy);
  }
  if (assurance?.subscriptionId !== undefined) text = setKey(text, "subscription_id", assurance.subscriptionId);
  if (assurance?.highAssurance) {
    text = setKey(text, "high_assurance", "true");
    text = setKey(text, "audit_log_path", JSON.stringify(resolve(ep.dir, AUDIT_LOG_FILE)));
  }
  return text;
}

/** Replaces the top-level `key:` line, or appends one. JSON strings are valid YAML scalars. */
function setKey(text: string, key: string, value: string): string {
  const line = new RegExp(`^${key}:.*$`, "m");
  if (line.test(text)) return text.replace(line, `${key}: ${value}`);
  return `${text}${text.endsWith("\n") || text === "" ? "" : "\n"}${key}: ${value}\n`;
}

/**
 * What `configure` prints: the seed's message (whose first line says
 * "multi-user profile" for every endpoint), naming every file written, the
 * manager's files first.
 */
export function configureMessage(configured: ConfiguredEndpoint): string {
  const { ep, files } = configured;
  const lines = (readBy: WrittenFile["readBy"]) =>
    files.filter((f) => f.readBy === readBy).map((f) => `    ${f.label}: ${f.path}`);
  return [
    `Created multi-user profile for endpoint named <${ep.name}>`,
    "",
    ...lines("manager"),
    "",
    ...lines("user endpoint"),
    "",
    configured.multiUser
      ? "Use the `start` subcommand to run it (as root: it maps users to local accounts):"
      : "Use the `start` subcommand to run it:",
    "",
    `    conduit-endpoint start ${ep.name}`,
    "",
  ].join("\n");
}
