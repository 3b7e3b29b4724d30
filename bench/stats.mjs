/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Median (lower of the two middle values for an even count), min and max of some numbers. */
export function summarize(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor((sorted.length - 1) / 2)], min: sorted[0], max: sorted.at(-1), n: sorted.length };
}

/** Milliseconds since a process.hrtime.bigint() mark. */
export function msSince(t0) {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}
