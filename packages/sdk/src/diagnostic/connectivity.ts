/**
 * Reachability checks, one layer at a time so that the first failing layer
 * names the problem: DNS, TCP, TLS (for https/amqps), then the protocol —
 * `GET /healthz` for the service, and for the broker the AMQP 0-9-1 handshake
 * as far as the server's `Connection.Start`, which names the broker, its
 * version and its login mechanisms. No login is attempted: the check needs no
 * credentials and leaves none in the broker's log.
 */
import { lookup } from "node:dns/promises";
import { connect as netConnect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { type TLSSocket, connect as tlsConnect } from "node:tls";

/** What a connection check found, line by line. */
type Report = string[];

export interface Target {
  host: string;
  port: number;
  tls: boolean;
}

const elapsed = (start: number) => `${Math.round(performance.now() - start)} ms`;

/** DNS, then TCP, then TLS when asked; resolves the open socket (the caller closes it), or undefined after reporting why not. */
async function openConnection(target: Target, report: Report, signal: AbortSignal): Promise<Socket | undefined> {
  const { host, port } = target;
  let start = performance.now();
  try {
    const addresses = await lookup(host, { all: true });
    report.push(`DNS ${host}: ${addresses.map((a) => a.address).join(", ")} (${elapsed(start)})`);
  } catch (err) {
    report.push(`DNS ${host}: FAILED (${(err as Error).message})`);
    return undefined;
  }
  start = performance.now();
  let socket: Socket;
  try {
    socket = await connected(netConnect({ host, port, signal }), "connect");
    report.push(`TCP ${host}:${port}: connected (${elapsed(start)})`);
  } catch (err) {
    report.push(`TCP ${host}:${port}: FAILED (${(err as Error).message})`);
    return undefined;
  }
  if (!target.tls) return socket;
  start = performance.now();
  try {
    const secure = await connected(tlsConnect({ socket, servername: serverName(host) }), "secureConnect");
    report.push(`TLS ${host}:${port}: ${describeTls(secure)} (${elapsed(start)})`);
    return secure;
  } catch (err) {
    socket.destroy();
    report.push(`TLS ${host}:${port}: FAILED (${(err as Error).message})`);
    return undefined;
  }
}

function connected<T extends Socket>(socket: T, event: "connect" | "secureConnect"): Promise<T> {
  return new Promise((resolve, reject) => {
    socket.once(event, () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** SNI takes a host name, never an IP address. */
function serverName(host: string): string | undefined {
  return /^[\d.]+$|:/.test(host) ? undefined : host;
}

function describeTls(socket: TLSSocket): string {
  const cert = socket.getPeerCertificate();
  const parts = [`${socket.getProtocol() ?? "?"} ${socket.getCipher().name}`];
  if (cert && Object.keys(cert).length > 0) {
    parts.push(`certificate CN=${cert.subject?.CN ?? "?"} issued by ${cert.issuer?.CN ?? cert.issuer?.O ?? "?"}`);
    parts.push(`valid until ${cert.valid_to}`);
  }
  parts.push(socket.authorized ? "verified" : `NOT verified (${String(socket.authorizationError)})`);
  return parts.join(", ");
}

/** The service: DNS, TCP, TLS for https, then `GET /healthz` with fetch. */
export async function checkService(serviceUrl: string, signal: AbortSignal): Promise<Report> {
  const report: Report = [`Service URL: ${serviceUrl}`];
  const url = new URL(serviceUrl);
  const tls = url.protocol === "https:";
  const target = { host: stripBrackets(url.hostname), port: Number(url.port || (tls ? 443 : 80)), tls };
  const socket = await openConnection(target, report, signal);
  if (!socket) return report;
  socket.destroy();
  const start = performance.now();
  try {
    const response = await fetch(`${serviceUrl}/healthz`, { signal });
    const body = await response.text();
    report.push(`GET /healthz: HTTP ${response.status} ${body.slice(0, 500)} (${elapsed(start)})`);
  } catch (err) {
    report.push(`GET /healthz: FAILED (${describeError(err)})`);
  }
  return report;
}

function stripBrackets(host: string): string {
  return host.replace(/^\[(.*)\]$/, "$1");
}

export function describeError(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) parts.push(e.message);
  return parts.join(": ");
}

/** The AMQP 0-9-1 protocol header a client sends first. */
const AMQP_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);
const FRAME_END = 0xce;

/** The broker: DNS, TCP, TLS for amqps, then the protocol header and the server's Connection.Start. */
export async function checkBroker(target: Target, signal: AbortSignal): Promise<Report> {
  const report: Report = [];
  const socket = await openConnection(target, report, signal);
  if (!socket) return report;
  const start = performance.now();
  try {
    const frame = await readFirstFrame(socket, signal);
    report.push(`AMQP handshake: ${describeConnectionStart(frame)} (${elapsed(start)})`);
  } catch (err) {
    report.push(`AMQP handshake: FAILED (${(err as Error).message})`);
  } finally {
    socket.destroy();
  }
  return report;
}

/** Writes the protocol header and reads one whole frame back. */
function readFirstFrame(socket: Socket, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const done = (err?: Error, frame?: Buffer) => {
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("end", onEnd);
      signal.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve(frame as Buffer);
    };
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      // A server that rejects the protocol version answers with its own header instead of a frame.
      if (received.length >= 8 && received.subarray(0, 4).toString("latin1") === "AMQP") {
        done(new Error(`the server wants protocol version ${[...received.subarray(5, 8)].join("-")}, not 0-9-1`));
        return;
      }
      if (received.length < 7) return;
      const size = received.readUInt32BE(3);
      if (received.length < 7 + size + 1) return;
      if (received[7 + size] !== FRAME_END) {
        done(new Error("the server's answer is not an AMQP frame (is this port an AMQP broker?)"));
        return;
      }
      done(undefined, received.subarray(0, 7 + size + 1));
    };
    const onError = (err: Error) => done(err);
    const onEnd = () => done(new Error("the server closed the connection without answering"));
    const onAbort = () => done(new Error("no answer in time"));
    socket.on("data", onData);
    socket.once("error", onError);
    socket.once("end", onEnd);
    signal.addEventListener("abort", onAbort, { once: true });
    socket.write(AMQP_HEADER);
  });
}

