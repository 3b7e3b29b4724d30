/** Shared by the config.render-* tests: a render input for a template text, with overrides, and its outcome. */
import { expect } from "vitest";
import { type RenderInput, renderUserConfigTemplate } from "../src/config/render.js";
import { ConfigError } from "../src/errors.js";

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

/** The template `text` rendered with the user's variables `userConfig`. */
export function render(text: string, userConfig: Record<string, unknown> = {}): string {
  return renderUserConfigTemplate(input(text, { userConfig }));
}

export interface FailureOptions {
  userConfig?: Record<string, unknown>;
  /** The other files of the template's folder, for include, extends and import. */
  siblings?: Record<string, string>;
}

/** The ConfigError rendering `text` fails with; the test fails if it renders. */
export function renderFailure(text: string, { userConfig = {}, siblings = {} }: FailureOptions = {}): ConfigError {
  try {
    renderUserConfigTemplate(input(text, { userConfig, template: { name: NAME, text, siblings } }));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected ${JSON.stringify(text)} to fail`);
}
