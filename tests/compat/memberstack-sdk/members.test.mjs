// memberd <-> official @memberstack/admin SDK (1.7.0) compatibility suite.
//
// All member tests live in this one file on purpose: the pagination tests
// assert exact totalCount values, which only hold while no other test creates
// or deletes members. Inside a file, node:test runs suites and tests one after
// another. webhooks.test.mjs creates members too, so the suite runs with
// `node --test --test-concurrency=1` (one file at a time, not in parallel).

import { describe, it, before } from "node:test";
import assert from "node:assert/strict";

import {
  BASE,
  KEY,
  RUN,
  LIVE_KEY,
  sdk,
  native,
  uniqueEmail,
  createFreePlan,
  createPaidPlan,
  rejectsWithApiError,
  createMembers,
  mapLimit,
  walk,
  countIds,
  assertNoDuplicates,
} from "./helpers.mjs";

const PASSWORD = "correct-horse-battery";
const ms = sdk();

// Plans shared by all suites, created once through the native API.
let freePlan; // "Free", permissions ["view:free"]
let freePlan2; // second free plan, for add/remove
let paidPlan; // "Pro", 1500 USD / month

before(async () => {
  freePlan = await createFreePlan("Free", ["view:free"]);
  freePlan2 = await createFreePlan("Free Extra", ["view:extra"]);
  paidPlan = await createPaidPlan("Pro");
});

/** The fields every member payload must carry, compared between two payloads. */
const MEMBER_FIELDS = [
  "id",
  "auth",
  "verified",
  "customFields",
  "metaData",
  "json",
  "loginRedirect",
  "profileImage",
  "stripeCustomerId",
  "lastLogin",
  "createdAt",
  "permissions",
  "planConnections",
];

function assertSameMember(actual, expected, label) {
  assert.ok(actual, `${label}: expected a member, got ${JSON.stringify(actual)}`);
  for (const field of MEMBER_FIELDS) {
    assert.deepEqual(actual[field], expected[field], `${label}: field ${field} differs`);
  }
}

function connectionFor(member, planId) {
  return member.planConnections.find((c) => c.planId === planId);
}

async function retrieveByEmail(email) {
  return ms.members.retrieve({ email });
}

// ---------------------------------------------------------------------------
// 1. create
// ---------------------------------------------------------------------------

