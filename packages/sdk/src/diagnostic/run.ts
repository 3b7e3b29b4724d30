/**
 * `conduit-diagnostic`: runs every section with its own time budget, redacts
 * what each produced, and prints it (`-p`) or writes it to
 * `conduit_diagnostic_<UTC time>.txt.gz` in the current directory.
 *
 * Exit codes: 0 done (a failed section is part of the report, not a failure of
 * the tool), 64 bad command line, 66 no config dir (as upstream), 73 the
 * archive cannot be created in the current directory.
 */
import { createWriteStream, openSync, statSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { createGzip } from "node:zlib";
import { DEFAULT_SERVICE_URL, paths, readLogin, resolveCredential, trimUrl } from "@conduit/protocol";
import { Client } from "../index.js";
import { describeError } from "./connectivity.js";
import { type DiagnosticOptions, HELP, parseDiagnosticArgs, UsageError } from "./diagnostic-options.js";
import { endpointSections, endpointTaskSection } from "./endpoint-sections.js";
import { MACHINE_SECTIONS } from "./machine-sections.js";
import { redactSecrets } from "./redact.js";
import { type DiagnosticContext, SECTION_TIMEOUT_MS, type Section } from "./section.js";

const EXIT_USAGE = 64;
const EXIT_NO_INPUT = 66;
const EXIT_CANT_CREATE = 73;

/** `conduit_diagnostic_YYYY-MM-DD-HH-mm-ssZ.txt.gz`, in UTC. */
function archiveName(now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/T/, "-")
    .replace(/:/g, "-")
    .replace(/\.\d+Z$/, "Z");
  return `conduit_diagnostic_${stamp}.txt.gz`;
}

export async function runDiagnostic(argv: readonly string[]): Promise<number> {
  let options: Readonly<DiagnosticOptions>;
  try {
    options = parseDiagnosticArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return EXIT_USAGE;
  }
  if (options.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const problem = configDirProblem(options.configDir);
  if (problem) {
    process.stderr.write(
      `Config directory ${options.configDir} ${problem}; pass the directory that holds your endpoints with -c, or set CONDUIT_USER_DIR.\n`,
    );
    return EXIT_NO_INPUT;
  }
  // Everything below (credentials.json, `conduit-endpoint list`) reads the chosen directory.
  process.env.CONDUIT_USER_DIR = options.configDir;
  const { context, secrets } = resolveContext(options);
  const sections: Section[] = [...MACHINE_SECTIONS];
  if (options.endpointUuid) sections.push(endpointTaskSection(options.endpointUuid));
  try {
    sections.push(...(await endpointSections(options)));
  } catch (err) {
    sections.push({ name: "endpoints", run: () => Promise.reject(err) });
  }

  const texts = runSections(sections, context, secrets, options);
  if (options.printOnly) {
    for await (const text of texts) process.stdout.write(text);
    return 0;
  }
  const name = archiveName(new Date());
  let fd: number;
  try {
    // Created before the first section runs, so an unwritable directory is said at once, not after a minute.
    fd = openSync(join(process.cwd(), name), "wx", 0o600);
  } catch (err) {
    process.stderr.write(
      `Cannot create ${name} in ${process.cwd()} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); run conduit-diagnostic from a directory you can write to, or print the report with -p.\n`,
    );
    return EXIT_CANT_CREATE;
  }
  const gzip = createGzip();
  const written = pipeline(gzip, createWriteStream("", { fd }));
  for await (const text of texts) gzip.write(text);
  gzip.end();
  await written;
  process.stdout.write(`Compressed diagnostic output successfully written to ${name}\n`);
  return 0;
}

/** Why `dir` cannot be read as the config directory, or undefined. */
function configDirProblem(dir: string): string | undefined {
  try {
    return statSync(dir).isDirectory() ? undefined : "is not a directory";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "does not exist" : `cannot be read (${code ?? (err as Error).message})`;
  }
}

/** The service URL and a client, and the literal secrets to redact wherever they show up. */
function resolveContext(options: Readonly<DiagnosticOptions>): { context: DiagnosticContext; secrets: string[] } {
  const secrets = [
    process.env.CONDUIT_CLIENT_SECRET,
    process.env.GLOBUS_COMPUTE_CLIENT_SECRET,
    process.env.CONDUIT_TOKEN,
  ];
  let serviceUrl = DEFAULT_SERVICE_URL;
  let serviceUrlSource = "the default";
  let client: Client | string;
  try {
    const credentials = paths.readCredentials();
    secrets.push(credentials?.token);
    serviceUrl = paths.serviceUrl();
    if (process.env.CONDUIT_SERVICE_URL) serviceUrlSource = "CONDUIT_SERVICE_URL";
    else if (credentials?.service_url) serviceUrlSource = paths.credentialsFile();
    const login = readLogin(trimUrl(serviceUrl));
    secrets.push(login?.access_token, login?.refresh_token);
    // The credential order of every client; never a login prompt in a diagnostic.
    const found = resolveCredential({ serviceUrl: trimUrl(serviceUrl), loginCommand: "npx conduit login" });
    if (!found) throw new Error("no credentials (log in with npx conduit login, or set CONDUIT_TOKEN)");
    client = new Client({ serviceUrl, retries: 0, interactiveLogin: false });
  } catch (err) {
    client = `no token: ${(err as Error).message}`;
  }
  return {
    context: { options, serviceUrl, serviceUrlSource, client },
    secrets: secrets.filter((s): s is string => typeof s === "string" && s !== ""),
  };
}

/** Each section's redacted text, headed `== Diagnostic: <name> ==`, one after another. */
async function* runSections(
  sections: readonly Section[],
  context: DiagnosticContext,
  secrets: readonly string[],
  options: Readonly<DiagnosticOptions>,
): AsyncGenerator<string> {
  for (const section of sections) {
    const header = `== Diagnostic: ${section.name} ==`;
    if (options.verbose && !options.printOnly) process.stdout.write(`${header}\n`);
    const body = await runBounded(section, context);
    yield `${header}\n${redactSecrets(body, secrets).trimEnd()}\n\n`;
  }
}

/** After a section's time is up and its signal aborted, how long it has to hand in what it has. */
const GRACE_MS = 1_000;
const TIMED_OUT = Symbol("timed out");

/**
 * The section's text, or its error, or what it had when its time ran out and
 * a line saying so; never a rejection.
 */
async function runBounded(section: Section, context: DiagnosticContext): Promise<string> {
  const timeoutMs = section.timeoutMs ?? SECTION_TIMEOUT_MS;
  const controller = new AbortController();
  const timers = new AbortController();
  const after = (ms: number): Promise<typeof TIMED_OUT> =>
    sleep(ms, TIMED_OUT, { signal: timers.signal }).catch(() => TIMED_OUT);
  const result = section
    .run(context, controller.signal)
    .catch((err: unknown) => `(section failed: ${describeError(err)})`);
  try {
    const first = await Promise.race([result, after(timeoutMs)]);
    if (first !== TIMED_OUT) return first;
    // Aborting ends its sockets and commands; most sections then report which step was cut off.
    controller.abort();
    const late = await Promise.race([result, after(GRACE_MS)]);
    return `${late === TIMED_OUT ? "" : `${late}\n`}(section timed out after ${timeoutMs / 1000} s)`;
  } finally {
    timers.abort();
    controller.abort();
  }
}
