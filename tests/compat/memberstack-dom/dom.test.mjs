// memberd <-> official @memberstack/dom (2.0.14) compatibility suite.
//
// One headless Chromium, one page, one SDK instance for the whole file: the
// tests run in order and build on each other (the SDK's stored token carries
// over from one test to the next), so a failure early on makes later tests
// fail too; read the first failure first.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRemoteJWKSet, jwtVerify } from "jose";

import {
  MEMBERD_URL,
  APP_ID,
  show,
  createPlan,
  createSecureContent,
  verifyTokenOnServer,
  openPage,
  sdkOk,
  sdkError,
  described,
  storedState,
  activeConnection,
  emailedCode,
  emailsTo,
} from "./helpers.mjs";

const T = { timeout: 60_000 };
const PASSWORD = "correct horse 1";
const NEW_PASSWORD = "correct horse 2";
const RESET_PASSWORD = "correct horse 4";
const RUN = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
const EMAIL = `dom-${RUN}@example.com`;
const NEW_EMAIL = `dom-new-${RUN}@example.com`;
const PASSWORDLESS_EMAIL = `dom-nopass-${RUN}@example.com`;
const GUESSED_EMAIL = `dom-guessed-${RUN}@example.com`;
const CONTENT_ID = "premium-article";
const DAY_MS = 24 * 60 * 60 * 1000;

let browser; // { page, origin, consoleErrors, blocked, close }
let page;
let freePlan; // grants view:premium; unlocks the secure content
let freePlan2; // for addPlan / removePlan
let paidPlan; // 1500 USD / month

// Filled in as the tests go.
let memberId;
let signupToken;
let loginToken;

function need(value, what) {
  assert.ok(value, `cannot run: ${what} is missing, an earlier test failed`);
}

before(async () => {
  // The page first: it needs no memberd, and a broken page is a different
  // failure from an unreachable server.
  browser = await openPage();
  page = browser.page;
  const loaded = await page.evaluate(() => ({
    getApp: typeof window.memberstack?.getApp,
    signup: typeof window.memberstack?.signupMemberEmailPassword,
  }));
  assert.deepEqual(
    loaded,
    { getApp: "function", signup: "function" },
    `the SDK instance on window.memberstack is incomplete; console errors: ${show(browser.consoleErrors)}`,
  );

  freePlan = await createPlan({ name: `DOM Free ${RUN}`, permissions: ["view:premium"] });
  freePlan2 = await createPlan({ name: `DOM Extra ${RUN}`, permissions: ["view:extra"] });
  paidPlan = await createPlan({
    name: `DOM Pro ${RUN}`,
    prices: [{ amount: 1500, currency: "USD", interval: "MONTH" }],
  });
  await createSecureContent({
    id: CONTENT_ID,
    type: "HTML",
    content: "<p>secret</p>",
    planIds: [freePlan.id],
    permissions: [],
  });
});

after(async () => {
  if (browser?.blocked.length) {
    console.log(`# requests the page tried outside the page and memberd (aborted): ${show(browser.blocked)}`);
  }
  await browser?.close();
});

test("1. getApp, getPlans and getPlan", T, async () => {
  const app = await sdkOk(page, "getApp");
  const label = described("getApp", [], app);
  assert.equal(app.data?.id, APP_ID, label);
  assert.ok(Array.isArray(app.data.plans), `${label}; data.plans should be an array`);
  const appPlanIds = app.data.plans.map((p) => p.id);
  for (const plan of [freePlan, freePlan2]) {
    assert.ok(appPlanIds.includes(plan.id), `${label}; data.plans should include ${plan.id}`);
  }

  const plans = await sdkOk(page, "getPlans");
  const plansLabel = described("getPlans", [], plans);
  assert.ok(Array.isArray(plans.data), `${plansLabel}; data should be an array`);
  for (const plan of [freePlan, freePlan2]) {
    assert.ok(plans.data.some((p) => p.id === plan.id), `${plansLabel}; should include ${plan.id}`);
  }

  const args = { planId: freePlan.id };
  const one = await sdkOk(page, "getPlan", args);
  assert.equal(one.data?.id, freePlan.id, described("getPlan", [args], one));
});

