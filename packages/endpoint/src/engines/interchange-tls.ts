/**
 * The key material of an encrypted interchange, made fresh at each engine
 * start: a certificate authority of its own, a server certificate for the
 * interchange and a client certificate for its block managers, all EC P-256
 * with ECDSA-SHA256 signatures. `node:crypto` makes the keys and the
 * signatures; it cannot issue certificates, so this module writes their DER
 * itself (X.509 v3, RFC 5280): about 2 ms for the three, where the `openssl`
 * CLI took two rounds of process starts (50–200 ms) on a new UEP's way to its
 * first task. Both sides present their certificate and check the other's
 * against that CA, so only a holder of the client key, which only the
 * endpoint's user can read, gets a connection to the interchange.
 *
 * The CA's private key never leaves this process's memory: nobody, not even
 * the endpoint's user, can issue another certificate it would accept.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConduitError } from "@conduit/protocol/wire";
import { TLS_FILES } from "../worker/interchange-protocol.js";

/** What the interchange's TLS server needs. */
export interface InterchangeTls {
  /** The folder (mode 0700, files 0600) holding the certificates and keys; block managers get its path. */
  dir: string;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

const DAYS = 3650;

/** Makes a CA, a server and a client certificate in `dir` (created, mode 0700; replaced if present). */
export async function createInterchangeTls(dir: string): Promise<InterchangeTls> {
  let files: Record<keyof typeof TLS_FILES, Buffer>;
  try {
    const notBefore = new Date();
    const notAfter = new Date(notBefore.getTime() + DAYS * 86_400_000);
    const ca = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const caName = name("conduit-interchange-ca");
    const caCert = issue({
      subject: caName,
      publicKey: ca.publicKey,
      issuer: caName,
      issuerKey: ca.privateKey,
      issuerPublicKey: ca.publicKey,
      notBefore,
      notAfter,
      extensions: [
        extension(OID.basicConstraints, true, seq(bool(true))),
        extension(OID.keyUsage, true, KEY_CERT_SIGN),
      ],
    });
    const leaf = (cn: string, usage: string) => {
      const pair = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
      const cert = issue({
        subject: name(cn),
        publicKey: pair.publicKey,
        issuer: caName,
        issuerKey: ca.privateKey,
        issuerPublicKey: ca.publicKey,
        notBefore,
        notAfter,
        extensions: [extension(OID.basicConstraints, true, seq()), extension(OID.extKeyUsage, false, seq(oid(usage)))],
      });
      return {
        cert: pem("CERTIFICATE", cert),
        key: Buffer.from(pair.privateKey.export({ type: "pkcs8", format: "pem" })),
      };
    };
    const server = leaf("conduit-interchange", OID.serverAuth);
    const client = leaf("conduit-block-manager", OID.clientAuth);
    files = {
      ca: pem("CERTIFICATE", caCert),
      serverCert: server.cert,
      serverKey: server.key,
      clientCert: client.cert,
      clientKey: client.key,
    };
  } catch (err) {
    throw new ConduitError(
      "INTERCHANGE_TLS_FAILED",
      `Could not make the interchange's certificates (${(err as Error).message}); set \`encrypted: false\` if this Node.js has no EC P-256 support.`,
    );
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await Promise.all(
    (Object.keys(TLS_FILES) as (keyof typeof TLS_FILES)[]).map((k) =>
      writeFile(join(dir, TLS_FILES[k]), files[k], { mode: 0o600 }),
    ),
  );
  return { dir, ca: files.ca, cert: files.serverCert, key: files.serverKey };
}

const OID = {
  commonName: "2.5.4.3",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

interface IssueOptions {
  subject: Buffer;
  publicKey: KeyObject;
  issuer: Buffer;
  issuerKey: KeyObject;
  issuerPublicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}

/** A certificate's DER: TBSCertificate signed with ECDSA-SHA256 by the issuer's key. */
function issue(o: IssueOptions): Buffer {
  const spki = o.publicKey.export({ type: "spki", format: "der" });
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  // Positive, 16 bytes, minimal (first byte 0x40–0x7f): RFC 5280's serial number rules.
  const serial = randomBytes(16);
  serial[0] = ((serial[0] as number) & 0x3f) | 0x40;
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(serial),
    algorithm,
    o.issuer,
    seq(time(o.notBefore), time(o.notAfter)),
    o.subject,
    spki,
    explicit(
      3,
      seq(
        ...o.extensions,
        extension(OID.subjectKeyIdentifier, false, octets(keyId(o.publicKey))),
        extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, keyId(o.issuerPublicKey)))),
      ),
    ),
  );
  return seq(tbs, algorithm, bitString(sign("sha256", tbs, o.issuerKey)));
}

/** RFC 5280's method 1: SHA-1 of the subjectPublicKey bits (for P-256, the last 65 bytes of the SPKI). */
function keyId(key: KeyObject): Buffer {
  const spki = key.export({ type: "spki", format: "der" });
  return createHash("sha1")
    .update(spki.subarray(spki.length - 65))
    .digest();
}

/** keyUsage with keyCertSign (bit 5) alone: 2 unused bits. */
const KEY_CERT_SIGN = tlv(0x03, Buffer.from([0x02, 0x04]));

function name(cn: string): Buffer {
  return seq(tlv(0x31, seq(oid(OID.commonName), tlv(0x0c, Buffer.from(cn, "utf8")))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 4.1.2.5). */
function time(date: Date): Buffer {
  const text = `${date.toISOString().slice(0, 19).replace(/[-:T]/g, "")}Z`;
  return date.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(text.slice(2), "ascii"))
    : tlv(0x18, Buffer.from(text, "ascii"));
}

function pem(label: string, der: Buffer): Buffer {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return Buffer.from(`-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`);
}

/** DER: tag, definite length, content. */
function tlv(tag: number, content: Buffer): Buffer {
  const length = content.length;
  if (length < 0x80) return Buffer.concat([Buffer.from([tag, length]), content]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.concat([Buffer.from([tag, 0x80 | bytes.length, ...bytes]), content]);
}

function seq(...items: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(items));
}

function explicit(n: number, content: Buffer): Buffer {
  return tlv(0xa0 + n, content);
}

/** A non-negative INTEGER from its big-endian bytes (minimal: no leading zero byte unless the sign needs one). */
function integer(bytes: Buffer): Buffer {
  return tlv(0x02, (bytes[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}

function bool(value: boolean): Buffer {
  return tlv(0x01, Buffer.from([value ? 0xff : 0]));
}

function octets(content: Buffer): Buffer {
  return tlv(0x04, content);
}

function bitString(content: Buffer): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([0]), content]));
}

function oid(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split(".").map(Number);
  const out = [40 * first + second];
  for (const arc of rest) {
    const base128 = [arc % 128];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift((v % 128) | 0x80);
    out.push(...base128);
  }
  return tlv(0x06, Buffer.from(out));
}
