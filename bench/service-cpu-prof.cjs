/**
 * Preload that CPU-profiles only the conduit-service process, from its first
 * SIGUSR2 to its exit (start-up excluded): Node refuses --cpu-prof in
 * NODE_OPTIONS, and the service is started by scripts/local-stack.mjs.
 * `NODE_OPTIONS="--require ./bench/service-cpu-prof.cjs" CONDUIT_SERVICE_CPU_PROF=DIR CPU_PEERS=conduit node bench/cpu-budget.mjs`
 * writes DIR/service-<pid>.cpuprofile; `node bench/cpu-profile-top.mjs` summarises it.
 */
const dir = process.env.CONDUIT_SERVICE_CPU_PROF;
if (dir && /conduit-service(\.js)?$/.test(process.argv[1] ?? "")) {
  const inspector = require("node:inspector");
  const { writeFileSync } = require("node:fs");
  const session = new inspector.Session();
  session.connect();
  let started = false;
  process.on("SIGUSR2", () => {
    if (started) return;
    started = true;
    session.post("Profiler.enable");
    session.post("Profiler.setSamplingInterval", { interval: 500 });
    session.post("Profiler.start");
  });
  // An in-thread session answers synchronously, so this works inside "exit".
  process.on("exit", () => {
    if (!started) return;
    session.post("Profiler.stop", (err, result) => {
      if (!err) writeFileSync(`${dir}/service-${process.pid}.cpuprofile`, JSON.stringify(result.profile));
    });
  });
}
