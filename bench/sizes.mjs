/**
 * How big each figure is. The defaults are issue 11's sizes; BENCH_QUICK=1
 * shrinks everything (and runs one repetition) for iterating on the bench.
 * Each size can be set on its own: BENCH_WARMUP, BENCH_ROUND_TRIPS,
 * BENCH_BURST, BENCH_SLEEP_TASKS, BENCH_REPETITIONS, BENCH_SUBMIT_TASKS.
 */
const quick = process.env.BENCH_QUICK === "1";
const num = (name, full, small) => Number(process.env[name] ?? (quick ? small : full));

export const sizes = Object.freeze({
  quick,
  /** (a): unmeasured round trips before the measured ones. */
  warmup: num("BENCH_WARMUP", 100, 10),
  /** (a): measured sequential round trips. */
  roundTrips: num("BENCH_ROUND_TRIPS", 1000, 50),
  /** (b): no-op tasks in flight at once. */
  burst: num("BENCH_BURST", 10_000, 300),
  /** (c): 10 ms sleep tasks, 2 at a time. */
  sleepTasks: num("BENCH_SLEEP_TASKS", 1000, 40),
  /** (c): how long each task sleeps. */
  sleepMs: 10,
  repetitions: num("BENCH_REPETITIONS", 3, 1),
  /** Executor submit throughput: no-op tasks submitted at once, per batchSize. */
  submitTasks: num("BENCH_SUBMIT_TASKS", 10_000, 300),
});
