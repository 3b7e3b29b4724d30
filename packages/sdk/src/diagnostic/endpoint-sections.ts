/**
 * The sections about endpoints: one per endpoint directory (the most recently
 * modified `-r`, their config files and log tails, their UEPs' too), and with
 * `-e` a sample task sent to an endpoint through the service.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { TERMINAL_TASK_STATES } from "@conduit/protocol";
import { type Client, serializeArguments } from "../index.js";
import { describeError } from "./connectivity.js";
import type { DiagnosticOptions } from "./diagnostic-options.js";
import { collectFiles, findEndpointDirs } from "./endpoint-files.js";
import { SECTION_TIMEOUT_MS, type Section } from "./section.js";

/** One section per endpoint (the most recent `-r`), each file's last `-k` KB. */
export async function endpointSections(options: Readonly<DiagnosticOptions>): Promise<Section[]> {
  const all = await findEndpointDirs(options.configDir);
  const chosen = all.slice(0, options.recentEndpoints);
  const sections: Section[] = chosen.map((endpoint) => ({
    name: `endpoint ${endpoint.name}`,
    async run() {
      const parts = [`Directory: ${endpoint.dir}`, `Endpoint id: ${endpoint.endpointId ?? "(not registered yet)"}`];
      for (const dir of [endpoint.dir, ...endpoint.uepDirs]) {
        for (const file of await collectFiles(dir, options.logKb * 1024)) {
          const cut = file.truncated ? `, the last ${options.logKb} KB` : "";
          parts.push("", `--- ${file.path} (${file.size} bytes${cut}) ---`, file.text.trimEnd());
        }
      }
      return parts.join("\n");
    },
  }));
  if (all.length > chosen.length) {
    const skipped = all.slice(chosen.length).map((e) => e.name);
    sections.push({
      name: "other endpoints",
      run: async () => `Not collected (raise -r to include them): ${skipped.join(", ")}`,
    });
  }
  if (all.length === 0) {
    sections.push({ name: "endpoints", run: async () => `No endpoint directories in ${options.configDir}.` });
  }
  return sections;
}

/** How long `-e` waits for its task's result. */
const TASK_WAIT_MS = 15_000;

/** `-e`: register a sample function, send it to the endpoint, wait at most 15 s for the result. */
export function endpointTaskSection(endpointId: string): Section {
  return {
    name: `sample task on endpoint ${endpointId}`,
    // Registering and submitting come before the 15 s wait.
    timeoutMs: SECTION_TIMEOUT_MS + TASK_WAIT_MS,
    async run(context, signal) {
      if (typeof context.client === "string") return `Not tried: ${context.client}`;
      const lines: string[] = [];
      try {
        await sendSampleTask(context.client, endpointId, lines, signal);
      } catch (err) {
        // What was done before the failure (e.g. the function registered) stays in the report.
        lines.push(`--> Failed: ${describeError(err)}`);
      }
      return lines.join("\n");
    },
  };
}

async function sendSampleTask(client: Client, endpointId: string, lines: string[], signal: AbortSignal): Promise<void> {
  const hello = () => `Hello World from ${process.version}`;
  const functionId = await client.registerFunction(hello, { name: "conduit_diagnostic_hello" });
  lines.push(`Registered function ${functionId}`);
  const taskId = crypto.randomUUID();
  await client.submit(endpointId, {
    tasks: [{ task_id: taskId, function_id: functionId, args: serializeArguments([]) }],
  });
  lines.push(`Sent task ${taskId}`);
  const deadline = Date.now() + TASK_WAIT_MS;
  for (;;) {
    const task = await client.getTask(taskId);
    if (TERMINAL_TASK_STATES.has(task.state)) {
      try {
        lines.push(`Result: ${JSON.stringify(await client.getResult(taskId))}`);
      } catch (err) {
        lines.push(`Task ${task.state}: ${describeError(err)}`);
      }
      return;
    }
    if (Date.now() >= deadline || signal.aborted) {
      lines.push(`--> Timed out sending task, endpoint may be offline (state after 15 s: ${task.state})`);
      return;
    }
    await sleep(250);
  }
}
