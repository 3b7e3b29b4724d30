import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import type { EngineConfig } from "../src/engines/engine-types.js";
import { HighThroughputEngine } from "../src/engines/high-throughput-engine.js";
import type { ProcessPoolEngine } from "../src/engines/process-pool-engine.js";
import { createEngine, ENGINE_TYPES } from "../src/engines/registry.js";
import { ThreadPoolEngine } from "../src/engines/thread-pool-engine.js";
import { ConfigError } from "../src/errors.js";
import { LocalProvider } from "../src/providers/local-provider.js";
import { createProvider, PROVIDER_TYPES } from "../src/providers/registry.js";
import { TypeRegistry } from "../src/type-registry.js";

function configError(config: unknown): string {
  try {
    createEngine(config as EngineConfig);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("engine registry", () => {
  it("lists the valid engine types", () => {
    expect(ENGINE_TYPES).toEqual([
      "GlobusComputeEngine",
      "GlobusMPIEngine",
      "HighThroughputEngine",
      "MPIEngine",
      "ProcessPoolEngine",
      "ThreadPoolEngine",
    ]);
  });

  it("says which engines keep a queue of their own (the UEP hands them every task at once)", () => {
    const provider = { type: "LocalProvider", init_blocks: 0 };
    expect(createEngine({ type: "HighThroughputEngine", provider }).queuesTasks).toBe(true);
    expect(createEngine({ type: "GlobusComputeEngine", provider }).queuesTasks).toBe(true);
    expect(createEngine({ type: "ProcessPoolEngine" }).queuesTasks).toBe(false);
    expect(createEngine({ type: "ThreadPoolEngine" }).queuesTasks).toBe(false);
  });

  it("names an unknown engine type and every valid one", () => {
    expect(configError({ type: "DaskEngine" })).toBe(
      "'DaskEngine' is not a valid engine type. Valid options are: GlobusComputeEngine, GlobusMPIEngine, HighThroughputEngine, MPIEngine, ProcessPoolEngine, ThreadPoolEngine",
    );
    expect(configError({})).toMatch(/^engine\.type is missing; set it to one of: GlobusComputeEngine, /);
  });

  it("names an unknown provider type and every valid one", () => {
    expect(PROVIDER_TYPES).toEqual([
      "GridEngineProvider",
      "LSFProvider",
      "LocalProvider",
      "PBSProProvider",
      "SlurmProvider",
    ]);
    expect(configError({ type: "HighThroughputEngine", provider: { type: "KubernetesProvider" } })).toBe(
      "'KubernetesProvider' is not a valid provider. Valid options are: GridEngineProvider, LSFProvider, LocalProvider, PBSProProvider, SlurmProvider",
    );
    expect(() => createProvider({ type: "SlurmProviderX" })).toThrow(
      /Valid options are: GridEngineProvider, .*, SlurmProvider$/,
    );
  });

  it("words every kind's refusals the same way (a launcher table, say)", () => {
    const launchers = new TypeRegistry<string>("launcher", "SimpleLauncher", {
      SrunLauncher: { fields: {}, create: (options, path) => `srun ${JSON.stringify(options)} at ${path}` },
      SimpleLauncher: { fields: {}, create: () => "simple" },
    });
    expect(launchers.types).toEqual(["SimpleLauncher", "SrunLauncher"]);
    expect(launchers.create({ type: "SrunLauncher", overrides: "-N 2" }, "engine.launcher")).toBe(
      'srun {"overrides":"-N 2"} at engine.launcher',
    );
    const refusal = (config: unknown) => () => launchers.create(config, "engine.launcher");
    expect(refusal({ type: "MpiExecLauncher" })).toThrow(
      new ConfigError("'MpiExecLauncher' is not a valid launcher. Valid options are: SimpleLauncher, SrunLauncher"),
    );
    expect(refusal({ type: 3 })).toThrow("'3' is not a valid launcher.");
    expect(refusal({ type: null })).toThrow(
      "engine.launcher.type is missing; set it to one of: SimpleLauncher, SrunLauncher.",
    );
    expect(refusal("SrunLauncher")).toThrow(
      'engine.launcher must be a mapping with a type, e.g. {type: SimpleLauncher} (got "SrunLauncher").',
    );
    expect(launchers.schema()).toMatchObject({ required: ["type"], oneOf: [{}, {}] });
  });

  it("loads the seed's default template engine block (GlobusComputeEngine is an alias)", () => {
    const engine = createEngine({
      type: "GlobusComputeEngine",
      max_workers_per_node: 1,
      provider: { type: "LocalProvider", min_blocks: 0, max_blocks: 1, init_blocks: 1, worker_init: null },
    });
    expect(engine).toBeInstanceOf(HighThroughputEngine);
    expect(engine.type).toBe("HighThroughputEngine");
    const { options } = engine as HighThroughputEngine;
    expect(Object.isFrozen(options)).toBe(true);
    expect(options.max_retries_on_system_failure).toBe(0);
    expect(options.job_status_kwargs).toEqual({ max_idletime: 120, strategy_period: 5, strategy: "simple" });
    expect(options.provider).toBeInstanceOf(LocalProvider);
    expect(options.provider.workerInit).toBe("");
    expect([options.provider.initBlocks, options.provider.minBlocks, options.provider.maxBlocks]).toEqual([1, 0, 1]);
  });

  it("applies defaults: one worker per node and a LocalProvider; a pool's workers = CPUs", () => {
    const hte = createEngine({ type: "HighThroughputEngine" }) as HighThroughputEngine;
    expect(hte.options.max_workers_per_node).toBe(1);
    expect(hte.options.provider.type).toBe("LocalProvider");
    const threads = createEngine({ type: "ThreadPoolEngine" }) as ThreadPoolEngine;
    expect(threads).toBeInstanceOf(ThreadPoolEngine);
    expect(threads.options.max_workers).toBe(availableParallelism());
    const processes = createEngine({ type: "ProcessPoolEngine", max_workers: 3 }) as ProcessPoolEngine;
    expect(processes.options.max_workers).toBe(3);
    expect(Object.isFrozen(processes.options)).toBe(true);
  });

  it("refuses Globus options this version does not implement, each with one sentence saying so", () => {
    // The container keys are implemented (engines.containers.test.ts checks them).
    const refused: Array<[Record<string, unknown>, string]> = [];
    for (const engine of ["HighThroughputEngine", "ProcessPoolEngine", "ThreadPoolEngine"]) {
      refused.push([
        { type: engine, label: "htex" },
        "this version of Conduit does not implement `engine.label` (a name for the engine in logs); remove it.",
      ]);
    }
    // The HighThroughputEngine takes working_dir (its blocks' folder); the pools run in the UEP's.
    for (const engine of ["ProcessPoolEngine", "ThreadPoolEngine"]) {
      refused.push([
        { type: engine, working_dir: "tasks" },
        "this version of Conduit does not implement `engine.working_dir` (the folder blocks and workers run in; they run in the UEP's folder); remove it.",
      ]);
    }
    for (const [config, sentence] of refused) expect(configError(config)).toBe(sentence);
    // The file, when the caller knows it, leads the sentence.
    expect(() => createEngine({ type: "HighThroughputEngine", label: "x" }, "engine", "The rendered t.j2")).toThrow(
      /^The rendered t\.j2: this version of Conduit does not implement `engine\.label` /,
    );
  });

  it("accepts the values of those options that ask for nothing, and null for any of them", () => {
    expect(() =>
      createEngine({
        type: "GlobusComputeEngine",
        allowed_serializers: ["conduit.*Code", "conduit.*Data"],
        encrypted: false,
        address: "127.0.0.1",
        label: null,
        container_type: null,
        container_uri: null,
        container_cmd_options: null,
        working_dir: null,
        job_status_kwargs: { max_idletime: 30, strategy_period: 1, strategy: "htex_auto_scale" },
      }),
    ).not.toThrow();
    for (const address of ["localhost", "::1", "10.0.0.5", "0.0.0.0", "login1.cluster"]) {
      expect(() => createEngine({ type: "HighThroughputEngine", address })).not.toThrow();
    }
    const hte = createEngine({ type: "HighThroughputEngine", label: null }) as HighThroughputEngine;
    expect(Object.keys(hte.options)).not.toContain("label");
  });

  it("takes per-worker limits on the process-based engines and refuses them on threads", () => {
    const limits = { max_memory_per_worker: 512, max_open_files_per_worker: 1024, max_user_processes: 64 };
    const processes = createEngine({ type: "ProcessPoolEngine", ...limits }) as ProcessPoolEngine;
    expect(processes.options).toMatchObject(limits);
    const hte = createEngine({ type: "HighThroughputEngine", ...limits }) as HighThroughputEngine;
    expect(hte.options).toMatchObject(limits);
    const unlimited = createEngine({ type: "ProcessPoolEngine" }) as ProcessPoolEngine;
    expect(unlimited.options.max_memory_per_worker).toBeUndefined();
    for (const key of Object.keys(limits)) {
      expect(configError({ type: "ThreadPoolEngine", [key]: 100 })).toBe(
        `\`engine.${key}\` is not a ThreadPoolEngine option, because worker threads share the UEP's process; use ProcessPoolEngine or HighThroughputEngine for per-worker limits, or remove it.`,
      );
      // A worker needs 16 MiB of heap, and about a hundred files to load its modules.
      const expected =
        { max_memory_per_worker: "an integer ≥ 16", max_open_files_per_worker: "an integer ≥ 256" }[key] ??
        "a positive integer";
      expect(configError({ type: "ProcessPoolEngine", [key]: 0 })).toBe(`engine.${key} must be ${expected} (got 0).`);
      expect(configError({ type: "HighThroughputEngine", [key]: "1G" })).toBe(
        `engine.${key} must be ${expected} (got "1G").`,
      );
    }
  });

  it("names the field and the expected type of a bad value", () => {
    expect(configError({ type: "ThreadPoolEngine", max_workers: "4" })).toBe(
      'engine.max_workers must be a positive integer (got "4").',
    );
    expect(configError({ type: "ProcessPoolEngine", max_workers: 0 })).toBe(
      "engine.max_workers must be a positive integer (got 0).",
    );
    expect(configError({ type: "HighThroughputEngine", max_retries_on_system_failure: -1 })).toBe(
      "engine.max_retries_on_system_failure must be a non-negative integer (got -1).",
    );
    expect(configError({ type: "HighThroughputEngine", job_status_kwargs: { max_idletime: "soon" } })).toBe(
      'engine.job_status_kwargs.max_idletime must be a number of seconds ≥ 0 (got "soon").',
    );
    expect(configError({ type: "HighThroughputEngine", job_status_kwargs: { strategy_period: 0 } })).toBe(
      "engine.job_status_kwargs.strategy_period must be a number of seconds > 0 (got 0).",
    );
    expect(configError({ type: "HighThroughputEngine", provider: { type: "LocalProvider", worker_init: 5 } })).toBe(
      "engine.provider.worker_init must be a string (got 5).",
    );
    expect(configError({ type: "HighThroughputEngine", provider: { type: "LocalProvider", max_blocks: 0 } })).toBe(
      "engine.provider.max_blocks must be a positive integer (got 0).",
    );
    expect(configError({ type: "HighThroughputEngine", encrypted: "yes" })).toBe(
      'engine.encrypted must be true or false (got "yes").',
    );
    expect(configError({ type: "HighThroughputEngine", provider: "LocalProvider" })).toMatch(
      /^engine\.provider must be a mapping with a type/,
    );
  });

  it("names an unknown option, the nearest valid one and every valid one", () => {
    expect(configError({ type: "ThreadPoolEngine", max_worker: 2 })).toBe(
      "`engine.max_worker` is not a valid ThreadPoolEngine option (did you mean `max_workers`?); valid ThreadPoolEngine options are: allowed_serializers, max_retries_on_system_failure, max_workers, modules_dir, result_size_limit.",
    );
    expect(configError({ type: "HighThroughputEngine", max_workers: 2 })).toMatch(
      /^`engine\.max_workers` is not a valid HighThroughputEngine option; valid HighThroughputEngine options are: address, allowed_serializers, available_accelerators, container_cmd_options, container_type, container_uri, cores_per_worker, cpu_affinity, drain_period, encrypted, heartbeat_period, heartbeat_threshold, job_status_kwargs, max_memory_per_worker, .*max_workers_per_node, mem_per_worker, .*prefetch_capacity, provider, result_size_limit, run_in_sandbox, worker_port, worker_port_range, working_dir\.$/,
    );
    expect(configError({ type: "HighThroughputEngine", provider: { type: "LocalProvider", walltime: "1:00" } })).toBe(
      "`engine.provider.walltime` is not a valid LocalProvider option; valid LocalProvider options are: init_blocks, max_blocks, min_blocks, nodes_per_block, parallelism, worker_init.",
    );
    expect(configError({ type: "HighThroughputEngine", job_status_kwargs: { max_idle_time: 5 } })).toMatch(
      /^`engine\.job_status_kwargs\.max_idle_time` is not a valid job_status_kwargs option \(did you mean `max_idletime`\?\); /,
    );
    // The file leads the sentence when the caller names it (the UEP and `render` do).
    expect(() =>
      createEngine(
        { type: "HighThroughputEngine", provider: { type: "LocalProvider", max_block: 2 } },
        "engine",
        "The rendered user_config_template.yaml.j2",
      ),
    ).toThrow(
      "The rendered user_config_template.yaml.j2: `engine.provider.max_block` is not a valid LocalProvider option (did you mean `max_blocks`?); valid LocalProvider options are: init_blocks, max_blocks, min_blocks, nodes_per_block, parallelism, worker_init.",
    );
  });

  it("names both fields of a bad combination", () => {
    expect(
      configError({ type: "HighThroughputEngine", provider: { type: "LocalProvider", min_blocks: 3, max_blocks: 2 } }),
    ).toBe(
      "engine.provider.min_blocks (3) is more than engine.provider.max_blocks (2); lower min_blocks or raise max_blocks.",
    );
    expect(configError({ type: "HighThroughputEngine", provider: { type: "LocalProvider", init_blocks: 2 } })).toBe(
      "engine.provider.init_blocks (2) is more than engine.provider.max_blocks (1); lower init_blocks or raise max_blocks.",
    );
  });
});
