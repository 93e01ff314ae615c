// memberd's dashboard driven as an operator drives it, in Debian's headless Chromium: the
// first owner's link, sign-in, plans, members and their plans, search, the overview's
// figures, the audit log, a viewer who may change nothing, and a form without its CSRF
// token. Every page is checked with axe-core and photographed into MEMBERD_SCREENSHOTS.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import {
  APP_ID,
  OWNER_LINK,
  MEMBERD_URL,
  api,
  checkPage,
  createOperator,
  failingOnce,
  launch,
  noHorizontalScroll,
  reloadUntil,
} from "./helpers.mjs";

const OWNER = "owner@example.com";
const OWNER_PASSWORD = "correct horse battery";
const VIEWER_PASSWORD = "viewer's own password";
// Sixty characters: the layout must not break on it.
const LONG_EMAIL = `ada.lovelace.${"x".repeat(28)}@analytical-engine.example`;
const SANDBOX = `/dashboard/${APP_ID}/sandbox`;

describe("the dashboard", () => {
  let browser;
  let owner;
  let memberUrl;
  const questions = [];

  before(async () => {
    browser = await launch();
    owner = await (await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } })).newPage();
    // Destructive buttons ask first; the owner says yes, and the questions are kept.
    owner.on("dialog", (dialog) => {
      questions.push(dialog.message());
      dialog.accept();
    });
  });

  after(async () => {
    await browser?.close();
  });

  it("makes the first owner from the link serve printed", async () => {
    await owner.goto(OWNER_LINK);
    await owner.getByRole("heading", { name: "Make the first owner" }).waitFor();
    await checkPage(owner, "set-password");
    await owner.getByLabel("Email").fill(OWNER);
    await owner.getByLabel("Password", { exact: true }).fill("too short");
    await owner.getByLabel("Password again").fill("too short");
    await owner.getByRole("button", { name: "Set password" }).click();
    await owner.getByText("at least 12", { exact: false }).first().waitFor();
    await owner.getByLabel("Password", { exact: true }).fill(OWNER_PASSWORD);
    await owner.getByLabel("Password again").fill(OWNER_PASSWORD);
    await owner.getByRole("button", { name: "Set password" }).click();
    await owner.getByRole("heading", { name: /overview/ }).waitFor();
    assert.match(await owner.locator(".operator").innerText(), /owner@example\.com \(owner\)/);
    const reused = await owner.goto(OWNER_LINK);
    assert.equal(reused.status(), 400, "the link works once");
  });

  it("signs out, refuses a wrong password and signs in", async () => {
    await owner.goto(`${MEMBERD_URL}/dashboard`);
    await owner.getByRole("button", { name: "Sign out" }).click();
    await owner.getByRole("heading", { name: "Sign in" }).waitFor();
    await checkPage(owner, "sign-in");
    await owner.getByLabel("Email").fill(OWNER);
    await owner.getByLabel("Password").fill("not the password at all");
    await owner.getByRole("button", { name: "Sign in" }).click();
    await owner.getByRole("alert").getByText("do not match").waitFor();
    await owner.getByLabel("Password").fill(OWNER_PASSWORD);
    await owner.getByRole("button", { name: "Sign in" }).click();
    await owner.getByRole("heading", { name: /overview/ }).waitFor();
    const cookies = await owner.context().cookies();
    const session = cookies.find((c) => c.name === "memberd_session");
    assert.ok(session, "a session cookie is set");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
  });

  it("switches to the sandbox, which says it is one", async () => {
    await owner.getByLabel("App").selectOption(`${APP_ID}/sandbox`);
    await owner.waitForURL(`**${SANDBOX}`);
    await owner.getByRole("note").getByText("Sandbox").waitFor();
    assert.equal(await owner.locator('[data-figure="mrr"]').innerText(), "0");
    await checkPage(owner, "overview-empty");
  });

  it("creates a plan, naming the field at fault first", async () => {
    await owner.getByRole("link", { name: "Plans" }).click();
    await owner.getByRole("link", { name: "Create a plan" }).click();
    await owner.getByLabel("Name").fill("Gold");
    await owner.getByLabel("Amount").fill("ten");
    await owner.getByRole("button", { name: "Create plan" }).click();
    await owner.locator("#amount-error").waitFor();
    assert.equal(await owner.getByLabel("Amount").getAttribute("aria-invalid"), "true");
    await checkPage(owner, "plan-new-with-error");
    await owner.getByLabel("Amount").fill("10.00");
    await owner.getByLabel("Billed every").selectOption("MONTH");
    await owner.getByLabel("Permissions").fill("premium, courses");
    await owner.getByRole("button", { name: "Create plan" }).click();
    await owner.getByRole("heading", { name: "Gold" }).waitFor();
    await checkPage(owner, "plan");
    await owner.getByRole("link", { name: "Plans" }).click();
    await owner.getByRole("cell", { name: "10.00 USD / month" }).waitFor();
    await checkPage(owner, "plans");
  });

  it("creates a member with a long address and a name", async () => {
    await owner.getByRole("link", { name: "Members" }).click();
    await owner.getByRole("link", { name: "Add a member" }).click();
    await owner.getByLabel("Email").fill("not-an-email");
    await owner.getByRole("button", { name: "Create member" }).click();
    await owner.locator("#email-error").waitFor();
    await checkPage(owner, "member-new-with-error");
    await owner.getByLabel("Email").fill(LONG_EMAIL);
    await owner.getByLabel("Custom fields").fill("firstName: Ada\nlastName: Lovelace");
    await owner.getByLabel("External id").fill("shopify-1815");
    await owner.getByRole("button", { name: "Create member" }).click();
    await owner.getByRole("heading", { name: LONG_EMAIL }).waitFor();
    memberUrl = owner.url();
    const created = await api("GET", `/v1/members/${encodeURIComponent(LONG_EMAIL)}`);
    assert.equal(created.status, 200, "the API sees the member");
    assert.equal(created.json.customFields.firstName, "Ada");
    await checkPage(owner, "member-new");
  });

  it("adds the paid plan, which the overview's MRR shows", async () => {
    const member = (await api("GET", `/v1/members/${encodeURIComponent(LONG_EMAIL)}`)).json;
    const card = await api("POST", `/v1/members/${member.id}/payment-methods`, {
      card: { number: "4242424242424242", expMonth: 12, expYear: 2040, cvc: "123" },
    });
    assert.equal(card.status, 201, JSON.stringify(card.json));
    await owner.goto(memberUrl);
    await owner.getByLabel("Add a plan").selectOption({ label: "Gold — 10.00 USD / month" });
    await owner.getByRole("button", { name: "Add plan" }).click();
    await owner.getByRole("row", { name: /Gold/ }).getByText("ACTIVE").waitFor();
    await owner.getByRole("cell", { name: "10.00 USD" }).first().waitFor();
    await owner.getByRole("link", { name: "Overview" }).click();
    assert.equal(await owner.locator('[data-figure="mrr"]').innerText(), "10.00 USD");
    assert.equal(await owner.locator('[data-figure="arr"]').innerText(), "120.00 USD");
    assert.equal(await owner.locator('[data-figure="active"]').innerText(), "1");
    await owner.getByRole("img", { name: /Sign-ups and churn/ }).waitFor();
    await checkPage(owner, "overview");
  });

  it("finds the member by name, by externalId and by part of the address", async () => {
    for (const words of ["lovelace", "shopify-1815", "analytical-engine"]) {
      await owner.goto(`${MEMBERD_URL}${SANDBOX}/members`);
      await owner.getByLabel("Search").fill(words);
      await owner.getByRole("button", { name: "Search" }).click();
      await owner.getByRole("link", { name: LONG_EMAIL }).waitFor();
      assert.match(await owner.locator("main").innerText(), /1 members match/);
    }
    await owner.getByLabel("Search").fill("nobody-by-this-name");
    await owner.getByRole("button", { name: "Search" }).click();
    await owner.getByText("0 members match").waitFor();
    await owner.getByLabel("Search").fill("");
    await owner.getByLabel("Connection status").selectOption("ACTIVE");
    await owner.getByRole("button", { name: "Search" }).click();
    await owner.getByRole("link", { name: LONG_EMAIL }).waitFor();
    await checkPage(owner, "members");
  });

  it("cancels the plan at period end, and only the moves left are offered", async () => {
    await owner.goto(memberUrl);
    const row = owner.getByRole("row", { name: /Gold/ });
    await row.getByRole("button", { name: "Cancel at period end" }).click();
    await owner.getByText("ends at period end").waitFor();
    assert.equal(await owner.getByRole("button", { name: "Cancel at period end" }).count(), 0);
    const member = (await api("GET", `/v1/members/${encodeURIComponent(LONG_EMAIL)}`)).json;
    assert.equal(member.planConnections[0].cancelAtPeriodEnd, true, "the API sees the change");
    await owner.getByRole("cell", { name: "member.plan.updated" }).first().waitFor();
    await checkPage(owner, "member");
  });

  it("changes the plan's price: the new one is offered, who held the old keeps it", async () => {
    await owner.goto(`${MEMBERD_URL}${SANDBOX}/plans`);
    await owner.getByRole("link", { name: "Gold" }).click();
    await owner.getByLabel("Amount").fill("12.5.0");
    await owner.getByRole("button", { name: "Add price" }).click();
    await owner.locator("#amount-error").waitFor();
    await owner.getByLabel("Amount").fill("12.00");
    await owner.getByLabel("Billed every").selectOption("MONTH");
    await owner.getByLabel("Retire the plan's other prices").check();
    await owner.getByRole("button", { name: "Add price" }).click();
    await owner.getByRole("row", { name: /12\.00 USD \/ month/ }).getByText("ACTIVE").waitFor();
    await owner.getByRole("row", { name: /10\.00 USD \/ month/ }).getByText("RETIRED").waitFor();
    const gold = (await api("GET", "/v1/plans")).json.data.find((p) => p.name === "Gold");
    assert.deepEqual(
      gold.prices.map((p) => [p.amount, p.active]),
      [[1000, false], [1200, true]],
      "the API sees the new price and the retired one",
    );
    const member = (await api("GET", `/v1/members/${encodeURIComponent(LONG_EMAIL)}`)).json;
    assert.equal(member.planConnections[0].amount, 1000, "the member keeps the price they hold");
    // The last active price cannot go: a paid plan keeps one.
    await owner.getByRole("button", { name: "Retire 12.00 USD / month" }).click();
    await owner.getByRole("alert").getByText("at least one active price").waitFor();
    await checkPage(owner, "plan-prices");
    // A yearly price beside it, then the monthly one retired with its own button.
    await owner.getByLabel("Amount").fill("120.00");
    await owner.getByLabel("Billed every").selectOption("YEAR");
    await owner.getByRole("button", { name: "Add price" }).click();
    await owner.getByRole("row", { name: /120\.00 USD \/ year/ }).getByText("ACTIVE").waitFor();
    const asked = questions.length;
    await owner.getByRole("button", { name: "Retire 12.00 USD / month" }).click();
    await owner.getByRole("row", { name: /12\.00 USD \/ month/ }).getByText("RETIRED").waitFor();
    assert.deepEqual(questions.slice(asked), ["Retire 12.00 USD / month?"], "it asked first");
    const prices = (await api("GET", "/v1/plans")).json.data.find((p) => p.name === "Gold").prices;
    assert.deepEqual(prices.map((p) => [p.amount, p.interval, p.active]), [
      [1000, "MONTH", false],
      [1200, "MONTH", false],
      [12000, "YEAR", true],
    ]);
    await owner.goto(memberUrl);
    const offered = await owner.getByLabel("Add a plan").locator("option").allInnerTexts();
    assert.ok(offered.includes("Gold — 120.00 USD / year"), offered.join(" | "));
    assert.ok(!offered.some((o) => o.includes("/ month")), "a retired price is not offered");
  });

  it("fits a phone's width", async () => {
    await owner.setViewportSize({ width: 390, height: 844 });
    for (const path of [memberUrl, `${MEMBERD_URL}${SANDBOX}/members`, `${MEMBERD_URL}${SANDBOX}`]) {
      await owner.goto(path);
      await noHorizontalScroll(owner);
    }
    await owner.goto(memberUrl);
    await checkPage(owner, "member-phone");
    await owner.setViewportSize({ width: 1280, height: 900 });
  });

  it("keeps an audit log of every change", async () => {
    await owner.getByRole("link", { name: "Audit log" }).click();
    const log = await owner.locator("main table").innerText();
    for (const action of ["plan.created", "plan.price_added", "plan.price_retired", "member.created", "connection.created", "connection.cancel_at_period_end"]) {
      assert.match(log, new RegExp(action.replace(".", "\\.")), `${action} is in the log`);
    }
    assert.match(log, /owner@example\.com/);
    await checkPage(owner, "audit");
  });

  it("shows a failed webhook delivery and redelivers it", async () => {
    const receiver = await failingOnce();
    try {
      await owner.goto(`${MEMBERD_URL}${SANDBOX}`);
      await owner.getByRole("link", { name: "Webhooks" }).click();
      await owner.getByLabel("URL").fill(receiver.url);
      await owner.getByRole("button", { name: "Add endpoint" }).click();
      const secret = await owner.locator(".notice .secret").innerText();
      assert.match(secret, /^whsec_/, "the secret is shown once");
      await checkPage(owner, "webhook-endpoint-new");
      const endpointUrl = owner.url().includes("/webhooks/")
        ? owner.url()
        : `${MEMBERD_URL}${SANDBOX}/webhooks/${await owner.locator("dd code").first().innerText()}`;
      await owner.goto(endpointUrl);
      assert.equal(await owner.locator(".notice .secret").count(), 0, "and never again");
      const created = await api("POST", "/v1/members", { email: "hooked@example.com" });
      assert.equal(created.status, 201);
      await reloadUntil(owner, () => owner.getByText("HTTP 500").count());
      await owner.getByRole("heading", { name: "Failed deliveries" }).waitFor();
      await checkPage(owner, "webhook-endpoint-failing");
      await owner.getByRole("button", { name: /^Redeliver evt_/ }).first().click();
      await reloadUntil(owner, () => owner.getByRole("cell", { name: /manual/ }).count());
      const manual = owner.getByRole("row", { name: /manual/ });
      await manual.getByText("succeeded").waitFor();
      assert.equal(receiver.received(), 2, "the first attempt failed, the redelivery got through");
      await owner.getByRole("button", { name: "Send a test event" }).click();
      await owner.getByText("The test event got HTTP 200.").waitFor();
      assert.equal(receiver.received(), 3);
      assert.match(receiver.last()["webhook-signature"], /^v1,/, "signed as deliveries are");
      assert.match(receiver.lastBody(), /test\.member@example\.com/);
      await owner.getByRole("link", { name: "Webhooks" }).click();
      await checkPage(owner, "webhooks");
    } finally {
      await receiver.close();
    }
  });

  it("filters the change feed and shows an event with its deliveries", async () => {
    await owner.getByRole("link", { name: "Events" }).click();
    await owner.getByLabel("Type").selectOption("member.created");
    await owner.getByRole("button", { name: "Filter" }).click();
    const rows = owner.locator("main tbody tr");
    assert.equal(await rows.count(), 2, "the two members made in the sandbox");
    assert.equal(await owner.getByRole("cell", { name: "member.plan.created" }).count(), 0);
    await checkPage(owner, "events");
    await rows.first().getByRole("link").click();
    await owner.getByText("hooked@example.com").waitFor();
    await owner.getByRole("heading", { name: "Deliveries" }).waitFor();
    assert.ok((await owner.getByText("HTTP 500").count()) >= 1, "its failed attempt is listed");
    await checkPage(owner, "event");
    await owner.goto(`${MEMBERD_URL}${SANDBOX}/events?from=2000-01-01&to=2000-01-02`);
    await owner.getByText("No events match.").waitFor();
    // The member's page shows how each of their events' last delivery went.
    await owner.goto(`${MEMBERD_URL}${SANDBOX}/members?q=hooked`);
    await owner.getByRole("link", { name: "hooked@example.com" }).click();
    await owner.getByRole("row", { name: /member\.created/ }).getByText("succeeded").waitFor();
    const missing = await owner.goto(`${MEMBERD_URL}${SANDBOX}/events/evt_nothere`);
    assert.equal(missing.status(), 404);
    await checkPage(owner, "not-found");
  });

  it("creates a secret key shown once, which works, and revokes it", async () => {
    await owner.goto(`${MEMBERD_URL}${SANDBOX}/developers`);
    await owner.getByLabel("Name of a new key").fill("billing service");
    await owner.getByRole("button", { name: "Create secret key" }).click();
    const secret = await owner.locator(".notice .secret").innerText();
    assert.match(secret, /^sk_sb_/);
    const listed = await fetch(`${MEMBERD_URL}/v1/members`, { headers: { Authorization: `Bearer ${secret}` } });
    assert.equal(listed.status, 200, "the new key works");
    await checkPage(owner, "developers-new-key");
    await owner.goto(`${MEMBERD_URL}${SANDBOX}/developers`);
    assert.equal(await owner.locator(".notice .secret").count(), 0, "the secret is not shown again");
    await owner.getByRole("button", { name: "Revoke billing service" }).click();
    await owner.getByRole("cell", { name: /^revoked/ }).waitFor();
    assert.deepEqual(questions.slice(-1), ["Revoke billing service?"], "it asked first");
    let refused = 0;
    for (let i = 0; i < 40 && refused !== 401; i += 1) {
      refused = (await fetch(`${MEMBERD_URL}/v1/members`, { headers: { Authorization: `Bearer ${secret}` } })).status;
      if (refused !== 401) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(refused, 401, "a revoked key is refused");
    await owner.getByLabel("Allowed origins").fill("not an origin");
    await owner.getByRole("button", { name: "Save settings" }).click();
    await owner.locator("#allowed_origins-error").waitFor();
    await owner.getByLabel("Allowed origins").fill("https://members.example.com");
    await owner.getByRole("button", { name: "Save settings" }).click();
    await owner.getByLabel("Allowed origins").waitFor();
    assert.equal(await owner.getByLabel("Allowed origins").inputValue(), "https://members.example.com");
    await checkPage(owner, "developers");
  });

  it("imports a CSV of 1,000 members with a progress bar, and hands back the rejected rows", async () => {
    const rows = ["email,customFields.firstName"];
    for (let i = 1; i <= 997; i += 1) rows.push(`bulk-${String(i).padStart(4, "0")}@example.com,Bulk ${i}`);
    rows.push("not-an-address,Broken");
    rows.push(`${LONG_EMAIL},Taken`);
    rows.push("bulk-0001@example.com,Twice");
    const dir = await mkdtemp(join(tmpdir(), "memberd-dashboard-"));
    const file = join(dir, "members.csv");
    await writeFile(file, `${rows.join("\n")}\n`);
    await owner.goto(`${MEMBERD_URL}${SANDBOX}`);
    await owner.getByRole("link", { name: "Import and export" }).click();
    await checkPage(owner, "transfer");
    await owner.getByLabel("File").setInputFiles(file);
    await owner.getByRole("button", { name: "Import members" }).click();
    await owner.getByRole("progressbar").waitFor();
    await reloadUntil(owner, () => owner.getByText("Done.").count());
    assert.equal(await owner.getByRole("progressbar").getAttribute("value"), "100");
    assert.equal(await owner.locator("#import-counts").innerText(), "997 imported, 3 rejected. Done.");
    await owner.getByText("line 999: email").waitFor();
    await checkPage(owner, "import-done");
    const [download] = await Promise.all([
      owner.waitForEvent("download"),
      owner.getByRole("link", { name: "Download the rejected rows" }).click(),
    ]);
    const rejected = (await readFile(await download.path(), "utf8")).trim().split("\n");
    assert.deepEqual(rejected, ["email,customFields.firstName", "not-an-address,Broken", `${LONG_EMAIL},Taken`, "bulk-0001@example.com,Twice"]);
    const members = await api("GET", "/v1/members?limit=1");
    assert.equal(members.json.totalCount, 2 + 997);
    await rm(dir, { recursive: true, force: true });
  });

  it("exports every member with their plans as CSV", async () => {
    await owner.goto(`${MEMBERD_URL}${SANDBOX}/transfer`);
    const [download] = await Promise.all([
      owner.waitForEvent("download"),
      owner.getByRole("link", { name: "Export members (CSV)" }).click(),
    ]);
    const lines = (await readFile(await download.path(), "utf8")).trim().split("\n");
    assert.equal(lines[0], "id,email,verified,externalId,stripeCustomerId,loginRedirect,profileImage,customFields,metaData,json,permissions,lastLogin,createdAt,updatedAt,planConnections");
    assert.equal(lines.length, 1 + 999, "a header and every member");
    const ada = lines.find((l) => l.includes(LONG_EMAIL));
    assert.match(ada, /""status"":""ACTIVE""/);
    assert.ok(lines.some((l) => l.includes("bulk-0997@example.com")));
  });

  it("adds an operator, who follows the link shown once", async () => {
    await owner.goto(`${MEMBERD_URL}${SANDBOX}`);
    await owner.getByRole("link", { name: "Operators" }).click();
    await owner.getByLabel("Email").fill("admin@example.com");
    await owner.getByLabel("Role").selectOption("admin");
    await owner.getByRole("button", { name: "Add operator" }).click();
    await owner.getByRole("group", { name: "Apps they may enter" }).locator(".error").waitFor();
    await owner.getByLabel("Default app").check();
    await owner.getByRole("button", { name: "Add operator" }).click();
    const link = await owner.locator(".notice .secret").innerText();
    assert.ok(link.startsWith(`${MEMBERD_URL}/dashboard/set-password?token=`), link);
    await owner.getByRole("cell", { name: "admin@example.com", exact: true }).waitFor();
    await checkPage(owner, "operators");
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const admin = await context.newPage();
    await admin.goto(link);
    await admin.getByLabel("Password", { exact: true }).fill("admin's own password");
    await admin.getByLabel("Password again").fill("admin's own password");
    await admin.getByRole("button", { name: "Set password" }).click();
    await admin.getByRole("heading", { name: /overview/ }).waitFor();
    assert.equal(await admin.getByRole("link", { name: "Operators" }).count(), 0, "only owners manage operators");
    const refused = await admin.goto(`${MEMBERD_URL}${SANDBOX}/operators`);
    assert.equal(refused.status(), 403);
    await context.close();
  });

  it("refuses a form posted without its CSRF token", async () => {
    const response = await owner.request.post(`${MEMBERD_URL}${SANDBOX}/plans`, {
      form: { name: "Forged", amount: "" },
      maxRedirects: 0,
    });
    assert.equal(response.status(), 403);
    assert.match(await response.text(), /security token/);
    const plans = await api("GET", "/v1/plans");
    assert.ok(!plans.json.data.some((p) => p.name === "Forged"), "no plan was made");
  });

  it("lets a viewer read but change nothing", async () => {
    const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
    const viewer = await context.newPage();
    await viewer.goto(await createOperator("viewer@example.com", "viewer"));
    await viewer.getByRole("heading", { name: "Set your password" }).waitFor();
    await viewer.getByLabel("Password", { exact: true }).fill(VIEWER_PASSWORD);
    await viewer.getByLabel("Password again").fill(VIEWER_PASSWORD);
    await viewer.getByRole("button", { name: "Set password" }).click();
    await viewer.getByRole("heading", { name: /overview/ }).waitFor();
    await viewer.goto(memberUrl);
    await viewer.getByRole("heading", { name: LONG_EMAIL }).waitFor();
    for (const name of ["Add plan", "Cancel now", "Save profile", "Delete member"]) {
      assert.equal(await viewer.getByRole("button", { name }).count(), 0, `${name} is not offered`);
    }
    await viewer.goto(`${MEMBERD_URL}${SANDBOX}/developers`);
    assert.equal(await viewer.getByRole("button", { name: "Create secret key" }).count(), 0);
    assert.equal(await viewer.getByRole("button", { name: "Save settings" }).count(), 0);
    await viewer.goto(memberUrl);
    await checkPage(viewer, "member-as-viewer");
    // The viewer's own token, on a form they are not shown: refused all the same.
    const csrf = await viewer.locator('input[name="csrf"]').first().inputValue();
    const response = await viewer.request.post(`${memberUrl}/delete`, { form: { csrf }, maxRedirects: 0 });
    assert.equal(response.status(), 403);
    assert.equal((await api("GET", `/v1/members/${encodeURIComponent(LONG_EMAIL)}`)).status, 200, "still there");
    await context.close();
  });
});
