/**
 * `BundledCode`: a module's export shipped with its imports, bundled by
 * esbuild into one ES module. Use it where `conduit.SourceCode` cannot go: a
 * function that uses its module's imports, helpers or constants. The input is
 * a module and an export name, since a function object does not know its
 * module:
 *
 * ```ts
 * import { BundledCode, Executor } from "@conduit/sdk";
 *
 * const processFile = BundledCode.from(new URL("./tasks.ts", import.meta.url), "process");
 * await ex.submit(processFile, "/data/in.csv").result();
 * ```
 *
 * On the endpoint the module's top level runs once per worker (bundles are
 * cached by content hash). Packages with native addons cannot be bundled:
 * they stay external, and the worker resolves them from the endpoint's
 * `engine.modules_dir` (default `~/.conduit/modules`, where an admin runs
 * `npm install`). The bundle runs from a temporary directory, so code that
 * reads files next to its module through `import.meta.url` or `__dirname`
 * will not find them there: pass their paths or contents as arguments.
 */
import { type Dirent, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { BUNDLED_CODE, bundleHash, ConduitError, encodeBundledCode, type Payload } from "@conduit/protocol";
import { type BuildOptions, type BuildResult, buildSync, type Message, type Metafile } from "esbuild";

const BUNDLE_FAILED = "BUNDLE_FAILED";

/** Options of {@link BundledCode.from}. */
export interface BundledCodeOptions {
  /**
   * Packages (or esbuild external patterns such as `@aws-sdk/*`) to leave out
   * of the bundle; the worker imports them from its modules directory.
   * Packages with a native addon are left out without being named here.
   * @default []
   */
  external?: readonly string[];
}

// esbuild's `__require` shim throws "Dynamic require is not supported" in ESM output unless a
// `require` is in scope: bundled CommonJS packages that require an external need this one.
const REQUIRE_SHIM = `import { createRequire as __conduitCreateRequire } from "node:module";
const require = __conduitCreateRequire(import.meta.url);`;

export class BundledCode {
  /** The `conduit.BundledCode` payload the Executor submits. */
  readonly payload: Payload;
  /** The export's name, e.g. `process` (`default` for a default export). */
  readonly name: string;
  /** SHA-256 of the bundle, lowercase hex: equal hashes mean the same code. */
  readonly hash: string;

  private constructor(payload: Payload, name: string, hash: string) {
    this.payload = payload;
    this.name = name;
    this.hash = hash;
  }

  /**
   * Bundles `module` (a file URL or a path; TypeScript or JavaScript) with its
   * imports, synchronously, for the Node version running this process, and
   * checks that it exports `exportName`.
   */
  static from(module: URL | string, exportName: string, options: BundledCodeOptions = {}): BundledCode {
    const entry = modulePath(module);
    if (typeof exportName !== "string" || exportName === "") {
      throw new ConduitError(
        "BUNDLE_EXPORT_MISSING",
        `BundledCode.from needs the name of an export of ${entry}; pass it as the second argument, e.g. "default".`,
      );
    }
    const explicit = [...(options.external ?? [])];
    // Two passes: the first finds which packages the module reaches, the second leaves out those with native addons.
    let result = bundle(entry, explicit);
    const native = nativePackages(result.metafile, dirname(entry));
    if (native.length > 0) result = bundle(entry, [...explicit, ...native]);

    const [output] = Object.values(result.metafile.outputs);
    const exports = output?.exports ?? [];
    if (!exports.includes(exportName)) {
      throw new ConduitError(
        "BUNDLE_EXPORT_MISSING",
        `Module ${entry} has no export named "${exportName}"; ${exports.length > 0 ? `its exports are: ${[...exports].sort().join(", ")}` : "it exports nothing"}.`,
      );
    }
    const code = result.outputFiles[0]?.text ?? "";
    const data = encodeBundledCode(code, exportName, externalPackages(output?.imports ?? []));
    return new BundledCode({ strategy: BUNDLED_CODE, data }, exportName, bundleHash(code));
  }
}

function modulePath(module: URL | string): string {
  let path: string;
  try {
    path =
      module instanceof URL || (typeof module === "string" && module.startsWith("file:"))
        ? fileURLToPath(module)
        : resolve(String(module));
  } catch (err) {
    throw new ConduitError(
      "BUNDLE_MODULE_NOT_FOUND",
      `${String(module)} is not a file URL or path (${(err as Error).message}); pass e.g. new URL("./tasks.ts", import.meta.url).`,
      { cause: err },
    );
  }
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new ConduitError(
      "BUNDLE_MODULE_NOT_FOUND",
      `Module ${path} not found; pass the URL or path of an existing module, e.g. new URL("./tasks.ts", import.meta.url).`,
    );
  }
  return path;
}

