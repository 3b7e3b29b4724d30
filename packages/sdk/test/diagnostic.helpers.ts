/**
 * Runs the built `conduit-diagnostic` (packages/sdk/dist/diagnostic/main.js) as
 * a real child process, with an environment of the test's choosing: no
 * inherited CONDUIT_* variable reaches it. Run `npm run build` first.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

export const DIAGNOSTIC_BIN = join(dirname(fileURLToPath(import.meta.url)), "../dist/diagnostic/main.js");

export interface BinRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runDiagnosticBin(
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<BinRun> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("CONDUIT_")) env[key] = value;
  Object.assign(env, options.env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DIAGNOSTIC_BIN, ...args], { cwd: options.cwd, env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The archives in `dir`, by name. */
export function archivesIn(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith(".txt.gz"));
}

/** The one archive in `dir`, decompressed (gunzip throws on an invalid file). */
export function readArchive(dir: string): string {
  const [name, ...more] = archivesIn(dir);
  if (!name || more.length > 0) throw new Error(`expected one archive in ${dir}, found ${[name, ...more].join(", ")}`);
  return gunzipSync(readFileSync(join(dir, name))).toString("utf8");
}

/** The text of section `name` in a report (up to the next section header). */
export function sectionText(report: string, name: string): string {
  const header = `== Diagnostic: ${name} ==\n`;
  const start = report.indexOf(header);
  if (start === -1) throw new Error(`no section ${JSON.stringify(name)} in the report`);
  const end = report.indexOf("\n== Diagnostic: ", start + header.length);
  return report.slice(start + header.length, end === -1 ? undefined : end);
}
