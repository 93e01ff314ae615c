// Shared helpers for the memberd <-> @memberstack/dom compatibility suite.
// Not a test file itself (node --test only picks up *.test.mjs here).
//
// What lives here: the environment, memberd's admin API (Node fetch with the
// secret key), the little HTTP server that serves the test page and the SDK
// files from node_modules, the one Chromium browser, and `sdk()`, which runs
// one SDK method inside the page and returns plain JSON.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

const REQUIRED_VARS = ["MEMBERD_URL", "MEMBERD_SECRET_KEY", "MEMBERD_PUBLISHABLE_KEY", "MEMBERD_APP_ID"];
const missing = REQUIRED_VARS.filter((name) => !process.env[name]);
if (missing.length > 0) {
  throw new Error(
    `memberstack-dom compat suite: missing environment variable(s) ${missing.join(", ")}. ` +
      "It needs MEMBERD_URL (a running memberd, e.g. http://127.0.0.1:41234, no trailing slash; also the token issuer), " +
      "MEMBERD_SECRET_KEY (a sandbox secret key, sk_sb_...), MEMBERD_PUBLISHABLE_KEY (the same environment's " +
      "publishable key, pk_sb_...) and MEMBERD_APP_ID (the app id, app_..., the token audience).",
  );
}

export const MEMBERD_URL = process.env.MEMBERD_URL.replace(/\/+$/, "");
export const SECRET_KEY = process.env.MEMBERD_SECRET_KEY;
export const PUBLISHABLE_KEY = process.env.MEMBERD_PUBLISHABLE_KEY;
export const APP_ID = process.env.MEMBERD_APP_ID;
/** What the page passes to `MemberstackDOM.init` as `domain`. */
export const SDK_DOMAIN = `${MEMBERD_URL}/memberstack/client`;
/** Debian's Chromium; override with CHROMIUM_PATH. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** Compact JSON for failure messages (long values are cut). */
export function show(value, max = 2000) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) text = String(value);
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

// ---------------------------------------------------------------------------
// memberd's admin API (set-up and cross-checks only)
// ---------------------------------------------------------------------------

/**
 * One request to memberd from Node. `headers` defaults to the secret key as
 * a bearer token. Returns `{ status, json, text }`; a connection failure
 * throws an error that says which request could not be sent.
 */
