import { describe, expect, it } from "vitest";
import type { Logger } from "../src/logging.js";
import { IdleTracker } from "../src/user-endpoint/idle-tracker.js";

function recorder(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (m: string) => void lines.push(m);
  return { lines, debug: () => {}, info: push, warn: push, error: push };
}

function beats(tracker: IdleTracker, n: number): Array<string | undefined> {
  return Array.from({ length: n }, () => tracker.beat());
}

describe("UEP idle shutdown", () => {
  it("stops after idle_heartbeats_soft quiet beats once the work is done", () => {
    const log = recorder();
    const idle = new IdleTracker({ softLimit: 3, hardLimit: 100, periodS: 1, log });
    expect(beats(idle, 2)).toEqual([undefined, undefined]);
    idle.taskReceived();
    expect(idle.beat()).toBeUndefined(); // movement
    idle.resultForwarded();
    expect(idle.beat()).toBeUndefined(); // movement
    expect(beats(idle, 3)).toEqual([undefined, undefined, "soft"]);
    expect(log.lines).toContain("Idle heartbeats reached.  Shutting down.");
    expect(log.lines.some((l) => l.startsWith("In idle state"))).toBe(true);
  });

  it("does not count soft beats while a task is outstanding; the hard limit still applies", () => {
    const log = recorder();
    const idle = new IdleTracker({ softLimit: 2, hardLimit: 4, periodS: 1, log });
    idle.taskReceived();
    expect(idle.beat()).toBeUndefined();
    expect(beats(idle, 5)).toEqual([undefined, undefined, undefined, undefined, "hard"]);
    expect(log.lines).toContain("Shutting down due to idle heartbeats HARD limit.");
  });

  it("stops a UEP that never got a task only at the hard limit, and movement resets the count", () => {
    const idle = new IdleTracker({ softLimit: 1, hardLimit: 3, periodS: 1, log: recorder() });
    expect(beats(idle, 3)).toEqual([undefined, undefined, undefined]);
    idle.taskReceived();
    idle.resultForwarded();
    expect(idle.beat()).toBeUndefined();
    expect(idle.beat()).toBe("soft");
    const fresh = new IdleTracker({ softLimit: 1, hardLimit: 3, periodS: 1, log: recorder() });
    expect(beats(fresh, 4)).toEqual([undefined, undefined, undefined, "hard"]);
  });

  it("never stops with idle_heartbeats_soft 0", () => {
    const idle = new IdleTracker({ softLimit: 0, hardLimit: 1, periodS: 1, log: recorder() });
    idle.taskReceived();
    idle.resultForwarded();
    expect(beats(idle, 10).every((v) => v === undefined)).toBe(true);
  });
});
