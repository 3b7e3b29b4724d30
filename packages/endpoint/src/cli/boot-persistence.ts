/**
 * `conduit-endpoint enable-on-boot <name>` and `disable-on-boot <name>`: a
 * systemd unit that runs `conduit-endpoint start <name>` at boot, as Globus's
 * `boot_persistence.py` writes it, under Conduit's names. The unit holds no
 * secret: what the endpoint needs to find its user dir and its credentials
 * goes into an `EnvironmentFile=` of mode 0600 in the endpoint directory.
 */
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  API_PREFIX,
  ConduitApiError,
  ConduitError,
  type IdentityInfo,
  obtainCredential,
  paths,
  requestWithCredential,
  terminalIo,
} from "@conduit/protocol";
import { configuredEndpoint, type EndpointPaths, readPidFile } from "../manager/endpoint-dir.js";
import { localUser } from "../manager/registration.js";

/** Where systemd looks for units an admin installs. */
export const DEFAULT_UNIT_DIR = "/etc/systemd/system";
/** Overrides the unit directory (tests, or an admin staging units elsewhere); `--unit-dir` overrides this. */
export const UNIT_DIR_ENV = "CONDUIT_SYSTEMD_UNIT_DIR";
/** The environment file's name in the endpoint directory. */
const BOOT_ENV_FILE = "systemd.env";
/**
 * Copied into the environment file when set where `enable-on-boot` runs:
 * the service URL and token the endpoint would use now (without them it
 * reads `credentials.json` in its user dir, as now).
 */
const CARRIED_VARIABLES = [
  "CONDUIT_SERVICE_URL",
  "CONDUIT_TOKEN",
  "CONDUIT_CLIENT_ID",
  "CONDUIT_CLIENT_SECRET",
  "GLOBUS_COMPUTE_CLIENT_ID",
  "GLOBUS_COMPUTE_CLIENT_SECRET",
] as const;
/** systemd's own default PATH, after the folder of the node running this command (the bin's shebang is `env node`). */
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** The bin shim npm links as `conduit-endpoint`: executable, with its own shebang. */
const BIN = fileURLToPath(new URL("../../bin/conduit-endpoint.js", import.meta.url));
const CHECK_TIMEOUT_MS = 15_000;

export interface BootOptions {
  userDir: string;
  name: string;
  /** `--unit-dir`; else `$CONDUIT_SYSTEMD_UNIT_DIR`; else /etc/systemd/system. */
  unitDir?: string;
}

export interface BootUnit {
  /** `conduit-endpoint-<name>.service`. */
  service: string;
  /** The unit file's path. */
  path: string;
  /** The environment file's path, in the endpoint directory. */
  envFile: string;
}

function bootUnit(ep: EndpointPaths, unitDir: string): BootUnit {
  const service = `conduit-endpoint-${ep.name}.service`;
  return { service, path: join(unitDir, service), envFile: resolve(ep.dir, BOOT_ENV_FILE) };
}

function unitDirOf(option: string | undefined): string {
  const fromEnv = process.env[UNIT_DIR_ENV];
  return resolve(option ?? (fromEnv === undefined || fromEnv === "" ? DEFAULT_UNIT_DIR : fromEnv));
}

/** The unit text: Globus's unit, with the environment file and Conduit's names. */
function unitText(ep: EndpointPaths, unit: BootUnit, user: string): string {
  return [
    "[Unit]",
    `Description=Conduit Endpoint "${ep.name}"`,
    "After=network.target",
    "StartLimitIntervalSec=0",
    "",
    "[Service]",
    `ExecStart=${[BIN, "start", ep.name].map(execWord).join(" ")}`,
    `EnvironmentFile=${specifierEscape(unit.envFile)}`,
    `User=${user}`,
    "Type=simple",
    "Restart=always",
    "RestartSec=1",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** What `enable-on-boot` did, or the unit it could not write for lack of permission. */
export type EnableResult =
  | { installed: true; unit: BootUnit }
  | { installed: false; unit: BootUnit; text: string; reason: string };

/**
 * Checks, in Globus's order, that systemd is there, the endpoint is not
 * running and has no unit yet; then that its credentials work (as Globus
 * logs in first, so that the service started at boot does not stop on a
 * missing token); then writes the environment file and the unit.
 */
export async function enableOnBoot(options: BootOptions): Promise<EnableResult> {
  const { name } = options;
  const ep = configuredEndpoint(options.userDir, name);
  const unitDir = unitDirOf(options.unitDir);
  if (!existsSync(unitDir)) {
    throw new ConduitError(
      "SYSTEMD_NOT_FOUND",
      `Systemd not found (no ${unitDir}): on-boot persistence is only implemented for systemd; see the README's "Installing as a service" for machines without it.`,
    );
  }
  if (readPidFile(ep).state === "running") {
    throw new ConduitError(
      "ENDPOINT_RUNNING",
      `Cannot enable on-boot persistence for an endpoint that is currently running; stop it with conduit-endpoint stop ${name} and try again.`,
    );
  }
  const unit = bootUnit(ep, unitDir);
  if (existsSync(unit.path)) {
    throw new ConduitError(
      "UNIT_EXISTS",
      `Cannot create the systemd unit ${unit.path}: a file with that name already exists; remove it first (conduit-endpoint disable-on-boot ${name} prints how).`,
    );
  }
  await checkCredentials(name);

  writeEnvFile(unit.envFile, bootEnvironment(options.userDir));
  const text = unitText(ep, unit, localUser());
  try {
    // `wx`: never overwrite a unit, also one created since the check above.
    writeFileSync(unit.path, text, { mode: 0o644, flag: "wx" });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") {
      throw new ConduitError(
        "UNIT_EXISTS",
        `Cannot create the systemd unit ${unit.path}: a file with that name already exists; remove it first (conduit-endpoint disable-on-boot ${name} prints how).`,
      );
    }
    if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
      return {
        installed: false,
        unit,
        text,
        reason: `Cannot write the systemd unit ${unit.path} (${code}; do you need to be root?); run conduit-endpoint enable-on-boot ${name} again with sudo, or install this unit there yourself:`,
      };
    }
    throw err;
  }
  return { installed: true, unit };
}

