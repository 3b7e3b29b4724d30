/**
 * Celery 5 on RabbitMQ: Debian's python3-celery under /usr/bin/python3 (the
 * python3 on PATH may be another interpreter), a vhost of its own, `rpc://`
 * results, `--pool prefork -c 2` for all figures and `--pool solo` for (a) and
 * (b). The client is celery_client.py, waiting with ResultSet.join_native().
 * Installs python3-celery with apt-get when it is missing and we are root.
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { stopProcess, waitFor } from "../../scripts/local-stack.mjs";
import { treeMem, treePids } from "../proc-tree.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const PYTHON = "/usr/bin/python3";
const execFileAsync = promisify(execFile);

export const name = "Celery";
export const versionsNote = "";

const TASKS = `import os
import time

from celery import Celery

app = Celery("benchtasks", broker=os.environ["BENCH_BROKER"], backend="rpc://")


@app.task
def noop():
    return None


@app.task
def sleep_ms(ms):
    time.sleep(ms / 1000)
`;

function celeryVersion() {
  const r = spawnSync(PYTHON, ["-c", "import celery, kombu; print(celery.__version__, kombu.__version__)"], {
    encoding: "utf8",
  });
  return r.status === 0 ? r.stdout.trim().split(" ") : undefined;
}

export async function prepare(ctx) {
  if (spawnSync(PYTHON, ["-c", "pass"]).status !== 0) return { skip: `${PYTHON} is missing` };
  if (!celeryVersion()) {
    if (process.getuid?.() !== 0) return { skip: "python3-celery is not installed and we are not root to apt-get it" };
    ctx.log("installing python3-celery with apt-get ...");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    for (const args of [
      ["update"],
      ["install", "-y", "-o", "DPkg::Lock::Timeout=600", "--no-install-recommends", "python3-celery"],
    ]) {
      const r = spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "inherit"], env });
      if (r.status !== 0) return { skip: `apt-get ${args[0]} failed` };
    }
    if (!celeryVersion()) return { skip: "python3-celery installed but celery does not import" };
  }
  const [celery, kombu] = celeryVersion();
  const vhost = await ctx.vhost();
  const dir = mkdtempSync(join(tmpdir(), "conduit-bench-celery-"));
  ctx.onDispose(async () => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "benchtasks.py"), TASKS);
  const env = { ...process.env, PYTHONPATH: dir, BENCH_BROKER: vhost.url, PYTHONDONTWRITEBYTECODE: "1" };
  delete env.PYTHONHOME;
  return {
    note: `celery ${celery}, kombu ${kombu}, ${PYTHON} ${spawnSync(PYTHON, ["-V"], { encoding: "utf8" }).stdout.trim().split(" ")[1]}, rpc:// results`,
    configs: [
      {
        id: "prefork2",
        label: "prefork -c 2",
        figures: ["a", "b", "c", "d"],
        run: (sizes) => run(sizes, env, ["--pool", "prefork", "-c", "2"], ["a", "b", "c"]),
      },
      {
        id: "solo",
        label: "solo",
        figures: ["a", "b"],
        run: (sizes) => run(sizes, env, ["--pool", "solo"], ["a", "b"]),
      },
    ],
  };
}

async function client(env, mode, sizes, figures) {
  const { stdout } = await execFileAsync(
    PYTHON,
    [join(here, "celery_client.py"), mode, JSON.stringify({ ...sizes, figures })],
    { env, maxBuffer: 1 << 20, timeout: 600_000 },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1));
}

async function run(sizes, env, poolArgs, figures) {
  const worker = spawn(
    PYTHON,
    ["-m", "celery", "-A", "benchtasks", "worker", ...poolArgs, "--loglevel", "INFO", "-n", `bench${process.pid}@%h`],
    { env, cwd: env.PYTHONPATH, stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  const collect = (d) => {
    log += d;
    if (log.length > 100_000) log = log.slice(-50_000);
  };
  worker.stdout.setEncoding("utf8").on("data", collect);
  worker.stderr.setEncoding("utf8").on("data", collect);
  try {
    await waitFor(
      "the Celery worker printing ready",
      () => {
        if (worker.exitCode !== null)
          throw new Error(`the Celery worker exited with ${worker.exitCode}: ${log.slice(-500)}`);
        return / ready\./.test(log);
      },
      60_000,
    );
    await client(env, "warm", sizes, figures);
    const mem = treeMem(worker.pid);
    const result = await client(env, "figures", sizes, figures);
    return { ...result, ...(figures.includes("c") ? { d: mem.pss, d_rss: mem.rss } : {}) };
  } finally {
    const pids = treePids(worker.pid);
    await stopProcess(worker, 10_000);
    for (const pid of pids.slice(1)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}
