/**
 * Python's way of printing values and reading numbers, for the filters that
 * make minijinja's output match Jinja's (render.ts registers them). Every
 * function here returns a value and never throws: a JavaScript exception
 * inside a minijinja filter leaves the WebAssembly engine unusable.
 */

/**
 * What Jinja prints for a value, `str(value)`, given minijinja's `tojson` text
 * of it: a string as is; `True`, `False`, `None`; an integer's digits; a float
 * as Python's `repr` (`1.0`, `1e+16`, `inf`); a list or mapping as Python's
 * `repr` (`['"a"', 1]`, `{'a': 1}`). JSON text keeps what a JavaScript value
 * would lose: whether a number was a float, integers beyond 2^53, key order.
 * Text that is not JSON (never from `tojson`) is printed as is.
 */
export function pythonStr(json: string): string {
  try {
    const reader = new JsonReader(json);
    const value = reader.value(true);
    reader.end();
    return value;
  } catch {
    return json;
  }
}

/** Python's `repr(float)`: the shortest digits that read back, in exponent form below 1e-4 and from 1e16. */
export function pythonFloatRepr(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  if (value === 0) return Object.is(value, -0) ? "-0.0" : "0.0";
  const [mantissa, exponentText] = value.toExponential().split("e");
  const exponent = Number(exponentText);
  const negative = mantissa.startsWith("-");
  const digits = mantissa.replace(/^-/, "").replace(".", "");
  const sign = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    const body = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exponent).toString().padStart(2, "0");
    return `${sign}${body}e${exponent < 0 ? "-" : "+"}${e}`;
  }
  if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
  const fraction = digits.slice(exponent + 1);
  return `${sign}${whole}.${fraction || "0"}`;
}

/** Python's `repr(str)`: single quotes unless the text holds `'` and no `"`, unprintable characters escaped. */
export function pythonStrRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const char of text) {
    if (char === quote || char === "\\") out += `\\${char}`;
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (char !== " " && UNPRINTABLE.test(char)) out += escapeCodePoint(char.codePointAt(0) ?? 0);
    else out += char;
  }
  return out + quote;
}

/** Python's `str.isprintable()` is false for these categories (the space excepted). */
const UNPRINTABLE = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u;

function escapeCodePoint(code: number): string {
  if (code < 0x100) return `\\x${code.toString(16).padStart(2, "0")}`;
  if (code < 0x10000) return `\\u${code.toString(16).padStart(4, "0")}`;
  return `\\U${code.toString(16).padStart(8, "0")}`;
}

/** Reads JSON text and writes the value as Python prints it; `top` is the printed value itself, not an item. */
class JsonReader {
  private at = 0;
  constructor(private readonly text: string) {}

  end(): void {
    this.space();
    if (this.at !== this.text.length) throw new Error("trailing text");
  }

  value(top = false): string {
    this.space();
    const c = this.text[this.at];
    if (c === '"') {
      const text = this.string();
      return top ? text : pythonStrRepr(text);
    }
    if (c === "[") return this.list();
    if (c === "{") return this.mapping();
    for (const [word, python] of [
      ["true", "True"],
      ["false", "False"],
      ["null", "None"],
    ] as const) {
      if (this.text.startsWith(word, this.at)) {
        this.at += word.length;
        return python;
      }
    }
    return this.number();
  }

  private list(): string {
    this.at++;
    const items: string[] = [];
    this.space();
    if (this.text[this.at] === "]") {
      this.at++;
      return "[]";
    }
    for (;;) {
      items.push(this.value());
      this.space();
      const c = this.text[this.at++];
      if (c === "]") return `[${items.join(", ")}]`;
      if (c !== ",") throw new Error("bad list");
    }
  }

  private mapping(): string {
    this.at++;
    const entries: string[] = [];
    this.space();
    if (this.text[this.at] === "}") {
      this.at++;
      return "{}";
    }
    for (;;) {
      this.space();
      if (this.text[this.at] !== '"') throw new Error("bad key");
      const key = pythonStrRepr(this.string());
      this.space();
      if (this.text[this.at++] !== ":") throw new Error("bad mapping");
      entries.push(`${key}: ${this.value()}`);
      this.space();
      const c = this.text[this.at++];
      if (c === "}") return `{${entries.join(", ")}}`;
      if (c !== ",") throw new Error("bad mapping");
    }
  }

  private number(): string {
    const match = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;
    match.lastIndex = this.at;
    const found = match.exec(this.text);
    if (found === null) throw new Error("bad value");
    this.at = match.lastIndex;
    const isFloat = found[1] !== undefined || found[2] !== undefined;
    // An integer keeps its digits (Python's ints are unbounded); a float is read and printed as Python does.
    return isFloat ? pythonFloatRepr(Number(found[0])) : found[0].replace(/^-0$/, "0");
  }

