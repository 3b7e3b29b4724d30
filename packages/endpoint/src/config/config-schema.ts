/**
 * config.yaml and the rendered user endpoint config as JSON Schema (draft
 * 2020-12), made from the same tables that `parseManagerConfig`,
 * `parseUserEndpointConfig` and `createEngine` check files against, so the
 * two cannot disagree on which keys exist. `npm run gen:docs` writes them to
 * `packages/endpoint/schemas/` for editors; what a schema cannot say (two
 * keys compared, such as `min_blocks` ≤ `max_blocks`) only the parsers check.
 */
import { type JsonSchema, tableSchema } from "../option-fields.js";
import { HIGH_ASSURANCE_SCHEMA_RULES, MANAGER_FIELDS } from "./manager-config.js";
import { USER_ENDPOINT_FIELDS } from "./user-endpoint-config.js";

const DRAFT = "https://json-schema.org/draft/2020-12/schema";

/** The JSON Schema of an endpoint's config.yaml. */
export function managerConfigSchema(): JsonSchema {
  return {
    $schema: DRAFT,
    $id: "https://conduit.dev/schemas/config.schema.json",
    title: "Conduit endpoint config.yaml",
    ...tableSchema(MANAGER_FIELDS),
    allOf: HIGH_ASSURANCE_SCHEMA_RULES,
  };
}

/** The JSON Schema of the YAML that user_config_template.yaml.j2 must render to. */
export function userEndpointConfigSchema(): JsonSchema {
  return {
    $schema: DRAFT,
    $id: "https://conduit.dev/schemas/user-endpoint-config.schema.json",
    title: "Conduit user endpoint configuration (the rendered user_config_template.yaml.j2)",
    ...tableSchema(USER_ENDPOINT_FIELDS),
    required: ["engine"],
  };
}

/** The schema files `npm run gen:docs` writes, by name under packages/endpoint/schemas/. */
export function schemaFiles(): Record<string, string> {
  return {
    "config.schema.json": `${JSON.stringify(managerConfigSchema(), null, 2)}\n`,
    "user-endpoint-config.schema.json": `${JSON.stringify(userEndpointConfigSchema(), null, 2)}\n`,
  };
}
