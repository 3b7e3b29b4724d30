/**
 * Text no store can hold, refused at the request boundary: one walk of every
 * parsed body, query string and path parameter, before any schema check or
 * SQL. Postgres `text` cannot hold NUL, `jsonb` cannot hold `\u0000` nor an
 * unpaired UTF-16 surrogate (and UTF-8 has no encoding for one), and JSON
 * nested some thousands deep overflows the stack of whatever walks it later
 * (JSON.stringify as the store writes jsonb, the canonical JSON that names a
 * UEP). Without this check each of those was a 500 deep inside a route.
 */
import { invalidText } from "../errors.js";

/** Deepest nesting of objects and arrays accepted, the request body itself being level 1. */
const MAX_JSON_DEPTH = 64;

/** How many leading steps of a path a deep-nesting error shows (the rest is `…`). */
const SHOWN_STEPS = 6;

/** A key shown in a message is cut to this many characters. */
const SHOWN_KEY_CHARS = 40;

type Step = string | number;

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Throws a 400 naming the first field (`body.tasks[3].user_endpoint_config.worker_init`)
 * that holds a NUL character or an unpaired surrogate, in a value or a key, or
 * that nests deeper than {@link MAX_JSON_DEPTH}.
 */
export function checkRequestText(parts: Record<"params" | "querystring" | "body", unknown>): void {
  for (const [root, value] of Object.entries(parts)) walk(value, root, [], 1);
}

/** `path` is one array pushed and popped along the walk: a submit of many tasks is on the hot path. */
function walk(value: unknown, root: string, path: Step[], depth: number): void {
  if (typeof value === "string") {
    const problem = textProblem(value);
    if (problem) throw invalidText(`${fieldName(root, path)} ${problem}; remove it and send the request again.`);
    return;
  }
  if (value === null || typeof value !== "object") return;
  if (depth > MAX_JSON_DEPTH) {
    const shown = fieldName(root, path.slice(0, SHOWN_STEPS)) + (path.length > SHOWN_STEPS ? "…" : "");
    throw invalidText(
      `${shown} is nested more than ${MAX_JSON_DEPTH} levels deep; flatten it and send the request again.`,
    );
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      walk(value[i], root, path, depth + 1);
      path.pop();
    }
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    const problem = textProblem(key);
    if (problem) {
      throw invalidText(
        `${fieldName(root, path)} has a key (${shownKey(key)}) that ${problem}; rename it and send the request again.`,
      );
    }
    path.push(key);
    walk(item, root, path, depth + 1);
    path.pop();
  }
}

/** What is wrong with a string, as the end of a sentence; undefined when nothing is. */
function textProblem(s: string): string | undefined {
  if (s.includes("\u0000")) return "contains a NUL character (\\u0000)";
  const unit = LONE_SURROGATE.exec(s)?.[0];
  if (unit === undefined) return undefined;
  return `contains an unpaired UTF-16 surrogate (\\u${unit.charCodeAt(0).toString(16)}), which is not valid Unicode`;
}

/** `body.tasks[3].args.data`; keys that are not plain names are quoted: `body.metadata["a b"]`. */
function fieldName(root: string, path: Step[]): string {
  let name = root;
  for (const step of path) {
    if (typeof step === "number") name += `[${step}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(step) && step.length <= SHOWN_KEY_CHARS) name += `.${step}`;
    else name += `[${shownKey(step)}]`;
  }
  return name;
}

/** The key as JSON text (NUL and lone surrogates escaped), cut short. */
function shownKey(key: string): string {
  const cut = key.length > SHOWN_KEY_CHARS ? `${key.slice(0, SHOWN_KEY_CHARS)}…` : key;
  return JSON.stringify(cut);
}
