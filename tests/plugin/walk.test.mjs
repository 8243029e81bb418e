// The plugin's real components in headless Chromium, against the real Fiber Link service:
//   browser (the plugin's real api-initializer, route maps, connectors, routes, route templates
//            and .gjs components, wired as Discourse wires them; stand-ins for Discourse's
//            DButton/DModal/ConfirmSession/dialog/ajax/i18n, its plugin API, post-menu DAG and
//            route tree — see harness-entry.js)
//   -> Ruby Rack app mounting the plugin's RpcProxy and Client (tests/plugin/server.rb)
//   -> the real service (API, worker, Postgres) and its hub simulator.
//
// Env (scripts/plugin-test.sh sets them from `fiber-link dev`): FIBER_LINK_API_URL,
// FIBER_LINK_APP_ID, FIBER_LINK_APP_SECRET, FIBER_LINK_HUB_URL; CHROMIUM (default
// /usr/bin/chromium); ARTIFACTS (screenshots, default ./artifacts/plugin).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { bundle } from "./build.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = resolve(process.env.ARTIFACTS ?? "artifacts/plugin");
mkdirSync(ARTIFACTS, { recursive: true });
for (const k of ["FIBER_LINK_API_URL", "FIBER_LINK_APP_ID", "FIBER_LINK_APP_SECRET", "FIBER_LINK_HUB_URL"]) {
  assert.ok(process.env[k], `${k} is not set: run bash scripts/plugin-test.sh`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

let server, browser, base, boot;
const pageErrors = [];

before(async () => {
  await bundle(join(here, "dist/harness.js"));
  const port = await freePort();
  server = spawn("ruby", [join(here, "server.rb"), String(port)], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("harness server did not start")), 20_000);
    server.stdout.on("data", (d) => {
      if (String(d).includes("listening on")) {
        clearTimeout(timer);
        ok();
      }
    });
    server.on("exit", (code) => fail(new Error(`harness server exited with ${code}`)));
  });
  base = `http://127.0.0.1:${port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
  }
});

async function openAs(user, { viewport = { width: 1100, height: 900 } } = {}) {
  const context = await browser.newContext({ viewport });
  if (user) {
    await context.addCookies([{ name: "harness_user", value: user, url: base }]);
  }
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(`${user ?? "visitor"}: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && pageErrors.push(`${user ?? "visitor"}: ${m.text()}`));
  await page.goto(base);
  await page.waitForSelector("body[data-ready=true]", { state: "attached" });
  boot = await page.evaluate(() => window.__boot);
  return page;
}

async function calls() {
  return (await fetch(`${base}/__calls`)).json();
}

async function simPay(invoice) {
  const res = await fetch(process.env.FIBER_LINK_HUB_URL, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "sim_pay_invoice", params: [{ invoice }] }),
  });
  const json = await res.json();
  assert.equal(json.error, undefined, `sim_pay_invoice: ${JSON.stringify(json.error)}`);
}

async function renderPosts(page) {
  await page.evaluate(() =>
    window.__harness.renderPosts({
      posts: window.__boot.posts,
      siteSettings: window.__boot.siteSettings,
      currentUser: window.__boot.currentUser,
    })
  );
}

const text = async (locator) => (await locator.textContent()).replace(/\s+/g, " ").trim();

let settledTipId;
let settledTip;

