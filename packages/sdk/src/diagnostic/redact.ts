/**
 * Secret redaction for everything `conduit-diagnostic` collects: the archive is
 * meant to be attached to a support request, so nothing in it may let its
 * reader act as the user, the endpoint or the broker. Upstream's tool redacts
 * nothing; this one runs every collected byte through {@link redactSecrets}.
 *
 * What goes: private-key PEM blocks (also a block cut by a log tail), the
 * password of any `scheme://user:password@host` URL, `Bearer`/`Basic`/`Token`
 * credentials, JWTs, the value of any field whose name says token, secret,
 * password, passphrase, credential, api key, private key, authorization or
 * cookie (JSON, escaped JSON, YAML including block scalars, `KEY=value`,
 * `--flag value`, URL query strings), and every literal secret the tool itself
 * knows (the API token and client secret in use): Conduit's API tokens are
 * random base64url without a prefix, so only their context or their literal
 * value can find them.
 */

const REDACTED = "[REDACTED]";

/** Words that make a field's value secret (matched case-insensitively anywhere in its name). */
const SECRET_KEY =
  "(?:token|secret|passw(?:or)?d|passphrase|pwd|credential|api[_-]?key|private[_-]?key|authorization|cookie)";
/** A field name containing one of {@link SECRET_KEY}; bounded, so a long word costs linear time. */
const KEY_NAME = `[\\w.-]{0,48}${SECRET_KEY}[\\w.-]{0,48}`;

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----[\s\S]*?(?:-----END \1-----|$(?![\s\S]))/g;
const PEM_END_LINE = /^-----END [A-Z0-9 ]*PRIVATE KEY-----/;
const BASE64_LINE = /^[A-Za-z0-9+/=]+\r?$/;
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]{0,31}:\/\/)([^\s:/@"'<>]*):([^\s@/"'<>]+)@/gi;
const AUTH_SCHEME = /\b(Bearer|Basic|Token)(\s+|%20)[A-Za-z0-9._~+/=-]{6,}/g;
const JWT = /\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*/g;
/** `"key": "value"`, also inside escaped JSON (`\"key\":\"value\"`); numbers and bare words too. */
const JSON_FIELD = new RegExp(`(\\\\*"${KEY_NAME}\\\\*"\\s*:\\s*)(?:(\\\\*")[^"]*?(\\\\*")|([^\\s,}\\]"\\\\]+))`, "gi");
/** `key: value` at the start of a YAML line (also a list item); quoted or bare. */
const YAML_FIELD = new RegExp(`^([ \\t]*(?:-[ \\t]+)?["']?${KEY_NAME}["']?[ \\t]*:[ \\t]*)(\\S.*)$`, "gim");
/** `KEY=value`, `?token=value&…`, `--password=value`; quoted or bare. */
const ASSIGNMENT = new RegExp(`(\\b${KEY_NAME}[ \\t]*=[ \\t]*)(?:"[^"\\n]*"|'[^'\\n]*'|[^\\s&"',;]+)`, "gi");
/** `--client-secret value`, `--password value` (the value as its own word). */
const FLAG_VALUE = new RegExp(`(--${KEY_NAME}[ \\t]+)(?!-)[^\\s"']+`, "gi");

/**
 * Returns `text` with every secret replaced by {@link REDACTED}. `known` are
 * literal secrets (e.g. the API token in use) removed wherever they appear.
 */
export function redactSecrets(text: string, known: readonly string[] = []): string {
  let out = text;
  for (const secret of known) {
    // Short values would also erase ordinary words; a real secret is long.
    if (secret.length >= 8) out = out.split(secret).join(REDACTED);
  }
  out = out.replace(PEM_BLOCK, (_all, label: string) => `-----BEGIN ${label}----- ${REDACTED} -----END ${label}-----`);
  out = redactOrphanKeyLines(out);
  out = out.replace(URL_PASSWORD, (_all, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`);
  out = out.replace(AUTH_SCHEME, (_all, scheme: string, gap: string) => `${scheme}${gap}${REDACTED}`);
  out = out.replace(JWT, REDACTED);
  out = redactYamlBlocks(out);
  out = out.replace(JSON_FIELD, (_all, key: string, open?: string, close?: string) =>
    open === undefined ? `${key}${REDACTED}` : `${key}${open}${REDACTED}${close}`,
  );
  out = out.replace(YAML_FIELD, (all, key: string, value: string) =>
    // JSON lines were handled above, and a value with a redaction in it (`Bearer [REDACTED]`) already is.
    value.includes(REDACTED) || isJsonish(all) ? all : `${key}${redactYamlValue(value)}`,
  );
  out = out.replace(ASSIGNMENT, (_all, key: string) => `${key}${REDACTED}`);
  out = out.replace(FLAG_VALUE, (_all, flag: string) => `${flag}${REDACTED}`);
  return out;
}

/**
 * A tail that starts inside a key block has its END line but not its BEGIN
 * (which {@link PEM_BLOCK} needs): the base64 lines just before an END line go.
 */
function redactOrphanKeyLines(text: string): string {
  if (!text.includes("-----END ")) return text;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!PEM_END_LINE.test(lines[i])) continue;
    let first = i;
    while (first > 0 && BASE64_LINE.test(lines[first - 1])) first--;
    if (first < i) {
      lines.splice(first, i - first, REDACTED);
      i = first + 1;
    }
  }
  return lines.join("\n");
}

function isJsonish(line: string): boolean {
  return /^\s*\\*"/.test(line) && /\\*"\s*:/.test(line);
}

/** A YAML scalar, quoted or not; a trailing comment is kept. */
function redactYamlValue(value: string): string {
  const quoted = /^(["'])/.exec(value);
  if (quoted) return `${quoted[1]}${REDACTED}${quoted[1]}`;
  const comment = / #.*$/.exec(value);
  return comment ? `${REDACTED}${comment[0]}` : REDACTED;
}

/** `password: |` (or `>`) followed by more-indented lines: the lines go. */
function redactYamlBlocks(text: string): string {
  const lines = text.split("\n");
  const blockStart = new RegExp(
    `^([ \\t]*)(?:-[ \\t]+)?["']?${KEY_NAME}["']?[ \\t]*:[ \\t]*[|>][+-]?\\d*[ \\t]*$`,
    "i",
  );
  for (let i = 0; i < lines.length; i++) {
    const start = blockStart.exec(lines[i]);
    if (!start) continue;
    const indent = start[1].length;
    let j = i + 1;
    while (j < lines.length && (lines[j].trim() === "" || indentOf(lines[j]) > indent)) j++;
    if (j > i + 1) {
      lines.splice(i + 1, j - i - 1, `${" ".repeat(indent + 2)}${REDACTED}`);
    }
  }
  return lines.join("\n");
}

function indentOf(line: string): number {
  return line.length - line.trimStart().length;
}
