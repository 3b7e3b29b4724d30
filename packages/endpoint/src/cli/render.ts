/**
 * `conduit-endpoint render <name> --vars '<json>' [--user <u>] [--runtime '<json>']`:
 * the admin's dry run. Renders the endpoint's user config template as the MEP
 * and UEP would (config.yaml's template and schema paths, the schema check,
 * the same pipeline) and prints the YAML, or the error prefixed by the step
 * that failed, e.g. `Error (schema): …`.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { ConduitError, type UserRuntime } from "@conduit/protocol/wire";
import { RENDERED_CONFIG_SOURCE } from "../config/defaults.js";
import { parseManagerConfig } from "../config/manager-config.js";
import type { MappedIdentity } from "../config/render.js";
import { renderTemplateFile } from "../config/render-template-file.js";
import { identityMappingFiles } from "../config/template-files.js";
import { parseUserEndpointConfig } from "../config/user-endpoint-config.js";
import { HA_ENGINE_REFUSAL, isHighAssuranceCompliant } from "../engines/high-assurance.js";
import { createEngine } from "../engines/registry.js";
import { SerializerAllowlist } from "../engines/serializer-allowlist.js";
import { ConfigError } from "../errors.js";
import { configuredEndpoint } from "../manager/endpoint-dir.js";

export interface RenderCommandOptions {
  userDir: string;
  name: string;
  /** `--vars`: JSON text of the userEndpointConfig. @default "{}" */
  vars?: string;
  /** `--user`: a local account whose details fill `mapped_identity.local`. */
  user?: string;
  /** `--runtime`: JSON text of `user_runtime`. */
  runtime?: string;
  print: (text: string) => void;
  printError: (line: string) => void;
}

/**
 * Prints the rendered YAML and resolves 0, or prints `Error (<kind>): <message>`
 * and resolves 1 for a render error. Any other error (no such endpoint, bad
 * option, bad config.yaml) is thrown for the CLI to print.
 */
export async function renderCommand(options: RenderCommandOptions): Promise<number> {
  const variables = parseJsonObject(options.vars ?? "{}", "--vars", `'{"worker_init": "source ~/env.sh"}'`);
  // The SDK's fields, or any subset: the template sees what is given, as it would from an older SDK.
  const userRuntime =
    options.runtime === undefined
      ? null
      : (parseJsonObject(
          options.runtime,
          "--runtime",
          `'{"node_version": "v22.0.0", "platform": "linux"}'`,
        ) as unknown as UserRuntime);
  const mappedIdentity: MappedIdentity | null =
    options.user === undefined ? null : { local: lookupLocalUser(options.user), conduit: { id: "" } };

  const ep = configuredEndpoint(options.userDir, options.name);
  const config = parseManagerConfig(readFileSync(ep.config, "utf8"), ep.config);
  try {
    const text = await renderTemplateFile({
      templatePath: config.user_config_template_path ?? ep.template,
      schemaPath: config.user_config_schema_path ?? ep.schema,
      secretFiles: identityMappingFiles(ep.dir, config),
      variables,
      userRuntime,
      mappedIdentity,
      parentConfig: { ...config },
    });
    const problem = configProblem(text, config.high_assurance);
    if (problem) {
      options.printError(`Error (config): ${problem}`);
      return 1;
    }
    options.print(`${text}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError) || err.kind === undefined) throw err;
    options.printError(`Error (${err.kind}): ${err.message}`);
    return 1;
  }
}

/**
 * What the UEP would refuse in the rendered text before it runs anything:
 * not YAML, unknown keys, a bad engine block or engine option, a bad
 * `allowed_serializers`, an engine a High-Assurance endpoint may not run.
 * Undefined when the UEP would accept it.
 */
function configProblem(text: string, highAssurance: boolean): string | undefined {
  try {
    const config = parseUserEndpointConfig(text);
    createEngine(config.engine, "engine", RENDERED_CONFIG_SOURCE);
    if (highAssurance && !isHighAssuranceCompliant(config.engine)) return HA_ENGINE_REFUSAL;
    SerializerAllowlist.fromEngineConfig(config.engine);
    return undefined;
  } catch (err) {
    if (err instanceof ConduitError) return err.message;
    throw err;
  }
}

function parseJsonObject(text: string, option: string, example: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConduitError(
      "BAD_OPTION",
      `${option} is not valid JSON (${(err as Error).message}); pass a JSON object in single quotes, e.g. ${option} ${example}.`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConduitError(
      "BAD_OPTION",
      `${option} must be a JSON object of names to values, not ${Array.isArray(value) ? "a list" : JSON.stringify(value)}; pass e.g. ${option} ${example}.`,
    );
  }
  return value as Record<string, unknown>;
}

/** `mapped_identity.local` of a local account, from `getent passwd` and `id -G`. */
function lookupLocalUser(user: string): MappedIdentity["local"] {
  const unknown = () =>
    new ConduitError(
      "UNKNOWN_USER",
      `There is no local user named ${JSON.stringify(user)} on this machine; pass an existing account to --user (see getent passwd).`,
    );
  // A leading "-" would read as an option of getent or id.
  if (user === "" || user.startsWith("-")) throw unknown();
  let entry: string;
  try {
    entry = execFileSync("getent", ["passwd", user], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch (err) {
    // getent exits 2 for "no such entry".
    if ((err as { status?: number }).status === 2) throw unknown();
    throw new ConduitError(
      "USER_LOOKUP_FAILED",
      `Could not look up the local user ${JSON.stringify(user)} with getent (${(err as Error).message}); check that getent works on this machine.`,
    );
  }
  const fields = entry.split("\n")[0].split(":");
  if (fields.length < 7) throw unknown();
  const [uname, , uid, gid, gecos, dir, shell] = fields;
  const groupsText = execFileSync("id", ["-G", uname], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  return {
    uname,
    uid: Number(uid),
    gid: Number(gid),
    groups: groupsText.trim().split(/\s+/).filter(Boolean).map(Number),
    gecos,
    shell,
    dir,
  };
}
