/**
 * Entry point of the `conduit-endpoint` command (the bin shim imports this
 * file). Exits explicitly: an attached `start` ends when its MEP has stopped.
 *
 * `_start-user-endpoint <uep name>` (how the MEP starts a UEP) goes straight to
 * the UEP: it needs none of the other commands' modules (commander, the
 * manager, its metrics), whose loading a new UEP's cold start would pay.
 */
const [, , command, uepName, ...rest] = process.argv;
if (command === "_start-user-endpoint" && uepName !== undefined && !uepName.startsWith("-") && rest.length === 0) {
  const { startUserEndpoint } = await import("./start-user-endpoint.js");
  process.exit(await startUserEndpoint(uepName));
}
const { runCli } = await import("./program.js");
process.exit(await runCli(process.argv));