/** `Connection.Start`: class 10, method 10, version, server properties, mechanisms, locales. */
function describeConnectionStart(frame: Buffer): string {
  const type = frame[0];
  const payload = frame.subarray(7, frame.length - 1);
  if (type !== 1 || payload.readUInt16BE(0) !== 10 || payload.readUInt16BE(2) !== 10) {
    throw new Error(
      `expected Connection.Start, got frame type ${type} method ${payload.readUInt16BE(0)}.${payload.readUInt16BE(2)}`,
    );
  }
  const version = `${payload[4]}-${payload[5]}${payload[4] === 0 && payload[5] === 9 ? "-1" : ""}`;
  const tableSize = payload.readUInt32BE(6);
  const properties = readFieldTable(payload.subarray(10, 10 + tableSize));
  let offset = 10 + tableSize;
  const mechanisms = payload.subarray(offset + 4, offset + 4 + payload.readUInt32BE(offset)).toString("utf8");
  offset += 4 + payload.readUInt32BE(offset);
  const server = [properties.product, properties.version].filter(Boolean).join(" ") || "unknown server";
  const extra = properties.cluster_name ? `, cluster ${properties.cluster_name}` : "";
  return `Connection.Start from ${server} (AMQP ${version}${extra}), login mechanisms: ${mechanisms}; not logging in`;
}

/** The string-valued entries of an AMQP field table (others are skipped by their sizes). */
function readFieldTable(table: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < table.length) {
    const nameLength = table[i];
    const name = table.subarray(i + 1, i + 1 + nameLength).toString("utf8");
    i += 1 + nameLength;
    const kind = String.fromCharCode(table[i]);
    i += 1;
    const skip = FIXED_SIZES[kind];
    if (kind === "S" || kind === "F" || kind === "A" || kind === "x") {
      const length = table.readUInt32BE(i);
      if (kind === "S") out[name] = table.subarray(i + 4, i + 4 + length).toString("utf8");
      i += 4 + length;
    } else if (kind === "s") {
      i += 1 + table[i];
    } else if (skip !== undefined) {
      i += skip;
    } else {
      break;
    }
  }
  return out;
}

const FIXED_SIZES: Record<string, number> = {
  t: 1,
  b: 1,
  B: 1,
  U: 2,
  u: 2,
  I: 4,
  i: 4,
  L: 8,
  l: 8,
  f: 4,
  d: 8,
  D: 5,
  T: 8,
  V: 0,
};
