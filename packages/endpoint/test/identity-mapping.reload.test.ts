/**
 * Hot reload as Globus does it: a changed file (inode, ctime, mtime or size)
 * is re-read; an invalid one keeps the previous rules and logs why.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { IdentityMapper } from "../src/identity-mapping/identity-mapper.js";
import type { Logger } from "../src/logging.js";

const ALICE = { id: "9cf5a1d2-41c4-4925-b0bb-f5e0a16c98ab", username: "alice@example.edu" };
const dir = mkdtempSync(join(tmpdir(), "conduit-idmap-reload-"));
const mappers: IdentityMapper[] = [];
afterEach(() => {
  for (const mapper of mappers.splice(0)) mapper.stop();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rules(output: string): string {
  return JSON.stringify([
    { DATA_TYPE: "expression_identity_mapping#1.0.0", mappings: [{ source: "{username}", match: ".*", output }] },
  ]);
}

function start(path: string): { mapper: IdentityMapper; lines: string[] } {
  const lines: string[] = [];
  const log: Logger = {
    debug() {},
    info: (m) => lines.push(`INFO ${m}`),
    warn: (m) => lines.push(`WARNING ${m}`),
    error: (m) => lines.push(`ERROR ${m}`),
  };
  const mapper = IdentityMapper.load(path, { endpointId: "ep", log, pollIntervalMs: 50 });
  mappers.push(mapper);
  mapper.watch();
  return { mapper, lines };
}

describe("identity mapping hot reload", () => {
  it("applies a valid change, whether rewritten in place or renamed over", async () => {
    const path = join(dir, "valid.json");
    writeFileSync(path, rules("first"));
    const { mapper, lines } = start(path);
    expect(await mapper.map(ALICE)).toMatchObject({ username: "first" });

    writeFileSync(path, rules("second-user"));
    await expect.poll(async () => (await mapper.map(ALICE))?.username, { timeout: 10_000 }).toBe("second-user");
    expect(lines).toContain(`INFO Identity mapping configuration change detected; rereading: ${path}`);

    writeFileSync(`${path}.new`, rules("third"));
    renameSync(`${path}.new`, path);
    await expect.poll(async () => (await mapper.map(ALICE))?.username, { timeout: 10_000 }).toBe("third");
  });

  it("keeps the previous rules when the new file is invalid, and logs why", async () => {
    const path = join(dir, "invalid.json");
    writeFileSync(path, rules("kept"));
    const { mapper, lines } = start(path);

    writeFileSync(path, JSON.stringify([{ mappings: [] }]));
    await expect
      .poll(() => lines.find((line) => line.startsWith("ERROR")), { timeout: 10_000 })
      .toBe(
        `ERROR Unable to update identity configuration -- (InvalidMappingError) Invalid map config (index: 0)\n  Identity configuration path: ${path}`,
      );
    expect(await mapper.map(ALICE)).toMatchObject({ username: "kept" });

    writeFileSync(path, "[{ not json");
    await expect
      .poll(() => lines.filter((line) => line.includes("-- (SyntaxError)")).length, {
        timeout: 10_000,
      })
      .toBe(1);
    expect(await mapper.map(ALICE)).toMatchObject({ username: "kept" });

    // Fixed again: the new rules apply.
    writeFileSync(path, rules("fixed"));
    await expect.poll(async () => (await mapper.map(ALICE))?.username, { timeout: 10_000 }).toBe("fixed");
  });

  it("stop() ends watching", async () => {
    const path = join(dir, "stopped.json");
    writeFileSync(path, rules("before"));
    const { mapper } = start(path);
    mapper.stop();
    writeFileSync(path, rules("after-the-stop"));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await mapper.map(ALICE)).toMatchObject({ username: "before" });
  });
});
