/**
 * PBSProProvider, LSFProvider and GridEngineProvider against scheduler
 * answers written down from their documented output formats (PBS Pro 2022
 * `qstat -f -x -F json`, LSF 10.1 `bjobs -o … delimiter='|'`, SGE `qstat`),
 * through the command runner: job scripts, submit commands, job ids, the
 * state tables and the named causes (walltime, memory, cancelled).
 */
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { describeJobEnd } from "../src/providers/job-output.js";
import type { JobStatus } from "../src/providers/provider-types.js";
import { createProvider } from "../src/providers/registry.js";
import { RecordedScheduler, readmeHpcEngine, startRecorded } from "./providers.recorded.helpers.js";

let cleanup: (() => void) | undefined;
afterEach(() => {
  cleanup?.();
  cleanup = undefined;
});

async function recorded(config: Record<string, unknown>) {
  const scheduler = new RecordedScheduler();
  const provider = createProvider(config);
  const started = await startRecorded(provider, scheduler);
  cleanup = started.cleanup;
  return { scheduler, provider, runDir: started.runDir };
}

function directives(scriptPath: string, prefix: string): string[] {
  return readFileSync(scriptPath, "utf8")
    .split("\n")
    .filter((line) => line.startsWith(prefix));
}

const QSTAT = JSON.stringify({
  timestamp: 1733580000,
  pbs_version: "2022.1.1",
  pbs_server: "pbs01",
  Jobs: {
    "101.pbs01": { Job_Name: "block-0", job_state: "R", queue: "workq" },
    "102.pbs01": {
      Job_Name: "block-1",
      job_state: "Q",
      queue: "workq",
      comment: "Not Running: Insufficient amount of resource: ncpus",
    },
    "103.pbs01": {
      Job_Name: "block-2",
      job_state: "F",
      Exit_status: -29,
      comment: "job killed: walltime 1230 exceeded limit 1200",
    },
    "104.pbs01": {
      Job_Name: "block-3",
      job_state: "F",
      Exit_status: -27,
      comment: "job killed: mem 8421376kb exceeded limit 8388608kb",
    },
    "105.pbs01": {
      Job_Name: "block-4",
      job_state: "F",
      Exit_status: 271,
      comment: "Job run at Mon Dec 07 at 15:01 on (n01:ncpus=4) and finished",
    },
    "106.pbs01": { Job_Name: "block-5", job_state: "F", Exit_status: 3 },
    "107.pbs01": { Job_Name: "block-6", job_state: "F", Exit_status: 0 },
  },
});

