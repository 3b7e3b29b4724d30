/**
 * The web console in real Chromium (Debian's, driven by playwright-core) on a
 * whole Conduit (real CLIs, RabbitMQ, PGlite, one endpoint): sign in with an
 * API token, watch tasks submitted with the SDK appear and the live chart
 * move, read a failed task whose message is markup as text; another user,
 * signed in through the service's login page, sees none of it. Screenshots
 * land in test-artifacts/console/.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, withStack } from "./helpers.js";

const CHROMIUM = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"].find((path) => existsSync(path));
const ARTIFACTS = join(import.meta.dirname, "../../test-artifacts/console");
const HOSTILE = "<script>alert(1)</script>";

let stack: E2eStack;
let browser: Browser;
const contexts: BrowserContext[] = [];
/** Dialogs any page opened: an alert would mean markup from the store ran. */
const dialogs: string[] = [];

beforeAll(async () => {
  if (!CHROMIUM) throw new Error("Chromium is not installed; run apt-get install chromium (.ci/run does).");
  mkdirSync(ARTIFACTS, { recursive: true });
  stack = await withStack({ endpointName: "console_ep" });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close();
  await stack?.dispose();
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext();
  contexts.push(context);
  const page = await context.newPage();
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function signInWithToken(page: Page, token: string): Promise<void> {
  await page.goto(`${stack.serviceUrl}/`);
  expect(new URL(page.url()).pathname).toBe("/console/sign-in");
  await page.fill('input[name="token"]', token);
  await page.click('form[action="/console/sign-in"] button[type="submit"]');
  await page.waitForURL(`${stack.serviceUrl}/console/`);
}

describe("web console", () => {
  let failedTaskId: string;

  it("signs in with an API token, shows tasks as they come and the chart moving", async () => {
    const page = await newPage();
    const first = await page.request.get(`${stack.serviceUrl}/console/sign-in`);
    expect(first.headers()["content-security-policy"]).toContain("script-src 'self'");
    expect(first.headers()["content-security-policy"]).not.toContain("unsafe-inline");

    // A wrong token is refused with a sentence, and no session.
    await page.goto(`${stack.serviceUrl}/console/sign-in`);
    await page.fill('input[name="token"]', "not-a-token");
    await page.click('form[action="/console/sign-in"] button[type="submit"]');
    await expect.poll(() => page.textContent(".error")).toContain("That API token is not valid");

    await signInWithToken(page, stack.token);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === "conduit_console");
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Strict" });
    expect(session?.value).not.toContain(stack.token);
    await expect.poll(() => page.textContent("table.endpoints")).toContain("console_ep");
    await expect.poll(() => page.textContent("table.endpoints")).toContain("online");
    await shot(page, "1-endpoints");

    await page.click(`a[href="/console/endpoints/${stack.endpointId}"]`);
    await page.waitForSelector('section[data-live][data-state="open"]');
    const ex = stack.executor();
    const square = (x: number) => x * x;
    const values = await Promise.all(Array.from({ length: 20 }, (_, i) => ex.submit(square, i).result()));
    expect(values[19]).toBe(361);
    const failing = () => {
      throw new Error("<script>alert(1)</script>");
    };
    const failed = ex.submit(failing);
    await expect(failed.result()).rejects.toThrow(HOSTILE);
    failedTaskId = failed.taskId;

    // The chart moved without a reload: a throughput above zero and points drawn.
    await expect
      .poll(() => page.textContent('output[data-series="throughput"]'), { timeout: 20_000 })
      .toMatch(/^[1-9]|^0\.[1-9]/);
    expect(Number(await page.getAttribute("section[data-live]", "data-points"))).toBeGreaterThan(1);
    await shot(page, "2-endpoint-live");

    // The UEP that ran them, with its engine and workers as its heartbeats report them
    // (the engine scales its workers with the load, so their number may be 0 by now).
    await expect
      .poll(async () => {
        await page.reload();
        return page.textContent("table.ueps tbody tr");
      })
      .toContain("HighThroughputEngine");
    expect(await page.textContent("table.ueps td.workers")).toMatch(/^\d+ of \d+$/);
    expect(await page.locator("table.tasks tbody tr").count()).toBe(21);
    await shot(page, "3-endpoint-tasks");
    await page.selectOption('select[name="state"]', "failed");
    await page.click('form.filters button[type="submit"]');
    await expect.poll(async () => page.locator("table.tasks tbody tr").count()).toBe(1);
    await page.click(`a[href="/console/tasks/${failedTaskId}"]`);
    await page.waitForSelector(".error-message");
    expect(await page.textContent(".error-message")).toBe(HOSTILE);
    expect(await page.textContent("pre.stack")).toContain("Error");
    // Only the console's own script is on the page, and nothing opened an alert.
    expect(await page.locator("script").count()).toBe(1);
    const timings = await page.textContent("table.timings");
    expect(timings).toContain("received");
    expect(timings).toContain("failed");
    await shot(page, "4-failed-task");
    expect(dialogs).toEqual([]);

    // Signing out ends the session; the pages send the browser back to sign in.
    await page.goto(`${stack.serviceUrl}/console/`);
    await page.click('form[action="/console/sign-out"] button');
    await page.waitForURL(`${stack.serviceUrl}/console/sign-in`);
    await page.goto(`${stack.serviceUrl}/console/tasks/${failedTaskId}`);
    expect(new URL(page.url()).pathname).toBe("/console/sign-in");
  });

  it("refuses a form posted without its CSRF token", async () => {
    const page = await newPage();
    const response = await page.request.post(`${stack.serviceUrl}/console/sign-in`, {
      form: { token: stack.token },
      maxRedirects: 0,
    });
    expect(response.status()).toBe(403);
    expect(await response.text()).toContain("The form expired");
  });

  it("shows another user, signed in through the login page, none of the first user's endpoint or tasks", async () => {
    const created = await fetch(`${stack.serviceUrl}/v1/admin/identities`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
      body: JSON.stringify({ username: "carol@example.org", password: "carol-console-pw-1" }),
    });
    expect(created.status).toBe(201);

    const page = await newPage();
    await page.goto(`${stack.serviceUrl}/console/sign-in`);
    await page.click('a[href="/console/oidc/start"]');
    await page.waitForSelector('input[name="password"]');
    await page.fill('input[name="username"]', "carol@example.org");
    await page.fill('input[name="password"]', "carol-console-pw-1");
    await page.click('button[type="submit"]');
    await page.waitForURL(`${stack.serviceUrl}/console/`);
    expect(await page.textContent("nav .who")).toBe("carol@example.org");
    expect(await page.textContent("main")).toContain("You have no endpoints yet");
    await shot(page, "5-other-user");

    for (const path of [
      `/console/endpoints/${stack.endpointId}`,
      `/console/endpoints/${stack.endpointId}/live`,
      `/console/tasks/${failedTaskId}`,
    ]) {
      const response = await page.goto(`${stack.serviceUrl}${path}`);
      expect(response?.status(), path).toBe(404);
      expect(await page.textContent("main"), path).toContain("is not yours to see");
    }
    await page.goto(`${stack.serviceUrl}/console/task-groups`);
    expect(await page.textContent("main")).toContain("You have no task groups");
    await page.goto(`${stack.serviceUrl}/console/functions`);
    expect(await page.textContent("main")).toContain("You have registered no functions");
  });
});
