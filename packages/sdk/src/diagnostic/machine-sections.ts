/**
 * The diagnostic's fixed sections, in the order they run: this machine (Node
 * and OS, CPU, memory, disks, network), Conduit's versions, the service and
 * the broker, and `conduit-endpoint list`. Each resolves its text; the runner
 * bounds it in time, redacts it and carries on when one fails.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { readFile, statfs } from "node:fs/promises";
import {
  arch,
  cpus,
  freemem,
  hostname,
  loadavg,
  networkInterfaces,
  platform,
  release,
  tmpdir,
  totalmem,
  uptime,
  userInfo,
  version,
} from "node:os";
import { delimiter, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { DEFAULT_AMQP_URL } from "@conduit/protocol";
import { SDK_VERSION } from "../index.js";
import { checkBroker, checkService, describeError, type Target } from "./connectivity.js";
import { type DiagnosticContext, SECTION_TIMEOUT_MS, type Section } from "./section.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const size = (bytes: number) => (bytes >= GiB ? `${(bytes / GiB).toFixed(1)} GiB` : `${(bytes / MiB).toFixed(0)} MiB`);

/**
 * A command's output, or a line saying why there is none (not installed,
 * failed, timed out); never a rejection, so one missing tool costs one line.
 */
function command(file: string, args: readonly string[], signal: AbortSignal, env?: NodeJS.ProcessEnv): Promise<string> {
  const shown = [file, ...args].join(" ");
  return new Promise((resolve) => {
    execFile(file, args, { signal, timeout: SECTION_TIMEOUT_MS, maxBuffer: 16 * MiB, env }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trimEnd();
      if (!err) resolve(`$ ${shown}\n${output}`);
      else if ((err as NodeJS.ErrnoException).code === "ENOENT") resolve(`$ ${shown}\n(${file} is not installed)`);
      else resolve(`$ ${shown}\n${output}${output ? "\n" : ""}(failed: ${err.message.split("\n")[0]})`);
    });
  });
}

const nodeAndOs: Section = {
  name: "Node and OS",
  async run(context, signal) {
    const user = userInfo();
    const env = (name: string) => `${name}=${process.env[name] ?? "(unset)"}`;
    const lines = [
      `Node: ${process.version} (${process.execPath})`,
      `V8 ${process.versions.v8}, OpenSSL ${process.versions.openssl}, libuv ${process.versions.uv}`,
      `Platform: ${platform()} ${arch()}, kernel ${release()}, ${version()}`,
      `Host: ${hostname()}, up ${Math.round(uptime() / 3600)} h`,
      `User: ${user.username} (uid ${user.uid}, gid ${user.gid}), home ${user.homedir}`,
      `Working directory: ${process.cwd()}`,
      `Config dir: ${context.options.configDir}`,
      env("HOME"),
      env("USER"),
      env("LANG"),
      env("PATH"),
      env("CONDUIT_USER_DIR"),
      env("CONDUIT_SERVICE_URL"),
      // Only whether they are set: their values are secrets.
      `CONDUIT_TOKEN is ${process.env.CONDUIT_TOKEN ? "set" : "unset"}`,
      `CONDUIT_CLIENT_ID is ${process.env.CONDUIT_CLIENT_ID ? "set" : "unset"}, CONDUIT_CLIENT_SECRET is ${process.env.CONDUIT_CLIENT_SECRET ? "set" : "unset"}`,
      "",
      await command("uname", ["-a"], signal),
      "",
      "$ cat /etc/os-release",
      await readFile("/etc/os-release", "utf8").then(
        (t) => t.trimEnd(),
        () => "(no /etc/os-release)",
      ),
    ];
    return lines.join("\n");
  },
};