describe("members.create", { timeout: 60_000 }, () => {
  it("creates a member with a free plan and returns the full member", async () => {
    const local = `Ann.Mixed-${RUN}`;
    const sent = {
      email: `${local}@Example.COM`,
      password: PASSWORD,
      plans: [{ planId: freePlan.id }],
      customFields: { "first-name": "Ann", country: "NL" },
      metaData: { source: "sdk-test", tier: "gold" },
      json: { nested: { a: 1, list: [1, "two", null] }, flag: true },
      loginRedirect: "/dashboard",
    };
    const res = await ms.members.create(sent);
    assert.ok(res && typeof res === "object", "create should resolve to an object");
    const m = res.data;
    assert.ok(m, "create should resolve to { data: member }");

    assert.equal(typeof m.id, "string");
    assert.match(m.id, /^mem_/);
    assert.equal(m.auth?.email, `${local}@example.com`.toLowerCase());
    assert.equal(m.verified, false);
    assert.deepEqual(m.customFields, sent.customFields);
    assert.deepEqual(m.metaData, sent.metaData);
    assert.deepEqual(m.json, sent.json);
    assert.equal(m.loginRedirect, "/dashboard");
    assert.equal(m.profileImage, null);
    assert.equal(m.stripeCustomerId, null);
    assert.equal(m.lastLogin, null);
    assert.equal(typeof m.createdAt, "string");
    assert.ok(!Number.isNaN(new Date(m.createdAt).getTime()), `createdAt not parseable: ${m.createdAt}`);
    assert.ok(Array.isArray(m.permissions), "permissions should be an array");
    assert.ok(m.permissions.includes("view:free"), `permissions ${JSON.stringify(m.permissions)} lack view:free`);

    assert.ok(Array.isArray(m.planConnections), "planConnections should be an array");
    assert.equal(m.planConnections.length, 1);
    const con = m.planConnections[0];
    assert.equal(typeof con.id, "string");
    assert.match(con.id, /^con_/);
    assert.equal(con.active, true);
    assert.equal(con.status, "ACTIVE");
    assert.equal(con.planId, freePlan.id);
    assert.equal(con.planName, "Free");
    assert.equal(con.type, "FREE");
    assert.equal(con.payment, null);

    // Cross-check with the native API.
    const nat = await native("GET", `/v1/members/${m.id}`);
    assert.equal(nat.status, 200, nat.text);
    assert.equal(nat.json.id, m.id);
    assert.equal(nat.json.email, m.auth.email);
    assert.deepEqual(nat.json.metaData, sent.metaData);
    assert.deepEqual(nat.json.customFields, sent.customFields);
    assert.deepEqual(nat.json.json, sent.json);
    assert.equal(nat.json.planConnections.length, 1);
  });

  it("rejects a paid plan and creates nothing", async () => {
    const email = uniqueEmail("paid");
    await rejectsWithApiError(ms.members.create({ email, password: PASSWORD, plans: [{ planId: paidPlan.id }] }));
    assert.deepEqual(await retrieveByEmail(email), { data: null });

    const email2 = uniqueEmail("paid-mixed");
    await rejectsWithApiError(
      ms.members.create({
        email: email2,
        password: PASSWORD,
        plans: [{ planId: freePlan.id }, { planId: paidPlan.id }],
      }),
    );
    assert.deepEqual(await retrieveByEmail(email2), { data: null });
  });

  it("rejects an email already in use, in any letter case", async () => {
    const email = uniqueEmail("dup");
    const { data: first } = await ms.members.create({ email, password: PASSWORD, metaData: { original: "yes" } });
    await rejectsWithApiError(ms.members.create({ email, password: PASSWORD }));
    await rejectsWithApiError(ms.members.create({ email: email.toUpperCase(), password: PASSWORD }));
    const { data: still } = await retrieveByEmail(email);
    assert.equal(still.id, first.id);
    assert.deepEqual(still.metaData, { original: "yes" });
  });

  it("rejects metaData with more than 50 keys, keys over 50 chars or values over 500 chars", async () => {
    const cases = {
      "51 keys": Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, "v"])),
      "51-char key": { ["k".repeat(51)]: "v" },
      "501-char value": { k: "v".repeat(501) },
    };
    for (const [label, metaData] of Object.entries(cases)) {
      const email = uniqueEmail("meta");
      await rejectsWithApiError(ms.members.create({ email, password: PASSWORD, metaData }));
      assert.deepEqual(await retrieveByEmail(email), { data: null }, `${label}: a member was created`);
    }
  });

  it("accepts metaData exactly at the limits (50 keys, 50-char key, 500-char value)", async () => {
    const metaData = Object.fromEntries(Array.from({ length: 49 }, (_, i) => [`k${i}`, "v"]));
    metaData["x".repeat(50)] = "y".repeat(500);
    const { data } = await ms.members.create({ email: uniqueEmail("meta-ok"), password: PASSWORD, metaData });
    assert.deepEqual(data.metaData, metaData);
  });

  it("rejects an invalid email", async () => {
    await rejectsWithApiError(ms.members.create({ email: "not-an-email", password: PASSWORD }));
  });
});

// ---------------------------------------------------------------------------
// 2. retrieve
// ---------------------------------------------------------------------------

