/**
 * The endpoint directories under the config dir and the files collected from
 * each (as upstream: `*.yaml *.log *.py *.j2 *.json`, plus rotated logs), each
 * cut to its last N KB. Every endpoint's UEP directories
 * (`uep.<endpoint id>.<uep id>`) go with it, since a task's trouble is usually
 * in a UEP's log.
 */
import { open, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";

/** Files that hold nothing but credentials: named, never read. */
const CREDENTIAL_FILES = new Set(["credentials.json", "tokens.json"]);
const COLLECTED = /\.(?:ya?ml|py|j2|json)$|\.log(?:\.\d+)?$/;
/** Not endpoints: the local service's data, and UEP dirs (collected with their endpoint). */
const SERVICE_DIR = "service";
const UEP_PREFIX = "uep.";

export interface EndpointDir {
  name: string;
  dir: string;
  endpointId: string | undefined;
  /** Newest modification time of the directory or its files (ms). */
  modified: number;
  /** Its UEP directories, newest first. */
  uepDirs: string[];
}

/** The endpoints under `configDir`, most recently modified first. */
export async function findEndpointDirs(configDir: string): Promise<EndpointDir[]> {
  const entries = await readdir(configDir, { withFileTypes: true });
  const dirs = entries.filter((e) => e.isDirectory()).map((e) => e.name);
  const ueps = dirs.filter((d) => d.startsWith(UEP_PREFIX));
  const endpoints: EndpointDir[] = [];
  for (const name of dirs) {
    if (name === SERVICE_DIR || name.startsWith(UEP_PREFIX) || name.startsWith(".")) continue;
    const dir = join(configDir, name);
    const files = await readdir(dir).catch(() => [] as string[]);
    if (!files.includes("config.yaml") && !files.includes("endpoint.log")) continue;
    const endpointId = await readEndpointId(join(dir, "endpoint.json"));
    const mine = endpointId ? ueps.filter((u) => u.startsWith(`${UEP_PREFIX}${endpointId}.`)) : [];
    const uepDirs = await newestFirst(mine.map((u) => join(configDir, u)));
    const modified = Math.max(await newestMtime(dir, files), ...(await Promise.all(uepDirs.map((u) => mtimeOf(u)))));
    endpoints.push({ name, dir, endpointId, modified, uepDirs });
  }
  return endpoints.sort((a, b) => b.modified - a.modified);
}

async function readEndpointId(file: string): Promise<string | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, "utf8")) as { endpoint_id?: unknown };
    return typeof parsed.endpoint_id === "string" ? parsed.endpoint_id : undefined;
  } catch {
    return undefined;
  }
}

async function mtimeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return 0;
  }
}

async function newestMtime(dir: string, files: readonly string[]): Promise<number> {
  const times = await Promise.all([dir, ...files.map((f) => join(dir, f))].map(mtimeOf));
  return Math.max(...times);
}

async function newestFirst(dirs: string[]): Promise<string[]> {
  const times = await Promise.all(
    dirs.map(async (d) => [d, await newestMtime(d, await readdir(d).catch(() => []))] as const),
  );
  return times.sort((a, b) => b[1] - a[1]).map(([d]) => d);
}

/** One collected file: its text (the tail) and how much of it there was. */
export interface CollectedFile {
  path: string;
  size: number;
  /** The text, or why there is none. */
  text: string;
  /** True when only the last part was read. */
  truncated: boolean;
}

/** The collected files of one directory, in name order. */
export async function collectFiles(dir: string, maxBytes: number): Promise<CollectedFile[]> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && (COLLECTED.test(e.name) || CREDENTIAL_FILES.has(e.name)))
    .map((e) => e.name)
    .sort();
  const out: CollectedFile[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (CREDENTIAL_FILES.has(name)) {
      const size = (await stat(path)).size;
      out.push({ path, size, text: "(not collected: it holds credentials)", truncated: false });
      continue;
    }
    out.push(await readTail(path, maxBytes));
  }
  return out;
}

/**
 * The last `maxBytes` of a file. When the file is longer, the partial first
 * line is dropped: a secret cut in half there would lose the context that
 * marks it as one (its `token:` or `Bearer`).
 */
async function readTail(path: string, maxBytes: number): Promise<CollectedFile> {
  const handle = await open(path, "r");
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    if (length === size) return { path, size, text: buffer.toString("utf8"), truncated: false };
    const newline = buffer.indexOf(0x0a);
    const text = newline === -1 ? "" : buffer.subarray(newline + 1).toString("utf8");
    return { path, size, text, truncated: true };
  } finally {
    await handle.close();
  }
}