/** The seed's lines after a unit was installed, and where its environment is. */
export function enabledMessage(unit: BootUnit): string {
  return [
    "Systemd service installed. Run",
    `   sudo systemctl enable ${unit.service} --now`,
    "to enable the service and start the endpoint.",
    `(Its environment, with the endpoint's credentials if they came from the environment, is in ${unit.envFile}, mode 0600.)`,
    "",
  ].join("\n");
}

/** The seed's lines for removing the unit; removes nothing itself. */
export function disableOnBoot(options: BootOptions): string {
  const ep = configuredEndpoint(options.userDir, options.name);
  const unit = bootUnit(ep, unitDirOf(options.unitDir));
  if (!existsSync(unit.path)) {
    throw new ConduitError(
      "UNIT_NOT_FOUND",
      `There does not appear to be an existing systemd unit for endpoint ${options.name} (unit file ${unit.path} not found); nothing to disable.`,
    );
  }
  const svc = unit.service.replace(/\.service$/, "");
  const lines = [
    "Run the following to disable on-boot-persistence:",
    `   systemctl stop ${svc}`,
    `   systemctl disable ${svc}`,
    `   rm ${unit.path}`,
  ];
  if (existsSync(unit.envFile)) lines.push(`   rm ${unit.envFile}`);
  return `${lines.join("\n")}\n`;
}

/** `GET /v1/whoami` with the token `start` will use: a unit that would fail at every boot is not installed. */
async function checkCredentials(name: string): Promise<IdentityInfo> {
  const serviceUrl = paths.serviceUrl();
  const again = `then run conduit-endpoint enable-on-boot ${name} again`;
  // The order `start` uses (client pair, CONDUIT_TOKEN, the cached login, credentials.json); a login on a terminal.
  const credential = await obtainCredential({
    serviceUrl,
    loginCommand: "conduit-endpoint login",
    interactive: process.stdin.isTTY === true,
    io: terminalIo(process.stdout),
  });
  try {
    return await requestWithCredential<IdentityInfo>(credential, {
      method: "GET",
      url: `${serviceUrl}${API_PREFIX}/whoami`,
      signal: AbortSignal.timeout(CHECK_TIMEOUT_MS),
      urlSetting: "CONDUIT_SERVICE_URL",
      unreachable: (err) => {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        const why = cause?.code ?? cause?.message ?? (err as Error).message;
        return new ConduitError(
          "SERVICE_UNREACHABLE",
          `Cannot reach the Conduit service at ${serviceUrl} (${why}) to check the endpoint's credentials; start the service or point CONDUIT_SERVICE_URL at it, ${again}.`,
          { cause: err },
        );
      },
    });
  } catch (err) {
    if (!(err instanceof ConduitApiError)) throw err;
    throw new ConduitError(
      "UNAUTHORIZED",
      `The Conduit service at ${serviceUrl} refuses the endpoint's token (HTTP ${err.statusCode}: ${err.message}); log in again with conduit-endpoint login (or fix ${credential.origin}), ${again}.`,
      { cause: err },
    );
  }
}

/** What `start` needs at boot: the user dir, the service URL and token if they came from the environment, a PATH with this node. */
function bootEnvironment(userDir: string): Array<[string, string]> {
  const vars: Array<[string, string]> = [
    ["CONDUIT_USER_DIR", resolve(userDir)],
    ["PATH", `${dirname(process.execPath)}:${SYSTEM_PATH}`],
  ];
  for (const key of CARRIED_VARIABLES) {
    const value = process.env[key];
    if (value !== undefined && value !== "") vars.push([key, value]);
  }
  return vars;
}

/** Written aside and renamed: the file is 0600 from its first byte, and never half-written. */
function writeEnvFile(path: string, vars: ReadonlyArray<[string, string]>): void {
  const text = vars.map(([key, value]) => `${key}=${envValue(key, value)}\n`).join("");
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode: 0o600, flag: "wx" });
  renameSync(temp, path);
}

/** A value as systemd's environment-file parser reads it back unchanged. */
function envValue(key: string, value: string): string {
  if (/[\n\r]/.test(value)) {
    throw new ConduitError(
      "BAD_OPTION",
      `${key} contains a line break, which a systemd environment file cannot hold; set it to a single line.`,
    );
  }
  if (!value.includes("'")) return `'${value}'`;
  return `"${value.replace(/[\\"`$]/g, (c) => `\\${c}`)}"`;
}

/** `%` starts a systemd specifier in unit values. */
function specifierEscape(value: string): string {
  return value.replaceAll("%", "%%");
}

/** One word of `ExecStart=`: specifiers and `$` escaped, quoted when it holds spaces or quotes. */
function execWord(word: string): string {
  const escaped = specifierEscape(word).replaceAll("$", "$$$$");
  if (/^[A-Za-z0-9_@%+=:,./$-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}