test("2. signupMemberEmailPassword", T, async () => {
  const args = {
    email: EMAIL,
    password: PASSWORD,
    customFields: { "first-name": "Ada" },
    plans: [{ planId: freePlan.id }],
  };
  const res = await sdkOk(page, "signupMemberEmailPassword", args);
  const label = described("signupMemberEmailPassword", [args], res);
  const member = res.data?.member;
  assert.match(String(member?.id), /^mem_/, label);
  assert.equal(member.auth?.email, EMAIL, label);
  assert.equal(member.customFields?.["first-name"], "Ada", label);
  assert.ok(activeConnection(member, freePlan.id), `${label}; planConnections should hold ${freePlan.id} ACTIVE`);
  const tokens = res.data.tokens;
  assert.equal(typeof tokens?.accessToken, "string", label);
  assert.equal(typeof tokens.expires, "number", `${label}; tokens.expires should be a number`);
  const now = Date.now();
  assert.ok(
    tokens.expires > now && tokens.expires < now + 400 * DAY_MS,
    `${label}; tokens.expires should be milliseconds since the epoch (now is ${now})`,
  );
  memberId = member.id;
  signupToken = tokens.accessToken;

  const stored = await storedState(page);
  assert.equal(stored.token, signupToken, "the SDK should have stored the access token in localStorage _ms-mid");
});

test("3. the access token verifies with jose and with POST /memberstack/members/verify-token", T, async () => {
  need(signupToken, "the signup token");
  const jwks = createRemoteJWKSet(new URL(`${MEMBERD_URL}/.well-known/jwks.json`));
  let verified;
  try {
    verified = await jwtVerify(signupToken, jwks, {
      issuer: MEMBERD_URL,
      audience: APP_ID,
      requiredClaims: ["exp"],
    });
  } catch (err) {
    assert.fail(`jose jwtVerify(${signupToken}) against ${MEMBERD_URL}/.well-known/jwks.json failed: ${err.code ?? ""} ${err.message}`);
  }
  const { payload, protectedHeader } = verified;
  assert.equal(payload.id, memberId, `token payload ${show(payload)}`);
  assert.equal(payload.type, "member", `token payload ${show(payload)}`);
  assert.ok(payload.sid, `token payload ${show(payload)} should carry a sid`);
  assert.ok(protectedHeader.kid, `token header ${show(protectedHeader)} should carry a kid`);

  const res = await verifyTokenOnServer(signupToken);
  const label = `POST /memberstack/members/verify-token -> ${res.status} ${res.text}`;
  assert.equal(res.status, 200, label);
  assert.equal(res.json?.data?.id, memberId, label);
  assert.equal(res.json.data.type, "member", label);
  assert.equal(res.json.data.aud, APP_ID, label);
  assert.equal(res.json.data.iss, MEMBERD_URL, label);
});

test("4. a second signup with the same email is refused with email-already-in-use", T, async () => {
  need(memberId, "the member");
  // Still logged in: the SDK sends the stored token with this signup too.
  await sdkError(page, "email-already-in-use", "signupMemberEmailPassword", {
    email: EMAIL,
    password: "another password 1",
  });
});

test("5. logout, then getCurrentMember gives null", T, async () => {
  need(memberId, "the member");
  await sdkOk(page, "logout");
  const stored = await storedState(page);
  assert.equal(stored.token, null, `after logout the SDK should have dropped its token: ${show(stored)}`);
  const current = await sdkOk(page, "getCurrentMember");
  assert.equal(current.data, null, described("getCurrentMember", [], current));
});

test("6. login with a wrong password fails with invalid-credentials", T, async () => {
  need(memberId, "the member");
  await sdkError(page, "invalid-credentials", "loginMemberEmailPassword", { email: EMAIL, password: "wrong password" });
});

test("7. login with the right password", T, async () => {
  need(memberId, "the member");
  const args = { email: EMAIL, password: PASSWORD };
  const res = await sdkOk(page, "loginMemberEmailPassword", args);
  const label = described("loginMemberEmailPassword", [args], res);
  assert.equal(res.data?.member?.id, memberId, label);
  assert.equal(typeof res.data.tokens?.accessToken, "string", label);
  assert.equal(typeof res.data.tokens.expires, "number", label);
  assert.ok(res.data.tokens.expires > Date.now(), `${label}; tokens.expires should be in the future, in ms`);
  loginToken = res.data.tokens.accessToken;
});

test("8. getCurrentMember", T, async () => {
  need(loginToken, "the login token");
  const res = await sdkOk(page, "getCurrentMember");
  const label = described("getCurrentMember", [], res);
  assert.equal(res.data?.id, memberId, label);
  assert.equal(res.data.auth?.email, EMAIL, label);
});

