/** Shared by the config.render-* tests: a render input for a template text, with overrides. */
import type { RenderInput } from "../src/config/render.js";

export const NAME = "user_config_template.yaml.j2";

export function input(text: string, overrides: Partial<RenderInput> = {}): RenderInput {
  return {
    template: { name: NAME, text, siblings: {} },
    schema: null,
    userConfig: {},
    userRuntime: null,
    parentConfig: {},
    mappedIdentity: null,
    ...overrides,
  };
}
