// Discourse QUnit acceptance tests. They run only inside a Discourse checkout
// (bin/rake "plugin:qunit[discourse-fiber-link]", or the shared plugin workflow); they were not
// run where this plugin was built (see spec/README.md).
import { click, fillIn, visit } from "@ember/test-helpers";
import { test } from "qunit";
import { cloneJSON } from "discourse/lib/object";
import topicFixtures from "discourse/tests/fixtures/topic";
import { acceptance } from "discourse/tests/helpers/qunit-helpers";
import { i18n } from "discourse-i18n";

const SETTINGS = {
  fiber_link_enabled: true,
  fiber_link_default_asset: "CKB",
  fiber_link_tip_presets: "1|5|10|50",
  fiber_link_tip_min_amount: "0.1",
  fiber_link_tip_max_amount: "1000",
  fiber_link_show_totals: true,
};

const INVOICE = "fibd500000000001pqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq";

// The topic as the plugin's serializer fields make it: the first post can be tipped and has
// received 12.5 CKB in 3 tips; the others cannot be tipped.
function topicWithTips() {
  const topic = cloneJSON(topicFixtures["/t/280/1.json"]);
  topic.post_stream.posts.forEach((post) => {
    post.fiber_link_can_tip = false;
    post.fiber_link_totals = [];
  });
  const first = topic.post_stream.posts[0];
  first.fiber_link_can_tip = true;
  first.fiber_link_totals = [
    { asset: "CKB", decimals: 8, amount: "12.5", tips: 3 },
  ];
  return topic;
}

// POST /fiber-link/rpc answered per method; every call is kept in `calls`.
function rpcHandler(helper, calls, answers) {
  return (request) => {
    const { method, params } = JSON.parse(request.requestBody);
    calls.push({ method, params });
    const answer = answers[method];
    const body = typeof answer === "function" ? answer(params, calls) : answer;
    return helper.response(body ?? { error: { reason: "method_not_found" } });
  };
}

acceptance("Fiber Link | Tip button and dialog", function (needs) {
  const calls = [];

  needs.user();
  needs.settings(SETTINGS);
  needs.hooks.beforeEach(() => (calls.length = 0));
  needs.pretender((server, helper) => {
    server.get("/t/280.json", () => helper.response(topicWithTips()));
    server.post(
      "/fiber-link/rpc",
      rpcHandler(helper, calls, {
        "balance.get": {
          result: {
            balances: [
              { asset: "CKB", decimals: 8, available: "0" },
              { asset: "DEMO", decimals: 6, available: "0" },
            ],
          },
        },
        "tip.create": (params) => ({
          result: {
            tip_id: "tip_1",
            invoice: INVOICE,
            amount: params.amount,
            asset: params.asset,
            state: "UNPAID",
            expires_at: new Date(Date.now() + 3600_000).toISOString(),
          },
        }),
        "tip.get": { result: { tip_id: "tip_1", state: "UNPAID" } },
      })
    );
  });

  test("the button sits in the post menu with its totals, and opens the dialog", async function (assert) {
    await visit("/t/internationalization-localization/280");

    const button = "#post_1 .post-controls .fiber-link-tip-button";
    assert.dom(button).exists("the Tip button is in the post's menu");
    assert.dom(button).hasAttribute(
      "aria-label",
      i18n("fiber_link.tip.button_aria_label", {
        username: topicWithTips().post_stream.posts[0].username,
      })
    );
    assert
      .dom("#post_1 .post-controls .fiber-link-post-totals")
      .hasText(
        i18n("fiber_link.totals.summary", { amounts: "12.5 CKB", count: 3 })
      );
    assert
      .dom("#post_2 .fiber-link-tip-button")
      .doesNotExist("no button where the server says no");

    await click(button);
    assert.dom(".fiber-link-tip-modal").exists("the tip dialog is open");
    assert.dom("#fiber-link-asset option").exists({ count: 2 });

    await fillIn("#fiber-link-amount", "5");
    await click(".fiber-link-tip-modal__generate");

    assert.dom("#fiber-link-invoice").hasValue(INVOICE);
    const create = calls.find((c) => c.method === "tip.create");
    assert.strictEqual(
      create.params.post_id,
      String(topicWithTips().post_stream.posts[0].id),
      "the tipped post"
    );
    assert.strictEqual(create.params.amount, "5");
    assert.strictEqual(create.params.asset, "CKB");
    assert.strictEqual(
      create.params.to_user_id,
      undefined,
      "the browser never names the recipient"
    );
  });

  test("a bad amount is refused before anything is asked", async function (assert) {
    await visit("/t/internationalization-localization/280");
    await click("#post_1 .fiber-link-tip-button");
    await fillIn("#fiber-link-amount", "0.05");

    assert
      .dom(".fiber-link-tip-modal__amount-error")
      .hasText(i18n("fiber_link.errors.tip_below_minimum", { limit: "0.1" }));
    assert.dom(".fiber-link-tip-modal__generate").isDisabled();
    assert.false(calls.some((c) => c.method === "tip.create"));
  });
});

