/**
 * `conduit-endpoint delete <name> [--yes]`: removes a stopped endpoint's
 * directory and the directories of its UEPs (their logs). Refuses while the
 * endpoint runs.
 */
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline/promises";
import { ConduitError } from "@conduit/protocol/wire";
import { configuredEndpoint, readEndpointId, readPidFile, UEP_DIR_PREFIX } from "../manager/endpoint-dir.js";
import { killLeftoverUeps } from "../manager/uep-records.js";

export interface DeleteOptions {
  userDir: string;
  name: string;
  /** Skip the confirmation prompt. */
  yes: boolean;
  print: (line: string) => void;
}

/** Resolves false when the user declined at the prompt. */
export async function deleteEndpoint(options: DeleteOptions): Promise<boolean> {
  const { userDir, name, print } = options;
  const ep = configuredEndpoint(userDir, name);
  const status = readPidFile(ep);
  if (status.state === "running") {
    throw new ConduitError(
      "ENDPOINT_RUNNING",
      `Endpoint ${name} is running (pid ${status.pid}); stop it first with: conduit-endpoint stop ${name}`,
    );
  }
  if (!options.yes) {
    if (!process.stdin.isTTY) {
      throw new ConduitError(
        "CONFIRMATION_NEEDED",
        `Deleting endpoint ${name} removes ${ep.dir} and cannot be undone; pass --yes to confirm.`,
      );
    }
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question(`Delete endpoint ${name} and everything in ${ep.dir}? [y/N] `);
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) {
      print("Not deleted.");
      return false;
    }
  }
  await killLeftoverUeps(ep.uepRecords);
  let endpointId: string | undefined;
  try {
    endpointId = readEndpointId(ep);
  } catch {
    endpointId = undefined;
  }
  rmSync(ep.dir, { recursive: true, force: true });
  if (endpointId) {
    const prefix = `${UEP_DIR_PREFIX}${endpointId}.`;
    for (const entry of readdirSync(userDir)) {
      if (entry.startsWith(prefix)) rmSync(join(userDir, entry), { recursive: true, force: true });
    }
  }
  print(`> Endpoint <${name}> has been deleted (removed ${ep.dir})`);
  return true;
}