test("the plugin wires itself as Discourse would: post menu, icons, renderer, preferences, routes", async () => {
  const page = await openAs("carol");
  // the real api-initializer, run against the stand-in plugin API (which refuses unknown APIs)
  const plugin = await page.evaluate(() =>
    window.__harness.renderPosts({
      posts: window.__boot.posts,
      siteSettings: window.__boot.siteSettings,
      currentUser: window.__boot.currentUser,
    })
  );
  assert.deepEqual(plugin.transformers, { "post-menu-buttons": 1 });
  assert.deepEqual(plugin.icons, { "notification.fiber_link.notification.tip_received": "bolt" });
  assert.deepEqual(plugin.renderers, ["custom"]);
  assert.deepEqual(plugin.saveableCustomFields, ["notifications"]);
  assert.deepEqual(plugin.profileItems, [
    { icon: "bolt", href: "/u/carol/tips", content: "Tips and balance", className: "fiber-link-dashboard-link" },
  ]);

  // the route maps, loaded into the route tree as Discourse's mapRoutes does
  const routes = await page.evaluate(() => window.__harness.routes());
  const route = (name) => routes.find((r) => r.name === name);
  assert.deepEqual(route("user.fiberLinkTips"), { name: "user.fiberLinkTips", path: "/u/:username/tips", route: true, template: true });
  assert.deepEqual(route("fiber-link"), { name: "fiber-link", path: "/fiber-link", route: true, template: true });
  // /fiber-link sends a signed-in user to their own tips page; a visitor stays (and is asked to log in)
  assert.deepEqual(await page.evaluate(() => window.__harness.visitFiberLink({
    siteSettings: window.__boot.siteSettings, currentUser: window.__boot.currentUser })),
  [["replaceWith", "user.fiberLinkTips", "carol"]]);
  assert.deepEqual(await page.evaluate(() => window.__harness.visitFiberLink({
    siteSettings: window.__boot.siteSettings, currentUser: null })), []);

  // the "Tips" link in the user's navigation: the user themself and staff only
  const navShown = (model, currentUser, enabled = true) =>
    page.evaluate(
      ({ model, currentUser, enabled }) =>
        window.__harness.connectorShouldRender({
          outlet: "user-main-nav",
          name: "fiber-link-tips",
          outletArgs: { model },
          siteSettings: { ...window.__boot.siteSettings, fiber_link_enabled: enabled },
          currentUser,
        }),
      { model, currentUser, enabled }
    );
  const carol = { id: 1, username: "carol" };
  assert.equal(await navShown(carol, carol), true, "carol on her own page");
  assert.equal(await navShown({ id: 2, username: "bob" }, carol), false, "carol on bob's page");
  assert.equal(await navShown({ id: 2, username: "bob" }, { id: 9, username: "mod", staff: true }), true, "staff");
  assert.equal(await navShown(carol, null), false, "a visitor");
  assert.equal(await navShown(carol, carol, false), false, "plugin disabled");
  await page.context().close();

  // staff opening somebody else's tips page: the service answers only for the signed-in user,
  // so the page says whose it is and asks the service nothing
  const staff = await openAs("carol");
  const before = (await calls()).length;
  await staff.evaluate(() =>
    window.__harness.renderUserTips({
      siteSettings: window.__boot.siteSettings,
      currentUser: { ...window.__boot.currentUser, staff: true },
      user: { id: "someone-else", username: "bob" },
    })
  );
  assert.equal(await text(staff.locator(".fiber-link-dashboard__others")), "Only @bob can see their tips and balance.");
  assert.equal(await staff.locator(".fiber-link-dashboard__balances").count(), 0);
  assert.equal((await calls()).length, before, "nothing asked");
  await staff.context().close();
});

test("the notification preferences: two checkboxes, on by default, saved as custom fields", async () => {
  const page = await openAs("bob");
  const wiring = await page.evaluate(() => {
    window.__prefsUser = { id: window.__boot.currentUser.id, username: "bob", custom_fields: {} };
    return window.__harness.renderPreferences({
      siteSettings: window.__boot.siteSettings,
      currentUser: window.__boot.currentUser,
      user: window.__prefsUser,
    });
  });
  assert.deepEqual(wiring.connectors, ["user-preferences-notifications/fiber-link-preferences"]);
  assert.deepEqual(wiring.saveableCustomFields, ["notifications"], "saved with the notification preferences");
  const allow = page.locator(".fiber-link-preferences__allow-tips");
  const notify = page.locator(".fiber-link-preferences__tip-notifications");
  assert.equal(await allow.isChecked(), true, "absent means on");
  assert.equal(await notify.isChecked(), true);
  assert.equal(await text(page.locator(".fiber-link-preferences")), "Tips Allow others to tip my posts Notify me when a tip to me settles");
  await allow.uncheck();
  assert.deepEqual(await page.evaluate(() => window.__prefsUser.custom_fields), { fiber_link_allow_tips: false });
  await notify.uncheck();
  await allow.check();
  assert.deepEqual(await page.evaluate(() => window.__prefsUser.custom_fields), {
    fiber_link_allow_tips: true,
    fiber_link_tip_notifications: false,
  });
  await page.locator(".fiber-link-preferences").screenshot({ path: join(ARTIFACTS, "00-preferences.png") });
  await page.context().close();

  // a user who turned notifications off sees it unchecked
  const again = await openAs("bob");
  await again.evaluate(() =>
    window.__harness.renderPreferences({
      siteSettings: window.__boot.siteSettings,
      currentUser: window.__boot.currentUser,
      user: { id: window.__boot.currentUser.id, username: "bob", custom_fields: { fiber_link_tip_notifications: false } },
    })
  );
  assert.equal(await again.locator(".fiber-link-preferences__tip-notifications").isChecked(), false);
  assert.equal(await again.locator(".fiber-link-preferences__allow-tips").isChecked(), true);
  await again.context().close();
});

