/** Shared fixtures for the end-to-end tests: a whole Conduit in a temp CONDUIT_USER_DIR. */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, Executor } from "@conduit/sdk";
import { type LocalStack, startLocalStack } from "../../scripts/local-stack.mjs";

export interface E2eStack extends LocalStack {
  userDir: string;
  token: string;
  client: Client;
  executor(userEndpointConfig?: Record<string, unknown>): Executor;
  dispose(): Promise<void>;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `conduit-${prefix}-`));
}

export function readToken(userDir: string): string {
  return (JSON.parse(readFileSync(join(userDir, "credentials.json"), "utf8")) as { token: string }).token;
}

/** Starts the service and one endpoint through the real CLIs. */
export async function withStack(options: { endpointName?: string; serviceArgs?: string[] } = {}): Promise<E2eStack> {
  const userDir = tempDir("e2e");
  const stack = await startLocalStack({ userDir, isolated: true, ...options });
  const token = readToken(userDir);
  const client = new Client({ serviceUrl: stack.serviceUrl, token });
  const executors: Executor[] = [];
  return {
    ...stack,
    userDir,
    token,
    client,
    executor(userEndpointConfig = {}) {
      const ex = new Executor({ endpointId: stack.endpointId, userEndpointConfig, client });
      executors.push(ex);
      return ex;
    },
    async dispose() {
      await Promise.allSettled(executors.map((ex) => ex.shutdown({ wait: false, cancelFutures: true })));
      await stack.stop();
      rmSync(userDir, { recursive: true, force: true });
    },
  };
}

/** Pids of live processes whose command line contains `needle`. */
export function pidsMatching(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmd.includes(needle)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}
