/**
 * Task states as SQL text, made from protocol's one list of states, so the
 * store's queries cannot spell a state the rest of Conduit does not know
 * (store.task-states.test.ts checks the remaining literals and the
 * migrations' check constraint against TASK_STATES).
 */
import { type TaskState, TERMINAL_TASK_STATES } from "@conduit/protocol";

/** `('a', 'b')`. States are fixed identifiers, never user input, so they are inlined rather than bound. */
function stateList(states: Iterable<TaskState>): string {
  return `(${[...states].map((state) => `'${state}'`).join(", ")})`;
}

/** The states a task never leaves: `state NOT IN ${TERMINAL_STATES}` selects unfinished tasks. */
export const TERMINAL_STATES = stateList(TERMINAL_TASK_STATES);

/** The states of a task no UEP has taken yet: it may still be cancelled or handed out. */
export const NOT_STARTED_STATES = stateList(["received", "waiting-for-endpoint"]);
