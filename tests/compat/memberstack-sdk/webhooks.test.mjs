// memberd's signed webhooks, checked with two independent verifiers:
//
// - `standardwebhooks` (the Standard Webhooks reference library), which
//   signs the raw body and reads the `webhook-*` headers;
// - `@memberstack/admin`'s `verifyWebhookSignature`, which reads UPPERCASE
//   `SVIX-*` keys and signs `JSON.stringify(payload)` of the parsed body, so
//   it only verifies when memberd writes JSON exactly as JavaScript would.
//
// A local receiver (node:http on 127.0.0.1) records every delivery, so the
// server under test must be allowed to send webhooks to 127.0.0.1.
//
// The tests in the describe block below run in order and share state: the
// endpoints, the member and the requests received for it.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";

import { RUN, sdk, native, nativeRaw, uniqueEmail, createFreePlan, waitUntil } from "./helpers.mjs";

const PASSWORD = "correct-horse-battery";
const ms = sdk();

// A PATCH body whose metaData stresses JSON re-serialisation: integer-like
// keys out of order (JavaScript puts them first, ascending), 1.50, 1e21,
// 0.0000001, -0.0 and escapes. Sent byte for byte; String.raw keeps the
// backslashes, so the JSON text holds the escapes \u2028 and \u0001.
const RAW_PATCH = String.raw`{"metaData": {"10": "a", "9": "b", "b": "c", "a": "d", "f": 1.50, "big": 1e21, "tiny": 0.0000001, "neg": -0.0, "uni": "é\u2028\u0001"}}`;
// What JavaScript makes of it: {"9":"b","10":"a","b":"c","a":"d","f":1.5,"big":1e+21,"tiny":1e-7,"neg":0,"uni":"é<U+2028>\u0001"}.
const EXPECTED_META_JSON = JSON.stringify(JSON.parse(RAW_PATCH).metaData);

const RAW_PATCH_ROUND_2 = `{"metaData": {"round": "2"}}`;

const CATALOG_NAMES = [
  "member.created",
  "member.updated",
  "member.deleted",
  "member.plan.created",
  "member.plan.updated",
  "member.plan.replaced",
  "member.plan.canceled",
  "payment.failed",
  "payment.succeeded",
];
const APPSTLE_CATALOG_NAMES = [
  "membership.created",
  "membership.updated",
  "membership.activated",
  "membership.paused",
  "membership.cancelled",
  "membership.expired",
  "membership.billing-success",
  "membership.billing-failure",
  "membership.next-order-date-changed",
  "membership.billing-interval-changed",
];

const MEMBER_TYPES = ["member.created", "member.plan.created", "member.updated"];

// ---------------------------------------------------------------------------
// Receiver
// ---------------------------------------------------------------------------

