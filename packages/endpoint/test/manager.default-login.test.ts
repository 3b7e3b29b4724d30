/**
 * The multi-user MEP's check for RabbitMQ's default guest/guest login, against
 * the shared broker (where guest works from loopback): over the management API
 * alone (the AMQP port closed), over AMQP alone (through a TCP proxy on an
 * address the management API does not listen on), and neither. The refusal at
 * `start` itself is tested in multi-user.identity-drop.test.ts.
 */
import net from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { acceptsDefaultLogin } from "../src/manager/default-login.js";

const servers: net.Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

/** A TCP proxy on [::1] to the broker's AMQP port (RabbitMQ listens on 127.0.0.1, its management API on 0.0.0.0). */
async function amqpProxyOnIpv6(): Promise<number> {
  const server = net.createServer((client) => {
    const upstream = net.connect(5672, "127.0.0.1");
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "::1", resolve));
  return (server.address() as net.AddressInfo).port;
}

describe("acceptsDefaultLogin", () => {
  it("finds guest/guest on the management API when AMQP does not answer", async () => {
    // 127.0.0.3 is loopback: the management API answers there, the AMQP listener (127.0.0.1 only) does not.
    expect(await acceptsDefaultLogin("amqp://endpoint:secret@127.0.0.3:5672/")).toBe("127.0.0.3");
  });

  it("finds guest/guest over AMQP when the management API does not answer", async () => {
    const port = await amqpProxyOnIpv6();
    expect(await acceptsDefaultLogin(`amqp://endpoint:secret@[::1]:${port}/`)).toBe("[::1]");
  });

  it("finds nothing where neither answers", async () => {
    expect(await acceptsDefaultLogin("amqp://endpoint:secret@[::1]:5672/")).toBeUndefined();
  });
});