  private string(): string {
    const match = /"((?:[^"\\]|\\.)*)"/sy;
    match.lastIndex = this.at;
    const found = match.exec(this.text);
    if (found === null) throw new Error("bad string");
    this.at = match.lastIndex;
    return JSON.parse(found[0]) as string;
  }

  private space(): void {
    while (/\s/.test(this.text[this.at] ?? "")) this.at++;
  }
}

/** A Python float literal as `float()` reads text: surrounding space, a sign, `_` between digits, inf and nan. */
const PYTHON_FLOAT =
  /^[+-]?((\d(_?\d)*)?\.\d(_?\d)*([eE][+-]?\d(_?\d)*)?|\d(_?\d)*\.?([eE][+-]?\d(_?\d)*)?|inf|infinity|nan)$/i;
const PYTHON_INT = /^[+-]?\d(_?\d)*$/;

/**
 * Jinja's `float` filter before minijinja's: the text minijinja's `float`
 * then reads as the number Python's `float(value)` gives, or the default
 * (0.0) where Python raises, as Jinja does; minijinja would fail with
 * "invalid float literal" (a sanitised string such as `"8"` keeps its quotes,
 * so `{{ workers|float }}` is 0.0 in Jinja).
 */
export function jinjaFloatText(value: unknown, ...args: unknown[]): unknown {
  const parsed = pythonFloat(value);
  if (parsed !== undefined) return parsed;
  const fallback = optionArgument(args, 0, "default");
  return fallback === undefined ? "0.0" : typeof fallback === "number" ? numberText(fallback) : fallback;
}

/**
 * Jinja's `int` filter before minijinja's: the digits of Python's
 * `int(value, base)`, else of `int(float(value))`, else the default (0).
 */
export function jinjaIntText(value: unknown, ...args: unknown[]): unknown {
  const baseArgument = optionArgument(args, 1, "base");
  const base = typeof baseArgument === "number" ? baseArgument : 10;
  if (typeof value === "string") {
    const digits = pythonIntFromText(value, base);
    if (digits !== undefined) return digits;
  }
  if (typeof value === "boolean") return value ? "1" : "0";
  if (typeof value === "number" && Number.isFinite(value)) return BigInt(Math.trunc(value)).toString();
  const parsed = pythonFloat(value);
  if (parsed !== undefined) {
    const n = Number(parsed);
    if (Number.isFinite(n)) return BigInt(Math.trunc(n)).toString();
  }
  const fallback = optionArgument(args, 0, "default");
  return fallback === undefined ? "0" : typeof fallback === "number" ? numberText(fallback) : fallback;
}

/** Text minijinja's `float` reads as Python's `float(value)`, or undefined where Python raises. */
function pythonFloat(value: unknown): string | undefined {
  if (typeof value === "boolean") return value ? "1" : "0";
  if (typeof value === "number") return numberText(value);
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (!PYTHON_FLOAT.test(text)) return undefined;
  return text.replaceAll("_", "").replace(/^\+/, "");
}

function pythonIntFromText(value: string, base: number): string | undefined {
  const text = value.trim().replaceAll(/(?<=[0-9a-zA-Z])_(?=[0-9a-zA-Z])/g, "");
  if (base === 10) return PYTHON_INT.test(value.trim()) ? BigInt(text).toString() : undefined;
  const prefixes: Record<number, string> = { 16: "0x", 8: "0o", 2: "0b" };
  const sign = text.startsWith("-") ? -1n : 1n;
  let body = text.replace(/^[+-]/, "").toLowerCase();
  if (prefixes[base] !== undefined && body.startsWith(prefixes[base])) body = body.slice(2);
  if (!Number.isInteger(base) || base < 2 || base > 36 || body === "") return undefined;
  let result = 0n;
  for (const c of body) {
    const digit = Number.parseInt(c, 36);
    if (Number.isNaN(digit) || digit >= base) return undefined;
    result = result * BigInt(base) + BigInt(digit);
  }
  return (sign * result).toString();
}

function numberText(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  return String(value);
}

/** A filter's argument by position or, as minijinja-js passes keywords, from a final Map. */
function optionArgument(args: unknown[], position: number, keyword: string): unknown {
  const last = args.at(-1);
  if (last instanceof Map) {
    if (last.has(keyword)) return last.get(keyword);
    return args.length - 1 > position ? args[position] : undefined;
  }
  return args[position];
}
