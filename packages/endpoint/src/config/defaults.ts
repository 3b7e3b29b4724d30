/**
 * The files `configure` writes into a new endpoint directory. Their text lives
 * in `packages/endpoint/templates/` (shipped with the package), so the files an
 * admin gets and the defaults the code falls back on are one and the same.
 */
import { readFileSync } from "node:fs";

/** Names of the admin's files in an endpoint directory, as in the seed. */
export const ENDPOINT_FILES = {
  config: "config.yaml",
  template: "user_config_template.yaml.j2",
  schema: "user_config_schema.json",
  environment: "user_environment.yaml",
} as const;

/** How errors name the rendered user config template (it has no file of its own). */
export const RENDERED_CONFIG_SOURCE = `The rendered ${ENDPOINT_FILES.template}`;

// src/config/ and dist/config/ are both two levels below the package root.
const TEMPLATES_DIR = new URL("../../templates/", import.meta.url);

function readDefault(name: string): string {
  return readFileSync(new URL(name, TEMPLATES_DIR), "utf8");
}

/** config.yaml of the MEP: `amqp_port: null` (with a comment on why) and `display_name: null`. */
export const DEFAULT_CONFIG_YAML: string = readDefault(ENDPOINT_FILES.config);
/** The seed's user_config_template.yaml.j2, verbatim (`GlobusComputeEngine` is an accepted alias). */
export const DEFAULT_TEMPLATE: string = readDefault(ENDPOINT_FILES.template);
/** The seed's user_config_schema.json, verbatim. */
export const DEFAULT_SCHEMA: string = readDefault(ENDPOINT_FILES.schema);
/** A commented example; sets no variable. */
export const DEFAULT_USER_ENVIRONMENT: string = readDefault(ENDPOINT_FILES.environment);
