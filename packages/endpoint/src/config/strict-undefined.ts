/**
 * Jinja's StrictUndefined where minijinja's strict mode is lenient. Jinja
 * raises as soon as an undefined value is used: through a filter
 * (`{{ nope|upper }}`), concatenated (`nope ~ 'x'`), compared (`nope == 1`),
 * in arithmetic, negated, or tested (`nope is odd`). minijinja lets those
 * through as empty or false, so a typo in a variable name would render a
 * config with a hole in it instead of failing.
 *
 * The template is therefore rewritten before it is compiled: each variable or
 * attribute path in such a position, `E`, becomes
 * `(E if E is defined else E._conduit_undefined_N)`. For a defined value that
 * is E itself; for an undefined one the attribute lookup fails in strict mode,
 * and the marker N names the original expression in the error. A path has no
 * calls, so evaluating it twice changes nothing. Only the positions where
 * Jinja raises are rewritten: `|default`, `is defined` and the other filters
 * and tests that accept an undefined value keep working, and so does passing
 * one to a macro or assigning it. Because the check happens while rendering,
 * a use in a branch that does not run is no error, as in Jinja.
 *
 * The rewrite stays on the same lines (line numbers in errors hold). A tag the
 * scanner cannot read is left as written.
 *
 * The same scanner finds the files a template names (`templateReferences`),
 * which are the only files the MEP sends with it (template-files.ts).
 */

/** An expression the rewrite guards: its text as the template wrote it. */
export interface StrictSite {
  expression: string;
}

/** Marker attribute of site N; see `strictSiteOf`. */
const MARKER = "_conduit_undefined_";

/**
 * Jinja's filters (3.1.2) that raise on an undefined input, and Globus's
 * `shell_escape`. The others accept one (measured with StrictUndefined):
 * `default`/`d`, `pprint`, and the lazy `items`, `map`, `select`, `reject`,
 * `selectattr`, `rejectattr` and `unique`, whose generators only fail when
 * consumed. A filter Jinja does not have is left alone: Jinja refuses it when
 * compiling, and minijinja's "unknown filter" error must stay the one reported.
 */
const STRICT_FILTERS = new Set(
  [
    "abs attr batch capitalize center count dictsort e escape filesizeformat first float forceescape format",
    "groupby indent int join last length list lower max min random replace reverse round safe slice sort",
    "string striptags sum title tojson trim truncate upper urlencode urlize wordcount wordwrap xmlattr shell_escape",
  ]
    .join(" ")
    .split(" "),
);

/**
 * Jinja's tests that raise on an undefined value; the others (`defined`,
 * `none`, `string`, `sameas`, `in` an empty list…) do not.
 */
const STRICT_TESTS = new Set(
  "odd even divisibleby eq equalto ne lt lessthan le gt greaterthan ge iterable lower upper".split(" "),
);

/** Guards the strict positions of `text`, adding their sites to `sites` (whose index is the marker). */
export function guardStrictUndefined(text: string, sites: StrictSite[]): string {
  return rewriteTemplate(text, sites).text;
}

/** A filter or test a tag names, with the offset of its name (for the line in errors). */
export interface UsedName {
  kind: "filter" | "test";
  name: string;
  offset: number;
}

export interface RewriteOptions {
  /**
   * A filter every `{{ … }}` output goes through, after `tojson`: the value
   * is then printed by that filter (Python's `str()`), with its JSON text
   * telling floats from integers. The output itself becomes a strict position,
   * as printing is in Jinja.
   */
  printFilter?: string;
  /**
   * With `P`, `|int(…)` becomes `|Pint(…)|int` and `|float(…)` `|Pfloat(…)|float`:
   * filters that read the value as Python does, then minijinja's own.
   */
  numberFilterPrefix?: string;
}

export interface Rewritten {
  text: string;
  /** Every filter and test the readable tags name. */
  names: UsedName[];
}

/** Text put around a range of the template: a wrap may enclose guards and other wraps. */
interface Wrap {
  start: number;
  end: number;
  before: string;
  after: string;
}

/** A range replaced whole; `text` gets the marker of a site for `expression`. */
interface Replacement {
  start: number;
  end: number;
  text: (marker: (expression: string) => string) => string;
}

interface Found {
  /** Paths in strict positions. */
  strict: Array<{ start: number; end: number }>;
  /** Ranges outside any expression (a tag's delimiters), replaced whole. */
  replacements: Replacement[];
  wraps: Wrap[];
  names: UsedName[];
}

