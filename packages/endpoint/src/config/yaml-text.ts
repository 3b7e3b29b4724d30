/**
 * YAML as Conduit reads every config file: YAML 1.2 (core schema), duplicate
 * keys refused, aliases bounded. The seed's files load unchanged; the YAML 1.1
 * oddities of PyYAML (`yes`/`on` as booleans, `0755` as octal) are plain
 * strings and numbers here.
 */
import { type Document, parseDocument } from "yaml";
import { ConfigError } from "../errors.js";

/** Parses `text`; a syntax error becomes a ConfigError naming `source` and the line. */
export function parseYamlDocument(text: string, source: string): Document.Parsed {
  const doc = parseDocument(text, { uniqueKeys: true });
  const [error] = doc.errors;
  if (error) {
    const where = error.linePos ? ` line ${error.linePos[0].line}` : "";
    // The library appends " at line L, column C:" and a source excerpt; the line is named up front instead.
    const what = error.message.replace(/ at line \d+, column \d+:[\s\S]*$/, "").trim();
    throw new ConfigError(`${source}${where}: ${what}; fix the YAML syntax.`, { cause: error });
  }
  return doc;
}

/** The plain data of a YAML file (mappings, lists, strings, numbers, booleans, null). */
export function parseYamlText(text: string, source: string): unknown {
  const doc = parseYamlDocument(text, source);
  try {
    return doc.toJS();
  } catch (err) {
    // toJS refuses alias bombs (more than 100 alias expansions).
    throw new ConfigError(`${source}: ${(err as Error).message}; use fewer YAML aliases.`, { cause: err });
  }
}

/** The top-level mapping of a config file; an empty file is an empty mapping. */
export function asMapping(value: unknown, source: string): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(
      `${source} must be a YAML mapping of keys to values, not ${describeValue(value)}; write one "key: value" per line.`,
    );
  }
  return value as Record<string, unknown>;
}

/** A short description of a value for error messages: `"abc"`, `3`, `a list`, `a mapping`. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
