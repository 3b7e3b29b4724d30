/**
 * `conduit-endpoint configure <name>`: creates the endpoint directory and its
 * four files from the defaults. Works with the service down; never overwrites
 * an existing endpoint.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { ConduitError } from "@conduit/protocol";
import { DEFAULT_CONFIG_YAML, DEFAULT_SCHEMA, DEFAULT_TEMPLATE, DEFAULT_USER_ENVIRONMENT } from "../config/defaults.js";
import { EXAMPLE_IDENTITY_MAPPING_CONFIG, exampleIdentityMappingPath } from "../config/example-identity-mapping.js";
import { parseManagerConfig } from "../config/manager-config.js";
import { type EndpointPaths, endpointPaths, validateEndpointName } from "../manager/endpoint-dir.js";

export interface ConfigureOptions {
  userDir: string;
  name: string;
  /** Written as `display_name` in config.yaml. */
  displayName?: string;
  /** Written as `multi_user: true` in config.yaml, with `identity_mapping_config_path` naming the example mapping file written next to it. */
  multiUser?: boolean;
}

export function configureEndpoint(options: ConfigureOptions): EndpointPaths {
  const { userDir, name } = options;
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
  // The file is checked as `start` will read it, before anything is written: configure never leaves a config start refuses.
  const config = configText(options, ep);
  parseManagerConfig(config, ep.config);
  mkdirSync(userDir, { recursive: true, mode: 0o700 });
  // Not recursive: of two `configure`s racing, the second fails here.
  mkdirSync(ep.dir, { mode: 0o700 });
  try {
    const files: Array<[string, string]> = [
      [ep.config, config],
      [ep.template, DEFAULT_TEMPLATE],
      [ep.schema, DEFAULT_SCHEMA],
      [ep.environment, DEFAULT_USER_ENVIRONMENT],
    ];
    if (options.multiUser) files.push([exampleIdentityMappingPath(ep.dir), EXAMPLE_IDENTITY_MAPPING_CONFIG]);
    for (const [path, text] of files) writeFileSync(path, text, { mode: 0o600, flag: "wx" });
  } catch (err) {
    // A half-written endpoint would be listed and started; leave nothing behind.
    rmSync(ep.dir, { recursive: true, force: true });
    throw err;
  }
  return ep;
}

/** The default config.yaml with the options applied, keeping its comments. */
function configText(options: ConfigureOptions, ep: EndpointPaths): string {
  let text = DEFAULT_CONFIG_YAML;
  if (options.displayName !== undefined) text = setKey(text, "display_name", JSON.stringify(options.displayName));
  if (options.multiUser) {
    text = setKey(text, "multi_user", "true");
    text = setKey(text, "identity_mapping_config_path", JSON.stringify(resolve(exampleIdentityMappingPath(ep.dir))));
  }
  return text;
}

/** Replaces the top-level `key:` line, or appends one. JSON strings are valid YAML scalars. */
function setKey(text: string, key: string, value: string): string {
  const line = new RegExp(`^${key}:.*$`, "m");
  if (line.test(text)) return text.replace(line, `${key}: ${value}`);
  return `${text}${text.endsWith("\n") || text === "" ? "" : "\n"}${key}: ${value}\n`;
}

/** What `configure` prints, as in the seed. */
export function configureMessage(ep: EndpointPaths): string {
  return [
    `Created profile for endpoint named <${ep.name}>`,
    "",
    `    Configuration file: ${ep.config}`,
    "",
    `    User endpoint configuration template: ${ep.template}`,
    `    User endpoint configuration schema: ${ep.schema}`,
    `    User endpoint environment variables: ${ep.environment}`,
    "",
    "Use the `start` subcommand to run it:",
    "",
    `    conduit-endpoint start ${ep.name}`,
    "",
  ].join("\n");
}
