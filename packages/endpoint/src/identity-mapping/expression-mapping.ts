/**
 * `expression_identity_mapping#1.0.0`: rules `{source, match, output,
 * ignore_case?, literal?}` tried in order. `source` and `output` interpolate
 * `{field}` from the identity (and `output` `{0}`, `{1}`… from the match's
 * groups); `match` is Globus's reduced POSIX ERE — `.`, `?`, `*`, `|`,
 * `(...)` and `\` escapes of those, `\` and digits; `^ $ + { } [ ]` are literal.
 */
import {
  type IdentityMapping,
  IdentityMappingError,
  type IdentityRecord,
  InvalidMappingError,
  type MapperResult,
} from "./mapping-types.js";

export const EXPRESSION_MAPPING_NAME = "expression_identity_mapping";

export interface ExpressionRule {
  source: string;
  match: string;
  output: string;
  /** @default false */
  ignore_case?: boolean;
  /** Compare `match` literally (no groups, so no `{0}` in `output`). @default false */
  literal?: boolean;
}

interface CompiledRule extends ExpressionRule {
  pattern: RegExp;
}

export class ExpressionIdentityMapping implements IdentityMapping {
  readonly className = "ExpressionIdentityMapping";
  readonly rules: readonly ExpressionRule[];
  readonly #compiled: readonly CompiledRule[];

  constructor(
    readonly dataType: string,
    rules: readonly ExpressionRule[],
  ) {
    this.rules = rules;
    this.#compiled = rules.map((rule) => ({
      ...rule,
      pattern: compileMatch(rule.match, rule.ignore_case === true, rule.literal === true),
    }));
  }

  /** Checks a configuration item (its `mappings`) and compiles every rule; `index` names the item in errors. */
  static fromDocument(document: Record<string, unknown>, index: number): ExpressionIdentityMapping {
    const where = `Invalid map config (index: ${index})`;
    const { mappings } = document;
    if (!Array.isArray(mappings)) {
      throw new InvalidMappingError(`${where}: "mappings" must be a list of {source, match, output} rules.`);
    }
    const rules = mappings.map((raw: unknown, i): ExpressionRule => {
      const rule = raw as Record<string, unknown> | null;
      if (typeof rule !== "object" || rule === null || Array.isArray(rule)) {
        throw new InvalidMappingError(`${where}: mappings[${i}] must be an object {source, match, output}.`);
      }
      for (const key of ["source", "match", "output"] as const) {
        if (typeof rule[key] !== "string") {
          throw new InvalidMappingError(`${where}: mappings[${i}].${key} must be a string.`);
        }
      }
      for (const key of ["ignore_case", "literal"] as const) {
        if (rule[key] !== undefined && typeof rule[key] !== "boolean") {
          throw new InvalidMappingError(`${where}: mappings[${i}].${key} must be true or false.`);
        }
      }
      return rule as unknown as ExpressionRule;
    });
    return new ExpressionIdentityMapping(String(document.DATA_TYPE), rules);
  }

  /** For each rule, then each identity (rule order wins over identity order), as Globus does. */
  async mapIdentities(identities: readonly IdentityRecord[]): Promise<MapperResult> {
    return this.#compiled.map((rule) => {
      const outputs: Record<string, string[]> = {};
      for (const identity of identities) {
        if (identity.status !== "used" && identity.status !== "private") continue;
        const found = rule.pattern.exec(interpolate(rule.source, identity));
        if (!found) continue;
        const output = interpolate(rule.output, identity, found.slice(1));
        outputs[identity.id] ??= [];
        outputs[identity.id]?.push(output);
      }
      return outputs;
    });
  }
}

/**
 * Compiles a rule's `match` into an anchored, full-string RegExp; refuses what
 * Globus refuses, with its messages. Unlike Python's `re.match("^" + m + "$")`
 * (which leaves `a|b` anchored at the end only in its last branch), the whole
 * expression must match the whole source: a rule never maps more identities
 * here than it does under Globus.
 */
export function compileMatch(match: string, ignoreCase = false, literal = false): RegExp {
  let body: string;
  if (literal) {
    body = match.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
  } else {
    const badEscape = /\\[^.?*|()\\0-9]/.exec(match);
    if (badEscape) throw new InvalidMappingError(`${match} - Invalid \\ expression: ${badEscape[0]}`);
    const lazy = /[*?]\?/.exec(match);
    if (lazy) throw new InvalidMappingError(`${match} - Invalid ? expression: ${lazy[0]}`);
    const leading = /^[*?]/.exec(match);
    if (leading) throw new InvalidMappingError(`${match} - Invalid leading wildcard expression: ${leading[0]}`);
    // Python regex specials the language does not support are matched literally.
    body = match.replace(/(?<!\\)([\^$+{}[\]])/g, "\\$1");
  }
  try {
    return new RegExp(`^(?:${body})$`, ignoreCase ? "iu" : "u");
  } catch (err) {
    throw new InvalidMappingError(`Invalid mapping ${match}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Replaces each `{name}` not escaped by a backslash: `{N}` with group N of the
 * match (0-based), anything else with the identity's property.
 */
export function interpolate(
  text: string,
  identity: IdentityRecord,
  groups: readonly (string | undefined)[] = [],
): string {
  let result = text;
  for (const found of text.matchAll(/(?<!\\)(?:\\\\)*(\{([^}]*)\})/g)) {
    const [, reference = "", name = ""] = found;
    let value: unknown;
    if (/^\s*[+-]?[0-9]+\s*$/.test(name)) {
      const n = Number(name);
      if (n < 0 || n >= groups.length) throw new IdentityMappingError(`Invalid reference to ${n}`);
      value = groups[n];
    } else {
      value = identity[name];
    }
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      throw new IdentityMappingError(`Missing identity property ${name}`);
    }
    // As Globus: every occurrence of the reference is replaced.
    result = result.split(reference).join(String(value));
  }
  return result;
}