/**
 * The template as Conduit compiles it: strict positions guarded (see above),
 * `{% set a, b = … %}` written as minijinja reads it (`{% set (a, b) = … %}`),
 * and, with `printFilter`, every output printed the way Python prints it. No
 * line moves. A tag the scanner cannot read is left as written.
 */
export function rewriteTemplate(text: string, sites: StrictSite[], options: RewriteOptions = {}): Rewritten {
  const all: Found = { strict: [], replacements: [], wraps: [], names: [] };
  for (const tag of scanTags(text)) {
    const found: Found = { strict: [], replacements: [], wraps: [], names: [] };
    try {
      parseTag(tag, found, options);
    } catch {
      continue; // not understood: left to the engine as written
    }
    all.strict.push(...found.strict);
    all.replacements.push(...found.replacements);
    all.wraps.push(...found.wraps);
    all.names.push(...found.names);
  }
  const marker = (expression: string): string => `${MARKER}${sites.push({ expression }) - 1}`;
  // Leaves: guarded paths and replaced delimiters, which hold no other rewrite.
  const leaves: Replacement[] = [
    ...all.strict.map(({ start, end }) => {
      const expression = text.slice(start, end);
      return {
        start,
        end,
        text: () => `(${expression} if ${expression} is defined else ${expression}.${marker(expression)})`,
      };
    }),
    ...all.replacements,
  ].sort((a, b) => a.start - b.start);
  // Where text is inserted: closing text before opening text at one offset; inner wraps close first, open last.
  const opens = new Map<number, Wrap[]>();
  const closes = new Map<number, Wrap[]>();
  for (const wrap of all.wraps) {
    opens.set(wrap.start, [...(opens.get(wrap.start) ?? []), wrap]);
    closes.set(wrap.end, [...(closes.get(wrap.end) ?? []), wrap]);
  }
  const boundaries = [...new Set([...opens.keys(), ...closes.keys(), ...leaves.map((s) => s.start)])].sort(
    (a, b) => a - b,
  );
  let out = "";
  let at = 0;
  let next = 0;
  for (const position of boundaries) {
    if (position < at) continue; // inside a leaf, which holds no other rewrite
    out += text.slice(at, position);
    at = position;
    for (const wrap of (closes.get(position) ?? []).sort((a, b) => b.start - a.start)) out += wrap.after;
    for (const wrap of (opens.get(position) ?? []).sort((a, b) => b.end - a.end)) out += wrap.before;
    while (next < leaves.length && leaves[next].start < position) next++;
    const leaf = leaves[next];
    if (leaf !== undefined && leaf.start === position) {
      out += leaf.text(marker);
      at = leaf.end;
      next++;
    }
  }
  return { text: out + text.slice(at), names: all.names };
}

/** The site whose guard failed, when `span` (the expression an engine error points at) is a guard's marker. */
export function strictSiteOf(span: string, sites: readonly StrictSite[]): StrictSite | undefined {
  const match = new RegExp(`\\.${MARKER}(\\d+)$`).exec(span);
  return match ? sites[Number(match[1])] : undefined;
}

// --- Files a template names ------------------------------------------------------

/**
 * A file reference of one `include`, `extends`, `import` or `from … import`
 * tag: the names it gives as string literals (one, or a list or tuple of
 * them), or, when it computes the name, the expression's text.
 */
export type TemplateReference =
  | { tag: string; line: number; names: string[] }
  | { tag: string; line: number; expression: string };

const REFERENCE_TAGS = new Set(["include", "extends", "import", "from"]);
/** Where each tag's template argument ends (`from` and `import` name their template first). */
const ARGUMENT_ENDS: Record<string, Set<string>> = {
  include: new Set(["ignore", "with", "without"]),
  extends: new Set(),
  import: new Set(["as"]),
  from: new Set(["import"]),
};

/**
 * The files `text` names in its `include`, `extends`, `import` and `from`
 * tags, found by the same scanner as the guards: tags inside comments and
 * `raw` blocks do not count, as they do not for the engine. `text` must have
 * LF line ends (line numbers count them).
 */
