/**
 * The UEP's config child (see config-child.ts): receives one RenderInput on
 * its IPC channel, renders and validates it exactly as the UEP did in process,
 * answers with a ConfigChildReply and exits. It runs as the UEP's user, with
 * the UEP's environment: nothing here runs with more privilege than the UEP.
 */
import { parse as parseYaml } from "yaml";
import { type RenderInput, renderUserConfigTemplate } from "../config/render.js";
import { parseUserEndpointConfig } from "../config/user-endpoint-config.js";
import type { ConfigChildReply } from "./config-child.js";

function configOf(input: RenderInput): ConfigChildReply {
  let rendered: string;
  try {
    rendered = renderUserConfigTemplate(input);
  } catch (err) {
    return { debug: false, error: (err as Error).message };
  }
  let debug = false;
  try {
    // Read leniently before validation, so a config that fails validation is logged too.
    debug = (parseYaml(rendered) as { debug?: unknown } | null)?.debug === true;
  } catch {
    // Not YAML: parseUserEndpointConfig says so.
  }
  try {
    return { rendered, debug, config: parseUserEndpointConfig(rendered) };
  } catch (err) {
    return { rendered, debug, error: (err as Error).message };
  }
}

// The UEP gone (its channel closed) before it was answered: nothing is left to do.
process.once("disconnect", () => process.exit(0));
process.once("message", (input: RenderInput) => {
  const reply = configOf(input);
  process.send?.(reply, undefined, undefined, () => process.disconnect());
});
