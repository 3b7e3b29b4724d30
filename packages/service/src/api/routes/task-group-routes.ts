import { API_ROUTES, type TaskGroupInfo, taskGroupResultQueue } from "@conduit/protocol";
import { taskGroupNotFound } from "../../errors.js";
import type { TaskGroupRecord } from "../../store/store.js";
import type { RouteRegistrar } from "../api-context.js";
import { addRoute } from "../api-route.js";

/** A user sees only their own task groups: another identity's is "not found", as its tasks are. */
export const taskGroupRoutes: RouteRegistrar = (app, ctx) => {
  addRoute(app, API_ROUTES.listTaskGroups, {}, async (request) => {
    const groups = await ctx.store.listTaskGroups(request.identity.id);
    return groups.map(toTaskGroupInfo);
  });

  addRoute(app, API_ROUTES.getTaskGroup, {}, async (request) => {
    const groupId = request.params.task_group_id.toLowerCase();
    const group = await ctx.store.getTaskGroup(groupId);
    if (!group || group.ownerId !== request.identity.id) throw taskGroupNotFound(groupId);
    return {
      ...toTaskGroupInfo(group),
      pending_tasks: group.pending.map((t) => ({ task_id: t.id, endpoint_id: t.endpointId, state: t.state })),
      // Scoped accounts: credentials that reach only this group's queue.
      amqp: await ctx.submitter.taskGroupAmqp(groupId),
      result_queue: taskGroupResultQueue(groupId),
    };
  });
};

function toTaskGroupInfo(group: TaskGroupRecord): TaskGroupInfo {
  return { task_group_id: group.id, created_at: group.createdAt.toISOString(), task_counts: group.taskCounts };
}
