/** BullMQ's worker process for the bench: `node bullmq-worker.mjs QUEUE CONCURRENCY`; prints "ready". */
import { Worker } from "bullmq";

const [queueName, concurrency] = process.argv.slice(2);
const connection = { host: "127.0.0.1", port: Number(process.env.BENCH_REDIS_PORT ?? 6379) };
const worker = new Worker(
  queueName,
  async (job) => {
    if (job.name === "sleep") await new Promise((resolve) => setTimeout(resolve, job.data.ms));
    return null;
  },
  { connection, concurrency: Number(concurrency) },
);
await worker.waitUntilReady();
process.stdout.write("ready\n");
process.on("SIGTERM", async () => {
  await worker.close();
  process.exit(0);
});
