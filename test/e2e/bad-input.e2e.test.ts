/**
 * Bad input gets one clear sentence and the service keeps serving: a malformed
 * template, variables that fail the schema, an unknown engine type (errors that
 * reach the submitter's future from the UEP), an unknown function id, a task
 * over the size limit, a bad token.
 */
import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@conduit/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, withStack } from "./helpers.js";

let stack: E2eStack;
let templatePath: string;
let defaultTemplate: string;
beforeAll(async () => {
  stack = await withStack({ endpointName: "picky" });
  templatePath = join(stack.userDir, "picky", "user_config_template.yaml.j2");
  defaultTemplate = readFileSync(templatePath, "utf8");
});
afterAll(async () => {
  await stack?.dispose();
});

const add = (a: number, b: number) => a + b;

/** Runs add(1, 2) with a template the MEP reads afresh for this new UEP. */
async function failureWithTemplate(template: string, config: Record<string, unknown> = {}): Promise<Error> {
  writeFileSync(templatePath, template);
  try {
    const ex = stack.executor({ ...config, nonce: randomUUID() });
    return await ex
      .submit(add, 1, 2)
      .result()
      .then(
        (value) => new Error(`expected a failure, got ${String(value)}`),
        (err: unknown) => err as Error,
      );
  } finally {
    writeFileSync(templatePath, defaultTemplate);
  }
}

describe("errors that reach the submitter from a UEP that cannot start", () => {
  it("a malformed template", async () => {
    const err = await failureWithTemplate("engine:\n  type: {% if %}\n");
    expect(err.message).toMatch(/template/i);
    expect(err.message.split("\n")[0].length).toBeGreaterThan(20);
  });

  it("variables that fail the schema name the property", async () => {
    const err = await failureWithTemplate(defaultTemplate, { worker_init: 5 });
    expect(err.message).toMatch(/worker_init/);
  });

  it("an unknown engine type lists the valid ones", async () => {
    const err = await failureWithTemplate("engine:\n  type: NopeEngine\n");
    expect(err.message).toMatch(/NopeEngine/);
    expect(err.message).toMatch(/HighThroughputEngine/);
    expect(err.message).toMatch(/ThreadPoolEngine/);
  });
});

describe("errors the service answers at once", () => {
  it("an unknown function id", async () => {
    const functionId = randomUUID();
    await expect(
      stack.client.submit(stack.endpointId, {
        tasks: [
          {
            task_id: randomUUID(),
            function_id: functionId,
            args: { strategy: "conduit.JSONData", data: '{"args":[]}' },
          },
        ],
      }),
    ).rejects.toThrow(new RegExp(`Function ${functionId}`));
  });

  it("a task over the size limit, refused before upload with size and limit", async () => {
    const ex = stack.executor({});
    const length = (s: string) => s.length;
    const err = await ex
      .submit(length, "x".repeat(11 * 1024 * 1024))
      .result()
      .catch((e: unknown) => e as Error);
    expect(String(err)).toMatch(/\d+ bytes, over the limit of 10485760 bytes/);
  });

  it("a bad token gets 401 with the fix", async () => {
    const bad = new Client({ serviceUrl: stack.serviceUrl, token: "not-a-token" });
    await expect(bad.whoami()).rejects.toThrow(/token/i);
  });

  it("keeps serving afterwards", async () => {
    expect(await stack.executor({}).submit(add, 40, 2).result()).toBe(42);
  });
});