acceptance("Fiber Link | Tip button for visitors", function (needs) {
  needs.settings({ ...SETTINGS, full_page_login: false });
  needs.pretender((server, helper) => {
    server.get("/t/280.json", () => helper.response(topicWithTips()));
  });

  test("a visitor who clicks Tip is asked to log in, as with Like", async function (assert) {
    await visit("/t/internationalization-localization/280");
    await click("#post_1 .fiber-link-tip-button");

    assert.dom(".login-modal").exists("the login modal is shown");
    assert.dom(".fiber-link-tip-modal").doesNotExist();
  });
});

acceptance("Fiber Link | Tips page and withdrawals", function (needs) {
  const calls = [];
  let confirmations = 0;

  needs.user();
  needs.settings(SETTINGS);
  needs.hooks.beforeEach(() => {
    calls.length = 0;
    confirmations = 0;
  });
  needs.pretender((server, helper) => {
    server.post("/u/confirm-session.json", () => {
      confirmations += 1;
      return helper.response({ success: "OK" });
    });
    server.post(
      "/fiber-link/rpc",
      rpcHandler(helper, calls, {
        "dashboard.summary": {
          result: {
            balances: [
              {
                asset: "CKB",
                decimals: 8,
                available: "2.5",
                incoming: "0",
                awaiting_payment: "0",
                reserved: "0",
              },
            ],
            counts: { tips_received: 0, tips_sent: 0 },
          },
        },
        "tip.list": { result: { tips: [], users: {}, next_cursor: null } },
        "withdrawal.list": {
          result: { withdrawals: [], next_cursor: null },
        },
        "withdrawal.quote": (params) => ({
          result: {
            allowed: true,
            asset: "CKB",
            amount: params.amount ?? "2.5",
            fee: "0.001",
            receive_amount: "0.999",
            available: "2.5",
          },
        }),
        // refused until the session is confirmed, as the forum does
        "withdrawal.request": () =>
          confirmations === 0
            ? {
                error: {
                  code: -32003,
                  reason: "confirm_session_required",
                  message: "confirm",
                },
              }
            : {
                result: {
                  withdrawal_id: "wd_1",
                  state: "QUEUED",
                  asset: "CKB",
                  amount: "1",
                },
              },
      })
    );
  });

  test("the Tips link is in the user's own navigation", async function (assert) {
    await visit("/u/eviltrout/summary");
    assert.dom(".user-nav__fiber-link-tips").exists();
  });

  test("a withdrawal asks the user to confirm it is them, then goes through", async function (assert) {
    await visit("/u/eviltrout/tips");
    assert.dom(".fiber-link-dashboard__available").hasText("2.5");

    await fillIn(
      "#fiber-link-destination",
      "ckt1qyqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
    );
    await fillIn("#fiber-link-withdraw-amount", "1");
    await click(".fiber-link-withdrawals__review");
    await click(".fiber-link-withdrawals__confirm");

    assert
      .dom(".dialog-body .confirm-session")
      .exists("core's confirm-session dialog is shown");
    assert.strictEqual(
      calls.filter((c) => c.method === "withdrawal.request").length,
      1,
      "the first request was refused"
    );

    await fillIn("#password", "myawesomepassword");
    await click(".confirm-session .btn-primary");

    const requests = calls.filter((c) => c.method === "withdrawal.request");
    assert.strictEqual(confirmations, 1);
    assert.strictEqual(requests.length, 2, "sent again once, after confirming");
    assert.deepEqual(
      requests[1].params,
      requests[0].params,
      "the same request"
    );
    assert.dom(".dialog-body").doesNotExist();
    assert.dom(".fiber-link-withdrawals__error").doesNotExist();
  });
});

acceptance("Fiber Link | Notification preferences", function (needs) {
  let saved = null;

  needs.user();
  needs.settings(SETTINGS);
  needs.pretender((server, helper) => {
    server.put("/u/eviltrout.json", (request) => {
      saved = new URLSearchParams(request.requestBody);
      return helper.response({ user: {} });
    });
  });

  test("both preferences are on by default and saved with the page", async function (assert) {
    await visit("/u/eviltrout/preferences/notifications");

    assert.dom(".fiber-link-preferences__allow-tips").isChecked();
    assert.dom(".fiber-link-preferences__tip-notifications").isChecked();

    await click(".fiber-link-preferences__tip-notifications");
    await click(".save-changes");

    assert.strictEqual(
      saved.get("custom_fields[fiber_link_tip_notifications]"),
      "false"
    );
  });
});
