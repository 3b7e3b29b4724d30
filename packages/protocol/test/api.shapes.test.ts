/**
 * The REST shapes whose TypeScript types live beside other concepts (Payload
 * in serialization.ts, IdentityInfo and UserRuntime in messages.ts) have their
 * JSON Schema in api-shapes.ts; these type assertions fail `npm run typecheck`
 * when the two disagree. At run time: every route's definition names each path
 * parameter of its URL, and the task-state enum is TASK_STATES.
 */
import type { Static } from "@sinclair/typebox";
import { describe, expect, expectTypeOf, it } from "vitest";
import { type IdentityInfoSchema, type PayloadSchema, TaskStateSchema } from "../src/api-shapes.js";
import {
  API_ROUTES,
  type IdentityInfo,
  type Payload,
  type SubmitRequest,
  TASK_STATES,
  type TaskState,
  type TaskStatusResponse,
  type UserRuntime,
} from "../src/index.js";

describe("REST shapes", () => {
  it("agree with the interfaces of the same shapes elsewhere in protocol", () => {
    expectTypeOf<Static<typeof PayloadSchema>>().toEqualTypeOf<Payload>();
    expectTypeOf<Static<typeof IdentityInfoSchema>>().toEqualTypeOf<IdentityInfo>();
    expectTypeOf<NonNullable<SubmitRequest["user_runtime"]>>().toEqualTypeOf<UserRuntime>();
    expectTypeOf<TaskStatusResponse["state"]>().toEqualTypeOf<TaskState>();
  });

  it("take the task states from TASK_STATES", () => {
    expect(JSON.parse(JSON.stringify(TaskStateSchema))).toEqual({ type: "string", enum: [...TASK_STATES] });
  });

  it.each(Object.entries(API_ROUTES))("%s defines exactly the path parameters of its URL", (_name, route) => {
    const inUrl = [...route.url.matchAll(/:(\w+)/g)].map((m) => m[1]);
    const defined = "params" in route ? Object.keys(route.params.properties) : [];
    expect(defined).toEqual(inUrl);
  });
});