export function templateReferences(text: string): TemplateReference[] {
  const references: TemplateReference[] = [];
  // Tags come in order: count the lines once, from the previous tag on.
  let line = 1;
  let counted = 0;
  const lineOf = (offset: number): number => {
    for (let i = text.indexOf("\n", counted); i >= 0 && i < offset; i = text.indexOf("\n", i + 1)) {
      line++;
      counted = i + 1;
    }
    return line;
  };
  for (const tag of scanTags(text)) {
    const [keyword, ...rest] = tag.tokens;
    if (tag.kind !== "block" || keyword?.type !== "name" || !REFERENCE_TAGS.has(keyword.value)) continue;
    const ends = ARGUMENT_ENDS[keyword.value];
    let stop = rest.findIndex((t, i) => t.type === "name" && ends.has(t.value) && rest[i - 1]?.value !== ".");
    if (stop < 0) stop = rest.length;
    const argument = rest.slice(0, stop);
    const line = lineOf(keyword.start);
    const names = literalNames(argument);
    if (names !== undefined) {
      references.push({ tag: keyword.value, line, names });
    } else {
      const expression = argument.length === 0 ? "" : text.slice(argument[0].start, (argument.at(-1) as Token).end);
      references.push({ tag: keyword.value, line, expression });
    }
  }
  return references;
}

/** The names of a string literal, or of a list or tuple of them; undefined for any other expression. */
function literalNames(tokens: Token[]): string[] | undefined {
  const [first, last] = [tokens[0], tokens.at(-1)];
  const bracketed =
    first?.type === "op" &&
    last?.type === "op" &&
    ((first.value === "[" && last.value === "]") || (first.value === "(" && last.value === ")"));
  const items = bracketed ? tokens.slice(1, -1) : tokens;
  const names: string[] = [];
  let current: string | undefined;
  for (const t of items) {
    if (t.type === "string") {
      // Adjacent literals are one string, as in Jinja.
      current = (current ?? "") + unquote(t.value);
    } else if (bracketed && t.type === "op" && t.value === "," && current !== undefined) {
      names.push(current);
      current = undefined;
    } else {
      return undefined;
    }
  }
  if (current !== undefined) names.push(current);
  // A bare name needs one literal; `"a", "b"` without brackets is a tuple only in a list's place.
  if (names.length === 0 || (!bracketed && names.length !== 1)) return undefined;
  return names;
}

const ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r" };

/** A string literal's value; an escape other than the common ones keeps its backslash (no plain file name has one). */
function unquote(literal: string): string {
  return literal.slice(1, -1).replace(/\\(.)/gs, (whole, c: string) => {
    if (c === "\\" || c === "'" || c === '"') return c;
    return ESCAPES[c] ?? whole;
  });
}

// --- Tags and tokens -------------------------------------------------------------

type TokenType = "name" | "string" | "number" | "op";

interface Token {
  type: TokenType;
  value: string;
  start: number;
  end: number;
}

interface Tag {
  kind: "variable" | "block";
  tokens: Token[];
  /** Offsets of the opening `{{`/`{%` and just after the closing `}}`/`%}`. */
  start: number;
  end: number;
  /** The tag's text, delimiters included. */
  source: string;
}