test("9. updateMember changes a custom field", T, async () => {
  need(loginToken, "the login token");
  const args = { customFields: { "first-name": "Grace" } };
  const res = await sdkOk(page, "updateMember", args);
  assert.equal(res.data?.customFields?.["first-name"], "Grace", described("updateMember", [args], res));
  const current = await sdkOk(page, "getCurrentMember");
  assert.equal(current.data?.customFields?.["first-name"], "Grace", described("getCurrentMember", [], current));
});

test("10. updateMemberAuth changes the email and the password", T, async () => {
  need(loginToken, "the login token");
  const emailArgs = { email: NEW_EMAIL };
  const res = await sdkOk(page, "updateMemberAuth", emailArgs);
  assert.equal(res.data?.auth?.email, NEW_EMAIL, described("updateMemberAuth", [emailArgs], res));

  await sdkOk(page, "updateMemberAuth", { oldPassword: PASSWORD, newPassword: NEW_PASSWORD });

  await sdkError(page, ["invalid-credentials", "invalid-password"], "updateMemberAuth", {
    oldPassword: "not the password 9",
    newPassword: "correct horse 3",
  });
});

test("11. updateMemberJSON and getMemberJSON", T, async () => {
  need(loginToken, "the login token");
  const args = { json: { theme: "dark" } };
  // Both are typed GetMemberJSONPayload: { data: <the stored object> }.
  const updated = await sdkOk(page, "updateMemberJSON", args);
  assert.equal(updated.data?.theme, "dark", described("updateMemberJSON", [args], updated));
  const res = await sdkOk(page, "getMemberJSON");
  assert.equal(res.data?.theme, "dark", described("getMemberJSON", [], res));
});

test("12. addPlan and removePlan with a free plan; addPlan with a paid plan fails", T, async () => {
  need(loginToken, "the login token");
  const args = { planId: freePlan2.id };
  const added = await sdkOk(page, "addPlan", args);
  const addLabel = described("addPlan", [args], added);
  assert.ok(activeConnection(added.data?.member, freePlan2.id), `${addLabel}; data.member should hold ${freePlan2.id} ACTIVE`);
  assert.ok(activeConnection(added.data.member, freePlan.id), `${addLabel}; data.member should still hold ${freePlan.id}`);

  const removed = await sdkOk(page, "removePlan", args);
  const removeLabel = described("removePlan", [args], removed);
  assert.ok(removed.data?.member, `${removeLabel}; typed { data: { member } }`);
  assert.equal(activeConnection(removed.data.member, freePlan2.id), undefined, `${removeLabel}; ${freePlan2.id} should no longer be active`);
  const current = await sdkOk(page, "getCurrentMember");
  assert.equal(activeConnection(current.data, freePlan2.id), undefined, `${described("getCurrentMember", [], current)}; ${freePlan2.id} should no longer be active`);

  await sdkError(page, "plan-not-free", "addPlan", { planId: paidPlan.id });
});

test("13. getSecureContent needs the plan", T, async () => {
  need(loginToken, "the login token");
  const args = { contentId: CONTENT_ID };
  const res = await sdkOk(page, "getSecureContent", args);
  const label = described("getSecureContent", [args], res);
  assert.equal(typeof res.data?.content, "string", label);
  assert.ok(res.data.content.includes("secret"), label);

  const removeArgs = { planId: freePlan.id };
  const removed = await sdkOk(page, "removePlan", removeArgs);
  assert.equal(activeConnection(removed.data?.member, freePlan.id), undefined, described("removePlan", [removeArgs], removed));

  await sdkError(page, "access-denied", "getSecureContent", args);
});

test("14. logout ends the session: the old token no longer verifies", T, async () => {
  need(loginToken, "the login token");
  const held = await storedState(page);
  assert.equal(held.token, loginToken, "the SDK should still hold the token it got at login");
  await sdkOk(page, "logout");
  const current = await sdkOk(page, "getCurrentMember");
  assert.equal(current.data, null, described("getCurrentMember", [], current));

  const res = await verifyTokenOnServer(loginToken);
  assert.ok(
    res.status < 200 || res.status >= 300,
    `POST /memberstack/members/verify-token with the logged-out token -> ${res.status} ${res.text}; expected a non-2xx status`,
  );

  const { unhandled } = await storedState(page);
  assert.deepEqual(unhandled, [], "unhandled rejections in the page");
});