const cpu: Section = {
  name: "CPU",
  async run(_context, signal) {
    const list = cpus();
    const models = [...new Set(list.map((c) => c.model))].join("; ");
    const lines = [
      `${list.length} CPUs: ${models}`,
      `Load average (1, 5, 15 min): ${loadavg()
        .map((l) => l.toFixed(2))
        .join(", ")}`,
      "",
      await command("lscpu", [], signal),
      "",
      await command("nvidia-smi", [], signal),
    ];
    return lines.join("\n");
  },
};

const memory: Section = {
  name: "memory",
  async run() {
    const lines = [`Total ${size(totalmem())}, free ${size(freemem())}`];
    const meminfo = await readFile("/proc/meminfo", "utf8").catch(() => "");
    const wanted = /^(MemTotal|MemAvailable|SwapTotal|SwapFree|Committed_AS):/;
    const picked = meminfo.split("\n").filter((l) => wanted.test(l));
    if (picked.length > 0) lines.push("", "/proc/meminfo:", ...picked);
    return lines.join("\n");
  },
};

const disks: Section = {
  name: "disks",
  async run(context, signal) {
    const lines: string[] = [];
    for (const [label, dir] of [
      ["config dir", context.options.configDir],
      ["working directory", process.cwd()],
      ["temp dir", tmpdir()],
    ] as const) {
      try {
        const fs = await statfs(dir);
        lines.push(`${label} ${dir}: ${size(fs.bavail * fs.bsize)} free of ${size(fs.blocks * fs.bsize)}`);
      } catch (err) {
        lines.push(`${label} ${dir}: ${(err as Error).message}`);
      }
    }
    lines.push("", await command("df", ["-h"], signal));
    if (existsSync(context.options.configDir)) {
      lines.push("", await command("du", ["-sh", context.options.configDir], signal));
    }
    return lines.join("\n");
  },
};

const network: Section = {
  name: "network",
  async run(_context, signal) {
    const lines: string[] = [];
    for (const [name, addresses] of Object.entries(networkInterfaces())) {
      const shown = (addresses ?? []).map((a) => `${a.address}/${a.cidr?.split("/")[1] ?? "?"}`);
      lines.push(`${name}: ${shown.join(", ")}`);
    }
    lines.push("", await command("ip", ["route"], signal));
    return lines.join("\n");
  },
};

/** The package.json versions of the Conduit packages this installation can resolve. */
const versions: Section = {
  name: "Conduit versions",
  async run() {
    const lines = [`@conduit/sdk ${SDK_VERSION} (${packageRoot(fileURLToPath(import.meta.url)) ?? "?"})`];
    for (const name of ["@conduit/protocol", "@conduit/endpoint", "@conduit/service"]) {
      const root = resolvePackageRoot(name);
      if (!root) {
        lines.push(`${name}: not installed here`);
        continue;
      }
      const { version: v } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
      lines.push(`${name} ${v} (${root})`);
    }
    const cli = findEndpointCli();
    lines.push(`conduit-endpoint: ${cli ? cli.join(" ") : "not found on PATH nor as @conduit/endpoint"}`);
    return lines.join("\n");
  },
};

function packageRoot(file: string): string | undefined {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
  }
  return undefined;
}

function resolvePackageRoot(name: string): string | undefined {
  try {
    return packageRoot(fileURLToPath(import.meta.resolve(name)));
  } catch {
    return undefined;
  }
}

/** How to run `conduit-endpoint`: the one on PATH, else the bin of a resolvable @conduit/endpoint. */
function findEndpointCli(): string[] | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, "conduit-endpoint"))) return [join(dir, "conduit-endpoint")];
  }
  const root = resolvePackageRoot("@conduit/endpoint");
  const bin = root && join(root, "bin", "conduit-endpoint.js");
  return bin && existsSync(bin) ? [process.execPath, bin] : undefined;
}

/** How long one REST call may take inside a section, so that a silent service leaves time for the rest of it. */
const CALL_TIMEOUT_MS = 5_000;

