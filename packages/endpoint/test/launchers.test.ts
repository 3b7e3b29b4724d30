/**
 * Launchers write Parsl's command shapes, so an admin's `overrides` mean
 * what they meant there; the options are checked through the type registry.
 */
import { describe, expect, it } from "vitest";
import { createLauncher } from "../src/launchers/registry.js";

const wrap = (config: Record<string, unknown>, tasksPerNode = 2, nodes = 3) =>
  createLauncher(config, "engine.provider.launcher").wrap("CMD --x", tasksPerNode, nodes);

describe("launchers", () => {
  it("keep Parsl's command lines", () => {
    expect(wrap({ type: "SimpleLauncher" })).toBe("CMD --x");
    expect(wrap({ type: "WrappedLauncher", prepend: "time" })).toBe("time CMD --x");
    expect(wrap({ type: "SingleNodeLauncher" })).toContain("WORKERCOUNT=6\nFAILONANY=0\n");
    expect(wrap({ type: "SingleNodeLauncher", fail_on_any: true })).toContain("CMD() {\nCMD --x\n}\n");
    expect(wrap({ type: "SrunLauncher", overrides: "--mpi=pmix" })).toContain(
      "srun --ntasks 6 -l --mpi=pmix bash $path_cmd/cmd_$SLURM_JOB_NAME.sh",
    );
    expect(wrap({ type: "SrunMPILauncher" })).toContain(
      "srun --exclusive --nodes $NODES_PER_BLOCK -l  bash cmd_$SLURM_JOB_NAME.sh &",
    );
    expect(wrap({ type: "MpiExecLauncher" })).toContain(
      "mpiexec --bind-to none  -n $WORKERCOUNT --hostfile $HOSTFILE /usr/bin/sh cmd_$JOBNAME.sh",
    );
    expect(wrap({ type: "MpiRunLauncher", overrides: "--oversubscribe" })).toContain(
      "mpirun -np $WORKERCOUNT --oversubscribe /bin/bash cmd_$JOBNAME.sh",
    );
    expect(wrap({ type: "AprunLauncher", overrides: "-cc depth" })).toContain(
      "aprun -n 6 -N 2 -cc depth /bin/bash cmd_$JOBNAME.sh &",
    );
    expect(wrap({ type: "JsrunLauncher" })).toContain("jsrun -n 6 -r 2  /bin/bash cmd_$JOBNAME.sh &");
    expect(wrap({ type: "MpiExecLauncher", debug: false })).toContain(
      '[[ "0" == "1" ]] && echo "Found cores : $CORES"',
    );
  });

  it("refuse unknown and ill-typed options, and a WrappedLauncher without prepend", () => {
    expect(() => wrap({ type: "MpiRunLauncher", bash: "/bin/sh" })).toThrow(
      /^`engine\.provider\.launcher\.bash` is not a valid MpiRunLauncher option; valid MpiRunLauncher options are: bash_location, debug, overrides\.$/,
    );
    expect(() => wrap({ type: "SrunLauncher", overrides: 3 })).toThrow(
      "engine.provider.launcher.overrides must be a string (got 3).",
    );
    expect(() => wrap({ type: "WrappedLauncher" })).toThrow(
      /^engine\.provider\.launcher\.prepend is missing; WrappedLauncher needs the command/,
    );
  });
});
