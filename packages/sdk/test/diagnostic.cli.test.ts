/**
 * `conduit-diagnostic` through its real bin (the built dist file, spawned with
 * node): help, exit codes, the sections printed with -p, the archive's name
 * and gzip, -k, -r, and that every planted secret is gone from the archive
 * while the text around it stays. A real HTTP server stands in for the
 * service's /healthz and /v1/whoami; the broker check talks to the real
 * RabbitMQ on 127.0.0.1:5672.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { archivesIn, readArchive, runDiagnosticBin, sectionText } from "./diagnostic.helpers.js";

const ENDPOINT_ID = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f";
const UEP_ID = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e";
const API_TOKEN = "apiTok_Z9x8C7v6B5n4M3l2K1j0";

let server: Server;
let serviceUrl: string;
const authorizations: Array<string | undefined> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    authorizations.push(req.headers.authorization);
    res.setHeader("content-type", "application/json");
    if (req.url === "/healthz") res.end(JSON.stringify({ status: "ok", version: "9.9.9-test" }));
    else if (req.url === "/v1/whoami") res.end(JSON.stringify({ id: "id-1", username: "diag-tester" }));
    else if (req.url === "/v1/task_groups") res.end("[]");
    else res.writeHead(404).end(JSON.stringify({ code: "ROUTE_NOT_FOUND", message: "no route" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  serviceUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let work: string;
let configDir: string;
let cwd: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "conduit-diagnostic-"));
  configDir = join(work, "conduit");
  cwd = join(work, "cwd");
  mkdirSync(configDir);
  mkdirSync(cwd);
  authorizations.length = 0;
  writeFileSync(
    join(configDir, "credentials.json"),
    JSON.stringify({ service_url: serviceUrl, token: API_TOKEN, identity: { id: "id-1", username: "diag-tester" } }),
    { mode: 0o600 },
  );
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

/** An endpoint directory as `configure` and a MEP leave it. */
function plantEndpoint(name: string, files: Record<string, string> = {}, endpointId?: string): string {
  const dir = join(configDir, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "config.yaml"), "display_name: null\nengine:\n  type: ThreadPoolEngine\n");
  if (endpointId) writeFileSync(join(dir, "endpoint.json"), JSON.stringify({ endpoint_id: endpointId }));
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

const run = (args: string[], env: Record<string, string> = {}) => runDiagnosticBin(args, { cwd, env });