describe("members.retrieve", { timeout: 60_000 }, () => {
  let created;
  const email = `ann+sdk-${RUN}@example.com`;

  before(async () => {
    ({ data: created } = await ms.members.create({
      email,
      password: PASSWORD,
      plans: [{ planId: freePlan.id }],
      customFields: { "first-name": "Ann" },
      metaData: { via: "retrieve-test" },
      json: { hello: ["world"] },
      loginRedirect: "/home",
    }));
  });

  it("by id returns the created member", async () => {
    const res = await ms.members.retrieve({ id: created.id });
    assertSameMember(res.data, created, "retrieve by id");
  });

  it("by email (with '+', URL-encoded by the SDK) returns the created member", async () => {
    const res = await ms.members.retrieve({ email });
    assertSameMember(res.data, created, "retrieve by email");
  });

  it("by email is case-insensitive", async () => {
    const res = await ms.members.retrieve({ email: email.toUpperCase() });
    assert.equal(res.data?.id, created.id);
  });

  it("resolves to { data: null } for an unknown id or email", async () => {
    assert.deepEqual(await ms.members.retrieve({ id: "mem_doesnotexist" }), { data: null });
    assert.deepEqual(await ms.members.retrieve({ email: `nobody-${RUN}@example.com` }), { data: null });
  });
});

// ---------------------------------------------------------------------------
// 3. update
// ---------------------------------------------------------------------------

describe("members.update", { timeout: 60_000 }, () => {
  it("merges customFields/metaData, replaces json and changes scalar fields", async () => {
    const { data: m } = await ms.members.create({
      email: uniqueEmail("upd"),
      password: PASSWORD,
      customFields: { a: "1", b: "2" },
      metaData: { x: "1", y: "2" },
      json: { old: { deep: true }, keep: "no" },
    });

    const newEmailLocal = `Upd.Changed-${RUN}`;
    const { data: u } = await ms.members.update({
      id: m.id,
      data: {
        customFields: { b: "B", c: "3" },
        metaData: { y: "Y", z: "Z" },
        json: { only: true },
        verified: true,
        loginRedirect: "/welcome",
        profileImage: "https://example.com/avatar.png",
        email: `${newEmailLocal}@Example.COM`,
      },
    });
    assert.equal(u.id, m.id);
    assert.deepEqual(u.customFields, { a: "1", b: "B", c: "3" });
    assert.deepEqual(u.metaData, { x: "1", y: "Y", z: "Z" });
    assert.deepEqual(u.json, { only: true });
    assert.equal(u.verified, true);
    assert.equal(u.loginRedirect, "/welcome");
    assert.equal(u.profileImage, "https://example.com/avatar.png");
    assert.equal(u.auth.email, `${newEmailLocal}@example.com`.toLowerCase());
    assert.equal(u.createdAt, m.createdAt);

    const { data: r } = await ms.members.retrieve({ id: m.id });
    assertSameMember(r, u, "retrieve after update");
    const { data: byEmail } = await ms.members.retrieve({ email: u.auth.email });
    assert.equal(byEmail?.id, m.id);

    // Fields that are not sent stay as they are.
    const { data: u2 } = await ms.members.update({ id: m.id, data: { verified: false } });
    assert.equal(u2.verified, false);
    assert.deepEqual(u2.customFields, u.customFields);
    assert.deepEqual(u2.metaData, u.metaData);
    assert.deepEqual(u2.json, u.json);
    assert.equal(u2.loginRedirect, u.loginRedirect);
    assert.equal(u2.profileImage, u.profileImage);
    assert.deepEqual(u2.auth, u.auth);
  });

  it("rejects an unknown id", async () => {
    await rejectsWithApiError(ms.members.update({ id: "mem_doesnotexist", data: { verified: true } }));
  });

  it("rejects metaData that would exceed 50 keys after the merge, changing nothing", async () => {
    const metaData = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`old${i}`, "v"]));
    const { data: m } = await ms.members.create({
      email: uniqueEmail("upd-meta"),
      password: PASSWORD,
      metaData,
      customFields: { keep: "me" },
    });
    const extra = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`new${i}`, "v"]));
    await rejectsWithApiError(
      ms.members.update({ id: m.id, data: { metaData: extra, verified: true, customFields: { keep: "changed" } } }),
    );
    const { data: r } = await ms.members.retrieve({ id: m.id });
    assertSameMember(r, m, "member after rejected update");
  });
});

// ---------------------------------------------------------------------------
// 4. addFreePlan / removeFreePlan
// ---------------------------------------------------------------------------

