/**
 * Launchers: how a block's job script starts one block manager per node (or
 * several). A launcher wraps the launch command into shell text that the
 * provider writes into the job script after worker_init, with the command
 * shapes of Parsl's launchers (`parsl/launchers/launchers.py`), so an admin's
 * `overrides` mean what they meant there.
 *
 * ```ts
 * new SrunLauncher({ debug: false, overrides: "--cpu-bind=none" }).wrap("manager --port 1", 1, 2);
 * // … srun --ntasks 2 -l --cpu-bind=none bash $path_cmd/cmd_$SLURM_JOB_NAME.sh …
 * ```
 */

export interface Launcher {
  /** The config `type`, e.g. `SrunLauncher`. */
  readonly type: string;
  /** Shell text that starts `command` `tasksPerNode` times on each of `nodesPerBlock` nodes. */
  wrap(command: string, tasksPerNode: number, nodesPerBlock: number): string;
}

export interface LauncherOptions {
  /** Echo progress lines ("Found cores", "Done") into the job's stdout. */
  readonly debug: boolean;
}

/** `[[ "1" == "1" ]] && echo …`: Parsl's debug lines, kept as it writes them. */
function debugFlag(options: LauncherOptions): number {
  return options.debug ? 1 : 0;
}

/** Parsl's opening lines of the launchers that count cores on the node they run on. */
function coresHeader(options: LauncherOptions, workers: number): string {
  return `set -e
export CORES=$(getconf _NPROCESSORS_ONLN)
[[ "${debugFlag(options)}" == "1" ]] && echo "Found cores : $CORES"
WORKERCOUNT=${workers}
`;
}

/** Parsl's opening lines of the Slurm launchers: cores and nodes from the allocation. */
function slurmHeader(options: LauncherOptions, workers: number): string {
  const debug = debugFlag(options);
  return `set -e
export CORES=$SLURM_CPUS_ON_NODE
export NODES=$SLURM_JOB_NUM_NODES

[[ "${debug}" == "1" ]] && echo "Found cores : $CORES"
[[ "${debug}" == "1" ]] && echo "Found nodes : $NODES"
WORKERCOUNT=${workers}
`;
}

/** The here-document (ended by `<RUNNER>_EOF`) that writes the command to a file the parallel launcher runs on every node. */
function commandFile(runner: string, command: string, file: string, mode: "u+x" | "a+x"): string {
  const marker = `${runner}_EOF`;
  return `cat << ${marker} > ${file}
${command}
${marker}
chmod ${mode} ${file}
`;
}

/** Runs the command as it is: one block manager per job (a single node). */
export class SimpleLauncher implements Launcher {
  readonly type = "SimpleLauncher";
  wrap(command: string): string {
    return command;
  }
}

/** Puts `prepend` in front of the command (e.g. a container runner, `time`). */
export class WrappedLauncher implements Launcher {
  readonly type = "WrappedLauncher";
  constructor(private readonly options: { readonly prepend: string }) {}
  wrap(command: string): string {
    return `${this.options.prepend} ${command}`;
  }
}

/** Starts `tasksPerNode × nodesPerBlock` copies on the job's first node and waits for them. */
export class SingleNodeLauncher implements Launcher {
  readonly type = "SingleNodeLauncher";
  constructor(private readonly options: LauncherOptions & { readonly fail_on_any: boolean }) {}
  wrap(command: string, tasksPerNode: number, nodesPerBlock: number): string {
    const debug = debugFlag(this.options);
    return `${coresHeader(this.options, tasksPerNode * nodesPerBlock)}FAILONANY=${this.options.fail_on_any ? 1 : 0}
PIDS=""

CMD() {
${command}
}
for COUNT in $(seq 1 1 $WORKERCOUNT); do
    [[ "${debug}" == "1" ]] && echo "Launching worker: $COUNT"
    CMD $COUNT &
    PIDS="$PIDS $!"
done

ALLFAILED=1
ANYFAILED=0
for PID in $PIDS ; do
    wait $PID
    if [ "$?" != "0" ]; then
        ANYFAILED=1
    else
        ALLFAILED=0
    fi
done

[[ "${debug}" == "1" ]] && echo "All workers done"
if [ "$FAILONANY" == "1" ]; then
    exit $ANYFAILED
else
    exit $ALLFAILED
fi
`;
  }
}

export interface OverridesOptions extends LauncherOptions {
  /** Extra arguments for the parallel launcher (`srun`, `mpiexec`, `aprun`, …). */
  readonly overrides: string;
}

/** Writes the command to `cmd_<job>.sh` beside the job's stdout and runs it with one `srun` over the allocation. */
export class SrunLauncher implements Launcher {
  readonly type = "SrunLauncher";
  constructor(private readonly options: OverridesOptions) {}
  wrap(command: string, tasksPerNode: number, nodesPerBlock: number): string {
    const taskBlocks = tasksPerNode * nodesPerBlock;
    return `${slurmHeader(this.options, taskBlocks)}
# SLURM_JOB_STDOUT exists from Slurm 23.02 on (Parsl's bare \`dirname $SLURM_JOB_STDOUT\` stops older ones under set -e).
path_cmd=$(dirname "\${SLURM_JOB_STDOUT:-$PWD/.}")

${commandFile("SLURM", command, "$path_cmd/cmd_$SLURM_JOB_NAME.sh", "a+x")}
srun --ntasks ${taskBlocks} -l ${this.options.overrides} bash $path_cmd/cmd_$SLURM_JOB_NAME.sh

[[ "${debugFlag(this.options)}" == "1" ]] && echo "Done"
`;
  }
}

