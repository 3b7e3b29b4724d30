import type { BatchStatusRequest, CancelTasksMessage, TaskStatusResponse } from "@conduit/protocol";
import { API_ROUTES, MAX_BATCH_STATUS_IDS, toWireError, uepTaskQueue } from "@conduit/protocol";
import { batchTooLarge, TaskEndedError, taskNotFound } from "../../errors.js";
import type { TaskRecord } from "../../store/store-types.js";
import { AdmissionGate } from "../admission-gate.js";
import type { RouteRegistrar } from "../api-context.js";
import { addRoute } from "../api-route.js";
import { publishOutcomes } from "./publish-outcomes.js";

/** Submits handled at once (see {@link AdmissionGate}); the insert and the publish of one overlap the parse of the next. */
const SUBMITS_AT_ONCE = 8;

export const taskRoutes: RouteRegistrar = (app, ctx) => {
  const submits = new AdmissionGate(SUBMITS_AT_ONCE);
  // The endpoint's authentication policy is checked on submit, status and result fetch alike.
  addRoute(app, API_ROUTES.submit, { onRequest: submits.onRequest }, async (request) => {
    await ctx.policies.checkEndpoint(request.identity, request.params.endpoint_id);
    const response = await ctx.submitter.submit(request.identity, request.params.endpoint_id, request.body, request.id);
    // pino adds reqId: the same id, in the same field, as the MEP's, UEP's, block's and worker's lines.
    request.log.debug({ endpoint_id: request.params.endpoint_id, task_ids: response.task_ids }, "tasks submitted");
    return response;
  });

  // A user sees only their own tasks: another identity's task is "not found".
  addRoute(app, API_ROUTES.taskStatus, {}, async (request) => {
    const task = await ctx.store.getTask(request.params.task_id);
    if (!task || task.ownerId !== request.identity.id) throw taskNotFound(request.params.task_id);
    await ctx.policies.checkEndpoint(request.identity, task.endpointId);
    return toTaskStatus(task);
  });

  addRoute(
    app,
    API_ROUTES.batchStatus,
    {
      // Before the schema validates every id, and long before the query: one
      // request for a million ids would hold the event loop (and /healthz) for seconds.
      preValidation: async (request) => {
        const ids = (request.body as Partial<BatchStatusRequest> | undefined)?.task_ids;
        if (Array.isArray(ids) && ids.length > MAX_BATCH_STATUS_IDS)
          throw batchTooLarge(ids.length, MAX_BATCH_STATUS_IDS);
      },
    },
    async (request) => {
      const tasks: Record<string, TaskStatusResponse> = {};
      const own = (await ctx.store.getTasks(request.body.task_ids)).filter((t) => t.ownerId === request.identity.id);
      await ctx.policies.checkEndpoints(
        request.identity,
        own.map((t) => t.endpointId),
      );
      for (const task of own) tasks[task.id] = toTaskStatus(task);
      return { tasks };
    },
  );

  addRoute(app, API_ROUTES.cancelTask, {}, async (request) => {
    const taskId = request.params.task_id.toLowerCase();
    const reason = new TaskEndedError("TASK_CANCELLED", `Task ${taskId} was cancelled before it started.`);
    const outcome = await ctx.store.cancelTask(taskId, request.identity.id, toWireError(reason));
    if (!outcome || outcome.task.ownerId !== request.identity.id) throw taskNotFound(taskId);
    const { task, cancelled } = outcome;
    if (cancelled) {
      // The cancel follows the task in its UEP's queue, so a UEP that holds
      // the task (not yet handed to its engine) drops it; the submitter
      // learns from its group's queue, as from any result.
      const cancel: CancelTasksMessage = {
        v: 1,
        kind: "cancel",
        endpointId: task.endpointId,
        uepId: task.uepId,
        taskIds: [task.id],
      };
      const queue = uepTaskQueue(task.endpointId, task.uepId);
      await ctx.broker.ensureQueues([queue]);
      await Promise.all([ctx.broker.publishAll([{ queue, message: cancel }]), publishOutcomes(ctx.broker, [task])]);
    }
    return { task_id: task.id, cancelled, state: task.state };
  });
};

function toTaskStatus(t: TaskRecord): TaskStatusResponse {
  const status: TaskStatusResponse = {
    task_id: t.id,
    state: t.state,
    endpoint_id: t.endpointId,
    function_id: t.functionId,
    task_group_id: t.taskGroupId,
    created_at: t.createdAt.toISOString(),
    completed_at: t.completedAt?.toISOString() ?? null,
  };
  if (t.result) status.result = t.result;
  if (t.error) status.error = t.error;
  return status;
}
