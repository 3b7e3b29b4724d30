/**
 * Where the first result of a task this replica just stored goes, kept in
 * memory so that the result consumer can forward it to the Executor while it
 * stores it, instead of after (the result's commit leaves the round trip's
 * critical path). An entry is written once the task's row is committed and
 * taken by its first result; a cancel, a full map (oldest first) or another
 * replica's submit simply mean no entry, and the result takes the stored path:
 * stored first, then forwarded as the store says. High-Assurance tasks get no
 * entry: their notice sends the SDK to fetch the result, which must be stored.
 */
import { endpointBrokerUser, uepBrokerUser } from "@conduit/protocol";

export interface SubmittedRoute {
  endpointId: string;
  uepId: string;
  taskGroupId: string;
}

/** Entries kept at most (about 200 bytes each): tasks beyond it take the stored path. */
const DEFAULT_MAX_ROUTES = 100_000;

export class SubmittedRoutes {
  private readonly routes = new Map<string, SubmittedRoute>();

  constructor(private readonly maxRoutes = DEFAULT_MAX_ROUTES) {}

  /** Records the routes of tasks whose rows are committed (lowercase ids). */
  add(taskIds: readonly string[], route: SubmittedRoute): void {
    for (const taskId of taskIds) {
      if (this.routes.size >= this.maxRoutes) {
        const oldest = this.routes.keys().next().value;
        if (oldest !== undefined) this.routes.delete(oldest);
      }
      this.routes.set(taskId, route);
    }
  }

  /**
   * The route of `taskId`'s first result, removed, when `sender` may report it
   * (the task's UEP or endpoint account, or a shared account) and it names the
   * task's endpoint; undefined otherwise (the entry then stays for the right sender).
   */
  take(taskId: string, endpointId: string, sender: string, sharedAccount: boolean): SubmittedRoute | undefined {
    const route = this.routes.get(taskId);
    if (!route || route.endpointId !== endpointId.toLowerCase()) return undefined;
    const allowed =
      sharedAccount || sender === uepBrokerUser(route.uepId) || sender === endpointBrokerUser(route.endpointId);
    if (!allowed) return undefined;
    this.routes.delete(taskId);
    return route;
  }

  /** Forgets a task (cancelled): its result, if one still comes, takes the stored path. */
  forget(taskId: string): void {
    this.routes.delete(taskId);
  }

  get size(): number {
    return this.routes.size;
  }
}
