/**
 * Reading a user config template and its schema from disk, as the MEP does for
 * every UEP (manager/uep-bootstrap.ts) and as `renderTemplateFile` does for a
 * dry run: one reader, so the admin's dry run sees exactly what a UEP gets.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { TemplateFiles } from "../user-endpoint/bootstrap-types.js";

/** Siblings larger than this are not templates (the endpoint's own log lives there too). */
const MAX_SIBLING_BYTES = 256 * 1024;
/** Files of the endpoint directory that are state, never template material. */
const NOT_TEMPLATE_MATERIAL = /\.(log|pid|tmp)$|^(endpoint|ueps)\.json$/;

/**
 * The template and every other regular file of its folder, by name, so that
 * `{% include %}` and `{% extends %}` find their siblings in the UEP. Throws
 * the file system's error when the template itself cannot be read.
 */
export function readTemplateFiles(path: string): TemplateFiles {
  const name = basename(path);
  const text = readFileSync(path, "utf8");
  const siblings: Record<string, string> = {};
  const folder = dirname(path);
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    if (entry.name === name || NOT_TEMPLATE_MATERIAL.test(entry.name)) continue;
    const file = join(folder, entry.name);
    try {
      // statSync follows symlinks: a link to a regular file counts as one.
      const st = statSync(file);
      if (!st.isFile() || st.size > MAX_SIBLING_BYTES) continue;
      siblings[entry.name] = readFileSync(file, "utf8");
    } catch {
      // An unreadable sibling only matters if the template includes it; the render then says which.
    }
  }
  return { name, text, siblings };
}

/**
 * The text of a user config schema, or null when the file does not exist (no
 * schema means no validation, as in the seed). Any other failure is thrown.
 */
export function readSchemaText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}