/** Starts an HTTP server on 127.0.0.1 (free port) that records every request and answers 204. */
async function startReceiver() {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let json;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      requests.push({ method: req.method, path: req.url, headers: req.headers, body, json, receivedAt: Date.now() });
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();
  return {
    requests,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // The sender may keep idle keep-alive connections open.
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** The event type of a received body, in its flavour's vocabulary. */
function typeOf(rec) {
  if (rec.json === undefined) return "<not JSON>";
  return rec.path === "/ms" ? rec.json.event : rec.json.type;
}

/** One line per request, for failure messages. */
function summarise(requests) {
  if (requests.length === 0) return "(nothing)";
  return requests
    .map(
      (r) =>
        `${r.method} ${r.path} ${typeOf(r)} webhook-id=${r.headers["webhook-id"]} ` +
        `data.id=${r.json?.data?.id} data.memberId=${r.json?.data?.memberId} ${r.body.length} bytes`,
    )
    .join("\n  ");
}

/** The `v1,...` signatures of a request, as sent in one space-separated header. */
function signaturesOf(rec) {
  return (rec.headers["webhook-signature"] ?? "").split(" ");
}

/** What `ms.verifyWebhookSignature` expects: UPPERCASE SVIX-* keys and the parsed body. */
function sdkVerify(rec, secret, body = rec.body) {
  return ms.verifyWebhookSignature({
    headers: {
      "SVIX-ID": rec.headers["svix-id"],
      "SVIX-TIMESTAMP": rec.headers["svix-timestamp"],
      "SVIX-SIGNATURE": rec.headers["svix-signature"],
    },
    secret,
    payload: JSON.parse(body),
  });
}

/** standardwebhooks verification on the raw body and the lowercase webhook-* headers. */
function swVerify(rec, secret, body = rec.body) {
  return new Webhook(secret).verify(body, {
    "webhook-id": rec.headers["webhook-id"],
    "webhook-timestamp": rec.headers["webhook-timestamp"],
    "webhook-signature": rec.headers["webhook-signature"],
  });
}

/** The signature standardwebhooks computes for a request with `secret` (`v1,...`). */
function swSign(rec, secret) {
  const ts = Number(rec.headers["webhook-timestamp"]);
  return new Webhook(secret).sign(rec.headers["webhook-id"], new Date(ts * 1000), rec.body);
}

/** A fresh random secret in the same `whsec_<base64>` form, for negative checks. */
function randomSecret() {
  return `whsec_${randomBytes(24).toString("base64")}`;
}

/** The same body with exactly one character changed; still valid JSON. */
function tamper(rec, memberId) {
  const at = rec.body.indexOf(memberId);
  assert.ok(at >= 0, `member id ${memberId} not in body ${rec.body}`);
  const i = at + memberId.length - 1;
  const swapped = rec.body[i] === "x" ? "y" : "x";
  const tampered = rec.body.slice(0, i) + swapped + rec.body.slice(i + 1);
  assert.notEqual(tampered, rec.body);
  assert.equal(tampered.length, rec.body.length);
  JSON.parse(tampered);
  return tampered;
}

/** Checks that hold for every delivery, whatever its flavour and secret. */
function checkCommon(rec, label) {
  assert.equal(rec.method, "POST", `${label}: method`);
  assert.match(rec.headers["content-type"] ?? "", /^application\/json\b/, `${label}: content-type`);
  for (const name of ["id", "timestamp", "signature"]) {
    const std = rec.headers[`webhook-${name}`];
    assert.equal(typeof std, "string", `${label}: webhook-${name} header missing`);
    assert.equal(rec.headers[`svix-${name}`], std, `${label}: svix-${name} differs from webhook-${name}`);
  }
  assert.match(rec.headers["webhook-id"], /^evt_/, `${label}: webhook-id`);
  assert.match(rec.headers["webhook-timestamp"], /^\d+$/, `${label}: webhook-timestamp should be unix seconds`);
  const skew = Math.abs(Number(rec.headers["webhook-timestamp"]) * 1000 - rec.receivedAt);
  assert.ok(skew < 60_000, `${label}: webhook-timestamp is ${skew} ms away from the time of receipt`);
  for (const sig of signaturesOf(rec)) {
    assert.match(sig, /^v1,[A-Za-z0-9+/]+={0,2}$/, `${label}: signature ${JSON.stringify(sig)}`);
  }
  assert.ok(rec.json !== undefined, `${label}: body is not JSON: ${rec.body}`);
  assert.equal(JSON.stringify(rec.json), rec.body, `${label}: body is not written the way JSON.stringify writes it`);
}

/** Checks the body shape of each flavour. */
function checkShape(rec, label) {
  const b = rec.json;
  assert.ok(b && typeof b === "object" && !Array.isArray(b), `${label}: body should be an object`);
  assert.ok(b.data && typeof b.data === "object", `${label}: data should be an object`);
  if (rec.path === "/ms") {
    assert.deepEqual(Object.keys(b).sort(), ["data", "event", "timestamp"], `${label}: keys`);
    assert.equal(typeof b.event, "string", `${label}: event`);
    assert.equal(typeof b.timestamp, "number", `${label}: timestamp should be a number (ms)`);
    assert.ok(Number.isInteger(b.timestamp), `${label}: timestamp should be whole milliseconds`);
    assert.ok(Math.abs(b.timestamp - rec.receivedAt) < 60_000, `${label}: timestamp ${b.timestamp} is not within a minute of ${rec.receivedAt}`);
  } else if (rec.path === "/native") {
    assert.equal(typeof b.type, "string", `${label}: type`);
    assert.equal(b.id, rec.headers["webhook-id"], `${label}: id should equal the webhook-id header`);
    assert.equal(typeof b.timestamp, "string", `${label}: timestamp should be an RFC 3339 string`);
    assert.match(b.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/, `${label}: timestamp`);
    const t = Date.parse(b.timestamp);
    assert.ok(Math.abs(t - rec.receivedAt) < 60_000, `${label}: timestamp ${b.timestamp} is not within a minute of receipt`);
  } else if (rec.path === "/appstle") {
    assert.equal(typeof b.type, "string", `${label}: type`);
    assert.match(b.type, /^membership\./, `${label}: type`);
    assert.equal(typeof b.data.id, "number", `${label}: data.id should be the contract's number`);
    assert.match(b.data.planConnectionId, /^con_/, `${label}: data.planConnectionId should be a plan connection id`);
  } else {
    assert.fail(`${label}: request to an unexpected path ${rec.path}`);
  }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe("webhooks", { timeout: 180_000 }, () => {
  let receiver;
  /** path -> { id, secret, url } */
  const endpoints = {};
  let plan;
  let member; // as returned by ms.members.create
  let conId; // its plan connection
  let memberEmail;
  /** Requests for the member before any rotation, per path. */
  let firstRound;

  before(async () => {
    receiver = await startReceiver();
  });

  after(async () => {
    // Stop deliveries to the closed receiver (best effort; the run's database is thrown away).
    for (const ep of Object.values(endpoints)) {
      await native("DELETE", `/v1/webhook-endpoints/${ep.id}`).catch(() => {});
    }
    await receiver?.close();
  });

  /** Does a received request concern our member? */
  function isOurs(rec) {
    const d = rec.json?.data;
    if (!d || !member) return false;
    if (rec.path === "/appstle") return d.planConnectionId === conId || d.memberId === member.id;
    return d.id === member.id || d.memberId === member.id || d.planConnection?.memberId === member.id;
  }

  function ours(path) {
    return receiver.requests.filter((r) => r.path === path && isOurs(r));
  }

  function describeArrivals() {
    return `Member ${member?.id}. Received:\n  ${summarise(receiver.requests)}`;
  }

  it("lists every event type with an example", async () => {
    const res = await native("GET", "/v1/event-types");
    assert.equal(res.status, 200, res.text);
    assert.ok(Array.isArray(res.json?.data), `data should be an array in ${res.text}`);
    const byName = new Map();
    for (const t of res.json.data) {
      assert.equal(typeof t.name, "string", `name in ${JSON.stringify(t)}`);
      assert.equal(typeof t.description, "string", `${t.name}: description`);
      assert.ok(Array.isArray(t.flavours) && t.flavours.length > 0, `${t.name}: flavours should be a non-empty array`);
      assert.ok(
        t.example !== null && typeof t.example === "object" && !Array.isArray(t.example),
        `${t.name}: example should be an object, got ${JSON.stringify(t.example)}`,
      );
      byName.set(t.name, t);
    }
    for (const name of CATALOG_NAMES) {
      assert.ok(byName.has(name), `${name} missing from /v1/event-types (has ${[...byName.keys()].join(", ")})`);
      for (const flavour of ["native", "memberstack"]) {
        assert.ok(byName.get(name).flavours.includes(flavour), `${name}: flavours ${JSON.stringify(byName.get(name).flavours)} lack ${flavour}`);
      }
    }
    for (const name of APPSTLE_CATALOG_NAMES) {
      assert.ok(byName.has(name), `${name} missing from /v1/event-types (has ${[...byName.keys()].join(", ")})`);
      assert.ok(byName.get(name).flavours.includes("appstle"), `${name}: flavours ${JSON.stringify(byName.get(name).flavours)} lack appstle`);
    }
  });

  it("creates a memberstack, a native and an appstle endpoint", async () => {
    const specs = [
      { path: "/ms", flavour: "memberstack" },
      { path: "/native", flavour: "native" },
      { path: "/appstle", flavour: "appstle", eventTypes: ["membership.created"] },
    ];
    for (const { path, flavour, eventTypes } of specs) {
      const url = receiver.url(path);
      const body = { url, flavour, description: `compat ${RUN} ${flavour}` };
      if (eventTypes) body.eventTypes = eventTypes;
      const res = await native("POST", "/v1/webhook-endpoints", body);
      assert.equal(res.status, 201, `POST /v1/webhook-endpoints ${JSON.stringify(body)} -> ${res.status} ${res.text}`);
      const ep = res.json;
      assert.match(ep.id ?? "", /^ep_/, `endpoint id in ${res.text}`);
      assert.match(ep.secret ?? "", /^whsec_[A-Za-z0-9+/]+={0,2}$/, `secret in ${res.text}`);
      assert.equal(ep.url, url);
      assert.equal(ep.flavour, flavour);
      assert.equal(ep.enabled, true);
      assert.ok(Array.isArray(ep.eventTypes), `eventTypes should be an array in ${res.text}`);
      if (eventTypes) assert.deepEqual(ep.eventTypes, eventTypes);
      endpoints[path] = { id: ep.id, secret: ep.secret, url };

      const got = await native("GET", `/v1/webhook-endpoints/${ep.id}/secret`);
      assert.equal(got.status, 200, got.text);
      assert.equal(got.json?.secret, ep.secret, "GET .../secret should return the secret given at creation");
    }
    assert.notEqual(endpoints["/ms"].secret, endpoints["/native"].secret, "endpoints should have their own secrets");
  });

  it("delivers member.created, member.plan.created and member.updated to each endpoint", async () => {
    assert.equal(Object.keys(endpoints).length, 3, "the endpoints were not created");
    plan = await createFreePlan(`Webhook Free ${RUN}`, ["view:webhooks"]);

    memberEmail = uniqueEmail("webhook");
    ({ data: member } = await ms.members.create({
      email: memberEmail,
      password: PASSWORD,
      plans: [{ planId: plan.id }],
      customFields: { "first-name": "Wes" },
    }));
    assert.match(member?.id ?? "", /^mem_/, `member id in ${JSON.stringify(member)}`);
    conId = member.planConnections?.[0]?.id;
    assert.match(conId ?? "", /^con_/, `plan connection in ${JSON.stringify(member)}`);

    const patched = await nativeRaw("PATCH", `/v1/members/${member.id}`, RAW_PATCH);
    assert.equal(patched.status, 200, `PATCH /v1/members/${member.id} ${RAW_PATCH} -> ${patched.status} ${patched.text}`);

    const complete = () => {
      for (const path of ["/ms", "/native"]) {
        const types = ours(path).map(typeOf);
        if (!MEMBER_TYPES.every((t) => types.includes(t))) return false;
      }
      return ours("/appstle").length >= 1;
    };
    await waitUntil(complete, {
      describe: () =>
        `Expected ${MEMBER_TYPES.join(", ")} at /ms and /native and membership.created at /appstle. ${describeArrivals()}`,
    });

    firstRound = {
      "/ms": ours("/ms"),
      "/native": ours("/native"),
      "/appstle": ours("/appstle"),
    };
    for (const path of ["/ms", "/native"]) {
      const types = firstRound[path].map(typeOf).sort();
      assert.deepEqual(types, [...MEMBER_TYPES].sort(), `${path}: each event exactly once. ${describeArrivals()}`);
    }
    assert.deepEqual(
      firstRound["/appstle"].map(typeOf),
      ["membership.created"],
      `/appstle: exactly one membership.created. ${describeArrivals()}`,
    );
    const unexpected = receiver.requests.filter((r) => !["/ms", "/native", "/appstle"].includes(r.path));
    assert.deepEqual(unexpected.map((r) => r.path), [], "requests to unexpected paths");
    // The appstle endpoint subscribed to membership.created only.
    const otherAppstle = receiver.requests.filter((r) => r.path === "/appstle" && typeOf(r) !== "membership.created");
    assert.deepEqual(otherAppstle.map(typeOf), [], "/appstle received types it did not subscribe to");
  });

  it("sends the same event id to every endpoint", () => {
    assert.ok(firstRound, "no deliveries to check (an earlier test failed)");
    const idOf = (path, type) => firstRound[path].find((r) => typeOf(r) === type).headers["webhook-id"];
    for (const type of MEMBER_TYPES) {
      assert.equal(idOf("/ms", type), idOf("/native", type), `${type}: webhook-id differs between /ms and /native`);
    }
    const ids = MEMBER_TYPES.map((t) => idOf("/native", t));
    assert.equal(new Set(ids).size, ids.length, `distinct events should have distinct ids: ${ids}`);
    // membership.created is Appstle's name for member.plan.created.
    assert.equal(
      idOf("/appstle", "membership.created"),
      idOf("/native", "member.plan.created"),
      "membership.created should carry the id of the member.plan.created event",
    );
  });

  it("signs every delivery so that standardwebhooks and the Memberstack SDK verify it", () => {
    assert.ok(firstRound, "no deliveries to check (an earlier test failed)");
    for (const [path, requests] of Object.entries(firstRound)) {
      const { secret } = endpoints[path];
      for (const rec of requests) {
        const label = `${path} ${typeOf(rec)}`;
        checkCommon(rec, label);
        assert.equal(signaturesOf(rec).length, 1, `${label}: one signature before any rotation`);
        assert.deepEqual(swVerify(rec, secret), rec.json, `${label}: standardwebhooks verify`);
        if (path === "/ms") {
          assert.equal(sdkVerify(rec, secret), true, `${label}: ms.verifyWebhookSignature`);
        }
      }
    }
  });

  it("sends each flavour's body shape", () => {
    assert.ok(firstRound, "no deliveries to check (an earlier test failed)");
    for (const [path, requests] of Object.entries(firstRound)) {
      for (const rec of requests) checkShape(rec, `${path} ${typeOf(rec)}`);
    }
    for (const path of ["/ms", "/native"]) {
      const created = firstRound[path].find((r) => typeOf(r) === "member.created").json.data;
      assert.equal(created.id, member.id, `${path} member.created: data.id`);
      assert.equal(created.auth?.email, memberEmail, `${path} member.created: data.auth.email`);
      assert.deepEqual(created.customFields, { "first-name": "Wes" }, `${path} member.created: data.customFields`);
      assert.ok(created.metaData && typeof created.metaData === "object", `${path} member.created: data.metaData`);
    }
    const appstle = firstRound["/appstle"][0].json;
    assert.equal(appstle.type, "membership.created");
    assert.equal(appstle.data.planConnectionId, conId, "/appstle: data.planConnectionId should be the member's plan connection");
    assert.equal(typeof appstle.data.id, "number", "/appstle: data.id is the contract's number");
  });

  it("writes JSON exactly as JavaScript does, so the SDK's re-serialisation matches", () => {
    assert.ok(firstRound, "no deliveries to check (an earlier test failed)");
    for (const path of ["/ms", "/native"]) {
      const rec = firstRound[path].find((r) => typeOf(r) === "member.updated");
      const label = `${path} member.updated`;
      assert.equal(JSON.stringify(JSON.parse(rec.body)), rec.body, `${label}: JSON.stringify(JSON.parse(body)) !== body`);
      assert.equal(JSON.stringify(rec.json.data.metaData), EXPECTED_META_JSON, `${label}: metaData`);
      assert.ok(
        rec.body.includes(`"metaData":${EXPECTED_META_JSON}`),
        `${label}: body should contain "metaData":${EXPECTED_META_JSON}, got ${rec.body}`,
      );
      // The SDK hashes JSON.stringify(JSON.parse(body)); it reads the svix-* headers.
      assert.equal(sdkVerify(rec, endpoints[path].secret), true, `${label}: ms.verifyWebhookSignature`);
    }
  });

  it("rejects a tampered body or a wrong secret with both verifiers", () => {
    assert.ok(firstRound, "no deliveries to check (an earlier test failed)");
    for (const path of ["/ms", "/native"]) {
      const rec = firstRound[path].find((r) => typeOf(r) === "member.updated");
      const { secret } = endpoints[path];
      const tampered = tamper(rec, member.id);
      const wrong = randomSecret();
      assert.throws(() => swVerify(rec, secret, tampered), `${path}: standardwebhooks accepted a tampered body`);
      assert.throws(() => sdkVerify(rec, secret, tampered), `${path}: the SDK accepted a tampered body`);
      assert.throws(() => swVerify(rec, wrong), `${path}: standardwebhooks accepted a wrong secret`);
      assert.throws(() => sdkVerify(rec, wrong), `${path}: the SDK accepted a wrong secret`);
      // The other endpoint's secret is wrong too.
      const other = endpoints[path === "/ms" ? "/native" : "/ms"].secret;
      assert.throws(() => swVerify(rec, other), `${path}: standardwebhooks accepted another endpoint's secret`);
      assert.throws(() => sdkVerify(rec, other), `${path}: the SDK accepted another endpoint's secret`);
    }
  });

  it("after a rotation signs memberstack endpoints with the new secret only, native ones with both", async () => {
    assert.ok(firstRound, "no deliveries to check (an earlier test failed)");
    const old = {};
    const fresh = {};
    for (const path of ["/ms", "/native"]) {
      const ep = endpoints[path];
      old[path] = ep.secret;
      const res = await native("POST", `/v1/webhook-endpoints/${ep.id}/secret/rotate`);
      assert.equal(res.status, 200, `rotate ${path}: ${res.status} ${res.text}`);
      assert.match(res.json?.secret ?? "", /^whsec_[A-Za-z0-9+/]+={0,2}$/, `rotate ${path}: secret in ${res.text}`);
      assert.notEqual(res.json.secret, old[path], `rotate ${path}: the secret did not change`);
      fresh[path] = res.json.secret;
      const got = await native("GET", `/v1/webhook-endpoints/${ep.id}/secret`);
      assert.equal(got.status, 200, got.text);
      assert.equal(got.json?.secret, fresh[path], `${path}: GET .../secret should return the new secret`);
      ep.secret = fresh[path];
    }

    const seen = new Set(receiver.requests.map((r) => r.headers["webhook-id"]));
    const patched = await nativeRaw("PATCH", `/v1/members/${member.id}`, RAW_PATCH_ROUND_2);
    assert.equal(patched.status, 200, `PATCH ${RAW_PATCH_ROUND_2} -> ${patched.status} ${patched.text}`);

    const round2 = (path) =>
      ours(path).filter(
        (r) => typeOf(r) === "member.updated" && r.json.data.metaData?.round === "2" && !seen.has(r.headers["webhook-id"]),
      );
    await waitUntil(() => round2("/ms").length >= 1 && round2("/native").length >= 1, {
      describe: () => `Expected a second member.updated (metaData.round "2") at /ms and /native. ${describeArrivals()}`,
    });

    // Memberstack flavour: exactly one signature, made with the new secret.
    const msRec = round2("/ms")[0];
    checkCommon(msRec, "/ms after rotation");
    checkShape(msRec, "/ms after rotation");
    const msSigs = signaturesOf(msRec);
    assert.equal(msSigs.length, 1, `/ms: expected one signature after rotation, got ${msRec.headers["webhook-signature"]}`);
    assert.equal(msSigs[0], swSign(msRec, fresh["/ms"]), "/ms: the signature should be made with the new secret");
    assert.equal(sdkVerify(msRec, fresh["/ms"]), true, "/ms: the SDK should verify with the new secret");
    assert.throws(() => sdkVerify(msRec, old["/ms"]), "/ms: the SDK accepted the old secret");
    assert.deepEqual(swVerify(msRec, fresh["/ms"]), msRec.json, "/ms: standardwebhooks with the new secret");
    assert.throws(() => swVerify(msRec, old["/ms"]), "/ms: standardwebhooks accepted the old secret");

    // Native flavour: two signatures, new first, then old; both verify.
    const natRec = round2("/native")[0];
    checkCommon(natRec, "/native after rotation");
    checkShape(natRec, "/native after rotation");
    const natSigs = signaturesOf(natRec);
    assert.equal(natSigs.length, 2, `/native: expected two signatures after rotation, got ${natRec.headers["webhook-signature"]}`);
    assert.equal(natSigs[0], swSign(natRec, fresh["/native"]), "/native: first signature should be made with the new secret");
    assert.equal(natSigs[1], swSign(natRec, old["/native"]), "/native: second signature should be made with the old secret");
    assert.deepEqual(swVerify(natRec, fresh["/native"]), natRec.json, "/native: standardwebhooks with the new secret");
    assert.deepEqual(swVerify(natRec, old["/native"]), natRec.json, "/native: standardwebhooks with the old secret");
    assert.throws(() => swVerify(natRec, randomSecret()), "/native: standardwebhooks accepted a random secret");

    assert.equal(msRec.headers["webhook-id"], natRec.headers["webhook-id"], "the same event should carry the same id");

    // member.updated has no Appstle counterpart: still just the one membership.created.
    assert.deepEqual(ours("/appstle").map(typeOf), ["membership.created"], `/appstle. ${describeArrivals()}`);
  });
});
