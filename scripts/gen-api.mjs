#!/usr/bin/env node
/**
 * `npm run gen:api`: writes packages/sdk/src/generated/openapi.ts, the types of
 * the service's REST API, from the OpenAPI document the service itself serves.
 * Starts the built service in-process (PGlite in a temp dir, a RabbitMQ vhost
 * of its own), fetches /openapi.json, converts it with openapi-typescript and
 * formats it with Biome, so the checked-in file is byte for byte what this
 * produces (a test regenerates it and fails when the two differ).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createVhost } from "./local-stack.mjs";

const root = fileURLToPath(new URL("../", import.meta.url));
export const GENERATED_FILE = join(root, "packages/sdk/src/generated/openapi.ts");

const HEADER = `/**
 * The Conduit service's REST API as TypeScript types, generated from its
 * /openapi.json by openapi-typescript. Do not edit: run \`npm run gen:api\`.
 */

`;

/** Fetches the OpenAPI document of a freshly started service. */
export async function fetchOpenApiDocument() {
  const { startService } = await import("@conduit/service");
  const vhost = await createVhost();
  const dataDir = await mkdtemp(join(tmpdir(), "conduit-gen-api-"));
  try {
    const service = await startService({
      port: 0,
      dataDir,
      amqpUrl: vhost.url,
      writeCredentials: false,
      logLevel: "silent",
    });
    try {
      const response = await fetch(`${service.url}/openapi.json`);
      if (!response.ok) throw new Error(`GET /openapi.json answered ${response.status}.`);
      return await response.json();
    } finally {
      await service.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
    await vhost.dispose();
  }
}

/** The text of packages/sdk/src/generated/openapi.ts for this OpenAPI document. */
export async function renderOpenApiTypes(document) {
  const { default: openapiTS, astToString } = await import("openapi-typescript");
  const ast = await openapiTS(document, { alphabetize: true });
  return biomeFormat(HEADER + astToString(ast));
}

function biomeFormat(source) {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [join(root, "node_modules/@biomejs/biome/bin/biome"), "format", `--stdin-file-path=${GENERATED_FILE}`],
      { cwd: root, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`biome format failed: ${stderr || err.message}`)) : resolve(stdout),
    );
    child.stdin?.end(source);
  });
}

/** Regenerates the file's text (what the drift test compares with the checked-in file). */
export async function generateOpenApiTypes() {
  return renderOpenApiTypes(await fetchOpenApiDocument());
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = await generateOpenApiTypes();
  await writeFile(GENERATED_FILE, text);
  console.log(`Wrote ${GENERATED_FILE}`);
}
