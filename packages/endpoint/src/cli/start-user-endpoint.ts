/**
 * `conduit-endpoint _start-user-endpoint <uep name>` (hidden): the UEP. Only
 * the MEP runs it, with the bootstrap on stdin (see bootstrap-types.ts).
 */
import { paths } from "@conduit/protocol/wire";
import type { ConfigChild } from "../user-endpoint/config-child.js";
import { runUserEndpoint } from "../user-endpoint/run.js";

/** Runs the UEP until it stops; resolves with its exit code (see UEP_EXIT). */
export async function startUserEndpoint(uepName: string, configChild?: ConfigChild): Promise<number> {
  return await runUserEndpoint({ stdin: process.stdin, uepName, userDir: paths.userDir(), configChild });
}
