/**
 * The interchange's certificates, issued in process (interchange-tls.ts):
 * X.509 v3 that Node's TLS (OpenSSL) accepts for a mutually authenticated
 * TLS 1.3 connection, a CA that signs nothing else, and files only the
 * endpoint's user can read.
 */
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer } from "node:tls";
import { afterAll, describe, expect, it } from "vitest";
import { createInterchangeTls } from "../src/engines/interchange-tls.js";
import { TLS_FILES } from "../src/worker/interchange-protocol.js";

const root = mkdtempSync(join(tmpdir(), "conduit-tls-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** What the server saw of the client (its certificate's CN), or the error of either side. */
function handshake(
  server: { ca: Buffer; cert: Buffer; key: Buffer },
  client: { ca: Buffer; cert: Buffer; key: Buffer },
): Promise<string> {
  return new Promise((resolve) => {
    const srv = createServer(
      { ...server, requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.3" },
      (socket) => socket.end(`hello ${socket.getPeerCertificate().subject.CN}`),
    );
    srv.on("tlsClientError", (err) => resolve(`server refused: ${err.message}`));
    srv.listen(0, "127.0.0.1", () => {
      const socket = connect({
        host: "127.0.0.1",
        port: (srv.address() as AddressInfo).port,
        ...client,
        checkServerIdentity: () => undefined,
        minVersion: "TLSv1.3",
      });
      let text = "";
      socket.on("data", (d) => {
        text += d;
      });
      socket.on("error", (err) => resolve(`client error: ${err.message}`));
      socket.on("close", () => {
        srv.close();
        resolve(text);
      });
    });
  });
}

describe("the interchange's certificates", () => {
  it("are a CA and two certificates it signed, for the server and the client only", async () => {
    const tls = await createInterchangeTls(join(root, "a"));
    const read = (name: string) => new X509Certificate(readFileSync(join(tls.dir, name)));
    const ca = read(TLS_FILES.ca);
    const server = read(TLS_FILES.serverCert);
    const client = read(TLS_FILES.clientCert);
    expect(ca.ca).toBe(true);
    expect(ca.checkIssued(ca)).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    for (const [cert, usage, cn] of [
      [server, "1.3.6.1.5.5.7.3.1", "conduit-interchange"],
      [client, "1.3.6.1.5.5.7.3.2", "conduit-block-manager"],
    ] as const) {
      expect(cert.ca).toBe(false);
      expect(cert.subject).toBe(`CN=${cn}`);
      expect(cert.checkIssued(ca)).toBe(true);
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.keyUsage).toEqual([usage]);
      expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
      // Ten years from now, within a minute.
      expect(Math.abs(Date.parse(cert.validTo) - Date.now() - 3650 * 86_400_000)).toBeLessThan(60_000);
    }
    expect(server.serialNumber).not.toBe(client.serialNumber);
    expect(tls.cert.equals(readFileSync(join(tls.dir, TLS_FILES.serverCert)))).toBe(true);
  });

  it("keep the CA's key nowhere, and their files readable by their owner only", async () => {
    const tls = await createInterchangeTls(join(root, "b"));
    expect(readdirSync(tls.dir).sort()).toEqual(Object.values(TLS_FILES).sort());
    expect(statSync(tls.dir).mode & 0o777).toBe(0o700);
    for (const name of readdirSync(tls.dir)) expect(statSync(join(tls.dir, name)).mode & 0o777).toBe(0o600);
  });

  it("make a mutually authenticated TLS 1.3 connection, and refuse a client of another engine's CA", async () => {
    const ours = await createInterchangeTls(join(root, "c"));
    const other = await createInterchangeTls(join(root, "d"));
    const file = (dir: string, name: string) => readFileSync(join(dir, name));
    const server = { ca: ours.ca, cert: ours.cert, key: ours.key };
    const clientOf = (dir: string) => ({
      ca: file(ours.dir, TLS_FILES.ca),
      cert: file(dir, TLS_FILES.clientCert),
      key: file(dir, TLS_FILES.clientKey),
    });
    expect(await handshake(server, clientOf(ours.dir))).toBe("hello conduit-block-manager");
    expect(await handshake(server, clientOf(other.dir))).not.toContain("hello");
  });
});
