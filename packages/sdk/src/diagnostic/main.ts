/**
 * Entry point of the `conduit-diagnostic` command (the bin shim imports this
 * file). Exits explicitly: a section cut off by its timeout may still hold a
 * socket open.
 */
import { runDiagnostic } from "./run.js";

process.exit(await runDiagnostic(process.argv.slice(2)));
