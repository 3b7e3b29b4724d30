#!/usr/bin/env node
/**
 * `npm run gen:docs`: writes the README's option tables (between their
 * markers) and packages/endpoint/schemas/*.schema.json from the field tables
 * the endpoint checks its files against. Tests fail when the checked-in text
 * differs from what this writes.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const endpointDist = join(root, "packages/endpoint/dist/config/");
const { withOptionTables } = await import(join(endpointDist, "option-tables.js"));
const { schemaFiles } = await import(join(endpointDist, "config-schema.js"));

const readmePath = join(root, "README.md");
writeFileSync(readmePath, withOptionTables(readFileSync(readmePath, "utf8")));

const schemaDir = join(root, "packages/endpoint/schemas");
mkdirSync(schemaDir, { recursive: true });
for (const [name, text] of Object.entries(schemaFiles())) {
  const path = join(schemaDir, name);
  // Formatted as Biome formats JSON, so `biome check` leaves the checked-in files alone (the test compares their data).
  const formatted = execFileSync(
    process.execPath,
    [join(root, "node_modules/@biomejs/biome/bin/biome"), "format", `--stdin-file-path=${path}`],
    { cwd: root, input: text, encoding: "utf8" },
  );
  writeFileSync(path, formatted);
}
console.log(`Wrote the option tables in README.md and ${Object.keys(schemaFiles()).join(", ")} in ${schemaDir}.`);
