/**
 * What the MEP hands a new UEP (see bootstrap-types.ts). The template, the
 * files it names (config/template-files.ts), the schema and user_environment.yaml are read afresh for
 * every UEP, so an admin's edit applies to the next UEP without a restart.
 * The MEP only reads them: rendering and validation happen in the UEP, after
 * privileges are dropped (multi-user), never with the MEP's rights.
 */
import { readFileSync } from "node:fs";
import type { StartUepCommand } from "@conduit/protocol/wire";
import type { ManagerConfig } from "../config/manager-config.js";
import type { MappedIdentity } from "../config/render.js";
import {
  identityMappingFiles,
  readSchemaText,
  readTemplateFiles,
  TemplateFileError,
} from "../config/template-files.js";
import { parseUserEnvironment } from "../config/user-environment.js";
import type { UepBootstrap } from "../user-endpoint/bootstrap-types.js";
import type { EndpointPaths } from "./endpoint-dir.js";

export interface BootstrapSources {
  ep: EndpointPaths;
  config: ManagerConfig;
  endpointId: string;
  amqpUrl: string;
  /** The RabbitMQ user the service publishes as: the UEP takes tasks and cancels only from it. */
  serviceUser: string;
}

/**
 * The bootstrap for `command`. A file that cannot be read becomes `template:
 * {error}`, so the UEP fails the submitter's tasks with that sentence.
 */
export function buildBootstrap(
  sources: BootstrapSources,
  command: StartUepCommand,
  mappedIdentity: MappedIdentity | null = null,
): UepBootstrap {
  const { ep, config } = sources;
  const problems: string[] = [];

  const templatePath = config.user_config_template_path ?? ep.template;
  let template: UepBootstrap["template"];
  try {
    template = readTemplateFiles(templatePath, { secret: identityMappingFiles(ep.dir, config) });
  } catch (err) {
    if (err instanceof TemplateFileError) problems.push(err.message);
    else
      problems.push(
        `The endpoint cannot read its user config template ${templatePath} (${errCode(err)}); ask the endpoint's administrator to restore it or fix user_config_template_path in ${ep.config}.`,
      );
    template = { error: "" };
  }

  const schemaPath = config.user_config_schema_path ?? ep.schema;
  let schema: string | null = null;
  try {
    schema = readSchemaText(schemaPath);
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
    // The UEP's own scoped account when the service made one, else the MEP's.
    amqpUrl: command.amqpUrl ?? sources.amqpUrl,
    serviceUser: sources.serviceUser,
    template,
    schema,
    userEnvironment,
    userConfig: command.userEndpointConfig ?? {},
    userRuntime: command.userRuntime ?? null,
    parentConfig: { ...config } as Record<string, unknown>,
    mappedIdentity,
    identity: command.identity,
    allowedFunctions: config.allowed_functions,
  };
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}
