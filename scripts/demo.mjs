#!/usr/bin/env node
/**
 * `npm run demo`: a first function end to end on this machine. Starts the web
 * service on its embedded store (PGlite) and the local RabbitMQ (as root it
 * enables the management plugin the service makes its scoped broker accounts
 * through; as anyone else it stops at once with the command), configures and
 * starts an endpoint in a temporary CONDUIT_USER_DIR, runs add(30, 12) through
 * the Executor (then again with another userEndpointConfig, which starts a
 * second user endpoint beside the first), and shuts everything down.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalStack } from "./local-stack.mjs";

const userDir = mkdtempSync(join(tmpdir(), "conduit-demo-"));
process.env.CONDUIT_USER_DIR = userDir;
const log = (line) => console.error(`[demo] ${line}`);

let stack;
let exitCode = 0;
try {
  // As root, the demo's service gets a RabbitMQ vhost of its own, so a Conduit
  // already running on this broker's default vhost is left alone.
  stack = await startLocalStack({ userDir, endpointName: "my_endpoint", isolated: process.getuid?.() === 0, log });
  log(`Endpoint ${stack.endpointId} is running; submitting add(30, 12) ...`);
  const { Executor } = await import("@conduit/sdk");
  const add = (a, b) => a + b;
  const ex = new Executor({ endpointId: stack.endpointId, userEndpointConfig: { worker_init: "" } });
  try {
    console.log(await ex.submit(add, 30, 12).result());
    ex.userEndpointConfig.worker_init = "true"; // a second user endpoint process, beside the first
    console.log(await ex.submit(add, 21, 21).result());
  } finally {
    await ex.shutdown();
  }
} catch (err) {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  exitCode = 1;
} finally {
  await stack?.stop();
  rmSync(userDir, { recursive: true, force: true });
  log(exitCode === 0 ? "Everything stopped cleanly." : "Stopped.");
}
process.exit(exitCode);
