/**
 * The whole of Conduit for the Executor tests: the built `conduit-service`
 * (PGlite, a RabbitMQ vhost of its own) and one started `conduit-endpoint`, as
 * real child processes (scripts/local-stack.mjs), and a Client holding the
 * service's token. Run `npm run build` first.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Credentials } from "@conduit/protocol";
import { type LocalStack, startLocalStack } from "../../../scripts/local-stack.mjs";
import { Client } from "../src/client.js";

export interface TestStack {
  stack: LocalStack;
  endpointId: string;
  client: Client;
  stop(): Promise<void>;
}

export async function startTestStack(): Promise<TestStack> {
  const userDir = mkdtempSync(join(tmpdir(), "conduit-sdk-"));
  let stack: LocalStack;
  try {
    stack = await startLocalStack({ userDir, endpointName: "sdk_tests", isolated: true });
  } catch (err) {
    rmSync(userDir, { recursive: true, force: true });
    throw err;
  }
  const { token } = JSON.parse(readFileSync(join(userDir, "credentials.json"), "utf8")) as Credentials;
  return {
    stack,
    endpointId: stack.endpointId,
    client: new Client({ serviceUrl: stack.serviceUrl, token }),
    async stop() {
      try {
        await stack.stop();
      } finally {
        rmSync(userDir, { recursive: true, force: true });
      }
    },
  };
}