test("a visitor who is not logged in sees the Tip button, and clicking it asks them to log in", async () => {
  const page = await openAs(null);
  assert.equal(boot.currentUser, null);
  const before = (await calls()).length;
  await renderPosts(page);
  const button = page.locator(`article[data-post-id="${boot.posts[0].id}"] .fiber-link-tip-button`);
  assert.equal(await button.count(), 1, "the post can be tipped, so the button shows");
  assert.equal(await button.getAttribute("aria-label"), "Tip @bob for this post");
  await button.click();
  assert.equal(await page.evaluate(() => window.__harness.loginShown), 1, "the post menu's showLogin");
  assert.equal(await page.locator(".fiber-link-tip-modal").count(), 0, "no tip dialog");
  assert.equal((await calls()).length, before, "nothing was asked of the service");
  await page.context().close();
});

test("a reader tips a post: bad input refused, invoice and QR shown, paid, Settled by itself", async () => {
  const page = await openAs("carol");
  await renderPosts(page);
  const [bobPost, ownPost] = boot.posts;

  assert.equal(await page.locator(`article[data-post-id="${ownPost.id}"] .fiber-link-tip-button`).count(), 0,
    "no Tip button on one's own post");
  const button = page.locator(`article[data-post-id="${bobPost.id}"] .fiber-link-tip-button`);
  assert.equal(await button.count(), 1, "one Tip button per post");
  assert.equal(await text(button), "Tip");
  assert.equal(await button.getAttribute("aria-label"), "Tip @bob for this post");
  // where the transformer put it: first in the menu, before core's buttons
  assert.equal(await page.locator(`article[data-post-id="${bobPost.id}"]`).getAttribute("data-menu"), "fiber-link-tip like reply");
  assert.equal(await page.locator(`article[data-post-id="${ownPost.id}"]`).getAttribute("data-menu"), "like reply");
  await button.click();

  const modal = page.locator(".fiber-link-tip-modal");
  await modal.waitFor();
  assert.equal(await text(modal.locator(".d-modal__title-text")), "Tip @bob");
  // the assets come from the service (balance.get): CKB (8 decimals) and the dev UDT DEMO (6)
  await page.waitForFunction(() => document.querySelectorAll("#fiber-link-asset option").length === 2);
  assert.deepEqual(await page.locator("#fiber-link-asset option").allTextContents(), ["CKB", "DEMO"]);

  // invalid amounts are refused before anything is created
  const generate = modal.locator(".fiber-link-tip-modal__generate");
  const amountError = modal.locator(".fiber-link-tip-modal__amount-error");
  await page.selectOption("#fiber-link-asset", "DEMO");
  await page.fill("#fiber-link-amount", "1.1234567");
  assert.equal(await text(amountError), "At most 6 decimals for this asset.");
  assert.equal(await generate.isDisabled(), true);
  await page.fill("#fiber-link-amount", "1,5");
  assert.equal(await text(amountError), "Enter the amount as a plain number, like 5 or 2.5.");
  await page.fill("#fiber-link-amount", "0.05");
  assert.equal(await text(amountError), "The smallest tip on this forum is 0.1.");
  await page.screenshot({ path: join(ARTIFACTS, "01-invalid-amount.png") });
  assert.equal((await calls()).filter((c) => c.method === "tip.create").length, 0, "nothing was created");

  // an error from the service itself is shown as a sentence (control character in the message)
  await page.selectOption("#fiber-link-asset", "CKB");
  await modal.locator(".fiber-link-tip-modal__preset", { hasText: "5" }).first().click();
  assert.equal(await page.inputValue("#fiber-link-amount"), "5");
  await page.fill("#fiber-link-amount", "2.5");
  await page.fill("#fiber-link-message", "thanks\u0007");
  await generate.click();
  const error = modal.locator(".fiber-link-tip-modal__error");
  await error.waitFor();
  assert.equal(await error.getAttribute("data-reason"), "message_malformed");
  assert.equal(await text(error), "The message contains characters that cannot be sent.");

  await page.fill("#fiber-link-message", "Great explanation, <b>thanks</b>!");
  assert.equal(await text(modal.locator(".fiber-link-tip-modal__counter")), "33/280");
  await generate.click();

  const invoice = modal.locator("#fiber-link-invoice");
  await invoice.waitFor({ timeout: 15_000 });
  assert.match(await invoice.inputValue(), /^fibd250000000/, "a 2.5 CKB devnet invoice");
  assert.equal(await text(modal.locator(".fiber-link-tip-modal__state")), "Waiting for payment");
  assert.equal(await text(modal.locator(".fiber-link-tip-modal__summary")), "Invoice for 2.5 CKB to @bob");
  const qr = modal.locator("img.fiber-link-tip-modal__qr");
  assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth > 100), "QR code rendered");
  assert.match(await text(modal.locator(".fiber-link-tip-modal__countdown")), /^Expires in (59:[0-5]\d|1:00:00)$/);
  await page.screenshot({ path: join(ARTIFACTS, "02-invoice.png") });

  // the server derived both identities; the browser never sent them
  const create = (await calls()).filter((c) => c.method === "tip.create").at(-1);
  assert.equal(create.params.from_user_id, boot.currentUser.id);
  assert.notEqual(create.params.to_user_id, boot.currentUser.id);
  assert.equal(create.params.message, "Great explanation, <b>thanks</b>!");

  // pay it as a payer would; the modal polls the proxy (tip.get) and reaches Settled by itself
  await simPay(await invoice.inputValue());
  await page.waitForSelector('.fiber-link-tip-modal__invoice[data-state="SETTLED"]', { timeout: 30_000 });
  assert.equal(await text(modal.locator(".fiber-link-tip-modal__state")), "Settled");
  assert.equal(await text(modal.locator(".fiber-link-tip-modal__ended")), "Thank you! @bob received 2.5 CKB.");
  await page.screenshot({ path: join(ARTIFACTS, "03-settled.png") });

  const gets = (await calls()).filter((c) => c.method === "tip.get");
  settledTipId = gets.at(-1).params.tip_id;
  settledTip = { tip_id: settledTipId, amount: create.params.amount, asset: create.params.asset, post: bobPost };
  // polling stopped at the final state
  await sleep(3000);
  assert.equal((await calls()).filter((c) => c.method === "tip.get").length, gets.length, "no poll after Settled");

  // start over returns to the form with the amount kept
  await modal.locator(".fiber-link-tip-modal__again").click();
  assert.equal(await page.inputValue("#fiber-link-amount"), "2.5");
  assert.doesNotMatch(await page.locator("body").innerText(), /\[en\./, "no missing translations");
  await page.context().close();
});