/** The Client takes no signal: its calls are raced against CALL_TIMEOUT_MS and the section's signal. */
async function answerWithin<T>(call: Promise<T>, signal: AbortSignal): Promise<T> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await Promise.race([
      call,
      sleep(CALL_TIMEOUT_MS, undefined, { signal: stop.signal }).then(
        () => Promise.reject(new Error(`no answer within ${CALL_TIMEOUT_MS / 1000} s`)),
        () => Promise.reject(new Error("the section ran out of time")),
      ),
    ]);
  } finally {
    signal.removeEventListener("abort", onAbort);
    stop.abort();
  }
}

const service: Section = {
  name: "service connectivity",
  async run(context, signal) {
    const lines = [
      `(service URL from ${context.serviceUrlSource})`,
      ...(await checkService(context.serviceUrl, signal)),
    ];
    if (signal.aborted) return lines.join("\n");
    if (typeof context.client === "string") {
      lines.push(`GET /v1/whoami: not tried (${context.client})`);
    } else {
      try {
        const me = await answerWithin(context.client.whoami(), signal);
        lines.push(`GET /v1/whoami: ${JSON.stringify(me)}`);
      } catch (err) {
        lines.push(`GET /v1/whoami: FAILED (${describeError(err)})`);
      }
    }
    return lines.join("\n");
  },
};

const broker: Section = {
  name: "broker connectivity",
  async run(context, signal) {
    const { targets, source } = await brokerTargets(context, signal);
    const lines = [`(broker from ${source})`];
    for (const target of targets) {
      lines.push(
        "",
        `${target.tls ? "amqps" : "amqp"}://${target.host}:${target.port}`,
        ...(await checkBroker(target, signal)),
      );
    }
    return lines.join("\n");
  },
};

/**
 * The broker the SDK would be sent to: `--amqp-url`; else the one the service
 * names for the caller's newest task group; else the service's host on the
 * AMQP ports (5672, and 5671 for TLS), as upstream tries its fixed ports.
 */
async function brokerTargets(
  context: DiagnosticContext,
  signal: AbortSignal,
): Promise<{ targets: Target[]; source: string }> {
  if (context.options.amqpUrl) return { targets: [amqpTarget(context.options.amqpUrl)], source: "--amqp-url" };
  let why = typeof context.client === "string" ? context.client : "you have no task group yet";
  if (typeof context.client !== "string") {
    try {
      const groups = await answerWithin(context.client.listTaskGroups(), signal);
      const newest = groups.at(-1);
      if (newest) {
        const detail = await answerWithin(context.client.getTaskGroup(newest.task_group_id), signal);
        return { targets: [amqpTarget(detail.amqp.url)], source: `the service (task group ${newest.task_group_id})` };
      }
    } catch (err) {
      why = `asking the service failed: ${describeError(err)}`;
    }
  }
  const host = new URL(context.serviceUrl).hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    targets: [
      { host, port: Number(new URL(DEFAULT_AMQP_URL).port), tls: false },
      { host, port: 5671, tls: true },
    ],
    source: `the service's host on the AMQP ports, since the service could not name it (${why}); --amqp-url names another`,
  };
}

function amqpTarget(url: string): Target {
  const parsed = new URL(url);
  const tls = parsed.protocol === "amqps:";
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"), port: Number(parsed.port || (tls ? 5671 : 5672)), tls };
}

const endpointList: Section = {
  name: "conduit-endpoint list",
  async run(context, signal) {
    const cli = findEndpointCli();
    if (!cli) {
      return "conduit-endpoint is not installed here (not on PATH, and @conduit/endpoint cannot be resolved); install @conduit/endpoint on the endpoint's machine and run this there.";
    }
    const [file, ...args] = cli;
    return command(file, [...args, "list"], signal, { ...process.env, CONDUIT_USER_DIR: context.options.configDir });
  },
};

/** The fixed sections, before the per-endpoint ones. */
export const MACHINE_SECTIONS: readonly Section[] = [
  nodeAndOs,
  cpu,
  memory,
  disks,
  network,
  versions,
  service,
  broker,
  endpointList,
];
