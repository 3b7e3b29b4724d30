/**
 * A TCP proxy a test controls, put between a client and a server (the SDK or
 * the endpoint, and RabbitMQ): `reset()` cuts every connection it carries
 * (both sides see a reset), `pause()` stops forwarding bytes either way until
 * `resume()`, and `drop()` silently stops forwarding on the connections open
 * now (a dead network path: no FIN, no RST) while new connections pass as
 * usual, so only heartbeats can tell a client that its link is gone.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export interface TcpProxy {
  port: number;
  /** Connections accepted so far (a reconnect adds one). */
  readonly connections: number;
  /** Connections open now. */
  readonly open: number;
  reset(): void;
  pause(): void;
  resume(): void;
  drop(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  /** Sockets of dropped connections: read and discarded until reset() or close(). */
  const blackholed = new Set<Socket>();
  let paused = false;
  let connections = 0;
  const server: Server = createServer((client) => {
    connections++;
    const upstream = connect({ host: target.host, port: target.port, noDelay: true });
    client.setNoDelay(true);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    if (!paused) connectPair(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of pair) {
      socket.on("error", drop);
      socket.on("close", drop);
    }
  });
  const reset = () => {
    for (const pair of [...pairs]) {
      pairs.delete(pair);
      for (const socket of pair) socket.resetAndDestroy();
    }
    for (const socket of blackholed) socket.resetAndDestroy();
    blackholed.clear();
  };
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the proxy has no TCP address");
  return {
    port: address.port,
    get connections() {
      return connections;
    },
    get open() {
      return pairs.size;
    },
    reset,
    pause() {
      paused = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    resume() {
      paused = false;
      for (const pair of pairs) connectPair(pair);
    },
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

/** Forwards bytes both ways (piping resumes a paused socket). */
function connectPair([client, upstream]: [Socket, Socket]): void {
  client.pipe(upstream);
  upstream.pipe(client);
}
