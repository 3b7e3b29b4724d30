/**
 * @conduit/endpoint: the `conduit-endpoint` command line and what a program
 * needs to drive it.
 *
 * ```ts
 * import { listEndpoints, runCli } from "@conduit/endpoint";
 * for (const ep of listEndpoints(process.env.CONDUIT_USER_DIR ?? `${process.env.HOME}/.conduit`))
 *   console.log(ep.name, ep.state, ep.endpointId ?? "(not registered yet)");
 * process.exitCode = await runCli(["node", "conduit-endpoint", "list"]);
 * ```
 */

export { runCli } from "./cli/program.js";
export type { MappedIdentity } from "./config/render.js";
export type { RenderTemplateFileOptions } from "./config/render-template-file.js";
export { renderTemplateFile } from "./config/render-template-file.js";
export type { RenderErrorKind } from "./errors.js";
export { ConfigError } from "./errors.js";
export type { EndpointListing, EndpointState } from "./manager/endpoint-state.js";
export { listEndpoints } from "./manager/endpoint-state.js";
