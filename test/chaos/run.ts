/**
 * `npm run chaos`: the full chaos run. Per fault, 1,000 tasks of 100 ms on a
 * HighThroughputEngine with 4 workers; the fault strikes after the first 100
 * results. Prints per fault: submitted, succeeded, failed with a cause,
 * re-run, lost, delivered twice, and the time from the fault to the next
 * result; exits 1 when a task was lost or delivered twice, a failure had no
 * cause, or a fault did not take effect.
 *
 *   npm run chaos [-- --tasks 1000 --only "UEP kill -9,service replica kill -9"]
 */
import { parseArgs } from "node:util";
import { createPostgresDatabase } from "../../packages/service/test/helpers/databases.js";
import {
  brokerRestart,
  type ChaosStack,
  type ChaosStackOptions,
  type Fault,
  type FaultReport,
  formatReports,
  mepKill,
  postgresRestart,
  proxyDrop,
  proxyReset,
  replicaKill,
  runFault,
  startChaosStack,
  uepKill,
  workerKill,
} from "./harness.js";
import {
  startThrowawayPostgres,
  startThrowawayRabbitMQ,
  type ThrowawayRabbitMQ,
  type ThrowawayServer,
} from "./throwaway.js";

const { values: args } = parseArgs({
  options: {
    tasks: { type: "string", default: "1000" },
    "fault-after": { type: "string", default: "100" },
    only: { type: "string" },
  },
});
const tasks = Number(args.tasks);
const faultAfter = Number(args["fault-after"]);
const only = args.only?.split(",").map((s) => s.trim().toLowerCase());
const wanted = (name: string) => only === undefined || only.includes(name.toLowerCase());
const log = (line: string) => process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/** AMQP heartbeat for the endpoint and SDK links: a silent drop is seen within ~2 heartbeats (6 s). */
const HEARTBEAT_S = 3;

interface Group {
  title: string;
  server?: () => Promise<ThrowawayServer & { url?: string }>;
  options: (server: (ThrowawayServer & { url?: string }) | undefined) => ChaosStackOptions;
  faults: (server: (ThrowawayServer & { url?: string }) | undefined) => Fault[];
}

const groups: Group[] = [
  {
    title: "the local RabbitMQ (own vhost), the service on PGlite",
    options: () => ({ heartbeat: HEARTBEAT_S }),
    faults: () => [workerKill(), uepKill(), mepKill(), proxyReset(), proxyDrop()],
  },
  {
    title: "a throwaway RabbitMQ node",
    server: () => startThrowawayRabbitMQ({ management: true }),
    options: (rabbit) => ({
      broker: { port: rabbit?.port ?? 0, managementPort: (rabbit as ThrowawayRabbitMQ | undefined)?.managementPort },
      heartbeat: HEARTBEAT_S,
    }),
    faults: (rabbit) => (rabbit ? [brokerRestart(rabbit)] : []),
  },
  {
    title: "the service on a throwaway Postgres",
    server: startThrowawayPostgres,
    options: (pg) => ({ serviceArgs: ["--database-url", pg?.url ?? ""], heartbeat: HEARTBEAT_S }),
    faults: (pg) => (pg ? [postgresRestart(pg)] : []),
  },
  {
    title: "two service replicas on a new database of the local Postgres",
    server: async () => {
      const database = await createPostgresDatabase();
      return { port: 5432, url: database.value, restart: async () => {}, stop: () => database.dispose() };
    },
    options: (db) => ({ replicas: 2, serviceArgs: ["--database-url", db?.url ?? ""], heartbeat: HEARTBEAT_S }),
    faults: () => [replicaKill()],
  },
];

const reports: FaultReport[] = [];
const problems: string[] = [];
/** What Ctrl+C must take down: the current stack and throwaway server. */
let cleanup: (() => Promise<void>) | undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the stack ...`);
    void (cleanup?.() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}
for (const group of groups) {
  // Fault names are known before the servers start: make throwaway faults with a stand-in to filter.
  const names = group.faults({ port: 0, restart: async () => {}, stop: async () => {} }).map((f) => f.name);
  if (!names.some(wanted)) continue;
  log(`Starting ${group.title} ...`);
  const server = await group.server?.();
  let stack: ChaosStack | undefined;
  cleanup = async () => {
    await stack?.dispose();
    await server?.stop();
  };
  try {
    stack = await startChaosStack(group.options(server));
    for (const fault of group.faults(server).filter((f) => wanted(f.name))) {
      log(`${fault.name}: ${tasks} tasks ...`);
      const report = await runFault(stack, fault, { tasks, faultAfter, log, timeoutMs: 600_000 });
      reports.push(report);
      log(formatReports([report]));
      if (report.lost) problems.push(`${fault.name}: ${report.lost} task(s) lost`);
      if (report.twice) problems.push(`${fault.name}: ${report.twice} task(s) delivered twice`);
      if (report.failedWithoutCause)
        problems.push(`${fault.name}: ${report.failedWithoutCause} failure(s) without a cause`);
      if (report.mismatched)
        problems.push(`${fault.name}: ${report.mismatched} task(s) whose service state disagrees with the Executor`);
      if (report.missed) problems.push(`${fault.name}: the fault did not take effect (${report.missed})`);
    }
  } catch (err) {
    problems.push(`${group.title}: ${(err as Error).message}`);
    log(`${group.title}: ${(err as Error).stack ?? err}`);
  } finally {
    await cleanup();
    cleanup = undefined;
  }
}

console.log(
  `Chaos run: ${tasks} tasks of 100 ms per fault, HighThroughputEngine with 4 workers, fault after ${faultAfter} results.`,
);
console.log(formatReports(reports));
if (problems.length > 0) {
  console.log(`\n${problems.length} problem(s):\n${problems.map((p) => `- ${p}`).join("\n")}`);
  process.exitCode = 1;
} else {
  console.log("\nNo task lost, none delivered twice, every failure with its cause.");
}