test("15. a forgotten password: the emailed code resets it, and the old session is refused", T, async () => {
  need(memberId, "the member");
  const login = await sdkOk(page, "loginMemberEmailPassword", { email: NEW_EMAIL, password: NEW_PASSWORD });
  const oldToken = login.data.tokens.accessToken;
  await sdkOk(page, "logout");
  // The SDK stays logged in through the reset below on another device: this one keeps a session.
  const kept = await sdkOk(page, "loginMemberEmailPassword", { email: NEW_EMAIL, password: NEW_PASSWORD });
  const keptToken = kept.data.tokens.accessToken;

  const before = (await emailsTo(NEW_EMAIL)).length;
  const sent = await sdkOk(page, "sendMemberResetPasswordEmail", { email: NEW_EMAIL });
  assert.equal(typeof sent.data, "string", described("sendMemberResetPasswordEmail", [{ email: NEW_EMAIL }], sent));
  const code = await emailedCode(NEW_EMAIL, before);

  const args = { token: code, newPassword: RESET_PASSWORD };
  const reset = await sdkOk(page, "resetMemberPassword", args);
  assert.equal(reset.data?.success, true, described("resetMemberPassword", [args], reset));

  // Every session of the member ended with the reset: the SDK's is refused and dropped.
  const current = await sdkOk(page, "getCurrentMember");
  assert.equal(current.data, null, described("getCurrentMember", [], current));
  for (const token of [oldToken, keptToken]) {
    const res = await verifyTokenOnServer(token);
    assert.ok(res.status >= 400, `verify-token with a token from before the reset -> ${res.status} ${res.text}`);
  }
  await sdkError(page, "invalid-credentials", "loginMemberEmailPassword", { email: NEW_EMAIL, password: NEW_PASSWORD });
  const fresh = await sdkOk(page, "loginMemberEmailPassword", { email: NEW_EMAIL, password: RESET_PASSWORD });
  assert.equal(fresh.data?.member?.id, memberId, described("loginMemberEmailPassword", [], fresh));
  // A code is good once.
  await sdkError(page, "invalid-reset-code", "resetMemberPassword", { token: code, newPassword: "correct horse 5" });
  await sdkOk(page, "logout");
});

let passwordlessMemberId;

test("16. passwordless sign-up and login with the codes from the emails", T, async () => {
  await sdkOk(page, "sendMemberSignupPasswordlessEmail", { email: PASSWORDLESS_EMAIL });
  let code = await emailedCode(PASSWORDLESS_EMAIL, 0);
  const args = { email: PASSWORDLESS_EMAIL, passwordlessToken: code, customFields: { "first-name": "Ada" } };
  const signed = await sdkOk(page, "signupMemberPasswordless", args);
  const label = described("signupMemberPasswordless", [args], signed);
  assert.equal(signed.data?.member?.auth?.email, PASSWORDLESS_EMAIL, label);
  assert.equal(signed.data.member.verified, true, `${label}; the code shows the address is theirs`);
  passwordlessMemberId = signed.data.member.id;
  const me = await sdkOk(page, "getCurrentMember");
  assert.equal(me.data?.id, passwordlessMemberId, described("getCurrentMember", [], me));
  await sdkOk(page, "logout");

  await sdkOk(page, "sendMemberLoginPasswordlessEmail", { email: PASSWORDLESS_EMAIL });
  code = await emailedCode(PASSWORDLESS_EMAIL, 1);
  const login = await sdkOk(page, "loginMemberPasswordless", { email: PASSWORDLESS_EMAIL, passwordlessToken: code });
  assert.equal(login.data?.member?.id, passwordlessMemberId, described("loginMemberPasswordless", [], login));
  const again = await sdkOk(page, "getCurrentMember");
  assert.equal(again.data?.id, passwordlessMemberId, described("getCurrentMember", [], again));
  await sdkOk(page, "logout");
});

test("17. a wrong code five times, and the code is dead", T, async () => {
  const args = { email: GUESSED_EMAIL, password: PASSWORD };
  await sdkOk(page, "signupMemberEmailPassword", args);
  await sdkOk(page, "logout");
  await sdkOk(page, "sendMemberLoginPasswordlessEmail", { email: GUESSED_EMAIL });
  const code = await emailedCode(GUESSED_EMAIL, 0);
  const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, "0");
  for (let i = 0; i < 5; i++) {
    await sdkError(page, "invalid-passwordless-login-code", "loginMemberPasswordless", {
      email: GUESSED_EMAIL,
      passwordlessToken: wrong,
    });
  }
  await sdkError(page, "invalid-passwordless-login-code", "loginMemberPasswordless", {
    email: GUESSED_EMAIL,
    passwordlessToken: code,
  });
  const current = await sdkOk(page, "getCurrentMember");
  assert.equal(current.data, null, described("getCurrentMember", [], current));
  const { unhandled } = await storedState(page);
  assert.deepEqual(unhandled, [], "unhandled rejections in the page");
});