test("each post shows what it has received, from one service call per page, cached", async () => {
  // bob's post received the 2.5 CKB tip settled above; carol's own post nothing
  const before = (await calls()).filter((c) => c.method === "post.totals").length;
  const page = await openAs("carol");
  await renderPosts(page);
  const bob = page.locator(`article[data-post-id="${boot.posts[0].id}"] .fiber-link-post-totals`);
  assert.equal(await text(bob), "⚡ 2.5 CKB · 1 tip");
  assert.equal(await page.locator(`article[data-post-id="${boot.posts[0].id}"] .fiber-link-tip-button`).count(), 1,
    "beside the Tip button");
  assert.equal(await page.locator(`article[data-post-id="${boot.posts[0].id}"]`).getAttribute("data-menu"),
    "fiber-link-tip fiber-link-totals like reply", "right after it, before core's buttons");
  assert.equal(await bob.getAttribute("aria-label"), "This post has received 2.5 CKB in 1 tip");
  assert.equal(await page.locator(`article[data-post-id="${boot.posts[1].id}"] .fiber-link-post-totals`).count(), 0,
    "nothing received, nothing shown");
  await page.locator(`article[data-post-id="${boot.posts[0].id}"]`).screenshot({ path: join(ARTIFACTS, "03b-post-totals.png") });
  const totalsCalls = (await calls()).filter((c) => c.method === "post.totals");
  assert.equal(totalsCalls.length - before, 1, "one post.totals call for the page");
  const asked = totalsCalls.at(-1).params.post_ids;
  assert.ok(asked.includes(boot.posts[0].id), "the post whose tip settled is asked again (the feed invalidated it)");
  assert.ok(asked.every((id) => boot.posts.some((p) => p.id === id)), "only this page's posts, in that one call");
  await page.context().close();

  // a second page load with nothing newly settled asks the service nothing
  const n = (await calls()).filter((c) => c.method === "post.totals").length;
  const again = await openAs("bob");
  await renderPosts(again);
  assert.equal(await text(again.locator(`article[data-post-id="${boot.posts[0].id}"] .fiber-link-post-totals`)),
    "⚡ 2.5 CKB · 1 tip", "the author sees it too");
  assert.equal((await calls()).filter((c) => c.method === "post.totals").length, n, "served from the cache");
  await again.context().close();
});