type Bundle = BuildResult<{ write: false; metafile: true }>;

function bundle(entry: string, external: string[]): Bundle {
  const workingDir = dirname(entry);
  const options: BuildOptions & { write: false; metafile: true } = {
    entryPoints: [entry],
    absWorkingDir: workingDir,
    // Not written (write: false); it names the output in the metafile and makes import paths relative to it.
    outfile: join(workingDir, "conduit-bundle.mjs"),
    bundle: true,
    write: false,
    metafile: true,
    format: "esm",
    platform: "node",
    target: `node${process.versions.node}`,
    external: ["*.node", ...external],
    banner: { js: REQUIRE_SHIM },
    logLevel: "silent",
  };
  try {
    return buildSync(options);
  } catch (err) {
    const first = (err as { errors?: Message[] }).errors?.[0];
    if (!first) {
      throw new ConduitError(
        BUNDLE_FAILED,
        `Bundling ${entry} failed (${(err as Error).message}); check that esbuild is installed with the SDK.`,
        { cause: err },
      );
    }
    const where = first.location
      ? `${resolve(workingDir, first.location.file)}:${first.location.line}:${first.location.column + 1}`
      : entry;
    const fix = first.text.startsWith("Could not resolve")
      ? "install that package, or pass it in the external option to resolve it on the endpoint"
      : "fix that error and bundle again";
    throw new ConduitError(BUNDLE_FAILED, `Bundling ${entry} failed at ${where}: ${first.text}; ${fix}.`, {
      cause: err,
    });
  }
}

/** Names of the packages in `metafile`'s inputs that hold a native addon (`binding.gyp` or a `.node` file). */
function nativePackages(metafile: Metafile, workingDir: string): string[] {
  const roots = new Map<string, string>();
  for (const input of Object.keys(metafile.inputs)) {
    const path = resolve(workingDir, input);
    const at = path.lastIndexOf(`${sep}node_modules${sep}`);
    if (at < 0) continue;
    const parts = path.slice(at + "/node_modules/".length).split(sep);
    const name = parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
    if (name && !roots.has(name)) roots.set(name, join(path.slice(0, at), "node_modules", name));
  }
  return [...roots].filter(([, root]) => hasNativeAddon(root)).map(([name]) => name);
}

function hasNativeAddon(root: string): boolean {
  if (existsSync(join(root, "binding.gyp"))) return true;
  try {
    if ((JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { gypfile?: unknown }).gypfile === true) {
      return true;
    }
  } catch {
    // No readable package.json: decide by the files alone.
  }
  return containsNodeFile(root, 4);
}

function containsNodeFile(dir: string, depth: number): boolean {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  for (const entry of entries) {
    if (entry.isFile() && entry.name.endsWith(".node")) return true;
  }
  if (depth === 0) return false;
  // A nested node_modules holds other packages, judged on their own if the bundle reaches them.
  return entries.some(
    (entry) =>
      entry.isDirectory() && entry.name !== "node_modules" && containsNodeFile(join(dir, entry.name), depth - 1),
  );
}

const BUILTINS = new Set(builtinModules);

/** The packages behind the bundle's external imports, without Node's built-in modules. */
function externalPackages(imports: Metafile["outputs"][string]["imports"]): string[] {
  const names = new Set<string>();
  for (const { path, external } of imports) {
    if (!external || path.startsWith("node:") || path.startsWith(".") || path.startsWith("/")) continue;
    const parts = path.split("/");
    const name = path.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
    if (!BUILTINS.has(name) && !BUILTINS.has(path)) names.add(name);
  }
  return [...names].sort();
}