export async function memberd(method, path, body, headers = { Authorization: `Bearer ${SECRET_KEY}` }) {
  const allHeaders = { ...headers };
  if (body !== undefined) allHeaders["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(`${MEMBERD_URL}${path}`, {
      method,
      headers: allHeaders,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new Error(
      `cannot reach memberd: ${method} ${MEMBERD_URL}${path} failed: ${err.cause?.message ?? err.message}. Is memberd running at MEMBERD_URL?`,
    );
  }
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

/** `POST /v1/plans` (body: memberd's PlanIn), asserting 201. Returns the plan. */
export async function createPlan(body) {
  const res = await memberd("POST", "/v1/plans", body);
  assert.equal(res.status, 201, `POST /v1/plans ${show(body)} -> ${res.status} ${res.text}`);
  assert.match(String(res.json?.id), /^pln_/, `POST /v1/plans: no plan id in ${res.text}`);
  return res.json;
}

/** `POST /v1/secure-content`, asserting 201. Returns the parsed body. */
export async function createSecureContent(body) {
  const res = await memberd("POST", "/v1/secure-content", body);
  assert.equal(res.status, 201, `POST /v1/secure-content ${show(body)} -> ${res.status} ${res.text}`);
  return res.json;
}

// ---------------------------------------------------------------------------
// The SMTP server memberd sends to (aiosmtpd, started by the Rust test)
// ---------------------------------------------------------------------------

export const SMTP_CONTROL_URL = process.env.MEMBERD_SMTP_CONTROL_URL?.replace(/\/+$/, "");

/**
 * The 6-digit code of the first email to `to` after the `before` emails it had already,
 * waiting up to 30 s for it to arrive.
 */
export async function emailedCode(to, before) {
  const deadline = Date.now() + 30_000;
  let mine = [];
  while (Date.now() < deadline) {
    mine = await emailsTo(to);
    const code = mine[before]?.text?.match(/(?<!\d)\d{6}(?!\d)/)?.[0];
    if (code) return code;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no new email with a code reached ${to} within 30 s; it has: ${show(mine)}`);
}

/** The emails the SMTP server received for `to`, oldest first. */
export async function emailsTo(to) {
  assert.ok(SMTP_CONTROL_URL, "MEMBERD_SMTP_CONTROL_URL is not set: the email tests need the SMTP server");
  const res = await fetch(`${SMTP_CONTROL_URL}/messages`);
  const all = await res.json();
  return all.filter((m) => m.rcpt_tos.some((r) => r.toLowerCase() === to.toLowerCase()));
}

/** Memberstack's `POST /members/verify-token`, with the secret key as `x-api-key`. */
export function verifyTokenOnServer(token) {
  return memberd("POST", "/memberstack/members/verify-token", { token }, { "x-api-key": SECRET_KEY });
}

// ---------------------------------------------------------------------------
// The test page and its server
// ---------------------------------------------------------------------------

const HERE = dirname(fileURLToPath(import.meta.url));
const NODE_MODULES = join(HERE, "node_modules");

// Only these folders of node_modules are served: the SDK's ES module and the
// ESM builds of its two bare imports.
const SERVED_DIRS = ["@memberstack/dom/lib", "axios/dist/esm", "js-cookie/dist"];

const IMPORT_MAP = {
  imports: {
    axios: "/node_modules/axios/dist/esm/axios.js",
    "js-cookie": "/node_modules/js-cookie/dist/js.cookie.mjs",
  },
};

const TYPES = { ".js": "text/javascript", ".mjs": "text/javascript", ".map": "application/json" };

/** JSON that is safe inside an inline <script>. */
function scriptJson(value) {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}

function pageHtml() {
  const config = { publicKey: PUBLISHABLE_KEY, domain: SDK_DOMAIN };
  return `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>memberd x @memberstack/dom</title>
<script>
  // Before anything else: keep every unhandled rejection (the SDK leaves one
  // behind when a getCurrentMember() request fails) instead of letting it
  // become a page error.
  window.__unhandled = [];
  window.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    const r = event.reason;
    let text;
    try { text = JSON.stringify(r && typeof r === "object" ? { code: r.code, message: r.message } : r); } catch { text = String(r); }
    window.__unhandled.push(text);
  });
</script>
<script type="importmap">${scriptJson(IMPORT_MAP)}</script>
</head>
<body>
<p id="status">loading</p>
<script type="module">
  const config = ${scriptJson(config)};
  const status = document.getElementById("status");
  import("/node_modules/@memberstack/dom/lib/index.mjs").then(
    (mod) => {
      const MemberstackDOM = mod.default;
      window.memberstack = MemberstackDOM.init({ publicKey: config.publicKey, domain: config.domain });
      status.textContent = "ready";
      status.dataset.state = "ready";
    },
    (err) => {
      status.textContent = "load failed: " + String(err && err.stack || err);
      status.dataset.state = "failed";
    },
  );
</script>
</body>
</html>
`;
}

/** Starts the page server on 127.0.0.1, on a free port. Returns `{ origin, close }`. */
export async function startPageServer() {
  const html = pageHtml();
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, "http://127.0.0.1").pathname;
    if (req.method !== "GET") {
      res.writeHead(405).end();
      return;
    }
    if (path === "/" || path === "/index.html") {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" }).end(html);
      return;
    }
    if (path === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    if (path.startsWith("/node_modules/")) {
      const rel = normalize(decodeURIComponent(path.slice("/node_modules/".length)));
      const allowed = SERVED_DIRS.some((dir) => rel.startsWith(dir + sep) || rel.startsWith(dir + "/"));
      if (allowed && !rel.split(/[\\/]/).includes("..")) {
        try {
          const body = await readFile(join(NODE_MODULES, rel));
          res.writeHead(200, { "Content-Type": TYPES[extname(rel)] ?? "application/octet-stream" }).end(body);
          return;
        } catch {
          // fall through to 404
        }
      }
    }
    res.writeHead(404, { "Content-Type": "text/plain" }).end(`not found: ${path}`);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------

// page -> the console errors it logged, so that a failed SDK call can show
// what Chromium said about it (a CORS refusal reaches the SDK only as
// `network-error`, "Network Error").
const consoleLogs = new WeakMap();

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/**
 * Starts the page server and one headless Chromium with a fresh user-data
 * dir, opens the test page and waits until it says the SDK is initialised.
 * Requests that go anywhere but the page's own origin and memberd are
 * aborted (and recorded in `blocked`). Returns
 * `{ page, origin, consoleErrors, blocked, close }`.
 */
export async function openPage() {
  const pageServer = await startPageServer();
  const userDataDir = await mkdtemp(join(tmpdir(), "memberd-dom-chromium-"));
  let context;
  const close = async () => {
    await context?.close().catch(() => {});
    await pageServer.close();
    await rm(userDataDir, { recursive: true, force: true });
  };
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
  } catch (err) {
    await close();
    throw new Error(`cannot start Chromium at ${CHROMIUM_PATH} (apt-get install -y chromium): ${err.message}`);
  }
  try {
    const allowedOrigins = new Set([pageServer.origin, new URL(MEMBERD_URL).origin]);
    const blocked = [];
    await context.route("**/*", (route) => {
      const url = route.request().url();
      let origin;
      try {
        origin = new URL(url).origin;
      } catch {
        origin = "";
      }
      if (allowedOrigins.has(origin) || url.startsWith("data:")) return route.continue();
      blocked.push(url);
      return route.abort();
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const consoleErrors = [];
    consoleLogs.set(page, consoleErrors);
    page.on("console", (msg) => {
      if (msg.type() === "error") consoleErrors.push(msg.text());
    });
    page.on("pageerror", (err) => consoleErrors.push(`pageerror: ${err.message}`));

    await page.goto(`${pageServer.origin}/`, { waitUntil: "load", timeout: 30_000 });
    await page.waitForSelector("#status[data-state]", { timeout: 30_000 });
    const status = await page.textContent("#status");
    assert.equal(
      status,
      "ready",
      `the test page did not load @memberstack/dom: ${status}; console errors: ${show(consoleErrors)}`,
    );
    return { page, origin: pageServer.origin, consoleErrors, blocked, close };
  } catch (err) {
    await close();
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Calling the SDK
// ---------------------------------------------------------------------------

/**
 * Runs `window.memberstack[method](...args)` in the page. Resolves to what
 * the SDK resolved with (plain JSON, `{data: ...}`), or to
 * `{ error: { code, message, raw, consoleErrors? } }` when it rejected; never
 * throws for an SDK rejection. `raw` is the rejected value itself and
 * `consoleErrors` what the page logged meanwhile, for the failure message.
 */
export async function sdk(page, method, ...args) {
  const log = consoleLogs.get(page) ?? [];
  const seen = log.length;
  const result = await page.evaluate(
    async ({ method, args }) => {
      const ms = window.memberstack;
      if (!ms || typeof ms[method] !== "function") {
        return { error: { code: "test/no-such-method", message: `memberstack.${method} is not a function` } };
      }
      const plain = (value) => {
        try {
          return JSON.parse(JSON.stringify(value ?? null));
        } catch {
          return String(value);
        }
      };
      try {
        const result = await ms[method](...args);
        return result === undefined ? { undefined: true } : plain(result);
      } catch (err) {
        const isObj = err !== null && typeof err === "object";
        return {
          error: {
            code: isObj ? err.code : undefined,
            message: isObj ? err.message : String(err),
            raw: err instanceof Error ? String(err.stack || err) : plain(err),
          },
        };
      }
    },
    { method, args },
  );
  if (result?.error && log.length > seen) result.error.consoleErrors = log.slice(seen);
  return result;
}

/** Label for failure messages: `memberstack.login({...}) returned {...}`. */
export function described(method, args, result) {
  return `memberstack.${method}(${args.map((a) => show(a, 500)).join(", ")}) returned ${show(result)}`;
}

/**
 * Calls an SDK method that must resolve; fails with the call and its result
 * when it rejects. Returns the resolved value.
 */
export async function sdkOk(page, method, ...args) {
  const result = await sdk(page, method, ...args);
  assert.ok(
    result && typeof result === "object" && !("error" in result),
    `${described(method, args, result)}; expected it to resolve`,
  );
  return result;
}

/**
 * Calls an SDK method that must reject with an API error whose code is one
 * of `codes`. Returns the error.
 */
export async function sdkError(page, codes, method, ...args) {
  const expected = Array.isArray(codes) ? codes : [codes];
  const result = await sdk(page, method, ...args);
  const label = described(method, args, result);
  assert.ok(result?.error, `${label}; expected it to reject with ${expected.join(" or ")}`);
  assert.equal(typeof result.error.code, "string", `${label}; the rejection has no string code`);
  assert.equal(typeof result.error.message, "string", `${label}; the rejection has no string message`);
  assert.ok(expected.includes(result.error.code), `${label}; expected code ${expected.join(" or ")}`);
  return result.error;
}

/** What the page's storage holds for the SDK: the token and the member. */
export function storedState(page) {
  return page.evaluate(() => ({
    token: localStorage.getItem("_ms-mid"),
    member: localStorage.getItem("_ms-mem"),
    unhandled: window.__unhandled.slice(),
  }));
}

// ---------------------------------------------------------------------------
// Members and plans
// ---------------------------------------------------------------------------

/** The member's connection to `planId` that is ACTIVE, if any. */
export function activeConnection(member, planId) {
  return (member?.planConnections ?? []).find(
    (c) => c.planId === planId && (c.status === "ACTIVE" || c.active === true),
  );
}