test("the tipped author's notification says who tipped, how much, and on which post", async () => {
  assert.ok(settledTip, "the first walk settled a tip");
  const page = await openAs("bob");
  const topicTitle = "How do Fiber channels route payments?";
  // the data the plugin's TipNotifier stores on the custom notification (FiberLink::TipNotification)
  const tipNotification = {
    id: 1,
    notification_type: 14,
    read: false,
    topic_id: 7,
    post_number: 2,
    slug: "how-do-fiber-channels-route-payments",
    data: {
      message: "fiber_link.notification.tip_received",
      title: "fiber_link.notification.title",
      display_username: "carol",
      topic_title: topicTitle,
      original_post_id: settledTip.post.id,
      amount: settledTip.amount,
      asset: settledTip.asset,
      tip_id: settledTip.tip_id,
    },
  };
  // another plugin's custom notification (discourse-solved's): rendered as core renders it
  const otherNotification = {
    id: 2,
    notification_type: 14,
    read: true,
    topic_id: 8,
    post_number: 1,
    slug: "a-question",
    data: { message: "solved.accepted_notification", display_username: "dave", topic_title: "A question" },
  };
  const items = await page.evaluate(
    (notifications) =>
      window.__harness.renderNotifications({
        notifications,
        siteSettings: window.__boot.siteSettings,
        currentUser: window.__boot.currentUser,
        notificationTypes: { mentioned: 1, liked: 5, custom: 14 },
      }),
    [tipNotification, otherNotification]
  );
  const [tip, other] = items;
  assert.equal(tip.label, "carol");
  assert.equal(tip.description, `tipped you ${settledTip.amount} ${settledTip.asset} for “${topicTitle}”`);
  assert.equal(tip.icon, "bolt", "the icon replaced for notification.fiber_link.notification.tip_received");
  assert.equal(tip.linkHref, "/t/how-do-fiber-channels-route-payments/7/2", "links to the post");
  assert.equal(tip.linkTitle, "Tip received");
  assert.equal(other.description, "A question");
  assert.equal(other.icon, "notification.solved.accepted_notification");
  assert.equal(other.linkTitle, undefined);
  const li = page.locator(".harness-user-menu li").first();
  assert.equal(await text(li), `carol tipped you 2.5 CKB for “${topicTitle}”`);
  assert.equal(await li.locator("a").getAttribute("href"), tip.linkHref);
  assert.equal(await li.locator(".d-icon-bolt").count(), 1);
  await page.locator(".harness-user-menu").screenshot({ path: join(ARTIFACTS, "09-notification.png") });
  await page.context().close();
});

