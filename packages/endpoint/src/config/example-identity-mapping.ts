/**
 * The identity mapping file `configure --multi-user` writes next to
 * config.yaml: Globus's example, which maps `<name>@example.com` to `<name>`
 * and so matches nobody until the admin edits it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const EXAMPLE_IDENTITY_MAPPING_FILE = "example_identity_mapping_config.json";

/** The example's path in the endpoint directory `endpointDir`. */
export function exampleIdentityMappingPath(endpointDir: string): string {
  return join(endpointDir, EXAMPLE_IDENTITY_MAPPING_FILE);
}

// src/config/ and dist/config/ are both two levels below the package root.
export const EXAMPLE_IDENTITY_MAPPING_CONFIG: string = readFileSync(
  new URL(`../../templates/${EXAMPLE_IDENTITY_MAPPING_FILE}`, import.meta.url),
  "utf8",
);
