// Shared helpers of the dashboard suite: the environment, memberd's API (for set-up and
// cross-checks), the browser, and the check every page gets (axe-core, a screenshot).
// Not a test file itself (node --test picks up *.test.mjs only).

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { createServer } from "node:http";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

const REQUIRED = ["MEMBERD_URL", "MEMBERD_SECRET_KEY", "MEMBERD_APP_ID", "MEMBERD_OWNER_LINK", "MEMBERD_BIN", "MEMBERD_DATABASE_URL"];
const missing = REQUIRED.filter((name) => !process.env[name]);
if (missing.length > 0) {
  throw new Error(
    `dashboard suite: missing environment variable(s) ${missing.join(", ")}. It needs MEMBERD_URL (a running ` +
      "memberd serve), MEMBERD_SECRET_KEY (its sandbox secret key), MEMBERD_APP_ID, MEMBERD_OWNER_LINK (the " +
      "first owner's link serve printed), MEMBERD_BIN (the memberd binary) and MEMBERD_DATABASE_URL (its database, " +
      "for `memberd operators create`).",
  );
}

export const MEMBERD_URL = process.env.MEMBERD_URL.replace(/\/+$/, "");
export const SECRET_KEY = process.env.MEMBERD_SECRET_KEY;
export const APP_ID = process.env.MEMBERD_APP_ID;
export const OWNER_LINK = process.env.MEMBERD_OWNER_LINK;
const BIN = process.env.MEMBERD_BIN;
const DATABASE_URL = process.env.MEMBERD_DATABASE_URL;
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
/** Where each page's screenshot goes, for a person to look at. */
export const SCREENSHOTS = process.env.MEMBERD_SCREENSHOTS || join(process.cwd(), "screenshots");

const AXE_SOURCE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

/** One request to memberd's native API with the secret key: `{ status, json }`. */
export async function api(method, path, body) {
  const res = await fetch(`${MEMBERD_URL}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${SECRET_KEY}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json };
}

/** `memberd operators create`, as an owner runs it: the link it prints. */
export async function createOperator(email, role) {
  const { stdout } = await promisify(execFile)(BIN, [
    "--database-url", DATABASE_URL,
    "operators", "create", "--email", email, "--role", role, "--public-url", MEMBERD_URL,
  ]);
  const link = stdout.split(/\s+/).find((word) => word.startsWith(`${MEMBERD_URL}/dashboard/set-password`));
  assert.ok(link, `memberd operators create printed a link: ${stdout}`);
  return link;
}

/** Debian's Chromium, headless, with nothing that reaches for the network. */
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * axe-core on the page as it is: no violation of impact serious or critical. Then a
 * screenshot of the whole page, named `name`.
 */
export async function checkPage(page, name) {
  await page.addScriptTag({ path: AXE_SOURCE });
  const results = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const found = await axe.run(document, { resultTypes: ["violations"] });
    return found.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  const serious = results.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(serious, [], `axe-core on ${name} (${page.url()}): ${JSON.stringify(serious, null, 2)}`);
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** The page is no wider than the window: nothing to scroll sideways for. */
export async function noHorizontalScroll(page) {
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  assert.ok(scroll <= client, `${page.url()} is ${scroll}px wide in a ${client}px window`);
}

/**
 * A webhook receiver on 127.0.0.1 that answers its first request with 500 and the others
 * with 200: `{ url, received(), close() }`.
 */
export async function failingOnce() {
  let count = 0;
  let headers = {};
  let body = "";
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      headers = req.headers;
      body = Buffer.concat(chunks).toString("utf8");
      count += 1;
      res.writeHead(count === 1 ? 500 : 200, { "Content-Type": "text/plain" });
      res.end(count === 1 ? "down for a moment" : "ok");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/hook`,
    received: () => count,
    last: () => headers,
    lastBody: () => body,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** Reloads the page until `found()` counts something, for up to 30 s. */
export async function reloadUntil(page, found) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if ((await found()) > 0) return;
    assert.ok(Date.now() < deadline, `${page.url()} never showed what was waited for`);
    await new Promise((resolve) => setTimeout(resolve, 250));
    await page.reload();
  }
}
