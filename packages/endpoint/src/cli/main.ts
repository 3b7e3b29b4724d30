/**
 * Entry point of the `conduit-endpoint` command (the bin shim imports this
 * file). Exits explicitly: an attached `start` ends when its MEP has stopped.
 */
import { runCli } from "./program.js";

process.exit(await runCli(process.argv));