describe("conduit-diagnostic", () => {
  it("-h prints the usage with every option and exits 0", async () => {
    const { code, stdout, stderr } = await run(["-h"]);
    expect(code).toBe(0);
    expect(stderr).toBe("");
    expect(stdout).toMatch(/^usage: conduit-diagnostic /);
    for (const option of [
      "-p, --print-only",
      "-k number, --log-kb number",
      "-v, --verbose",
      "-e ENDPOINT_UUID, --endpoint-uuid ENDPOINT_UUID",
      "-c CONFIG_DIR, --config-dir CONFIG_DIR",
      "-r number, --recent-endpoints number",
    ]) {
      expect(stdout).toContain(option);
    }
    expect(archivesIn(cwd)).toEqual([]);
  });

  it("a missing config dir exits 66 with one sentence naming it, and writes nothing", async () => {
    const missing = join(work, "nowhere");
    const { code, stdout, stderr } = await run(["-c", missing]);
    expect(code).toBe(66);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      `Config directory ${missing} does not exist; pass the directory that holds your endpoints with -c, or set CONDUIT_USER_DIR.\n`,
    );
    expect(archivesIn(cwd)).toEqual([]);
  });

  it("a config dir that is a file exits 66 saying so", async () => {
    const file = join(work, "a-file");
    writeFileSync(file, "");
    const { code, stderr } = await run(["-c", file]);
    expect(code).toBe(66);
    expect(stderr).toBe(
      `Config directory ${file} is not a directory; pass the directory that holds your endpoints with -c, or set CONDUIT_USER_DIR.\n`,
    );
  });

  it("CONDUIT_USER_DIR is the default config dir (missing: exit 66 naming it)", async () => {
    const missing = join(work, "from-env");
    const { code, stderr } = await run([], { CONDUIT_USER_DIR: missing });
    expect(code).toBe(66);
    expect(stderr).toContain(`Config directory ${missing} does not exist`);
  });

  it("bad option values exit 64 with a sentence naming the option", async () => {
    const bad = await run(["-k", "lots", "-c", configDir]);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toBe('-k/--log-kb takes a whole number of at least 1, got "lots".\n');
    const uuid = await run(["-e", "not-a-uuid", "-c", configDir]);
    expect(uuid.code).toBe(64);
    expect(uuid.stderr).toContain('-e/--endpoint-uuid "not-a-uuid" is not a UUID');
    const unknown = await run(["--bogus"]);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toContain("run conduit-diagnostic -h for the options.");
  });

  it("-p prints every section to stdout: machine, versions, service, broker handshake, endpoint list and files", async () => {
    plantEndpoint("diag_ep", { "endpoint.log": "2026-12-07 MEP started\n" }, ENDPOINT_ID);
    const { code, stdout, stderr } = await run(["-p", "-c", configDir]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const headers = [...stdout.matchAll(/^== Diagnostic: (.+) ==$/gm)].map((m) => m[1]);
    expect(headers).toEqual([
      "Node and OS",
      "CPU",
      "memory",
      "disks",
      "network",
      "Conduit versions",
      "service connectivity",
      "broker connectivity",
      "conduit-endpoint list",
      "endpoint diag_ep",
    ]);
    expect(sectionText(stdout, "Node and OS")).toContain(`Node: ${process.version}`);
    expect(sectionText(stdout, "Conduit versions")).toMatch(/^@conduit\/sdk \d+\.\d+\.\d+/);
    const service = sectionText(stdout, "service connectivity");
    expect(service).toContain(`(service URL from ${join(configDir, "credentials.json")})`);
    expect(service).toContain(`TCP ${new URL(serviceUrl).host}: connected`);
    expect(service).toContain('GET /healthz: HTTP 200 {"status":"ok","version":"9.9.9-test"}');
    expect(service).toContain('GET /v1/whoami: {"id":"id-1","username":"diag-tester"}');
    expect(authorizations).toContain(`Bearer ${API_TOKEN}`);
    const broker = sectionText(stdout, "broker connectivity");
    expect(broker).toMatch(
      /AMQP handshake: Connection.Start from RabbitMQ \S+ \(AMQP 0-9-1.*login mechanisms: .*PLAIN/,
    );
    expect(broker).toContain("not logging in");
    const list = sectionText(stdout, "conduit-endpoint list");
    expect(list).toMatch(new RegExp(`\\| ${ENDPOINT_ID} \\| \\S+ +\\| diag_ep `));
    const files = sectionText(stdout, "endpoint diag_ep");
    expect(files).toContain(`Endpoint id: ${ENDPOINT_ID}`);
    expect(files).toContain(`--- ${join(configDir, "diag_ep", "config.yaml")} (`);
    expect(files).toContain("2026-12-07 MEP started");
    expect(archivesIn(cwd)).toEqual([]);
  });

  it("a failing section prints its error and the others still run", async () => {
    // A service URL nobody answers: the service section reports the refusal, later sections carry on.
    const { code, stdout } = await run(["-p", "-c", configDir], { CONDUIT_SERVICE_URL: "http://127.0.0.1:1" });
    expect(code).toBe(0);
    expect(sectionText(stdout, "service connectivity")).toContain("TCP 127.0.0.1:1: FAILED (connect ECONNREFUSED");
    expect(sectionText(stdout, "endpoints")).toContain(`No endpoint directories in ${configDir}.`);
  });

  it("a section still waiting after 15 s is cut off with what it had, and the next sections run", async () => {
    // A service that accepts connections and never answers.
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const { code, stdout } = await run(["-p", "-c", configDir], { CONDUIT_SERVICE_URL: url });
      expect(code).toBe(0);
      const service = sectionText(stdout, "service connectivity");
      expect(service).toContain(`TCP ${new URL(url).host}: connected`);
      expect(service).toMatch(/GET \/healthz: FAILED \(.*aborted.*\)\n\(section timed out after 15 s\)/);
      expect(sectionText(stdout, "broker connectivity")).toContain("AMQP handshake: Connection.Start from RabbitMQ");
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it("without -p writes conduit_diagnostic_<UTC time>.txt.gz in the current directory and says so; -v names each section", async () => {
    plantEndpoint("diag_ep");
    const before = new Date();
    const { code, stdout } = await run(["-v", "-c", configDir]);
    const after = new Date();
    expect(code).toBe(0);
    const [name] = archivesIn(cwd);
    expect(name).toMatch(/^conduit_diagnostic_\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}Z\.txt\.gz$/);
    const stamp = name.replace(/^conduit_diagnostic_(\d+-\d+-\d+)-(\d+)-(\d+)-(\d+)Z.*$/, "$1T$2:$3:$4Z");
    const written = new Date(stamp).getTime();
    expect(written).toBeGreaterThanOrEqual(Math.floor(before.getTime() / 1000) * 1000);
    expect(written).toBeLessThanOrEqual(after.getTime());
    expect(stdout).toContain("== Diagnostic: Node and OS ==\n");
    expect(stdout).toContain("== Diagnostic: endpoint diag_ep ==\n");
    expect(stdout.trimEnd().split("\n").at(-1)).toBe(`Compressed diagnostic output successfully written to ${name}`);
    const report = readArchive(cwd);
    expect(report).toMatch(/^== Diagnostic: Node and OS ==\n/);
    expect(sectionText(report, "endpoint diag_ep")).toContain("type: ThreadPoolEngine");
  });

  it("a current directory it cannot write to exits 73 at once, with the way out", async () => {
    // Even root cannot create files in /proc.
    const { code, stdout, stderr } = await runDiagnosticBin(["-c", configDir], { cwd: "/proc" });
    expect(code).toBe(73);
    expect(stdout).toBe("");
    expect(stderr).toMatch(
      /^Cannot create conduit_diagnostic_[\d-]+Z\.txt\.gz in \/proc \(\w+\); run conduit-diagnostic from a directory you can write to, or print the report with -p\.\n$/,
    );
  });

  it("-k N keeps the last N KB of each file, whole lines only", async () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${String(i).padStart(6, "0")} of the MEP log`);
    plantEndpoint("diag_ep", { "endpoint.log": `${lines.join("\n")}\n` });
    const { code, stdout } = await run(["-p", "-k", "2", "-c", configDir]);
    expect(code).toBe(0);
    const section = sectionText(stdout, "endpoint diag_ep");
    const header = `--- ${join(configDir, "diag_ep", "endpoint.log")} (${lines.join("\n").length + 1} bytes, the last 2 KB) ---\n`;
    expect(section).toContain(header);
    const tail = section
      .slice(section.indexOf(header) + header.length)
      .trimEnd()
      .split("\n");
    expect(tail.at(-1)).toBe(lines.at(-1));
    expect(tail[0]).toMatch(/^line \d{6} of the MEP log$/);
    expect(`${tail.join("\n")}\n`.length).toBeLessThanOrEqual(2048);
    expect(`${tail.join("\n")}\n`.length).toBeGreaterThan(2048 - 40);
    expect(section).not.toContain(lines[0]);
  });

  it("-r N collects the N most recently modified endpoints and names the others", async () => {
    const times = { alpha: 1_000, beta: 2_000, gamma: 3_000 };
    for (const [name, seconds] of Object.entries(times)) {
      const dir = plantEndpoint(name, { "endpoint.log": `${name} log\n` });
      for (const file of ["config.yaml", "endpoint.log", "."]) utimesSync(join(dir, file), seconds, seconds);
    }
    const one = await run(["-p", "-r", "1", "-c", configDir]);
    expect(one.stdout).toContain("== Diagnostic: endpoint gamma ==");
    expect(one.stdout).not.toContain("== Diagnostic: endpoint beta ==");
    expect(sectionText(one.stdout, "other endpoints").trimEnd()).toBe(
      "Not collected (raise -r to include them): beta, alpha",
    );
    const byDefault = await run(["-p", "-c", configDir]);
    expect(byDefault.stdout).toContain("== Diagnostic: endpoint gamma ==");
    expect(byDefault.stdout).toContain("== Diagnostic: endpoint beta ==");
    expect(byDefault.stdout).not.toContain("== Diagnostic: endpoint alpha ==");
  });

  it("redacts every kind of secret from logs and configs in the archive, keeping the text around them", async () => {
    // Each secret is a unique string; each `keep` is non-secret text beside it that must survive.
    const secrets = {
      bearer: "bearerTok_Q1w2E3r4T5y6U7i8",
      apiToken: API_TOKEN,
      jwtPayload: "eyJzdWIiOiJhbGljZUBleGFtcGxlLm9yZyJ9",
      jwtSignature: "jwtSigPart_7Hh3kLmN",
      clientSecretYaml: "clientSec_K2j3H4g5F6",
      clientSecretEnv: "envSec_P0o9I8u7Y6",
      urlPassword: "urlPass_L5k4J3h2G1",
      brokerPassword: "brokerPass_M6n5B4v3C2",
      brokerPasswordJson: "brokerPass2_Xx7Yy8Zz9",
      pemBody: "pemBody_Ab12Cd34Ef56Gh78",
      jsonPassword: "jsonPw_R4t5Y6u7I8",
      escapedJsonSecret: "escSecret_Ww3Ee4Rr5",
      yamlPassword: "yamlPw_U7i8O9p0A1",
      yamlToken: "yamlTok_Qq1Ww2Ee3",
      yamlBlock: "blockSecret_Zz9Xx8Cc7",
      uepBearer: "uepBearer_Tt5Gg6Bb7",
      tokensJson: "tokensJson_Aa1Ss2Dd3",
      flagSecret: "flagSecret_Nn4Mm5Jj6",
    };
    const log = [
      `2026-12-07 12:00:01 INFO request Authorization: Bearer ${secrets.bearer} sent to keep-bearer-context`,
      `2026-12-07 12:00:02 INFO retrying with ${secrets.apiToken} after keep-literal-context`,
      `2026-12-07 12:00:03 DEBUG id token eyJhbGciOiJSUzI1NiJ9.${secrets.jwtPayload}.${secrets.jwtSignature} keep-jwt-context`,
      `2026-12-07 12:00:04 DEBUG env CONDUIT_CLIENT_SECRET=${secrets.clientSecretEnv} CONDUIT_CLIENT_ID=keep-client-id`,
      `2026-12-07 12:00:05 ERROR database postgres://app:${secrets.urlPassword}@db.example.org/conduit unreachable`,
      `2026-12-07 12:00:06 INFO connecting to amqps://ep_1234:${secrets.brokerPassword}@broker.example.org:5671/conduit`,
      `{"level":"info","password":"${secrets.jsonPassword}","msg":"keep-json-msg"}`,
      `{"level":"debug","msg":"{\\"client_secret\\":\\"${secrets.escapedJsonSecret}\\",\\"keep\\":\\"keep-escaped\\"}"}`,
      `2026-12-07 12:00:07 INFO worker command: conduit-worker --client-secret ${secrets.flagSecret} --keep-flag`,
      "2026-12-07 12:00:08 ERROR bad key file:",
      "-----BEGIN RSA PRIVATE KEY-----",
      `MIIEpAIBAAKCAQEA${secrets.pemBody}`,
      "qwertyuiopasdfghjklzxcvbnm0123456789",
      "-----END RSA PRIVATE KEY-----",
      "2026-12-07 12:00:09 INFO keep-after-pem",
    ].join("\n");
    const config = [
      "display_name: Diag Test Endpoint",
      `client_secret: ${secrets.clientSecretYaml}  # keep-comment`,
      "engine:",
      "  type: ThreadPoolEngine",
      `  password: ${secrets.yamlPassword}`,
      `  api_token: "${secrets.yamlToken}"`,
      "  secret: |",
      `    ${secrets.yamlBlock}`,
      "    second line of the block",
      "keep_after_block: true",
    ].join("\n");
    plantEndpoint(
      "diag_ep",
      {
        "endpoint.log": `${log}\n`,
        "config.yaml": `${config}\n`,
        "broker.json": `${JSON.stringify({ url: `amqp://svc_user:${secrets.brokerPasswordJson}@rabbit.example.org:5672/`, keep: "keep-json-field" }, null, 2)}\n`,
        "tokens.json": JSON.stringify({ access_token: secrets.tokensJson }),
      },
      ENDPOINT_ID,
    );
    const uepDir = join(configDir, `uep.${ENDPOINT_ID}.${UEP_ID}`);
    mkdirSync(uepDir);
    writeFileSync(join(uepDir, "endpoint.log"), `UEP got header Bearer ${secrets.uepBearer} keep-uep-line\n`);

    const { code } = await run(["-c", configDir]);
    expect(code).toBe(0);
    const report = readArchive(cwd);
    for (const [kind, secret] of Object.entries(secrets)) {
      expect(report.includes(secret), `${kind} (${secret}) leaked into the archive`).toBe(false);
    }
    for (const keep of [
      "keep-bearer-context",
      "retrying with [REDACTED] after keep-literal-context",
      "keep-jwt-context",
      "CONDUIT_CLIENT_ID=keep-client-id",
      "postgres://app:[REDACTED]@db.example.org/conduit unreachable",
      "amqps://ep_1234:[REDACTED]@broker.example.org:5671/conduit",
      "amqp://svc_user:[REDACTED]@rabbit.example.org:5672/",
      '"keep": "keep-json-field"',
      '"msg":"keep-json-msg"',
      "keep-escaped",
      "--keep-flag",
      "-----BEGIN RSA PRIVATE KEY----- [REDACTED] -----END RSA PRIVATE KEY-----",
      "keep-after-pem",
      "display_name: Diag Test Endpoint",
      "# keep-comment",
      "type: ThreadPoolEngine",
      "keep_after_block: true",
      "keep-uep-line",
      `--- ${join(configDir, "diag_ep", "tokens.json")} (`,
    ]) {
      expect(report).toContain(keep);
    }
  });

  it("a private key cut by the -k tail is still redacted", async () => {
    const filler = "x".repeat(100);
    const log = [
      "-----BEGIN PRIVATE KEY-----",
      ...Array.from({ length: 40 }, (_, i) => `keyLine${i}${filler.slice(0, 40)}`),
      "-----END PRIVATE KEY-----",
      "keep-after-cut-key",
    ].join("\n");
    plantEndpoint("diag_ep", { "endpoint.log": `${log}\n` });
    const { stdout } = await run(["-p", "-k", "1", "-c", configDir]);
    const section = sectionText(stdout, "endpoint diag_ep");
    expect(section).toContain("the last 1 KB");
    expect(section).toContain("[REDACTED]\n-----END PRIVATE KEY-----\nkeep-after-cut-key");
    expect(section).not.toMatch(/keyLine\d+x/);
  });
});
