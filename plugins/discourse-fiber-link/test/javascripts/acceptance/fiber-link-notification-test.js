// Discourse QUnit acceptance test (runs only inside a Discourse checkout; see spec/README.md):
// the user menu's text for a settled tip, from the renderer the plugin registers for `custom`
// notifications, and core's behaviour kept for other plugins' custom notifications.
import { visit } from "@ember/test-helpers";
import { test } from "qunit";
import { getRenderDirector } from "discourse/lib/notification-types-manager";
import { acceptance } from "discourse/tests/helpers/qunit-helpers";
import { i18n } from "discourse-i18n";

acceptance("Fiber Link | Tip notification", function (needs) {
  needs.user();
  needs.settings({ fiber_link_enabled: true });

  test("says who tipped, how much, and on which post", async function (assert) {
    await visit("/");
    const lookup = (name) => this.owner.lookup(name);
    const director = (data) =>
      getRenderDirector(
        "custom",
        {
          id: 1,
          notification_type: 14,
          read: false,
          topic_id: 280,
          post_number: 2,
          slug: "internationalization-localization",
          data,
        },
        lookup("service:current-user"),
        lookup("service:site-settings"),
        lookup("service:site")
      );

    const tip = director({
      message: "fiber_link.notification.tip_received",
      title: "fiber_link.notification.title",
      display_username: "carol",
      topic_title: "Internationalization / localization",
      amount: "2.5",
      asset: "CKB",
      tip_id: "tip_1",
    });
    assert.strictEqual(tip.label, "carol");
    assert.strictEqual(
      tip.description,
      i18n("fiber_link.notification.description", {
        amount: "2.5",
        asset: "CKB",
        topic_title: "Internationalization / localization",
      })
    );
    assert.strictEqual(tip.linkTitle, i18n("fiber_link.notification.title"));
    assert.strictEqual(
      tip.icon,
      "notification.fiber_link.notification.tip_received"
    );
    assert.true(
      tip.linkHref.endsWith("/t/internationalization-localization/280/2")
    );

    const other = director({
      message: "solved.accepted_notification",
      display_username: "dave",
      topic_title: "A question",
    });
    assert.strictEqual(other.description, "A question");
    assert.strictEqual(other.icon, "notification.solved.accepted_notification");
    assert.strictEqual(other.linkTitle, undefined);
  });
});