describe("members.addFreePlan / removeFreePlan", { timeout: 60_000 }, () => {
  let member;
  let bare;

  before(async () => {
    ({ data: member } = await ms.members.create({
      email: uniqueEmail("plans"),
      password: PASSWORD,
      plans: [{ planId: freePlan.id }],
    }));
    ({ data: bare } = await ms.members.create({ email: uniqueEmail("noplans"), password: PASSWORD }));
  });

  it("addFreePlan resolves to 'OK' and adds an active connection", async () => {
    const res = await ms.members.addFreePlan({ id: member.id, data: { planId: freePlan2.id } });
    assert.equal(res, "OK");
    const { data: r } = await ms.members.retrieve({ id: member.id });
    const con = connectionFor(r, freePlan2.id);
    assert.ok(con, `no connection for ${freePlan2.id} in ${JSON.stringify(r.planConnections)}`);
    assert.equal(con.active, true);
    assert.equal(connectionFor(r, freePlan.id)?.active, true, "the original plan stays active");
  });

  it("addFreePlan works on a member without plans", async () => {
    assert.equal(await ms.members.addFreePlan({ id: bare.id, data: { planId: freePlan.id } }), "OK");
    const { data: r } = await ms.members.retrieve({ id: bare.id });
    assert.equal(connectionFor(r, freePlan.id)?.active, true);
  });

  it("addFreePlan rejects a paid plan", async () => {
    await rejectsWithApiError(ms.members.addFreePlan({ id: member.id, data: { planId: paidPlan.id } }));
    const { data: r } = await ms.members.retrieve({ id: member.id });
    assert.equal(connectionFor(r, paidPlan.id), undefined, "a paid connection was added");
  });

  it("addFreePlan rejects an unknown member", async () => {
    await rejectsWithApiError(ms.members.addFreePlan({ id: "mem_doesnotexist", data: { planId: freePlan.id } }));
  });

  it("removeFreePlan resolves to 'OK' and cancels the connection", async () => {
    const res = await ms.members.removeFreePlan({ id: member.id, data: { planId: freePlan2.id } });
    assert.equal(res, "OK");
    const { data: r } = await ms.members.retrieve({ id: member.id });
    const con = connectionFor(r, freePlan2.id);
    assert.ok(con, `connection for ${freePlan2.id} vanished: ${JSON.stringify(r.planConnections)}`);
    assert.equal(con.active, false);
    assert.equal(con.status, "CANCELED");
    assert.equal(connectionFor(r, freePlan.id)?.active, true, "the other plan stays active");
  });

  it("removeFreePlan rejects a plan the member does not hold", async () => {
    const { data: other } = await ms.members.create({ email: uniqueEmail("noplan2"), password: PASSWORD });
    await rejectsWithApiError(ms.members.removeFreePlan({ id: other.id, data: { planId: freePlan2.id } }));
  });
});

// ---------------------------------------------------------------------------
// 5. delete
// ---------------------------------------------------------------------------

describe("members.delete", { timeout: 60_000 }, () => {
  it("deletes, then retrieve misses and a second delete rejects", async () => {
    const email = uniqueEmail("del");
    const { data: m } = await ms.members.create({ email, password: PASSWORD, plans: [{ planId: freePlan.id }] });
    assert.deepEqual(await ms.members.delete({ id: m.id }), { data: { id: m.id } });
    assert.deepEqual(await ms.members.retrieve({ id: m.id }), { data: null });
    assert.deepEqual(await ms.members.retrieve({ email }), { data: null });
    await rejectsWithApiError(ms.members.delete({ id: m.id }));
  });
});

// ---------------------------------------------------------------------------
// 6. list / pagination
// ---------------------------------------------------------------------------