test("closing the modal stops its polling", async () => {
  const page = await openAs("carol");
  await renderPosts(page);
  await page.locator(`article[data-post-id="${boot.posts[0].id}"] .fiber-link-tip-button`).click();
  const modal = page.locator(".fiber-link-tip-modal");
  await page.waitForFunction(() => document.querySelectorAll("#fiber-link-asset option").length === 2);
  await page.fill("#fiber-link-amount", "1");
  await modal.locator(".fiber-link-tip-modal__generate").click();
  await modal.locator("#fiber-link-invoice").waitFor({ timeout: 15_000 });
  const tipId = (await calls()).filter((c) => c.method === "tip.create").length;
  assert.ok(tipId > 0);
  // let at least one poll happen (first after 2 s)
  await sleep(2600);
  const before = (await calls()).filter((c) => c.method === "tip.get").length;
  await modal.locator(".fiber-link-tip-modal__close").click();
  await page.waitForSelector(".fiber-link-tip-modal", { state: "detached" });
  await sleep(5000);
  const afterClose = (await calls()).filter((c) => c.method === "tip.get").length;
  assert.equal(afterClose, before, "no tip.get after the modal closed");
  await page.context().close();
});

test("the author's dashboard shows the new balance and pages through tips received", async () => {
  assert.ok(settledTipId, "the first walk settled a tip");
  // ten more (unpaid) tips from carol to bob, through the same proxy the browser uses
  for (let i = 0; i < 10; i++) {
    const res = await fetch(`${base}/fiber-link/rpc`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": "t", cookie: "harness_user=carol" },
      body: JSON.stringify({ method: "tip.create", params: { post_id: boot.posts[0].id, asset: "CKB", amount: i < 9 ? `0.${i + 1}` : "1" } }),
    });
    assert.equal((await res.json()).error, undefined);
  }

  const page = await openAs("bob");
  await page.evaluate(() =>
    window.__harness.renderDashboard({ siteSettings: window.__boot.siteSettings, currentUser: window.__boot.currentUser })
  );
  const available = page.locator('tr[data-asset="CKB"] .fiber-link-dashboard__available');
  await available.waitFor({ timeout: 15_000 });
  assert.equal(await text(available), "2.5");
  assert.equal(await text(page.locator('tr[data-asset="CKB"] .fiber-link-dashboard__awaiting')), "6.5",
    "the unpaid tips await payment: 1 from the closed modal, 0.1 + ... + 1.0");
  assert.equal(await text(page.locator('tr[data-asset="CKB"] .fiber-link-dashboard__incoming')), "0",
    "an unpaid invoice is not income");

  const tab = page.locator(".fiber-link-tip-history__tab-received");
  assert.equal(await text(tab), "Received (12)");
  const rows = page.locator(".fiber-link-tip-history__table tbody tr");
  await page.waitForFunction(() => document.querySelectorAll(".fiber-link-tip-history__table tbody tr").length === 10);
  assert.equal(await text(rows.first().locator(".fiber-link-tip-history__who")), "carol");
  await page.screenshot({ path: join(ARTIFACTS, "04-dashboard.png"), fullPage: true });
  await page.locator(".fiber-link-tip-history__more").click();
  await page.waitForFunction(() => document.querySelectorAll(".fiber-link-tip-history__table tbody tr").length === 12);
  assert.equal(await page.locator(".fiber-link-tip-history__more").count(), 0, "no more pages");
  const settledRow = page.locator(`tr[data-tip-id="${settledTipId}"]`);
  assert.equal(await settledRow.getAttribute("data-state"), "SETTLED");
  assert.equal(await text(settledRow.locator(".fiber-link-tip-history__amount")), "2.5 CKB");
  assert.equal(await text(settledRow.locator(".fiber-link-tip-history__message")), "Great explanation, <b>thanks</b>!",
    "a message is shown as text, never as HTML");

  // sent tab for bob is empty
  await page.locator(".fiber-link-tip-history__tab-sent").click();
  await page.locator(".fiber-link-tip-history__empty").waitFor();

  // a withdrawal is quoted before it can be confirmed; a refusal is explained
  // not even shaped like an address: refused in the browser, nothing asked
  const quotes = async () => (await calls()).filter((c) => c.method === "withdrawal.quote").length;
  await page.fill("#fiber-link-destination", "my bank account");
  await page.locator(".fiber-link-withdrawals__review").click();
  assert.equal(await text(page.locator(".fiber-link-withdrawals__error")), "That is not a CKB address.");
  assert.equal(await quotes(), 0);
  // shaped like one: the service quotes it and says why it cannot go ahead
  await page.fill("#fiber-link-destination", `ckt1qyq${"q".repeat(40)}`);
  await page.fill("#fiber-link-withdraw-amount", "100");
  await page.locator(".fiber-link-withdrawals__review").click();
  const quote = page.locator(".fiber-link-withdrawals__quote");
  await quote.waitFor({ timeout: 15_000 });
  assert.equal(await quote.getAttribute("data-allowed"), "false");
  assert.equal(await page.locator(".fiber-link-withdrawals__confirm").count(), 0, "nothing to confirm");
  assert.ok((await text(page.locator(".fiber-link-withdrawals__refusal"))).length > 0);
  await page.screenshot({ path: join(ARTIFACTS, "05-withdrawal-refused.png"), fullPage: true });

  assert.doesNotMatch(await page.locator("body").innerText(), /\[en\./, "no missing translations");
  await page.context().close();
});

