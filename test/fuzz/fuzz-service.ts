/** The service the route fuzzers hammer: its own vhost and data folder, failures only in its log. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningService, type ServiceOptions, startService } from "@conduit/service";
import { createVhost } from "../../scripts/local-stack.mjs";

export interface FuzzService {
  service: RunningService;
  /** Closes the service, then removes its data folder and its vhost. */
  dispose(): Promise<void>;
}

/** Starts a throwaway service; `options` adds to (or overrides) the fuzzers' defaults. */
export async function startFuzzService(name: string, options: Partial<ServiceOptions> = {}): Promise<FuzzService> {
  const disposers: Array<() => Promise<void>> = [];
  const dispose = async () => {
    for (const step of disposers.reverse()) await step();
  };
  try {
    const vhost = await createVhost();
    disposers.push(() => vhost.dispose());
    const dataDir = mkdtempSync(join(tmpdir(), `conduit-${name}-`));
    disposers.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    // Only failures are logged: a 5xx found by a fuzzer prints its cause.
    const service = await startService({
      port: 0,
      dataDir,
      amqpUrl: vhost.url,
      writeCredentials: false,
      logLevel: "error",
      ...options,
    });
    disposers.push(() => service.close());
    return { service, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}