describe("members.list pagination", { timeout: 300_000 }, () => {
  const COUNT = 250;
  const BATCH = 10;
  const batchOf = new Map(); // id -> creation batch number
  let mine; // Set of the 250 ids

  before(async () => {
    // Sequential batches of 10 parallel creates: members of a later batch are
    // created strictly after every member of an earlier batch.
    for (let b = 0; b < COUNT / BATCH; b++) {
      const members = await createMembers(ms, BATCH, `page${b}`);
      for (const m of members) batchOf.set(m.id, b);
    }
    mine = new Set(batchOf.keys());
    assert.equal(mine.size, COUNT);
  });

  function checkStaticWalk({ ids, pages }, limit, label) {
    assertNoDuplicates(ids, label);
    const counts = countIds(ids);
    for (const id of mine) assert.equal(counts.get(id), 1, `${label}: ${id} visited ${counts.get(id) ?? 0} times`);
    for (const [i, page] of pages.entries()) {
      assert.equal(page.totalCount, ids.length, `${label}: page ${i + 1} totalCount vs members in the environment`);
      if (page.hasNextPage) assert.equal(page.data.length, limit, `${label}: page ${i + 1} is short but not last`);
    }
    assert.ok(ids.length >= COUNT);
    assert.equal(pages.at(-1).hasNextPage, false);
    assert.equal(pages.length, Math.max(1, Math.ceil(ids.length / limit)), `${label}: page count`);
  }

  it("walks all members ASC and DESC with limit 100, each exactly once, in creation order", async () => {
    const asc = await walk(ms, { limit: 100, order: "ASC" });
    checkStaticWalk(asc, 100, "ASC walk");
    const desc = await walk(ms, { limit: 100, order: "DESC" });
    checkStaticWalk(desc, 100, "DESC walk");

    assert.deepEqual(asc.ids, [...desc.ids].reverse(), "ASC walk should be the DESC walk reversed");

    const ascMine = asc.ids.filter((id) => mine.has(id));
    const batches = ascMine.map((id) => batchOf.get(id));
    for (let i = 1; i < batches.length; i++) {
      assert.ok(
        batches[i - 1] <= batches[i],
        `ASC order breaks creation order at ${ascMine[i]} (batch ${batches[i]} after batch ${batches[i - 1]})`,
      );
    }
  });

  it("list() without arguments returns the first page of 50", async () => {
    const page = await ms.members.list();
    assert.equal(typeof page.endCursor, "number");
    assert.equal(typeof page.totalCount, "number");
    assert.ok(page.totalCount >= COUNT);
    assert.equal(page.data.length, Math.min(50, page.totalCount));
    assert.equal(page.hasNextPage, page.totalCount > 50);
    for (const m of page.data) {
      assert.match(m.id, /^mem_/);
      assert.equal("json" in m, false, "list without includeJSON must not carry json");
    }
  });

  it("walking ASC while members are created and deleted visits each survivor exactly once", async () => {
    await createMembers(ms, 50, "chg");
    // "Our" members: everything this run created that is there now (the 250
    // from above, these 50, earlier suites' leftovers), in creation order.
    // Members of other runs (a reused database) are never touched.
    const snapshot = await walk(ms, { limit: 100, order: "ASC" });
    const startIds = snapshot.members.filter((m) => m.auth.email.includes(`-${RUN}-`)).map((m) => m.id);
    assert.ok(startIds.length >= COUNT + 50);
    const visited = new Set();
    const deletedAfterVisit = new Set();
    const deletedBeforeVisit = new Set();
    const createdDuring = new Set();

    const result = await walk(ms, {
      limit: 50,
      order: "ASC",
      betweenPages: async (page) => {
        for (const m of page.data) visited.add(m.id);
        const gone = (id) => deletedAfterVisit.has(id) || deletedBeforeVisit.has(id);
        // Behind the cursor: the most recently visited ones, including the
        // member the cursor points at. An offset-based cursor would now skip
        // the members right after it.
        const seen = startIds.filter((id) => visited.has(id) && !gone(id)).slice(-10);
        // Ahead of the cursor: leave the next 10 in line alone (so skipping
        // them is noticed), take 5 a bit further on and 5 from the far end.
        const ahead = startIds.filter((id) => !visited.has(id) && !gone(id));
        const pool = ahead.length > 20 ? ahead.slice(10) : ahead;
        const unseen = [...new Set([...pool.slice(0, 5), ...pool.slice(-5)])];
        const fresh = await createMembers(ms, 20, "chg-new");
        for (const m of fresh) createdDuring.add(m.id);
        seen.forEach((id) => deletedAfterVisit.add(id));
        unseen.forEach((id) => deletedBeforeVisit.add(id));
        await mapLimit([...seen, ...unseen], 10, async (id) => {
          assert.deepEqual(await ms.members.delete({ id }), { data: { id } });
        });
      },
    });

    assertNoDuplicates(result.ids, "walk while changing");
    const counts = countIds(result.ids);
    for (const id of startIds) {
      if (deletedBeforeVisit.has(id)) {
        assert.equal(counts.get(id), undefined, `${id} was deleted before the walk reached it but was visited`);
      } else {
        assert.equal(counts.get(id), 1, `${id} existed at the start and was visited ${counts.get(id) ?? 0} times`);
      }
    }
    for (const id of createdDuring) assert.ok((counts.get(id) ?? 0) <= 1);
    // Make sure the scenario really happened.
    assert.ok(deletedBeforeVisit.size > 0, "no member was deleted ahead of the cursor");
    assert.ok(deletedAfterVisit.size > 0, "no member was deleted behind the cursor");
    assert.ok(createdDuring.size > 0, "no member was created during the walk");
  });
});