test("an author withdraws by paying a Fiber invoice: quote first, then confirm, then history", async () => {
  // another node's invoice, made by the hub simulator; bob has 2.5 CKB available from the walk
  const page = await openAs("bob");
  await page.evaluate(() =>
    window.__harness.renderDashboard({ siteSettings: window.__boot.siteSettings, currentUser: window.__boot.currentUser })
  );
  await page.locator('tr[data-asset="CKB"] .fiber-link-dashboard__available').waitFor({ timeout: 15_000 });
  const hub = await fetch(process.env.FIBER_LINK_HUB_URL, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "sim_external_invoice", params: [{}] }),
  });
  const { invoice: payout } = (await hub.json()).result;
  await page.locator('input[name="fiber-link-kind"][value="fiber_invoice"]').check();
  await page.fill("#fiber-link-destination", payout);
  await page.fill("#fiber-link-withdraw-amount", "1");
  await page.locator(".fiber-link-withdrawals__review").click();
  const quoteBox = page.locator(".fiber-link-withdrawals__quote");
  await quoteBox.waitFor({ timeout: 15_000 });
  if ((await quoteBox.getAttribute("data-allowed")) !== "true") {
    await page.screenshot({ path: join(ARTIFACTS, "06-withdrawal-quote.png"), fullPage: true });
    assert.fail(`the service refused the quote: ${await text(page.locator(".fiber-link-withdrawals__refusal"))}`);
  }
  const quoted = await text(page.locator(".fiber-link-withdrawals__quote dl"));
  assert.match(quoted, /Leaves your balance 1 CKB/);
  assert.equal((await calls()).filter((c) => c.method === "withdrawal.request").length, 0, "nothing requested yet");
  await page.screenshot({ path: join(ARTIFACTS, "06-withdrawal-quote.png"), fullPage: true });

  // the forum refuses the request until bob confirms who he is (confirm_session_required); the
  // confirm-session dialog opens; a wrong password is refused there; the right one confirms and
  // the same request is sent again, and goes through
  const answers = [];
  page.on("response", async (response) => {
    const request = response.request();
    if (request.url().endsWith("/fiber-link/rpc") && JSON.parse(request.postData() ?? "{}").method === "withdrawal.request") {
      answers.push({ params: JSON.parse(request.postData()).params, body: await response.json() });
    }
  });
  await fetch(`${base}/__forget-sessions`, { method: "POST" });
  await page.locator(".fiber-link-withdrawals__confirm").click();
  const dialog = page.locator(".dialog-container");
  await dialog.locator(".confirm-session").waitFor({ timeout: 15_000 });
  assert.equal(await text(dialog.locator("#dialog-title")), "Confirm it is you");
  await page.screenshot({ path: join(ARTIFACTS, "07a-confirm-session.png"), fullPage: true });
  assert.equal(answers.length, 1);
  assert.equal(answers[0].body.error?.reason, "confirm_session_required", "the first request is refused");
  assert.equal((await calls()).filter((c) => c.method === "withdrawal.request").length, 0, "and never reached the service");
  await page.fill("#password", "not my password");
  await dialog.locator(".btn-primary").click();
  await dialog.locator(".alert-error").waitFor();
  assert.equal(await text(dialog.locator(".alert-error")), "Incorrect password or passkey");
  assert.equal(answers.length, 1, "no retry before the session is confirmed");
  await page.fill("#password", "fiber-link-harness"); // tests/plugin/server.rb HARNESS_PASSWORD
  await dialog.locator(".btn-primary").click();
  await dialog.waitFor({ state: "detached" });
  const row = page.locator(".fiber-link-withdrawals__history tbody tr");
  await row.first().waitFor({ timeout: 15_000 });
  assert.match(await row.first().getAttribute("data-state"), /^(QUEUED|SUBMITTING|SUBMITTED|COMPLETED)$/);
  const request = (await calls()).filter((c) => c.method === "withdrawal.request");
  assert.equal(request.length, 1);
  assert.equal(request[0].params.user_id, boot.currentUser.id, "the server said whose money it is");
  for (let i = 0; i < 50 && answers.length < 2; i++) {
    await sleep(100);
  }
  assert.equal(answers.length, 2, "sent again once, after confirming");
  assert.deepEqual(answers[1].params, answers[0].params, "the very same request (same idempotency key)");
  assert.ok(answers[1].body.result?.withdrawal_id, "and it went through");
  assert.equal(await page.locator(".fiber-link-withdrawals__error").count(), 0);
  await page.waitForFunction(
    () => document.querySelector('tr[data-asset="CKB"] .fiber-link-dashboard__available')?.textContent.trim() === "1.5",
    null,
    { timeout: 15_000 }
  );
  await page.screenshot({ path: join(ARTIFACTS, "07-withdrawal-requested.png"), fullPage: true });

  // the worker pays the invoice through the hub; the history follows it to Completed by itself,
  // and the reservation is gone from the balance
  await page.waitForSelector('.fiber-link-withdrawals__history tr[data-state="COMPLETED"]', { timeout: 40_000 });
  assert.equal(await text(page.locator('.fiber-link-withdrawals__history tr[data-state="COMPLETED"] .fiber-link-state')),
    "Completed");
  await page.waitForFunction(
    () => document.querySelector('tr[data-asset="CKB"] .fiber-link-dashboard__reserved')?.textContent.trim() === "0",
    null,
    { timeout: 15_000 }
  );
  // deduct mode: the quoted fee was the most the route could cost; what it did not use is back
  const fee = Number(/Network fee ([0-9.]+) CKB/.exec(quoted)[1]);
  const availableAfter = Number(await text(page.locator('tr[data-asset="CKB"] .fiber-link-dashboard__available')));
  assert.ok(availableAfter >= 1.5 && availableAfter <= 1.5 + fee, `available ${availableAfter} within 1.5 + unused fee`);
  assert.equal(await page.locator(".fiber-link-withdrawals__cancel").count(), 0, "a completed withdrawal cannot be cancelled");
  await page.screenshot({ path: join(ARTIFACTS, "08-withdrawal-completed.png"), fullPage: true });
  await page.context().close();
});

