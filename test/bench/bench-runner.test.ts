/**
 * `npm run bench` in its quickest mode, for the RabbitMQ floor only: the
 * runner prints the Markdown table and writes the JSON file with the
 * figures it measured. Nothing here asserts a time.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}
interface BenchJson {
  machine: { host: string; node: string; loadBefore: string; loadAfter: string };
  sizes: { quick: boolean; repetitions: number };
  peers: {
    id: string;
    skipped?: string;
    configs: {
      id: string;
      figures: string[];
      repetitions: Record<string, number>[];
      summary: Record<string, Summary>;
    }[];
  }[];
}

let dir: string;
let stdout = "";
let code: number | null = null;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "conduit-bench-test-"));
  const child = spawn(process.execPath, ["bench/run.mjs"], {
    env: { ...process.env, BENCH_QUICK: "1", BENCH_PEERS: "floor", BENCH_RESULTS_DIR: dir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr.resume();
  code = await new Promise((resolve) => child.once("exit", resolve));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("bench runner, quick, floor only", () => {
  it("exits 0 and prints the machine line and a Markdown row per floor configuration", () => {
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Machine: .*Node \d+\.\d+\.\d+; RabbitMQ .*load average .* before, .* after\.$/m);
    expect(stdout).toMatch(/^\| system \| configuration \| \(a\) round trip p50, ms \|/m);
    for (const label of ["transient", "durable"]) {
      // p50, p99 and (b) are numbers; (c), (d) PSS and RSS, (e) and (e') are not figures of the floor.
      expect(stdout).toMatch(
        new RegExp(`^\\| RabbitMQ floor \\| ${label} \\| [\\d.]+ \\| [\\d.]+ \\| \\d+ \\|( – \\|){5}$`, "m"),
      );
    }
  });

  it("writes <date>-<host>.json with the figures of every repetition and their summary", async () => {
    const files = await readdir(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^\d{4}-\d{2}-\d{2}-.+\.json$/);
    const json = JSON.parse(await readFile(join(dir, files[0]!), "utf8")) as BenchJson;
    expect(json.sizes).toMatchObject({ quick: true, repetitions: 1 });
    expect(json.machine.node).toBe(process.versions.node);
    expect(json.peers.map((p) => p.id)).toEqual(["floor"]);
    const floor = json.peers[0]!;
    expect(floor.skipped).toBeUndefined();
    expect(floor.configs.map((c) => c.id)).toEqual(["transient", "durable"]);
    for (const config of floor.configs) {
      expect(config.repetitions).toHaveLength(1);
      expect(Object.keys(config.summary).sort()).toEqual(["a_p50", "a_p99", "b"]);
      for (const s of Object.values(config.summary)) {
        expect(s.n).toBe(1);
        expect(s.median).toBeGreaterThan(0);
        expect(s.min).toBe(s.median);
        expect(s.max).toBe(s.median);
      }
      expect(config.summary.a_p99!.median).toBeGreaterThanOrEqual(config.summary.a_p50!.median);
    }
  });
});
