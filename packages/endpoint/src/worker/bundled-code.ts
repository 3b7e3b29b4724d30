/**
 * Loads the function of a `conduit.BundledCode` payload in a worker: an ES
 * module bundled by the SDK's `BundledCode.from`, and the name of its export.
 *
 * The bundle is written to this worker's private temporary directory (mode
 * 0700) as `<hash>.mjs` and imported from there, so a module's top level
 * runs once per worker however many tasks call it; later tasks with the same
 * hash reuse the loaded module. Packages left out of the bundle (native
 * addons, the submitter's `external` option) resolve from the modules
 * directory (`engine.modules_dir`, default `~/.conduit/modules`, where an
 * admin runs `npm install`): the bundle sits beside a `node_modules` link to
 * `<modulesDir>/node_modules`, so Node's own resolution finds them there.
 *
 * ```ts
 * const fn = await loadBundledFunction(task.function.data, { modulesDir: workerModulesDir() });
 * const value = await fn(...args);
 * ```
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type BundledCodeData, checkBundleHash, decodeBundledCode, paths } from "@conduit/protocol/task";
import { TaskError } from "../errors.js";

export type BundledFunction = (...args: unknown[]) => unknown;

export interface LoadBundledOptions {
  /** Where externals resolve from: `<modulesDir>/node_modules`. */
  modulesDir: string;
}

/** The environment variable through which the UEP hands `engine.modules_dir` to its workers. */
export const MODULES_DIR_ENV = "CONDUIT_MODULES_DIR";

/**
 * The workers' environment with the validated `engine.modules_dir` (a string, or absent) in it:
 * the one way it reaches every worker, whether a thread, a process or a block's worker.
 */
export function withModulesDir(env: NodeJS.ProcessEnv, modulesDir: unknown): NodeJS.ProcessEnv {
  return typeof modulesDir === "string" && modulesDir !== ""
    ? { ...env, [MODULES_DIR_ENV]: absolutePath(modulesDir) }
    : env;
}

/** The modules directory of this worker: `CONDUIT_MODULES_DIR`, else `$CONDUIT_USER_DIR/modules`. */
export function workerModulesDir(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env[MODULES_DIR_ENV];
  return configured ? absolutePath(configured) : join(paths.userDir(), "modules");
}

/** `~` is the user's home, as an admin writing YAML expects; a relative path is relative to the current directory. */
function absolutePath(path: string): string {
  return resolve(path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(1)) : path);
}

type Namespace = Record<string, unknown>;

interface ModulesSlot {
  /** Directory holding the bundles and the `node_modules` link for one modules directory. */
  dir: string;
  /** Loaded (or loading) modules by hash. */
  modules: Map<string, Promise<Namespace>>;
  /** Failed imports by hash: a retry needs a new file name, since Node caches a failed import by URL. */
  attempts: Map<string, number>;
}

const DIR_PREFIX = "conduit-bundles-";
let workDir: string | undefined;
const slots = new Map<string, ModulesSlot>();

export async function loadBundledFunction(data: string, options: LoadBundledOptions): Promise<BundledFunction> {
  const bundle = decodeBundledCode(data);
  const modulesDir = resolve(options.modulesDir);
  const slot = slotFor(modulesDir);
  let loading = slot.modules.get(bundle.hash);
  if (!loading) {
    loading = importBundle(bundle, slot, modulesDir);
    slot.modules.set(bundle.hash, loading);
    // A failed import is not cached: once the admin installs a missing package, the next task loads it.
    loading.catch(() => {
      slot.modules.delete(bundle.hash);
      slot.attempts.set(bundle.hash, (slot.attempts.get(bundle.hash) ?? 0) + 1);
    });
  }
  const namespace = await loading;
  const fn = namespace[bundle.export];
  if (typeof fn !== "function") {
    throw new TaskError(
      "BUNDLE_EXPORT_INVALID",
      `The bundled module's export "${bundle.export}" is ${fn === undefined ? "missing" : fn === null ? "null" : `a ${typeof fn}`}, not a function; bundle an export that is a function.`,
    );
  }
  return fn as BundledFunction;
}

function slotFor(modulesDir: string): ModulesSlot {
  let slot = slots.get(modulesDir);
  if (slot) return slot;
  if (!workDir) {
    removeOrphanedDirs();
    // mkdtemp creates the directory with mode 0700: other users cannot read or replace the bundles.
    const dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
    workDir = dir;
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  const dir = join(workDir, String(slots.size));
  mkdirSync(dir, { mode: 0o700 });
  // A dangling link is fine: the directory may be created (and `npm install` run) after the worker starts.
  symlinkSync(join(modulesDir, "node_modules"), join(dir, "node_modules"), "dir");
  slot = { dir, modules: new Map(), attempts: new Map() };
  slots.set(modulesDir, slot);
  return slot;
}

/**
 * A worker thread stopped by `terminate()` runs no exit handler, so its directory stays behind: the
 * next worker to start removes those of processes that are gone.
 */
function removeOrphanedDirs(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const pid = Number.parseInt(name.slice(DIR_PREFIX.length), 10);
    if (!(pid > 0) || processAlive(pid)) continue;
    try {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    } catch {
      // Another user's directory, in a sticky /tmp: theirs to remove.
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, and another user's.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function importBundle(bundle: BundledCodeData, slot: ModulesSlot, modulesDir: string): Promise<Namespace> {
  // Hashed once, here: a later payload naming a loaded hash runs the module that was checked against it.
  checkBundleHash(bundle);
  const attempt = slot.attempts.get(bundle.hash) ?? 0;
  const file = join(slot.dir, attempt === 0 ? `${bundle.hash}.mjs` : `${bundle.hash}.${attempt}.mjs`);
  writeFileSync(file, bundle.code, { mode: 0o600 });
  try {
    return (await import(pathToFileURL(file).href)) as Namespace;
  } catch (err) {
    const missing = missingPackage(err);
    if (missing === undefined) throw err;
    const listed = bundle.externals.includes(missing) ? "" : " (it is not among the bundle's externals)";
    throw new TaskError(
      "BUNDLE_EXTERNAL_MISSING",
      `The function needs package ${missing}${listed}, which is not installed in ${modulesDir} on this endpoint; run \`npm install ${missing}\` in ${modulesDir}, or set engine.modules_dir to a directory where it is installed.`,
      { cause: err },
    );
  }
}

/** The package an import or require failed to find, from Node's error (ESM and CommonJS word it differently). */
function missingPackage(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") return undefined;
  const match = /Cannot find (?:package|module) '([^']+)'/.exec((err as Error).message);
  const specifier = match?.[1];
  if (!specifier || specifier.startsWith(".") || specifier.startsWith("/")) return undefined;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}
