/**
 * The README's step by step, through the real CLIs, the real RabbitMQ and the
 * service on PGlite: configure, start, list, submit through the Executor (two
 * userEndpointConfigs → two UEPs), stop.
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runEndpointCli } from "../../scripts/local-stack.mjs";
import { type E2eStack, withStack } from "./helpers.js";

let stack: E2eStack;
beforeAll(async () => {
  stack = await withStack({ endpointName: "my_endpoint" });
});
afterAll(async () => {
  await stack?.dispose();
});

function listRows(stdout: string): Map<string, { id: string; status: string }> {
  const rows = new Map<string, { id: string; status: string }>();
  for (const line of stdout.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length === 6 && cells[1] !== "Endpoint ID") rows.set(cells[3], { id: cells[1], status: cells[2] });
  }
  return rows;
}

describe("quickstart", () => {
  it("lists the started endpoint as Running with its id", async () => {
    const { code, stdout } = await runEndpointCli(["list"], stack.env);
    expect(code).toBe(0);
    expect(stdout).toMatch(/Endpoint ID\s+\|\s+Status\s+\|\s+Endpoint Name/);
    expect(listRows(stdout).get("my_endpoint")).toEqual({ id: stack.endpointId, status: "Running" });
  });

  it("runs add(30, 12), then again in a second UEP after userEndpointConfig changes in place", async () => {
    const add = (a: number, b: number) => a + b;
    const ex = stack.executor({ worker_init: "" });
    expect(await ex.submit(add, 30, 12).result()).toBe(42);
    ex.userEndpointConfig.worker_init = "true";
    expect(await ex.submit(add, 21, 21).result()).toBe(42);
    const log = readFileSync(join(stack.userDir, "my_endpoint", "endpoint.log"), "utf8");
    const created = log.match(/Creating new user endpoint \(pid: \d+\) \[\(\S+, uep\.[0-9a-f-]+\.[0-9a-f-]+\)/g) ?? [];
    expect(new Set(created.map((l) => l.replace(/pid: \d+/, ""))).size).toBe(2);
  });

  it("runs the README's script as a plain .mjs file at the repo root with node", () => {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const script = join(root, `.e2e-first-${randomUUID()}.mjs`);
    writeFileSync(
      script,
      [
        'import { Executor } from "@conduit/sdk";',
        "const endpointId = process.argv[2];",
        "const add = (a, b) => a + b;",
        'const ex = new Executor({ endpointId, userEndpointConfig: { worker_init: "" } });',
        "console.log(await ex.submit(add, 30, 12).result());",
        'ex.userEndpointConfig.worker_init = "true";',
        "console.log(await ex.submit(add, 21, 21).result());",
        "await ex.shutdown();",
        "",
      ].join("\n"),
    );
    try {
      const run = spawnSync(process.execPath, [script, stack.endpointId], {
        cwd: root,
        env: stack.env,
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(run.stderr).toBe("");
      expect(run.stdout).toBe("42\n42\n");
      expect(run.status).toBe(0);
    } finally {
      rmSync(script, { force: true });
    }
  });

  it("runs the README's SDK user guide as written (a plain .mjs beside a stats.ts)", () => {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## User guide: the SDK"));
    const guide = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    const stats = /```ts\n(\/\/ stats\.ts[\s\S]*?)```/.exec(section)?.[1];
    expect(guide, "the README's user guide has a ts block").toBeDefined();
    expect(stats, "the README shows stats.ts").toBeDefined();
    const dir = join(root, `.e2e-guide-${randomUUID()}`);
    mkdirSync(dir);
    writeFileSync(join(dir, "stats.ts"), stats!);
    // Only the machine-specific path changes: this test machine has no /opt/venv.
    const body = guide!.replace("source /opt/venv/bin/activate", "true");
    writeFileSync(join(dir, "guide.mjs"), `const endpointId = process.argv[2];\n${body}`);
    try {
      const run = spawnSync(process.execPath, [join(dir, "guide.mjs"), stack.endpointId], {
        cwd: root,
        env: stack.env,
        encoding: "utf8",
        timeout: 120_000,
      });
      expect(run.stdout).toBe("linux\n1\n4\n9\n16\n42\n{ n: 3, mean: 2 }\ntrue true\n");
      expect(run.stderr).toContain("tasks done");
      expect(run.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("brings a thrown error back with its name, message and stack", async () => {
    const ex = stack.executor({ worker_init: "" });
    const boom = (x: number) => {
      if (x > 0) throw new TypeError(`bad x ${x}`);
      return x;
    };
    const err = await ex
      .submit(boom, 7)
      .result()
      .catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe("TypeError");
    expect((err as Error).message).toBe("bad x 7");
    expect((err as Error).stack).toContain("bad x 7");
  });

  it("stops with the seed's message and lists the endpoint as Stopped", async () => {
    const stopped = await runEndpointCli(["stop", "my_endpoint"], stack.env);
    expect(stopped.stdout).toContain("> Endpoint <my_endpoint> is now stopped");
    const { stdout } = await runEndpointCli(["list"], stack.env);
    expect(listRows(stdout).get("my_endpoint")?.status).toBe("Stopped");
  });
});