test("on a phone (390 px) the tips page fits: tables wrap or scroll inside their box", async () => {
  const page = await openAs("bob", { viewport: { width: 390, height: 844 } });
  await page.evaluate(() =>
    window.__harness.renderDashboard({ siteSettings: window.__boot.siteSettings, currentUser: window.__boot.currentUser })
  );
  await page.waitForFunction(() => document.querySelectorAll(".fiber-link-tip-history__table tbody tr").length > 0);
  await page.waitForFunction(() => document.querySelectorAll(".fiber-link-withdrawals__history tbody tr").length > 0);
  await page.fill("#fiber-link-destination", `ckt1qyq${"q".repeat(90)}`);
  const overflow = await page.evaluate(() => ({
    page: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    boxes: [...document.querySelectorAll(".fiber-link-table-scroll, .fiber-link-withdrawals__form, .fiber-link-dashboard__header")]
      .map((e) => Math.ceil(e.getBoundingClientRect().right)),
  }));
  assert.equal(overflow.viewport, 390);
  assert.ok(overflow.page <= 390, `the page is ${overflow.page} px wide`);
  assert.ok(overflow.boxes.length >= 4 && overflow.boxes.every((r) => r <= 390), `boxes end at ${overflow.boxes}`);
  await page.screenshot({ path: join(ARTIFACTS, "10-tips-page-phone.png"), fullPage: true });
  await page.context().close();
});

test("no page errors", () => {
  assert.deepEqual(pageErrors, []);
});
