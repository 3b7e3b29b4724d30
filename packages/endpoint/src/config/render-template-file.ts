/**
 * The admin's dry run: renders a user config template from disk exactly as a
 * UEP would, reading the template, the files it names and the schema with the
 * MEP's own reader (template-files.ts) and rendering with the UEP's own
 * pipeline (render.ts). Behind `conduit-endpoint render`.
 */
import { dirname, join } from "node:path";
import type { UserRuntime } from "@conduit/protocol/wire";
import { ConfigError } from "../errors.js";
import { ENDPOINT_FILES } from "./defaults.js";
import { type MappedIdentity, renderUserConfigTemplate } from "./render.js";
import { readSchemaText, readTemplateFiles, TemplateFileError, type TemplateFiles } from "./template-files.js";

export interface RenderTemplateFileOptions {
  /** The template, e.g. `~/.conduit/my_ep/user_config_template.yaml.j2`; the files it names sit beside it. */
  templatePath: string;
  /** Files never sent, even when the template names them (see `identityMappingFiles`). @default [] */
  secretFiles?: readonly string[];
  /** The submitter's userEndpointConfig. */
  variables: Record<string, unknown>;
  /** What the SDK sends as `user_runtime`. @default null (the template sees `{}`) */
  userRuntime?: UserRuntime | null;
  /** `mapped_identity` (multi-user). @default null */
  mappedIdentity?: MappedIdentity | null;
  /** The MEP's config.yaml, parsed. @default {} */
  parentConfig?: Record<string, unknown>;
  /**
   * The JSON schema the variables must meet; null means no schema. A file that
   * does not exist means no schema too, as for the MEP.
   * @default user_config_schema.json beside the template
   */
  schemaPath?: string | null;
}

/**
 * The rendered YAML text. Throws a ConfigError whose `kind` names the step that
 * failed; `template-not-found` when the template cannot be read, `template-file`
 * when it or a file it names may not be sent to a UEP.
 */
export async function renderTemplateFile(options: RenderTemplateFileOptions): Promise<string> {
  const { templatePath } = options;
  let template: TemplateFiles;
  try {
    template = readTemplateFiles(templatePath, { secret: options.secretFiles });
  } catch (err) {
    if (err instanceof TemplateFileError) throw err;
    throw new ConfigError(
      `The user config template ${templatePath} cannot be read (${errCode(err)}); restore it, or fix the path (user_config_template_path in the endpoint's config.yaml).`,
      { cause: err, kind: "template-not-found" },
    );
  }
  const schemaPath =
    options.schemaPath === undefined ? join(dirname(templatePath), ENDPOINT_FILES.schema) : options.schemaPath;
  let schema: string | null = null;
  if (schemaPath !== null) {
    try {
      schema = readSchemaText(schemaPath);
    } catch (err) {
      throw new ConfigError(
        `The user config schema ${schemaPath} cannot be read (${errCode(err)}); fix its permissions, or the path (user_config_schema_path in the endpoint's config.yaml).`,
        { cause: err, kind: "schema" },
      );
    }
  }
  return renderUserConfigTemplate({
    template,
    schema,
    userConfig: options.variables,
    userRuntime: options.userRuntime ?? null,
    parentConfig: options.parentConfig ?? {},
    mappedIdentity: options.mappedIdentity ?? null,
  });
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}