const OPERATORS = ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "[", "]", "(", ")", "{", "}"]
  .concat(["<", ">", "=", ".", ":", "|", ",", ";"])
  .sort((a, b) => b.length - a.length);
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const STRING = /'([^'\\]*(?:\\.[^'\\]*)*)'|"([^"\\]*(?:\\.[^"\\]*)*)"/sy;
const INTEGER = /(\d+_)*\d+/y;
const FLOAT = /(\d+_)*\d+((\.(\d+_)*\d+)?[eE][+-]?(\d+_)*\d+|\.(\d+_)*\d+)/y;
const RAW_START = /\{%[-+]?\s*raw\s*[-+]?%\}/y;
const RAW_END = /\{%[-+]?\s*endraw\s*[-+]?%\}/g;

/** The `{{ … }}` and `{% … %}` tags of a template, tokenised; comments and raw blocks skipped. */
function* scanTags(text: string): Generator<Tag> {
  let pos = 0;
  while (pos < text.length) {
    const open = text.indexOf("{", pos);
    if (open < 0) return;
    const second = text[open + 1];
    if (second === "#") {
      const close = text.indexOf("#}", open + 2);
      if (close < 0) return;
      pos = close + 2;
      continue;
    }
    if (second !== "{" && second !== "%") {
      pos = open + 1;
      continue;
    }
    if (second === "%") {
      RAW_START.lastIndex = open;
      if (RAW_START.test(text)) {
        RAW_END.lastIndex = RAW_START.lastIndex;
        if (!RAW_END.exec(text)) return;
        pos = RAW_END.lastIndex;
        continue;
      }
    }
    const kind = second === "{" ? "variable" : "block";
    const scanned = tokenise(text, open + 2, kind === "variable" ? "}}" : "%}");
    if (scanned === undefined) return; // an unterminated tag: nothing after it is a tag we could trust
    yield { kind, tokens: scanned.tokens, start: open, end: scanned.end, source: text.slice(open, scanned.end) };
    pos = scanned.end;
  }
}

/** Tokens from `pos` to the tag's end delimiter (outside brackets, as Jinja's lexer does). */
function tokenise(text: string, pos: number, close: string): { tokens: Token[]; end: number } | undefined {
  const tokens: Token[] = [];
  let depth = 0;
  if (text[pos] === "-" || text[pos] === "+") pos++;
  while (pos < text.length) {
    const c = text[pos];
    if (/\s/.test(c)) {
      pos++;
      continue;
    }
    if (depth === 0) {
      if (text.startsWith(close, pos)) return { tokens, end: pos + close.length };
      if ((c === "-" || c === "+") && text.startsWith(close, pos + 1)) return { tokens, end: pos + 1 + close.length };
    }
    const token = readToken(text, pos, tokens.at(-1));
    if (token === undefined) return undefined;
    if (token.type === "op") {
      if ("([{".includes(token.value)) depth++;
      else if (")]}".includes(token.value)) depth = Math.max(0, depth - 1);
    }
    tokens.push(token);
    pos = token.end;
  }
  return undefined;
}

function readToken(text: string, pos: number, previous: Token | undefined): Token | undefined {
  const at = (re: RegExp): string | undefined => {
    re.lastIndex = pos;
    return re.exec(text)?.[0];
  };
  const make = (type: TokenType, value: string): Token => ({ type, value, start: pos, end: pos + value.length });
  const name = at(NAME);
  if (name !== undefined) return make("name", name);
  const string = at(STRING);
  if (string !== undefined) return make("string", string);
  // As in Jinja, `xs.0.1` is two integer subscripts, never the float 0.1.
  const afterDot = previous?.type === "op" && previous.value === "." && previous.end === pos;
  const number = (afterDot ? undefined : at(FLOAT)) ?? at(INTEGER);
  if (number !== undefined) return make("number", number);
  const op = OPERATORS.find((o) => text.startsWith(o, pos));
  return op === undefined ? undefined : make("op", op);
}

// --- Expressions -------------------------------------------------------------

/** A parsed expression: its extent, and whether it is a path (a name, then `.attr` or `[constant]`). */
interface Expr {
  start: number;
  end: number;
  path: boolean;
  constant: boolean;
}

class ParseFailure extends Error {}

/** Parses one tag's expressions (mirroring jinja2/parser.py) and collects the strict positions. */
function parseTag(tag: Tag, found: Found, options: RewriteOptions): void {
  const p = new ExpressionParser(tag.tokens, found, options.numberFilterPrefix);
  if (tag.kind === "variable") {
    const output = p.tuple(true);
    p.expectEnd();
    if (options.printFilter !== undefined) printAsPython(tag, output, found, options.printFilter);
    return;
  }
  const keyword = p.next();
  if (keyword?.type !== "name") return;
  switch (keyword.value) {
    case "if":
    case "elif":
      p.tuple(false);
      p.expectEnd();
      return;
    case "for":
      p.skipUntilName("in");
      p.tuple(false);
      if (p.skipName("if")) p.expression(true);
      p.skipName("recursive");
      p.expectEnd();
      return;
    case "set": {
      // `{% set a, b = … %}` and `{% set ns.x = … %}`; a block set has no `=`.
      const targets = p.position();
      if (p.skipUntilOp("=")) {
        const assign = p.position() - 1;
        const value = p.tuple(true);
        p.expectEnd();
        const names = tag.tokens.slice(targets, assign);
        const unpacks = names.some((t) => t.type === "op" && t.value === ",") && names[0]?.value !== "(";
        if (unpacks && names.length > 0) {
          // minijinja unpacks only a parenthesised target list: `{% set (a, b) = (…) %}`.
          const last = names[names.length - 1];
          found.wraps.push({ start: names[0].start, end: last.end, before: "(", after: ")" });
          found.wraps.push({ start: value.start, end: value.end, before: "(", after: ")" });
          p.strictOutput(value); // Jinja fails unpacking an undefined value; minijinja's error would not name it
        }
      }
      return;
    }
    case "with":
      while (!p.atEnd()) {
        p.skipUntilOp("=");
        p.expression(true);
        p.skipOp(",");
      }
      return;
    case "call":
      if (p.peekOp("(")) p.skipBalanced();
      p.expression(true);
      p.expectEnd();
      return;
    default:
      return;
  }
}

/**
 * `{{ E }}` printed as Jinja prints it. E is evaluated once, into a name:
 * `{% with _conduit_v = (E) %}{{ … }}{% endwith %}`, which prints a string or
 * an integer as it is (minijinja and Python agree on those, and a call into
 * JavaScript per output would slow a long loop several times over), and
 * anything else through `tojson` and P, which prints the JSON text as
 * Python's `str()` would. A printed undefined value fails in Jinja, and
 * `tojson` would read it as null: the name is guarded, its site naming E.
 */
function printAsPython(tag: Tag, output: Expr, found: Found, printFilter: string): void {
  const source = tag.source;
  const expression = source.slice(output.start - tag.start, output.end - tag.start);
  const head = source.slice(0, output.start - tag.start); // `{{`, a whitespace mark, spaces (newlines kept)
  const tail = source.slice(output.end - tag.start); // spaces, a whitespace mark, `}}`
  const openMark = /^\{\{([-+]?)/.exec(head)?.[1] ?? "";
  const closeMark = /([-+]?)\}\}$/.exec(tail)?.[1] ?? "";
  const headSpace = head.slice(2 + openMark.length);
  const tailSpace = tail.slice(0, tail.length - 2 - closeMark.length);
  const v = "_conduit_v";
  found.replacements.push({
    start: tag.start,
    end: output.start,
    text: () => `{%${openMark} with ${v} = (${headSpace}`,
  });
  found.replacements.push({
    start: output.end,
    end: tag.end,
    text: (marker) =>
      `${tailSpace}) %}{{ ${v} if ${v} is string or ${v} is integer else (${v} if ${v} is defined else ${v}.${marker(expression)})|tojson|${printFilter} }}{% endwith ${closeMark}%}`,
  });
}

class ExpressionParser {
  private i = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly found: Found,
    private readonly numberFilterPrefix: string | undefined,
  ) {}

  /** Index of the next token. */
  position(): number {
    return this.i;
  }

  // Token helpers.
  private get current(): Token | undefined {
    return this.tokens[this.i];
  }
  next(): Token | undefined {
    return this.tokens[this.i++];
  }
  atEnd(): boolean {
    return this.i >= this.tokens.length;
  }
  expectEnd(): void {
    if (!this.atEnd()) throw new ParseFailure();
  }
  peekOp(value: string): boolean {
    const t = this.current;
    return t?.type === "op" && t.value === value;
  }
  peekName(value: string): boolean {
    const t = this.current;
    return t?.type === "name" && t.value === value;
  }
  skipOp(value: string): boolean {
    if (!this.peekOp(value)) return false;
    this.i++;
    return true;
  }
  skipName(value: string): boolean {
    if (!this.peekName(value)) return false;
    this.i++;
    return true;
  }
  private expectOp(value: string): Token {
    if (!this.peekOp(value)) throw new ParseFailure();
    return this.next() as Token;
  }
  skipUntilName(value: string): void {
    while (!this.atEnd() && !this.peekName(value)) this.i++;
    if (!this.skipName(value)) throw new ParseFailure();
  }
  skipUntilOp(value: string): boolean {
    while (!this.atEnd() && !this.peekOp(value)) this.i++;
    return this.skipOp(value);
  }
  /** Skips a bracketed group starting at the current token. */
  skipBalanced(): void {
    let depth = 0;
    do {
      const t = this.next();
      if (t === undefined) throw new ParseFailure();
      if (t.type === "op" && "([{".includes(t.value)) depth++;
      if (t.type === "op" && ")]}".includes(t.value)) depth--;
    } while (depth > 0);
  }

  /** A use that raises in Jinja when the value is undefined. */
  private strict(e: Expr): void {
    if (e.path) this.found.strict.push({ start: e.start, end: e.end });
  }

  /** A printed or unpacked value: strict in Jinja (minijinja's own errors there do not name the value). */
  strictOutput(e: Expr): void {
    this.strict(e);
  }

  private compound(start: number, end: number): Expr {
    return { start, end, path: false, constant: false };
  }

  // Grammar, after jinja2/parser.py.
  tuple(withCondexpr: boolean): Expr {
    const first = withCondexpr ? this.expression(true) : this.or();
    let last = first;
    let items = 1;
    while (this.skipOp(",")) {
      if (!this.startsExpression()) break;
      last = withCondexpr ? this.expression(true) : this.or();
      items++;
    }
    return items === 1 ? first : this.compound(first.start, last.end);
  }

  expression(withCondexpr: boolean): Expr {
    return withCondexpr ? this.condexpr() : this.or();
  }

  private condexpr(): Expr {
    let expr = this.or();
    while (this.skipName("if")) {
      const test = this.or();
      this.strict(test);
      const otherwise = this.skipName("else") ? this.condexpr() : undefined;
      expr = this.compound(expr.start, (otherwise ?? test).end);
    }
    return expr;
  }

  private or(): Expr {
    let left = this.and();
    while (this.skipName("or")) {
      this.strict(left);
      const right = this.and();
      left = this.compound(left.start, right.end);
    }
    return left;
  }

  private and(): Expr {
    let left = this.not();
    while (this.skipName("and")) {
      this.strict(left);
      const right = this.not();
      left = this.compound(left.start, right.end);
    }
    return left;
  }

  private not(): Expr {
    const t = this.current;
    if (t?.type === "name" && t.value === "not") {
      this.i++;
      const operand = this.not();
      this.strict(operand);
      return this.compound(t.start, operand.end);
    }
    return this.compare();
  }

  private compare(): Expr {
    let expr = this.math1();
    for (;;) {
      const t = this.current;
      if (t?.type === "op" && ["==", "!=", "<", "<=", ">", ">="].includes(t.value)) {
        this.i++;
        this.strict(expr);
        const right = this.math1();
        this.strict(right);
        expr = this.compound(expr.start, right.end);
      } else if (this.skipName("in")) {
        // Only the container: `x in []` never compares x.
        const right = this.math1();
        this.strict(right);
        expr = this.compound(expr.start, right.end);
      } else if (this.peekName("not") && this.tokens[this.i + 1]?.value === "in") {
        this.i += 2;
        const right = this.math1();
        this.strict(right);
        expr = this.compound(expr.start, right.end);
      } else {
        return expr;
      }
    }
  }

  private binary(operators: string[], operand: () => Expr): Expr {
    let left = operand();
    while (this.current?.type === "op" && operators.includes(this.current.value)) {
      this.i++;
      const right = operand();
      this.strict(left);
      this.strict(right);
      left = this.compound(left.start, right.end);
    }
    return left;
  }

  private math1(): Expr {
    return this.binary(["+", "-"], () => this.concat());
  }

  private concat(): Expr {
    return this.binary(["~"], () => this.math2());
  }

  private math2(): Expr {
    return this.binary(["*", "/", "//", "%"], () => this.pow());
  }

  private pow(): Expr {
    return this.binary(["**"], () => this.unary(true));
  }

  private unary(withFilter: boolean): Expr {
    const t = this.current;
    let expr: Expr;
    if (t?.type === "op" && (t.value === "-" || t.value === "+")) {
      this.i++;
      const operand = this.unary(false);
      this.strict(operand);
      expr = this.compound(t.start, operand.end);
    } else {
      expr = this.primary();
    }
    expr = this.postfix(expr);
    return withFilter ? this.filterExpr(expr) : expr;
  }

  private primary(): Expr {
    const t = this.next();
    if (t === undefined) throw new ParseFailure();
    if (t.type === "name") {
      const constant = ["true", "false", "none", "True", "False", "None"].includes(t.value);
      return { start: t.start, end: t.end, path: !constant, constant };
    }
    if (t.type === "string") {
      let end = t.end;
      while (this.current?.type === "string") end = (this.next() as Token).end;
      return { start: t.start, end, path: false, constant: true };
    }
    if (t.type === "number") return { start: t.start, end: t.end, path: false, constant: true };
    if (t.value === "(") {
      if (this.peekOp(")")) return this.compound(t.start, (this.next() as Token).end);
      const inner = this.tuple(true);
      const close = this.expectOp(")");
      // Parentheses make no node in Jinja: `(x)` is still the path x.
      return { ...inner, start: t.start, end: close.end };
    }
    if (t.value === "[") {
      this.items("]", () => this.expression(true));
      return this.compound(t.start, this.expectOp("]").end);
    }
    if (t.value === "{") {
      this.items("}", () => {
        this.expression(true);
        this.expectOp(":");
        this.expression(true);
      });
      return this.compound(t.start, this.expectOp("}").end);
    }
    throw new ParseFailure();
  }

  /** Comma-separated items up to `close` (not consumed); a trailing comma is allowed. */
  private items(close: string, item: () => void): void {
    while (!this.peekOp(close)) {
      item();
      if (!this.skipOp(",")) break;
    }
  }

  private postfix(expr: Expr): Expr {
    for (;;) {
      if (this.skipOp(".")) {
        const t = this.next();
        if (t?.type !== "name" && t?.type !== "number") throw new ParseFailure();
        expr = { start: expr.start, end: t.end, path: expr.path, constant: false };
      } else if (this.peekOp("[")) {
        this.i++;
        const key = this.subscript();
        const close = this.expectOp("]");
        expr = { start: expr.start, end: close.end, path: expr.path && key?.constant === true, constant: false };
      } else if (this.peekOp("(")) {
        expr = this.compound(expr.start, this.callArgs());
      } else {
        return expr;
      }
    }
  }

  /** A subscript's key, or undefined for a slice or a tuple. */
  private subscript(): Expr | undefined {
    let key: Expr | undefined;
    let parts = 0;
    for (;;) {
      if (!this.peekOp(":") && !this.peekOp("]") && !this.peekOp(",")) {
        key = this.expression(true);
        parts++;
      }
      if (this.skipOp(":") || this.skipOp(",")) {
        parts = 2;
        continue;
      }
      return parts === 1 ? key : undefined;
    }
  }

  /** `( args )` of a call, filter or test: the closing parenthesis's end. */
  private callArgs(): number {
    this.expectOp("(");
    this.items(")", () => {
      if (this.skipOp("**") || this.skipOp("*")) {
        this.expression(true);
        return;
      }
      if (this.current?.type === "name" && this.tokens[this.i + 1]?.value === "=") this.i += 2;
      this.expression(true);
    });
    return this.expectOp(")").end;
  }

  private filterExpr(expr: Expr): Expr {
    for (;;) {
      if (this.skipOp("|")) {
        const name = this.dottedName();
        const end = this.peekOp("(") ? this.callArgs() : name.end;
        this.found.names.push({ kind: "filter", name: name.value, offset: name.start });
        if (this.numberFilterPrefix !== undefined && (name.value === "int" || name.value === "float")) {
          this.found.wraps.push({ start: name.start, end, before: this.numberFilterPrefix, after: `|${name.value}` });
        }
        if (STRICT_FILTERS.has(name.value)) this.strict(expr);
        expr = this.compound(expr.start, end);
      } else if (this.skipName("is")) {
        this.skipName("not");
        const name = this.dottedName();
        let end = name.end;
        if (this.peekOp("(")) {
          end = this.callArgs();
        } else if (this.startsTestArgument()) {
          end = this.postfix(this.primary()).end;
        }
        this.found.names.push({ kind: "test", name: name.value, offset: name.start });
        if (STRICT_TESTS.has(name.value)) this.strict(expr);
        expr = this.compound(expr.start, end);
      } else if (this.peekOp("(")) {
        expr = this.compound(expr.start, this.callArgs());
      } else {
        return expr;
      }
    }
  }

  /** A filter's or test's name, dotted names included (`a.b`). */
  private dottedName(): Token {
    const t = this.next();
    if (t === undefined) throw new ParseFailure();
    if (t.type !== "name") throw new ParseFailure();
    let value = t.value;
    let end = t.end;
    while (this.peekOp(".") && this.tokens[this.i + 1]?.type === "name") {
      this.i++;
      const part = this.next() as Token;
      value += `.${part.value}`;
      end = part.end;
    }
    return { ...t, value, end };
  }

  /** Jinja's rule for a test's one bare argument (`x is divisibleby 3`). */
  private startsTestArgument(): boolean {
    const t = this.current;
    if (t === undefined) return false;
    if (t.type === "name") return !["else", "or", "and"].includes(t.value);
    return t.type === "string" || t.type === "number" || (t.type === "op" && "([{".includes(t.value));
  }

  private startsExpression(): boolean {
    const t = this.current;
    if (t === undefined) return false;
    if (t.type !== "op") return true;
    return "([{-+".includes(t.value);
  }
}
