// Shared helpers for the memberd <-> @memberstack/admin compatibility suite.
// Not a test file itself (node --test only picks up *.test.mjs here).

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import memberstackAdminModule from "@memberstack/admin";

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

const REQUIRED_VARS = ["MEMBERD_BASE_URL", "MEMBERD_KEY", "MEMBERD_LIVE_KEY"];
const missing = REQUIRED_VARS.filter((name) => !process.env[name]);
if (missing.length > 0) {
  throw new Error(
    `memberstack-sdk compat suite: missing environment variable(s) ${missing.join(", ")}. ` +
      "It needs MEMBERD_BASE_URL (a running memberd, e.g. http://127.0.0.1:43211, no trailing slash), " +
      "MEMBERD_KEY (a sandbox secret key, sk_sb_...) and MEMBERD_LIVE_KEY (a live secret key of the same app, sk_live_...).",
  );
}

export const BASE = process.env.MEMBERD_BASE_URL.replace(/\/+$/, "");
export const KEY = process.env.MEMBERD_KEY;
export const LIVE_KEY = process.env.MEMBERD_LIVE_KEY;
export const SDK_BASE_URL = `${BASE}/memberstack/`;

// Unique per run and per process, so repeated runs against one database and
// tests sharing a database never collide on emails.
export const RUN = randomUUID().replace(/-/g, "").slice(0, 10);

let emailCounter = 0;
/** A fresh, unique, lowercase email. `tag` ends up in the local part. */
export function uniqueEmail(tag = "m") {
  emailCounter += 1;
  return `${tag}-${RUN}-${emailCounter}@example.com`;
}

// ---------------------------------------------------------------------------
// SDK
// ---------------------------------------------------------------------------

// The package is CommonJS; importing it from ESM yields module.exports, which
// carries both `init` and a `default` with `init`.
const memberstackAdmin =
  typeof memberstackAdminModule.init === "function"
    ? memberstackAdminModule
    : memberstackAdminModule.default;

/** An official, unmodified Admin SDK client pointed at memberd. */
export function sdk(key = KEY) {
  return memberstackAdmin.init(key, { baseUrl: SDK_BASE_URL });
}

// ---------------------------------------------------------------------------
// Native memberd API (set-up and cross-checks only)
// ---------------------------------------------------------------------------

export async function native(method, path, body, key = KEY) {
  return nativeRaw(method, path, body === undefined ? undefined : JSON.stringify(body), key);
}

/**
 * Like `native`, but sends `rawBody` (a string) exactly as given, so a test
 * controls every byte of the JSON (key order, number spellings, escapes).
 */
export async function nativeRaw(method, path, rawBody, key = KEY) {
  const headers = { Authorization: `Bearer ${key}` };
  if (rawBody !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(`${BASE}${path}`, {
      method,
      headers,
      body: rawBody,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new Error(`cannot reach memberd: ${method} ${BASE}${path} failed: ${err.cause?.message ?? err.message}`);
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

export async function createPlan(body) {
  const res = await native("POST", "/v1/plans", body);
  assert.equal(res.status, 201, `POST /v1/plans ${JSON.stringify(body)} -> ${res.status} ${res.text}`);
  assert.equal(typeof res.json?.id, "string", `plan id missing in ${res.text}`);
  assert.match(res.json.id, /^pln_/);
  return res.json;
}

export function createFreePlan(name, permissions) {
  return createPlan({ name, permissions });
}

export function createPaidPlan(name) {
  return createPlan({ name, prices: [{ amount: 1500, currency: "USD", interval: "MONTH" }] });
}

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

/**
 * Validator for assert.rejects: the SDK must reject with the server's
 * `error` object `{ code, message }` - not with a transport error (axios
 * errors also carry string `code`/`message`, e.g. ECONNREFUSED, so those are
 * told apart explicitly).
 */
export function isApiError(err) {
  assert.notEqual(err?.isAxiosError, true, `expected a {code, message} API error, got a transport error: ${err?.message}`);
  assert.ok(!(err instanceof Error), `expected a plain {code, message} object, got ${err}`);
  assert.equal(typeof err.code, "string", `error.code should be a string in ${JSON.stringify(err)}`);
  assert.equal(typeof err.message, "string", `error.message should be a string in ${JSON.stringify(err)}`);
  return true;
}

export function rejectsWithApiError(promise) {
  return assert.rejects(promise, isApiError);
}

// ---------------------------------------------------------------------------
// Concurrency / pagination utilities
// ---------------------------------------------------------------------------

/** Like Promise.all(items.map(fn)) but with at most `limit` calls in flight. Keeps order. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Creates `count` members (10 in flight) and returns them in input order. */
export async function createMembers(ms, count, tag, extra = {}) {
  const emails = Array.from({ length: count }, () => uniqueEmail(tag));
  return mapLimit(emails, 10, async (email) => {
    const { data } = await ms.members.create({ email, password: "correct-horse-battery", ...extra });
    return data;
  });
}

function checkPage(page, limit, pageNo) {
  assert.ok(Array.isArray(page.data), `page ${pageNo}: data should be an array`);
  assert.equal(typeof page.hasNextPage, "boolean", `page ${pageNo}: hasNextPage should be a boolean`);
  assert.equal(typeof page.endCursor, "number", `page ${pageNo}: endCursor should be a number, got ${JSON.stringify(page.endCursor)}`);
  assert.equal(typeof page.totalCount, "number", `page ${pageNo}: totalCount should be a number`);
  assert.ok(page.data.length <= limit, `page ${pageNo}: ${page.data.length} members exceed limit ${limit}`);
}

/**
 * Walks every page with the documented SDK loop
 * (`after = page.hasNextPage ? page.endCursor : undefined`).
 * `betweenPages(page, pageNo)` runs after each page that has a next page.
 * Returns every visited member and id in visit order (duplicates kept) and
 * the pages.
 */
export async function walk(ms, { limit, order, betweenPages, maxPages = 200 }) {
  const ids = [];
  const members = [];
  const pages = [];
  let after;
  do {
    const params = { limit, order };
    if (after !== undefined) params.after = after;
    const page = await ms.members.list(params);
    checkPage(page, limit, pages.length + 1);
    pages.push(page);
    for (const m of page.data) {
      ids.push(m.id);
      members.push(m);
    }
    after = page.hasNextPage ? page.endCursor : undefined;
    assert.ok(pages.length <= maxPages, `walk did not end after ${maxPages} pages (cursor loop?)`);
    if (after !== undefined && betweenPages) await betweenPages(page, pages.length);
  } while (after !== undefined);
  return { ids, members, pages };
}

/** Map id -> number of occurrences. */
export function countIds(ids) {
  const counts = new Map();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

export function assertNoDuplicates(ids, label) {
  const dups = [...countIds(ids)].filter(([, n]) => n > 1).map(([id, n]) => `${id} x${n}`);
  assert.deepEqual(dups, [], `${label}: ids visited more than once`);
}

// ---------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `check()` every `interval` ms until it returns a truthy value, which
 * it then returns. After `timeout` ms it fails with `describe()`'s text, so
 * the failure says what was there instead.
 */
export async function waitUntil(check, { timeout = 30_000, interval = 100, describe = () => "" } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() >= deadline) {
      assert.fail(`gave up after ${timeout / 1000} s. ${describe()}`);
    }
    await sleep(interval);
  }
}
