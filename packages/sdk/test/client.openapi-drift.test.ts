/**
 * The Client's types come from packages/sdk/src/generated/openapi.ts, which
 * `npm run gen:api` writes from the service's /openapi.json. This regenerates
 * it in memory, from a freshly started service (the built one), and fails when
 * the checked-in file differs.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { fetchOpenApiDocument, GENERATED_FILE, renderOpenApiTypes } from "../../../scripts/gen-api.mjs";

describe("generated OpenAPI types", () => {
  it("match what the service serves now", async () => {
    const document = await fetchOpenApiDocument();
    // The routes this SDK calls are in the document it is generated from.
    expect(Object.keys(document.paths as object)).toEqual(
      expect.arrayContaining([
        "/v1/tasks/{task_id}/cancel",
        "/v1/task_groups/{task_group_id}",
        "/v1/endpoints/{endpoint_id}",
      ]),
    );
    const fresh = await renderOpenApiTypes(document);
    const checkedIn = await readFile(GENERATED_FILE, "utf8");
    if (fresh !== checkedIn) {
      const freshLines = fresh.split("\n");
      const oldLines = checkedIn.split("\n");
      const line = freshLines.findIndex((l, i) => l !== oldLines[i]);
      expect.fail(
        `${GENERATED_FILE} is out of date with the service's OpenAPI document (first difference at line ${line + 1}: ` +
          `${JSON.stringify(oldLines[line] ?? "")} should be ${JSON.stringify(freshLines[line] ?? "")}); run npm run gen:api and commit the result.`,
      );
    }
  });
});
