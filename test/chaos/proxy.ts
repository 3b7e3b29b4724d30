/**
 * A TCP proxy the chaos suite puts between the endpoint and RabbitMQ.
 * `reset()` cuts every connection it carries (both sides see a reset);
 * `drop()` silently stops forwarding on the connections open now (a dead
 * network path: no FIN, no RST) while new connections pass as usual, so only
 * AMQP heartbeats can tell the endpoint that its link is gone.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export interface ChaosProxy {
  port: number;
  /** Connections accepted so far (a reconnect adds one). */
  readonly connections: number;
  reset(): void;
  drop(): void;
  close(): Promise<void>;
}

export async function startChaosProxy(target: { host: string; port: number }): Promise<ChaosProxy> {
  const pairs = new Set<[Socket, Socket]>();
  const blackholed = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((client) => {
    connections++;
    const upstream = connect({ host: target.host, port: target.port, noDelay: true });
    client.setNoDelay(true);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of pair) {
      socket.on("error", close);
      socket.on("close", close);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the proxy has no TCP address");
  const reset = () => {
    for (const pair of [...pairs]) {
      pairs.delete(pair);
      for (const socket of pair) socket.resetAndDestroy();
    }
    for (const socket of blackholed) socket.resetAndDestroy();
    blackholed.clear();
  };
  return {
    port: address.port,
    get connections() {
      return connections;
    },
    reset,
    drop() {
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        const [client, upstream] = pair;
        client.unpipe(upstream);
        upstream.unpipe(client);
        for (const socket of pair) {
          socket.removeAllListeners("close");
          socket.removeAllListeners("error");
          socket.on("error", () => {});
          // Read and discard: the peer's writes vanish, nothing comes back.
          socket.removeAllListeners("data");
          socket.on("data", () => {});
          blackholed.add(socket);
        }
      }
    },
    async close() {
      reset();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
