/**
 * What the MEP hands a new UEP (see bootstrap-types.ts). The template, its
 * sibling files, the schema and user_environment.yaml are read afresh for
 * every UEP, so an admin's edit applies to the next UEP without a restart.
 * The MEP only reads them: rendering and validation happen in the UEP, after
 * privileges are dropped (multi-user), never with the MEP's rights.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { StartUepCommand } from "@conduit/protocol";
import type { ManagerConfig } from "../config/manager-config.js";
import { parseUserEnvironment } from "../config/user-environment.js";
import type { TemplateFiles, UepBootstrap } from "../user-endpoint/bootstrap-types.js";
import type { EndpointPaths } from "./endpoint-dir.js";

/** Siblings larger than this are not templates (the endpoint's own log lives there too). */
const MAX_SIBLING_BYTES = 256 * 1024;
/** Files of the endpoint directory that are state, never template material. */
const NOT_TEMPLATE_MATERIAL = /\.(log|pid|tmp)$|^(endpoint|ueps)\.json$/;

export interface BootstrapSources {
  ep: EndpointPaths;
  config: ManagerConfig;
  endpointId: string;
  amqpUrl: string;
}

/**
 * The bootstrap for `command`. A file that cannot be read becomes `template:
 * {error}`, so the UEP fails the submitter's tasks with that sentence.
 */
export function buildBootstrap(sources: BootstrapSources, command: StartUepCommand): UepBootstrap {
  const { ep, config } = sources;
  const problems: string[] = [];

  const templatePath = config.user_config_template_path ?? ep.template;
  let template: UepBootstrap["template"];
  try {
    template = readTemplate(templatePath);
  } catch (err) {
    problems.push(
      `The endpoint cannot read its user config template ${templatePath} (${errCode(err)}); ask the endpoint's administrator to restore it or fix user_config_template_path in ${ep.config}.`,
    );
    template = { error: "" };
  }

  const schemaPath = config.user_config_schema_path ?? ep.schema;
  let schema: string | null = null;
  try {
    schema = readFileSync(schemaPath, "utf8");
  } catch (err) {
    // No schema file means "no validation", as in the seed; any other failure is an error.
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      problems.push(
        `The endpoint cannot read its user config schema ${schemaPath} (${errCode(err)}); ask the endpoint's administrator to fix its permissions or user_config_schema_path in ${ep.config}.`,
      );
    }
  }

  let userEnvironment: Record<string, string> = {};
  const environmentPath = config.user_environment_path ?? ep.environment;
  let envText: string | undefined;
  try {
    envText = readFileSync(environmentPath, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      problems.push(
        `The endpoint cannot read ${environmentPath} (${errCode(err)}); ask the endpoint's administrator to fix its permissions or user_environment_path in ${ep.config}.`,
      );
    }
  }
  if (envText !== undefined) {
    try {
      userEnvironment = parseUserEnvironment(envText, environmentPath);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }

  if (problems.length > 0) template = { error: problems.join(" ") };

  return {
    v: 1,
    endpointId: sources.endpointId,
    uepId: command.uepId,
    uepName: command.uepName,
    mepPid: process.pid,
    amqpUrl: sources.amqpUrl,
    template,
    schema,
    userEnvironment,
    userConfig: command.userEndpointConfig ?? {},
    userRuntime: command.userRuntime ?? null,
    parentConfig: { ...config } as Record<string, unknown>,
    mappedIdentity: null,
    identity: command.identity,
    allowedFunctions: config.allowed_functions,
  };
}

/**
 * The template and every other regular file of its folder, by name, so that
 * `{% include %}` and `{% extends %}` find their siblings in the UEP.
 */
function readTemplate(path: string): TemplateFiles {
  const name = basename(path);
  const text = readFileSync(path, "utf8");
  const siblings: Record<string, string> = {};
  const folder = dirname(path);
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    if (entry.name === name || NOT_TEMPLATE_MATERIAL.test(entry.name)) continue;
    const file = join(folder, entry.name);
    try {
      // statSync follows symlinks: a link to a regular file counts as one.
      const st = statSync(file);
      if (!st.isFile() || st.size > MAX_SIBLING_BYTES) continue;
      siblings[entry.name] = readFileSync(file, "utf8");
    } catch {
      // An unreadable sibling only matters if the template includes it; the UEP then says which.
    }
  }
  return { name, text, siblings };
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}
