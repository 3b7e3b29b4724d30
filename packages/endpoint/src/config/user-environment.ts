/**
 * user_environment.yaml: flat `NAME: value` pairs the MEP exports to every UEP
 * (seed "user_environment.yaml"). Values become strings as Globus makes them
 * (`str(value)`): text as written, `true` → `True`, `false` → `False`,
 * an empty value → `None`; numbers and dates keep the text the admin wrote.
 */
import { isMap, isScalar, type Scalar } from "yaml";
import { ConfigError } from "../errors.js";
import { parseYamlDocument } from "./yaml-text.js";

const NAME_RE = /^[^=\0]+$/;

export function parseUserEnvironment(yamlText: string, source: string): Record<string, string> {
  const doc = parseYamlDocument(yamlText, source);
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return {};
  if (!isMap(root)) {
    throw new ConfigError(`${source} must be a mapping of variable names to values; write one "NAME: value" per line.`);
  }
  const entries: [string, string][] = [];
  for (const pair of root.items) {
    const name = isScalar(pair.key) ? scalarText(pair.key) : undefined;
    if (name === undefined || !NAME_RE.test(name)) {
      throw new ConfigError(
        `${source}: ${String(pair.key)} is not an environment variable name; use a plain name such as LD_LIBRARY_PATH.`,
      );
    }
    if (pair.value !== null && !isScalar(pair.value)) {
      throw new ConfigError(
        `${source}: ${name} has a nested list or mapping, but environment variables are plain strings; write its value on one line (e.g. ${name}: /a:/b).`,
      );
    }
    const value = pair.value === null ? null : pair.value.value;
    if (typeof value === "string" && value.includes("\0")) {
      throw new ConfigError(`${source}: the value of ${name} contains a NUL character; remove it.`);
    }
    entries.push([name, pair.value === null ? "None" : scalarText(pair.value)]);
  }
  // fromEntries defines own properties, so a variable named __proto__ stays a variable.
  return Object.fromEntries(entries);
}

/** What Python's `str()` gives for a value PyYAML loaded, keeping numbers and dates as written. */
function scalarText(node: Scalar): string {
  const { value } = node;
  if (typeof value === "string") return value;
  if (value === null) return "None";
  if (typeof value === "boolean") return value ? "True" : "False";
  return node.source ?? String(value);
}