/** One `srun` per concurrent MPI application, each over its share of the allocation's nodes or cores. */
export class SrunMPILauncher implements Launcher {
  readonly type = "SrunMPILauncher";
  constructor(private readonly options: OverridesOptions) {}
  wrap(command: string, tasksPerNode: number, nodesPerBlock: number): string {
    const debug = debugFlag(this.options);
    const taskBlocks = tasksPerNode * nodesPerBlock;
    const overrides = this.options.overrides;
    return `${slurmHeader(this.options, taskBlocks)}
${commandFile("SLURM", command, "cmd_$SLURM_JOB_NAME.sh", "a+x")}
TASKBLOCKS=${taskBlocks}

# If there are more taskblocks to be launched than nodes use
if (( "$TASKBLOCKS" > "$NODES" ))
then
    [[ "${debug}" == "1" ]] && echo "TaskBlocks:$TASKBLOCKS > Nodes:$NODES"
    CORES_PER_BLOCK=$(($NODES * $CORES / $TASKBLOCKS))
    for blk in $(seq 1 1 $TASKBLOCKS):
    do
        srun --ntasks $CORES_PER_BLOCK -l ${overrides} bash cmd_$SLURM_JOB_NAME.sh &
    done
    wait
else
    # A Task block could be integer multiples of Nodes
    [[ "${debug}" == "1" ]] && echo "TaskBlocks:$TASKBLOCKS <= Nodes:$NODES"
    NODES_PER_BLOCK=$(( $NODES / $TASKBLOCKS ))
    for blk in $(seq 1 1 $TASKBLOCKS):
    do
        srun --exclusive --nodes $NODES_PER_BLOCK -l ${overrides} bash cmd_$SLURM_JOB_NAME.sh &
    done
    wait

fi


[[ "${debug}" == "1" ]] && echo "Done"
`;
  }
}

/** `mpiexec` over the job's nodes (from `$PBS_NODEFILE`, else localhost). */
export class MpiExecLauncher implements Launcher {
  readonly type = "MpiExecLauncher";
  constructor(private readonly options: OverridesOptions & { readonly bind_cmd: string }) {}
  wrap(command: string, tasksPerNode: number, nodesPerBlock: number): string {
    const debug = debugFlag(this.options);
    return `${coresHeader(this.options, tasksPerNode * nodesPerBlock)}
# Deduplicate the nodefile
HOSTFILE="$JOBNAME.nodes"
if [ -z "$PBS_NODEFILE" ]; then
    echo "localhost" > $HOSTFILE
else
    sort -u $PBS_NODEFILE > $HOSTFILE
fi

${commandFile("MPIEXEC", command, "cmd_$JOBNAME.sh", "u+x")}
mpiexec ${this.options.bind_cmd} none ${this.options.overrides} -n $WORKERCOUNT --hostfile $HOSTFILE /usr/bin/sh cmd_$JOBNAME.sh

[[ "${debug}" == "1" ]] && echo "All workers done"
`;
  }
}

/** `mpirun -np <workers>` of the command through `bash_location`. */
export class MpiRunLauncher implements Launcher {
  readonly type = "MpiRunLauncher";
  constructor(private readonly options: OverridesOptions & { readonly bash_location: string }) {}
  wrap(command: string, tasksPerNode: number, nodesPerBlock: number): string {
    const debug = debugFlag(this.options);
    return `${coresHeader(this.options, tasksPerNode * nodesPerBlock)}
${commandFile("MPIRUN", command, "cmd_$JOBNAME.sh", "u+x")}
mpirun -np $WORKERCOUNT ${this.options.overrides} ${this.options.bash_location} cmd_$JOBNAME.sh

[[ "${debug}" == "1" ]] && echo "All workers done"
`;
  }
}

/** Cray ALPS (`aprun -n <per block> -N <per node>`) and IBM LSF CSM (`jsrun -n … -r …`): the same script, another runner. */
function perNodeRunner(runner: "aprun" | "jsrun", options: OverridesOptions) {
  const perNodeFlag = runner === "aprun" ? "-N" : "-r";
  return (command: string, tasksPerNode: number, nodesPerBlock: number): string => {
    const tasksPerBlock = tasksPerNode * nodesPerBlock;
    return `set -e
WORKERCOUNT=${tasksPerBlock}

${commandFile(runner.toUpperCase(), command, "cmd_$JOBNAME.sh", "a+x")}
${runner} -n ${tasksPerBlock} ${perNodeFlag} ${tasksPerNode} ${options.overrides} /bin/bash cmd_$JOBNAME.sh &
wait

[[ "${debugFlag(options)}" == "1" ]] && echo "Done"
`;
  };
}

export class AprunLauncher implements Launcher {
  readonly type = "AprunLauncher";
  readonly wrap: Launcher["wrap"];
  constructor(options: OverridesOptions) {
    this.wrap = perNodeRunner("aprun", options);
  }
}

export class JsrunLauncher implements Launcher {
  readonly type = "JsrunLauncher";
  readonly wrap: Launcher["wrap"];
  constructor(options: OverridesOptions) {
    this.wrap = perNodeRunner("jsrun", options);
  }
}
