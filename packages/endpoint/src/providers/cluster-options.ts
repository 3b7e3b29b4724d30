/**
 * Options every batch-scheduler provider shares (Parsl's ClusterProvider):
 * the block counts and worker_init of every provider, plus walltime,
 * scheduler_options, cmd_timeout and the launcher. Each scheduler adds its
 * own (partition, queue, account, …) in its file.
 */
import { ConfigError } from "../errors.js";
import { launcherField } from "../launchers/registry.js";
import { doc, type Field, secondsField, stringField } from "../option-fields.js";
import { BLOCK_FIELDS } from "./block-options.js";

const WALLTIME = /^(\d+):([0-5]\d):([0-5]\d)$/;

/** A walltime as schedulers write it, `HH:MM:SS` (hours may pass 99). */
export function walltimeField(fallback: string): Field<string> {
  const expected = 'a walltime "HH:MM:SS"';
  return {
    expected,
    schema: () => ({ type: "string", pattern: WALLTIME.source }),
    parse(value, path) {
      if (typeof value !== "string" || !WALLTIME.test(value)) {
        throw new ConfigError(`${path} must be ${expected}, e.g. "01:30:00" (got ${JSON.stringify(value)}).`);
      }
      return value;
    },
    fallback: () => fallback,
  };
}

/** Whole minutes of a walltime, as Slurm's `--time` and LSF's `-W` take it (Parsl's wtime_to_minutes). */
export function walltimeMinutes(walltime: string): number {
  const [, hours, minutes] = WALLTIME.exec(walltime) as RegExpExecArray;
  return Number(hours) * 60 + Number(minutes);
}

/** Refuses a walltime under one minute for a scheduler that counts minutes. */
export function checkWholeMinutes(walltime: string, path: string, scheduler: string): void {
  if (walltimeMinutes(walltime) < 1) {
    throw new ConfigError(
      `${path}.walltime ${JSON.stringify(walltime)} is under one minute, and ${scheduler} counts walltimes in whole minutes; set at least "00:01:00".`,
    );
  }
}

export function clusterFields(defaults: { walltime: string; cmdTimeout: number }) {
  return {
    ...BLOCK_FIELDS,
    walltime: doc("Walltime of each block's job, `HH:MM:SS`.", walltimeField(defaults.walltime)),
    scheduler_options: doc(
      "Lines put into the job script with the scheduler's own directives (e.g. `#SBATCH --gpus=1`).",
      stringField(""),
    ),
    cmd_timeout: doc(
      "Seconds a scheduler command (submit, status, cancel) may take.",
      secondsField({ positive: true, fallback: defaults.cmdTimeout }),
    ),
    launcher: launcherField("SingleNodeLauncher"),
  };
}
