/**
 * Reading a user config template and its schema from disk, as the MEP does for
 * every UEP (manager/uep-bootstrap.ts) and as `renderTemplateFile` does for a
 * dry run: one reader, so the admin's dry run sees exactly what a UEP gets.
 *
 * The MEP reads as root (multi-user) and the UEP runs the user's code, so only
 * the template and the files it names leave the MEP: those its `include`,
 * `extends`, `import` and `from` tags give as string literals, followed
 * transitively. Each must be a plain name in the template's folder, a regular
 * file opened without following links, owned by the MEP's user and writable
 * by no one else: a template another user can write would let them set every
 * UEP's `worker_init`. Never a file the template does not name (the identity
 * mapping file, other admin files, the endpoint's own state).
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { ConfigError } from "../errors.js";
import { exampleIdentityMappingPath } from "./example-identity-mapping.js";
import type { ManagerConfig } from "./manager-config.js";
import { templateReferences } from "./strict-undefined.js";

/** Larger than this is no template (the endpoint's own log may sit in the same folder). */
const MAX_FILE_BYTES = 256 * 1024;

export interface TemplateFiles {
  /** File name of the template, e.g. `user_config_template.yaml.j2`. */
  name: string;
  text: string;
  /** The files of the template's folder it names (transitively), by name, for `include`, `extends` and `import`. */
  siblings: Record<string, string>;
}

export interface ReadTemplateOptions {
  /** Files that never leave the MEP, even when the template names them (the identity mapping file). @default [] */
  secret?: readonly string[];
}

/**
 * A file the template names that may not leave the MEP, or a name the MEP
 * cannot follow; the message is the one sentence the submitter (or the admin's
 * dry run) sees.
 */
export class TemplateFileError extends ConfigError {
  constructor(message: string) {
    super(message, { kind: "template-file" });
  }
}

/**
 * The template and the files it names, by name. Throws the file system's error
 * when the template itself cannot be read, and a TemplateFileError for a file
 * that may not be sent (the template included).
 */
export function readTemplateFiles(path: string, options: ReadTemplateOptions = {}): TemplateFiles {
  const name = basename(path);
  const folder = dirname(path);
  const secret = secretFiles(options.secret ?? []);
  // The admin names the template itself in config.yaml, so a link to it is followed; its owner and mode are checked.
  const text = readChecked(path, path, false, secret) as string;
  const siblings: Record<string, string> = {};
  const seen = new Set([name]);
  const pending = [{ name, text }];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    const lf = file.text.replace(/\r\n?/g, "\n");
    for (const ref of templateReferences(lf)) {
      const where = `${join(folder, file.name)} line ${ref.line}`;
      if ("expression" in ref) {
        throw new TemplateFileError(
          `${where}: the ${ref.tag} tag computes its file name (${shorten(ref.expression) || "nothing"}), and the endpoint sends with a template only the files it names as string literals; write the file name in quotes instead, e.g. "part.yaml.j2".`,
        );
      }
      for (const named of ref.names) {
        if (seen.has(named)) continue; // a file that includes itself, or one already read
        seen.add(named);
        if (named === "" || named === "." || named === ".." || /[/\\\0]/.test(named)) {
          throw new TemplateFileError(
            `${where}: the ${ref.tag} tag names ${JSON.stringify(named)}, which is not a plain file name in ${folder}; put that file in the template's folder and name it without a path.`,
          );
        }
        const content = readChecked(join(folder, named), `${join(folder, named)} (named in ${where})`, true, secret);
        // A missing file is the engine's to report, and only when the tag runs (`ignore missing`, an untaken branch).
        if (content === undefined) continue;
        siblings[named] = content;
        pending.push({ name: named, text: content });
      }
    }
  }
  return { name, text, siblings };
}

/**
 * The endpoint's identity mapping files: the one config.yaml names (relative
 * to the endpoint directory) and the example `configure --multi-user` wrote.
 */
export function identityMappingFiles(
  endpointDir: string,
  config: Pick<ManagerConfig, "identity_mapping_config_path">,
): string[] {
  const files = [exampleIdentityMappingPath(endpointDir)];
  if (config.identity_mapping_config_path !== null)
    files.push(resolve(endpointDir, config.identity_mapping_config_path));
  return files;
}

/** An expression on one line and at most 80 characters, for a one-sentence error. */
function shorten(expression: string): string {
  const flat = expression.replace(/\s+/g, " ");
  return flat.length > 80 ? `${flat.slice(0, 77)}...` : flat;
}

/** (device, inode) of each secret file that exists. */
function secretFiles(paths: readonly string[]): Set<string> {
  const ids = new Set<string>();
  for (const p of paths) {
    try {
      const st = statSync(p);
      ids.add(`${st.dev}:${st.ino}`);
    } catch {
      // Not there: nothing to keep back.
    }
  }
  return ids;
}

/**
 * A file's text after the checks on the opened file itself (no race with a
 * rename between check and read). A named file (`named`) is opened without
 * following a link and is undefined when it does not exist; the template's
 * own read errors are thrown as they are.
 */
function readChecked(path: string, shown: string, named: boolean, secret: Set<string>): string | undefined {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted under a named file's name must not hang the MEP.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (named ? constants.O_NOFOLLOW : 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!named) throw err;
    if (code === "ENOENT") return undefined;
    if (code === "ELOOP") {
      throw new TemplateFileError(
        `${shown} is a symbolic link, and the endpoint sends with a template only regular files of its folder, never links; replace the link with the file itself.`,
      );
    }
    throw new TemplateFileError(`${shown} cannot be read (${code}); fix its permissions, or remove its tag.`);
  }
  try {
    const st = fstatSync(fd);
    checkFile(st, shown, named, secret);
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}

function checkFile(st: Stats, shown: string, named: boolean, secret: Set<string>): void {
  if (secret.has(`${st.dev}:${st.ino}`)) {
    throw new TemplateFileError(
      `${shown} is the endpoint's identity mapping file, which never leaves the manager; remove its tag from the template.`,
    );
  }
  if (!st.isFile()) {
    throw new TemplateFileError(
      `${shown} is not a regular file; a template can use only regular files of its own folder, so replace it with one.`,
    );
  }
  const uid = process.geteuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new TemplateFileError(
      `${shown} belongs to uid ${st.uid}, not to uid ${uid} that runs the endpoint, so another user could rewrite every user endpoint's configuration; make it the endpoint's own file (chown ${uid} on it).`,
    );
  }
  if ((st.mode & 0o022) !== 0) {
    throw new TemplateFileError(
      `${shown} can be written by its group or by other users, so they could rewrite every user endpoint's configuration; remove that permission (chmod go-w on it).`,
    );
  }
  if (named && st.size > MAX_FILE_BYTES) {
    throw new TemplateFileError(
      `${shown} is larger than ${MAX_FILE_BYTES / 1024} KiB, too large for a template file; trim it or split it.`,
    );
  }
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