describe("raw GET /memberstack/members", { timeout: 60_000 }, () => {
  const jsonByEmail = new Map();

  before(async () => {
    // The newest 5 members of the environment; each gets a distinct json blob.
    const members = await createMembers(ms, 5, "raw");
    for (const [i, m] of members.entries()) {
      const json = { raw: i, tag: RUN };
      await ms.members.update({ id: m.id, data: { json } });
      jsonByEmail.set(m.auth.email, json);
    }
  });

  async function raw(query, key = KEY) {
    const res = await fetch(`${BASE}/memberstack/members?${query}`, {
      headers: { "X-API-KEY": key },
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    assert.equal(res.status, 200, `GET /memberstack/members?${query} -> ${res.status} ${text}`);
    return JSON.parse(text);
  }

  it("includeJSON=true adds the json field", async () => {
    const body = await raw("first=5&includeJSON=true");
    assert.equal(body.data.length, 5);
    for (const m of body.data) assert.ok("json" in m, `member ${m.id} lacks json`);

    const newest = await raw("first=5&order=DESC&includeJSON=true");
    assert.equal(newest.data.length, 5);
    for (const m of newest.data) {
      assert.deepEqual(m.json, jsonByEmail.get(m.auth.email), `json of ${m.auth.email}`);
    }
  });

  it("without includeJSON the json key is absent", async () => {
    const body = await raw("first=5");
    assert.equal(body.data.length, 5);
    for (const m of body.data) assert.equal("json" in m, false, `member ${m.id} carries json`);
  });

  it("limit is an alias of first", async () => {
    const byLimit = await raw("limit=5");
    const byFirst = await raw("first=5");
    assert.equal(byLimit.data.length, 5);
    assert.deepEqual(
      byLimit.data.map((m) => m.id),
      byFirst.data.map((m) => m.id),
    );
    assert.equal(byLimit.hasNextPage, byFirst.hasNextPage);
    assert.equal(byLimit.endCursor, byFirst.endCursor);
  });
});

// ---------------------------------------------------------------------------
// 7. environments, 8. bad key
// ---------------------------------------------------------------------------

describe("environments and keys", { timeout: 60_000 }, () => {
  it("a sandbox member is invisible with the live key", async () => {
    const email = uniqueEmail("env");
    const { data: m } = await ms.members.create({ email, password: PASSWORD });
    const live = sdk(LIVE_KEY);
    assert.deepEqual(await live.members.retrieve({ id: m.id }), { data: null });
    assert.deepEqual(await live.members.retrieve({ email }), { data: null });
    assert.equal((await ms.members.retrieve({ id: m.id })).data?.id, m.id);
  });

  it("a wrong secret key is rejected with {code, message}", async () => {
    await rejectsWithApiError(sdk("sk_sb_wrong").members.list());
  });
});
