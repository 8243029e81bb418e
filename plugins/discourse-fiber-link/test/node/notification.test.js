// The custom-notification renderer: what the user menu shows for a settled tip, and core's own
// behaviour for every other custom notification. NotificationTypeBase here mirrors core's
// (discourse/lib/notification-types/base.js) in the parts the renderer relies on.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  customNotificationRenderer,
  TIP_RECEIVED_ICON,
  tipDescription,
} from "../../assets/javascripts/discourse/lib/fiber-link/notification.js";
import { lookup, readLocale } from "./mini-yaml.js";

const root = new URL("../..", import.meta.url).pathname;
const strings = readLocale(`${root}config/locales/client.en.yml`).en.js;
const i18n = (key, params = {}) => {
  const v = lookup(strings, key);
  if (typeof v !== "string") {
    return `[en.${key}]`;
  }
  return v.replace(/%\{(\w+)\}/g, (m, n) => params[n] ?? m);
};

class NotificationTypeBase {
  constructor({ notification }) {
    this.notification = notification;
  }

  get label() {
    return this.notification.data.display_username;
  }

  get description() {
    return this.notification.fancy_title || this.notification.data.topic_title;
  }
}

const Renderer = customNotificationRenderer(NotificationTypeBase, { i18n });

const tip = {
  notification_type: 14,
  topic_id: 7,
  post_number: 3,
  data: {
    message: "fiber_link.notification.tip_received",
    title: "fiber_link.notification.title",
    display_username: "carol",
    topic_title: "How Fiber routes payments",
    amount: "12500.5",
    asset: "CKB",
    tip_id: "tip_1",
  },
};

test("a tip notification says who, how much, which asset and which post", () => {
  const r = new Renderer({ notification: tip });
  assert.equal(r.label, "carol");
  assert.equal(
    r.description,
    "tipped you 12,500.5 CKB for “How Fiber routes payments”"
  );
  assert.equal(r.icon, TIP_RECEIVED_ICON);
  assert.equal(r.icon, "notification.fiber_link.notification.tip_received");
  assert.equal(r.linkTitle, "Tip received");
});

test("without a topic title (or a data.title) it still says what happened", () => {
  const data = { ...tip.data, topic_title: undefined, title: undefined };
  const r = new Renderer({ notification: { ...tip, data } });
  assert.equal(r.description, "tipped you 12,500.5 CKB");
  assert.equal(r.linkTitle, "Tip received");
  assert.equal(
    tipDescription({ amount: "1", asset: "DEMO" }, i18n),
    "tipped you 1 DEMO"
  );
});

test("other plugins' custom notifications render as core renders them", () => {
  const solved = {
    data: {
      message: "solved.accepted_notification",
      title: "solved.notification.title",
      display_username: "dave",
      topic_title: "A question",
    },
  };
  const r = new Renderer({ notification: solved });
  assert.equal(r.icon, "notification.solved.accepted_notification");
  assert.equal(r.label, "dave");
  assert.equal(r.description, "A question");
  assert.equal(
    r.linkTitle,
    "[en.solved.notification.title]",
    "i18n(data.title)"
  );
  const untitled = new Renderer({
    notification: { data: { ...solved.data, title: undefined } },
  });
  assert.equal(untitled.linkTitle, undefined);
});