describe("PBSProProvider (recorded PBS Pro answers)", () => {
  it("writes #PBS directives and submits with qsub -q -A", async () => {
    const { scheduler, provider } = await recorded({
      type: "PBSProProvider",
      account: "proj1",
      queue: "debug",
      cpus_per_node: 32,
      select_options: "ngpus=4",
      nodes_per_block: 2,
      walltime: "00:30:00",
      scheduler_options: "#PBS -l filesystems=home:eagle",
      worker_init: "module load nodejs",
      launcher: { type: "MpiExecLauncher", bind_cmd: "--cpu-bind", overrides: "--ppn 1" },
    });
    scheduler.answer("qsub", "101.pbs01\n");
    expect(await provider.submit("node manager.js", "block-0")).toBe("101.pbs01");
    const [argv] = scheduler.callsOf("qsub");
    expect(argv.slice(0, 5)).toEqual(["qsub", "-q", "debug", "-A", "proj1"]);
    const stem = argv[5].replace(/\.submit$/, "");
    expect(directives(argv[5], "#PBS")).toEqual([
      "#PBS -S /bin/bash",
      `#PBS -N ${stem.split("/").pop()}`,
      "#PBS -m n",
      "#PBS -l walltime=00:30:00",
      "#PBS -l select=2:ncpus=32:ngpus=4",
      `#PBS -o ${stem}.stdout`,
      `#PBS -e ${stem}.stderr`,
      "#PBS -l filesystems=home:eagle",
    ]);
    expect(readFileSync(argv[5], "utf8")).toContain(
      "mpiexec --cpu-bind none --ppn 1 -n $WORKERCOUNT --hostfile $HOSTFILE /usr/bin/sh cmd_$JOBNAME.sh",
    );
  });

  it("maps job_state and Exit_status: walltime, memory, signal, exit code, and an id qstat forgot", async () => {
    const { scheduler, provider } = await recorded({ type: "PBSProProvider", walltime: "00:20:00" });
    const ids = ["101", "102", "103", "104", "105", "106", "107", "108"].map((n) => `${n}.pbs01`);
    for (const id of ids) scheduler.answer("qsub", `${id}\n`);
    for (const id of ids) await provider.submit("true", `block-${id}`);
    scheduler.answer("qstat", QSTAT, 153, "qstat: Unknown Job Id 108.pbs01\n");
    const statuses = await provider.status(ids);
    expect(scheduler.callsOf("qstat")[0]).toEqual(["qstat", "-f", "-x", "-F", "json", ...ids]);
    const at = (id: string) => statuses.get(`${id}.pbs01`) as JobStatus;
    expect(at("101").state).toBe("running");
    expect(at("102")).toMatchObject({
      state: "pending",
      message: "Not Running: Insufficient amount of resource: ncpus",
    });
    expect(at("103")).toMatchObject({ state: "timeout", walltime: "00:20:00" });
    expect(describeJobEnd(at("103"))).toBe("reached its walltime (00:20:00)");
    expect(at("104")).toMatchObject({ state: "failed", outOfMemory: true });
    expect(describeJobEnd(at("104"))).toMatch(
      /^was killed by the scheduler for exceeding its memory \(job killed: mem/,
    );
    expect(at("105")).toMatchObject({ state: "failed", signal: "SIGTERM" });
    expect(at("106")).toMatchObject({ state: "failed", exitCode: 3 });
    expect(at("107").state).toBe("completed");
    expect(at("108").state).toBe("missing");
  });

  it("fails a submit with what qsub said", async () => {
    const { scheduler, provider } = await recorded({ type: "PBSProProvider", queue: "nope" });
    scheduler.answer("qsub", "", 168, "qsub: Unknown queue\n");
    await expect(provider.submit("true", "block-0")).rejects.toThrow(
      /^`qsub -q nope \S+\.submit` exited with code 168; stdout: \(empty\); stderr: "qsub: Unknown queue"$/,
    );
  });

  it("takes the README's PBS Pro template as it renders", async () => {
    const engine = readmeHpcEngine("PBSProProvider", { account: "proj1", select_options: "ngpus=1" });
    const { scheduler, provider } = await recorded(engine.provider as Record<string, unknown>);
    scheduler.answer("qsub", "7.pbs01\n");
    await provider.submit("node manager.js", "block-0");
    const [argv] = scheduler.callsOf("qsub");
    expect(argv.slice(0, 5)).toEqual(["qsub", "-q", "workq", "-A", "proj1"]);
    expect(directives(argv[5], "#PBS")).toEqual(
      expect.arrayContaining([
        "#PBS -l select=1:ncpus=8:ngpus=1",
        "#PBS -l walltime=01:00:00",
        "#PBS -l filesystems=home",
      ]),
    );
    expect(readFileSync(argv[5], "utf8")).toContain("module load nodejs\nconduit_worker_init_status=$?");
  });

  it("cancels with qdel", async () => {
    const { scheduler, provider } = await recorded({ type: "PBSProProvider" });
    scheduler.answer("qsub", "101.pbs01\n").answer("qdel", "");
    scheduler.answer("qstat", JSON.stringify({ Jobs: { "101.pbs01": { job_state: "F", Exit_status: 271 } } }));
    await provider.submit("true", "block-0");
    await provider.cancel(["101.pbs01"]);
    expect(scheduler.callsOf("qdel")).toEqual([["qdel", "101.pbs01"]]);
    expect((await provider.status(["101.pbs01"])).get("101.pbs01")?.state).toBe("cancelled");
  });
});

describe("LSFProvider (recorded LSF answers)", () => {
  it("writes #BSUB directives, by nodes or by cores, and submits with bsub (or bsub < script)", async () => {
    const byNodes = await recorded({
      type: "LSFProvider",
      project: "CSC123",
      queue: "batch",
      nodes_per_block: 2,
      walltime: "02:00:00",
      launcher: { type: "JsrunLauncher", overrides: "-c ALL_CPUS" },
    });
    byNodes.scheduler.answer("bsub", "Job <201> is submitted to queue <batch>.\n");
    expect(await byNodes.provider.submit("node manager.js", "block-0")).toBe("201");
    const [argv] = byNodes.scheduler.callsOf("bsub");
    const stem = argv[1].replace(/\.submit$/, "");
    expect(directives(argv[1], "#BSUB")).toEqual([
      "#BSUB -W 120",
      `#BSUB -J ${stem.split("/").pop()}`,
      `#BSUB -o ${stem}.stdout`,
      `#BSUB -e ${stem}.stderr`,
      "#BSUB -P CSC123",
      "#BSUB -q batch",
      "#BSUB -nnodes 2",
    ]);
    expect(readFileSync(argv[1], "utf8")).toContain("jsrun -n 2 -r 1 -c ALL_CPUS /bin/bash cmd_$JOBNAME.sh &");
    cleanup?.();

    const byCores = await recorded({
      type: "LSFProvider",
      request_by_nodes: false,
      cores_per_block: 40,
      cores_per_node: 16,
      bsub_redirection: true,
    });
    expect(byCores.provider.nodesPerBlock).toBe(3);
    byCores.scheduler.answer("/bin/sh", "Job <202> is submitted to default queue <normal>.\n");
    expect(await byCores.provider.submit("true", "block-1")).toBe("202");
    const [shell] = byCores.scheduler.callsOf("/bin/sh");
    expect(shell[2]).toMatch(/^bsub < \S+\/submit_scripts\/block-1\.\d+\.submit$/);
    expect(directives(shell[2].slice("bsub < ".length), "#BSUB").slice(4)).toEqual([
      "#BSUB -n 40",
      '#BSUB -R "span[ptile=16]"',
    ]);
  });

  it("maps STAT and the exit reason: walltime, memory, cancelled, exit code, and an id bjobs forgot", async () => {
    const { scheduler, provider } = await recorded({ type: "LSFProvider", walltime: "00:05:00" });
    const ids = ["201", "202", "203", "204", "205", "206", "207", "208"];
    for (const id of ids) scheduler.answer("bsub", `Job <${id}> is submitted to queue <normal>.\n`);
    for (const id of ids) await provider.submit("true", `block-${id}`);
    scheduler.answer(
      "bjobs",
      [
        "201|RUN|-|-",
        "202|EXIT|140|TERM_RUNLIMIT: job killed after reaching LSF run time limit",
        "203|EXIT|-|TERM_MEMLIMIT: job killed after reaching LSF memory usage limit",
        "204|EXIT|3|-",
        "205|EXIT|130|TERM_OWNER: job killed by owner",
        "206|DONE|-|-",
        "207|PEND|-|-",
        "",
      ].join("\n"),
      255,
      "Job <208> is not found\n",
    );
    const statuses = await provider.status(ids);
    expect(scheduler.callsOf("bjobs")[0]).toEqual([
      "bjobs",
      "-a",
      "-noheader",
      "-o",
      "jobid stat exit_code exit_reason delimiter='|'",
      ...ids,
    ]);
    const at = (id: string) => statuses.get(id) as JobStatus;
    expect(at("201").state).toBe("running");
    expect(at("202")).toMatchObject({ state: "timeout", walltime: "00:05:00" });
    expect(at("203")).toMatchObject({ state: "failed", outOfMemory: true });
    expect(describeJobEnd(at("203"))).toMatch(/^was killed by the scheduler for exceeding its memory \(TERM_MEMLIMIT/);
    expect(at("204")).toMatchObject({ state: "failed", exitCode: 3 });
    expect(at("205").state).toBe("cancelled");
    expect(at("206").state).toBe("completed");
    expect(at("207").state).toBe("pending");
    expect(at("208").state).toBe("missing");
  });

  it("refuses request_by_nodes: false without both core counts", () => {
    expect(() => createProvider({ type: "LSFProvider", request_by_nodes: false, cores_per_node: 16 })).toThrow(
      "engine.provider.request_by_nodes is false but engine.provider.cores_per_block or engine.provider.cores_per_node is missing; set both, or remove request_by_nodes.",
    );
  });
});

describe("GridEngineProvider (recorded qstat)", () => {
  it("submits with qsub -terse and reads qstat's table", async () => {
    const { scheduler, provider } = await recorded({ type: "GridEngineProvider", queue: "all.q" });
    scheduler.answer("qsub", "301\n").answer("qsub", "302\n");
    expect(await provider.submit("true", "block-0")).toBe("301");
    await provider.submit("true", "block-1");
    const script = scheduler.callsOf("qsub")[0][2];
    expect(directives(script, "#$")).toContain("#$ -q all.q");
    expect(directives(script, "#$")).toContain("#$ -l h_rt=00:10:00");
    scheduler.answer(
      "qstat",
      [
        "job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID",
        "-----------------------------------------------------------------------------------------------------------------",
        "    301 0.55500 block-0.17 alice        r     12/07/2026 15:01:02 all.q@node01                       1",
        "    302 0.00000 block-1.17 alice        qw    12/07/2026 15:01:03                                    1",
        "",
      ].join("\n"),
    );
    const statuses = await provider.status(["301", "302"]);
    expect(statuses.get("301")?.state).toBe("running");
    expect(statuses.get("302")?.state).toBe("pending");
  });
});
