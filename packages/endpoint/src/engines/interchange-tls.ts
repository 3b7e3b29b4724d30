/**
 * The key material of an encrypted interchange, made fresh at each engine
 * start with the `openssl` CLI (`node:crypto` cannot issue certificates): a
 * certificate authority of its own, a server certificate for the interchange
 * and a client certificate for its block managers, all EC P-256 (about 15 ms
 * each). Both sides present their certificate and check the other's against
 * that CA, so only a holder of the client key, which only the endpoint's
 * user can read, gets a connection to the interchange.
 *
 * The CA's key is deleted once both certificates are issued: nobody, not
 * even the endpoint's user, can issue another certificate it would accept.
 */
import { execFile } from "node:child_process";
import { chmod, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { ConduitError } from "@conduit/protocol/wire";
import { TLS_FILES } from "../worker/interchange-protocol.js";

const run = promisify(execFile);

/** What the interchange's TLS server needs. */
export interface InterchangeTls {
  /** The folder (mode 0700, files 0600) holding the certificates and keys; block managers get its path. */
  dir: string;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

const DAYS = "3650";
const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** Makes a CA, a server and a client certificate in `dir` (created, mode 0700; replaced if present). */
export async function createInterchangeTls(dir: string, openssl = "openssl"): Promise<InterchangeTls> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = (name: string) => join(dir, name);
  const caKey = file("ca.key");
  const issue = (cn: string, usage: string, cert: string, key: string) =>
    opensslRun(openssl, [
      "req",
      "-x509",
      ...EC,
      "-keyout",
      file(key),
      "-out",
      file(cert),
      "-CA",
      file(TLS_FILES.ca),
      "-CAkey",
      caKey,
      "-days",
      DAYS,
      "-subj",
      `/CN=${cn}`,
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-addext",
      `extendedKeyUsage=${usage}`,
    ]);
  try {
    await opensslRun(openssl, [
      "req",
      "-x509",
      ...EC,
      "-keyout",
      caKey,
      "-out",
      file(TLS_FILES.ca),
      "-days",
      DAYS,
      "-subj",
      "/CN=conduit-interchange-ca",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign",
    ]);
    await Promise.all([
      issue("conduit-interchange", "serverAuth", TLS_FILES.serverCert, TLS_FILES.serverKey),
      issue("conduit-block-manager", "clientAuth", TLS_FILES.clientCert, TLS_FILES.clientKey),
    ]);
  } finally {
    await rm(caKey, { force: true });
  }
  await Promise.all(Object.values(TLS_FILES).map((name) => chmod(file(name), 0o600)));
  const [ca, cert, key] = await Promise.all(
    [TLS_FILES.ca, TLS_FILES.serverCert, TLS_FILES.serverKey].map((name) => readFile(file(name))),
  );
  return { dir, ca, cert, key };
}

async function opensslRun(openssl: string, args: string[]): Promise<void> {
  try {
    await run(openssl, args, { timeout: 30_000 });
  } catch (err) {
    const { code, stderr } = err as NodeJS.ErrnoException & { stderr?: string };
    const detail = code === "ENOENT" ? "it is not on the PATH" : (stderr ?? "").trim() || (err as Error).message;
    throw new ConduitError(
      "INTERCHANGE_TLS_FAILED",
      `\`${openssl} ${args.slice(0, 2).join(" ")}\` could not make the interchange's certificates (${detail}); install openssl or set \`encrypted: false\`.`,
    );
  }
}
