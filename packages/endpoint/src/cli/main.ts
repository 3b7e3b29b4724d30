/**
 * Entry point of the `conduit-endpoint` command (the bin shim imports this
 * file). Exits explicitly: an attached `start` ends when its MEP has stopped.
 *
 * `_start-user-endpoint <uep name>` (how the MEP starts a UEP) goes straight to
 * the UEP: it needs none of the other commands' modules (commander, the
 * manager, its metrics), whose loading a new UEP's cold start would pay.
 */
import { setFlagsFromString } from "node:v8";

const [, , command, uepName, ...rest] = process.argv;
if (command === "_start-user-endpoint" && uepName !== undefined && !uepName.startsWith("-") && rest.length === 0) {
  // The config child starts first: its start and module loading overlap the UEP's (figure (e)).
  const { startConfigChild } = await import("../user-endpoint/config-child.js");
  const configChild = startConfigChild();
  const { startUserEndpoint } = await import("./start-user-endpoint.js");
  process.exit(await startUserEndpoint(uepName, configChild));
}
if (command === "start" || command === "restart") keepYoungGenerationSmall();
const { runCli } = await import("./program.js");
process.exit(await runCli(process.argv));

/**
 * The MEP idles for days and allocates little, but V8 grows a young generation
 * to 2 × 16 MiB on the garbage of its start and never gives it back: half of an
 * idle MEP's memory (README, issue 23's (d)). A growth factor of 1 keeps it at
 * its initial 2 × 1 MiB, as `node --max-semi-space-size=1` would, without the
 * administrator starting node by hand; unlike that flag, this one V8 reads at
 * run time, and it must be set before the modules load. Flags the administrator
 * gave for the young generation (command line or NODE_OPTIONS) win.
 */
function keepYoungGenerationSmall(): void {
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ""].some((flag) => flag.includes("semi-space"));
  if (!given) setFlagsFromString("--semi-space-growth-factor=1");
}
