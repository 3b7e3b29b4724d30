/**
 * The MEP's command handling, with a real service, RabbitMQ and real UEP
 * processes: a start_uep command (published here, as the service would)
 * spawns one UEP with the seed's log lines, a second one for the same UEP
 * does not; stale and malformed commands are ignored; a UEP that keeps
 * crashing with tasks queued is restarted at most 5 times, then its tasks fail
 * with UEP_CRASHED; a UEP that could not start (exit 3) is not restarted.
 */
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { commandQueue, connectBroker, encodeMessage } from "@conduit/protocol";
import amqp from "amqplib";
import { describe, expect, it } from "vitest";
import { createBrokerUser } from "../../../scripts/local-stack.mjs";
import { pidAlive, readLog, runCli } from "./cli.helpers.js";
import { alive } from "./engines.as-user.helpers.js";
import {
  queueTasks,
  runningEndpoint,
  sendCommand,
  startUepCommand,
  tapResults,
  useServiceAndBroker,
} from "./manager.helpers.js";

const context = useServiceAndBroker("manager-test");

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

describe("MEP start_uep commands", () => {
  it("spawns one UEP per command with the seed's log lines, and not a second one while it runs", async () => {
    const { userDir, dir, log, mep, env } = await runningEndpoint(context.service, "ueps");
    const cmd = startUepCommand(mep);
    await sendCommand(context.broker, cmd, mep.endpointId);
    const created = new RegExp(
      `Creating new user endpoint \\(pid: (\\d+)\\) \\[\\((\\S+), ${cmd.uepName}\\) conduit-endpoint _start-user-endpoint ${cmd.uepName}\\]`,
    );
    await expect.poll(() => created.exec(readLog(log)), { timeout: 15_000 }).not.toBeNull();
    const [, pidText, user] = created.exec(readLog(log))!;
    const pid = Number(pidText);
    expect(readLog(log)).toContain(
      `Command process successfully forked for '${user}' (Conduit effective identity: ${cmd.identity.id}).`,
    );
    expect(pidAlive(pid)).toBe(true);
    // `_start-user-endpoint <name>`, or the title the UEP gives itself: the name either way.
    expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toContain(cmd.uepName);
    expect(JSON.parse(readFileSync(join(dir, "ueps.json"), "utf8"))).toEqual({
      // The command it runs with: the next MEP restarts it from that if this one dies with tasks queued.
      ueps: [{ name: cmd.uepName, pid, pgid: pid, command: expect.objectContaining({ uepName: cmd.uepName }) }],
    });
    // Its stdout/stderr and its own log live in its own folder.
    expect(existsSync(join(userDir, cmd.uepName, "endpoint.log"))).toBe(true);

    await sendCommand(context.broker, { ...cmd, sentAt: Date.now() }, mep.endpointId);
    await expect
      .poll(() => readLog(log), { timeout: 10_000 })
      .toContain(`User endpoint ${cmd.uepName} is already running (pid: ${pid})`);
    expect(count(readLog(log), "Creating new user endpoint")).toBe(1);

    const stopped = await runCli(["stop", "ueps"], env);
    expect(stopped.stdout).toBe("> Endpoint <ueps> is now stopped\n");
    expect(pidAlive(pid)).toBe(false);
    const text = readLog(log);
    expect(text).toContain(`Signaling shutdown of user endpoint (PID: ${pid}, PGID: ${pid},`);
    expect(text).toMatch(
      new RegExp(
        `Command (stopped normally|return code: \\d+|terminated by signal: \\w+) \\(${pid}\\) \\[\\(${user}, ${cmd.uepName}\\)`,
      ),
    );
    expect(existsSync(join(dir, "ueps.json"))).toBe(false);
  });

  it("ends a stopped UEP's whole process tree, setsid'd processes included", async () => {
    const { dir, userDir, log, mep, env } = await runningEndpoint(context.service, "tree");
    const pidFile = join(userDir, "daemon.pid");
    // endpoint_setup starts a daemon in a session of its own: outside the UEP's process group.
    writeFileSync(
      join(dir, "user_config_template.yaml.j2"),
      `endpoint_setup: "setsid sleep 300 >/dev/null 2>&1 < /dev/null & echo $! > ${pidFile}"\nengine:\n  type: ThreadPoolEngine\n  max_workers: 1\nidle_heartbeats_soft: 0\n`,
    );
    const cmd = startUepCommand(mep);
    await sendCommand(context.broker, cmd, mep.endpointId);
    await expect
      .poll(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() !== "", { timeout: 15_000 })
      .toBe(true);
    const daemon = Number(readFileSync(pidFile, "utf8"));
    expect(pidAlive(daemon)).toBe(true);
    expect(readLog(log)).toMatch(/User endpoints run without a cgroup|Each user endpoint runs in a cgroup of its own/);
    expect((await runCli(["stop", "tree"], env)).code).toBe(0);
    await expect.poll(() => alive(daemon), { timeout: 5_000 }).toBe(false);
  });

  it("ignores commands that are too old or malformed", async () => {
    const { log, mep, env } = await runningEndpoint(context.service, "picky");
    await sendCommand(context.broker, startUepCommand(mep, { sentAt: Date.now() - 10 * 60_000 }), mep.endpointId);
    await sendCommand(context.broker, Buffer.from("not json"), mep.endpointId);
    await sendCommand(context.broker, startUepCommand(mep, { uepName: "uep.elsewhere" }), mep.endpointId);
    await expect.poll(() => count(readLog(log), "Dropped a command"), { timeout: 10_000 }).toBe(2);
    await expect
      .poll(() => readLog(log), { timeout: 10_000 })
      // One JSON log line: its message's newline comes escaped.
      .toContain(
        JSON.stringify(
          "Ignoring command from server\nCommand too old or skew between system clocks is too large.",
        ).slice(1, -1),
      );
    expect(readLog(log)).not.toContain("Creating new user endpoint");
    expect((await runCli(["stop", "picky"], env)).code).toBe(0);
  });

  it("drops a command not published by the service's broker user, logging the account", async () => {
    const { log, mep, env } = await runningEndpoint(context.service, "wary");
    const intruder = await createBrokerUser(context.service.amqpUrl);
    const forger = await connectBroker(intruder.url, { name: "forger", maxRetries: 0 });
    const plain = await amqp.connect(context.service.amqpUrl);
    try {
      // Another account (its user-id stamped and checked by RabbitMQ), then the service's own without user-id.
      await forger.publish("", commandQueue(mep.endpointId), startUepCommand(mep));
      const ch = await plain.createConfirmChannel();
      ch.sendToQueue(commandQueue(mep.endpointId), encodeMessage(startUepCommand(mep)), { persistent: true });
      await ch.waitForConfirms();
      await expect
        .poll(() => readLog(log), { timeout: 10_000 })
        .toContain(
          `Refused a command on ${commandQueue(mep.endpointId)}: only guest may send one, sent by broker account ${intruder.name}; it was dropped.`,
        );
      await expect
        .poll(() => readLog(log), { timeout: 10_000 })
        .toContain("only guest may send one, sent by broker account (no user-id); it was dropped.");
      // The service's command, sent after them, is the one that starts a UEP.
      const real = startUepCommand(mep);
      await sendCommand(context.broker, real, mep.endpointId);
      await expect.poll(() => count(readLog(log), "Creating new user endpoint"), { timeout: 15_000 }).toBe(1);
      expect(readLog(log)).toContain(real.uepName);
    } finally {
      await forger.close();
      await plain.close().catch(() => undefined);
      await intruder.dispose();
      expect((await runCli(["stop", "wary"], env)).code).toBe(0);
    }
  });

  it("restarts a crashing UEP with queued tasks at most 5 times, then fails its tasks with UEP_CRASHED", async () => {
    const { dir, log, mep, env, userDir } = await runningEndpoint(context.service, "crashes");
    // Written after start: the MEP reads user_environment.yaml afresh for each UEP.
    // This one makes node itself fail before any UEP code runs (exit code 1).
    writeFileSync(join(dir, "user_environment.yaml"), `NODE_OPTIONS: --require=/nonexistent/${randomUUID()}.cjs\n`);
    const results = await tapResults(context.broker, mep.endpointId);
    const cmd = startUepCommand(mep);
    const taskIds = await queueTasks(context.broker, cmd, 2);
    await sendCommand(context.broker, cmd, mep.endpointId);

    await expect.poll(() => results.length, { timeout: 40_000, interval: 200 }).toBe(2);
    const text = readLog(log);
    expect(count(text, `Creating new user endpoint`)).toBe(6);
    expect(count(text, `Command return code: 1`)).toBe(6);
    expect(
      count(
        text,
        `User endpoint ${cmd.uepName} stopped (exit code 1) with 2 message(s) in its queue; starting it again`,
      ),
    ).toBe(5);
    expect(text).toContain(`User endpoint ${cmd.uepName} stopped (exit code 1) 6 times within a minute; failing`);
    const uepLog = join(userDir, cmd.uepName, "endpoint.log");
    expect(results.map((r) => r.taskId).sort()).toEqual([...taskIds].sort());
    for (const r of results) {
      expect(r).toMatchObject({ state: "failed", endpointId: mep.endpointId, uepId: cmd.uepId });
      expect(r.error?.code).toBe("UEP_CRASHED");
      expect(r.error?.message).toContain("exit code 1");
      expect(r.error?.message).toContain(uepLog);
    }
    // node's own error went to the UEP's log.
    expect(readLog(uepLog)).toContain("Cannot find module");
    expect((await runCli(["stop", "crashes"], env)).code).toBe(0);
  });

  it("does not restart a UEP stopped at idle_heartbeats_hard, and fails its stuck task at once naming the limit", async () => {
    const { dir, log, mep, env } = await runningEndpoint(context.service, "hard-idle");
    // Read afresh for each UEP: one-second beats, stopped after 2 without movement.
    writeFileSync(
      join(dir, "user_config_template.yaml.j2"),
      "engine:\n  type: ThreadPoolEngine\n  max_workers: 1\nheartbeat_period: 1\nidle_heartbeats_soft: 1\nidle_heartbeats_hard: 2\n",
    );
    const results = await tapResults(context.broker, mep.endpointId);
    const cmd = startUepCommand(mep);
    const [taskId] = await queueTasks(context.broker, cmd, 1, { source: "() => new Promise(() => {})" });
    await sendCommand(context.broker, cmd, mep.endpointId);

    await expect.poll(() => results.length, { timeout: 30_000, interval: 200 }).toBe(1);
    expect(results[0]).toMatchObject({ taskId, state: "failed", uepId: cmd.uepId });
    expect(results[0].error?.code).toBe("UEP_IDLE_HARD_LIMIT");
    expect(results[0].error?.name).toBe("UepIdleHardLimit");
    expect(results[0].error?.message).toContain("idle_heartbeats_hard limit (2 heartbeats of 1 s, 2 s without");
    const text = readLog(log);
    expect(text).toMatch(/Command return code: 5 \(\d+\)/);
    expect(text).toContain(
      `User endpoint ${cmd.uepName} stopped at its idle_heartbeats_hard limit with tasks unfinished; not restarting it`,
    );
    expect(count(text, "Creating new user endpoint")).toBe(1);
    expect(text).not.toContain("starting it again");
    expect(text).not.toContain("UEP_CRASHED");
    expect((await runCli(["stop", "hard-idle"], env)).code).toBe(0);
  });

  it("does not restart a UEP that could not start, and that UEP tells the submitter why", async () => {
    const missing = `/nonexistent/${randomUUID()}/template.yaml.j2`;
    const { log, mep, env } = await runningEndpoint(
      context.service,
      "broken",
      `user_config_template_path: ${missing}\n`,
    );
    const results = await tapResults(context.broker, mep.endpointId);
    const cmd = startUepCommand(mep);
    const [taskId] = await queueTasks(context.broker, cmd, 1);
    await sendCommand(context.broker, cmd, mep.endpointId);

    await expect.poll(() => results.length, { timeout: 30_000, interval: 200 }).toBe(1);
    expect(results[0]).toMatchObject({ taskId, state: "failed" });
    expect(results[0].error?.message).toContain(`cannot read its user config template ${missing} (ENOENT)`);
    await expect
      .poll(() => readLog(log), { timeout: 20_000 })
      .toContain(`User endpoint ${cmd.uepName} could not start; not restarting it`);
    expect(readLog(log)).toMatch(/Command return code: 3 \(\d+\)/);
    expect(count(readLog(log), "Creating new user endpoint")).toBe(1);
    expect(readLog(log)).not.toContain("starting it again");
    expect((await runCli(["stop", "broken"], env)).code).toBe(0);
  });

  it("fails, with the UEP's reason, the tasks a UEP that could not start left in its queue", async () => {
    const missing = `/nonexistent/${randomUUID()}/template.yaml.j2`;
    const { log, mep, env } = await runningEndpoint(
      context.service,
      "unreachable",
      `user_config_template_path: ${missing}\n`,
    );
    const results = await tapResults(context.broker, mep.endpointId);
    // A broker account that does not exist: the UEP cannot fail its tasks itself (as when the service deleted it).
    const badUrl = new URL(context.service.amqpUrl);
    badUrl.username = `nobody-${randomUUID()}`;
    badUrl.password = "wrong";
    const cmd = startUepCommand(mep, { amqpUrl: badUrl.toString() });
    // Two messages: a lone task and a batch of two (the MEP's figure counts messages).
    const taskIds = [
      ...(await queueTasks(context.broker, cmd, 1)),
      ...(await queueTasks(context.broker, cmd, 2, { batch: true })),
    ];
    await sendCommand(context.broker, cmd, mep.endpointId);

    await expect.poll(() => results.length, { timeout: 60_000, interval: 200 }).toBe(3);
    expect(results.map((r) => r.taskId).sort()).toEqual([...taskIds].sort());
    for (const r of results) {
      expect(r).toMatchObject({ state: "failed", uepId: cmd.uepId, error: { code: "UEP_START_FAILED" } });
      expect(r.error?.message).toContain(`cannot read its user config template ${missing} (ENOENT)`);
    }
    expect(readLog(log)).toContain(
      `User endpoint ${cmd.uepName} could not start and left 2 message(s) in its queue; failing their tasks`,
    );
    // The messages held 3 tasks, and the MEP counts those once it has taken them out.
    expect(readLog(log)).toContain(`Failed 3 task(s) of ${cmd.uepName} (UEP_START_FAILED)`);
    expect(count(readLog(log), "Creating new user endpoint")).toBe(1);
    expect((await runCli(["stop", "unreachable"], env)).code).toBe(0);
  });
});
