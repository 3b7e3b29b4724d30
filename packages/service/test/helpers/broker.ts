/**
 * A RabbitMQ virtual host of its own for a test suite. Services consume the
 * shared `conduit.results` and `conduit.heartbeats` queues; two services with
 * different databases on one vhost would take (and drop) each other's results.
 * Created and deleted with rabbitmqctl (like a per-suite Postgres database),
 * by the same helper the end-to-end tests use.
 */
import amqp, { type Channel, type ChannelModel } from "amqplib";
import { createVhost as createTestVhost } from "../../../../scripts/local-stack.mjs";
import type { Throwaway } from "./databases.js";

export async function createVhost(): Promise<Throwaway<string>> {
  const vhost = await createTestVhost();
  return { value: vhost.url, dispose: vhost.dispose };
}

/** A plain amqplib channel, playing an endpoint (UEP, MEP) or an SDK in tests. */
export async function openChannel(url: string): Promise<{ channel: Channel; close(): Promise<void> }> {
  const connection: ChannelModel = await amqp.connect(url);
  const channel = await connection.createChannel();
  return {
    channel,
    close: async () => {
      await connection.close().catch(() => undefined);
    },
  };
}
