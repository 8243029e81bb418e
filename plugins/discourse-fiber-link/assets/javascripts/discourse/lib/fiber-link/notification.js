// The "tip received" notification: a `custom` notification whose data carries
// { message: "fiber_link.notification.tip_received", display_username, topic_title, amount,
//   asset, tip_id }. Core's renderer for `custom` shows only the username and the topic title
// (data.message picks the icon, data.title the tooltip), so the plugin registers its own
// renderer for `custom` that adds who tipped, how much and on which post for its own
// notifications, and behaves exactly like core's for every other plugin's. Pure module: the
// base class and i18n are passed in.
import { formatAmount } from "./amount.js";

export const TIP_RECEIVED_MESSAGE = "fiber_link.notification.tip_received";
export const TIP_RECEIVED_ICON = `notification.${TIP_RECEIVED_MESSAGE}`;

export function isTipNotification(notification) {
  return notification?.data?.message === TIP_RECEIVED_MESSAGE;
}

// "tipped you 2.5 CKB for “Topic title”" (the username is the label before it).
export function tipDescription(data, i18n) {
  const params = {
    amount: formatAmount(data?.amount ?? ""),
    asset: data?.asset ?? "",
  };
  if (data?.topic_title) {
    return i18n("fiber_link.notification.description", {
      ...params,
      topic_title: data.topic_title,
    });
  }
  return i18n("fiber_link.notification.description_no_topic", params);
}

// For api.registerNotificationTypeRenderer("custom", (NotificationTypeBase) => ...).
export function customNotificationRenderer(NotificationTypeBase, { i18n }) {
  return class FiberLinkCustomNotification extends NotificationTypeBase {
    // as core's notification-types/custom.js, for every custom notification
    get icon() {
      return `notification.${this.notification.data?.message}`;
    }

    get linkTitle() {
      if (this.notification.data?.title) {
        return i18n(this.notification.data.title);
      }
      if (isTipNotification(this.notification)) {
        return i18n("fiber_link.notification.title");
      }
      return undefined;
    }

    get description() {
      if (isTipNotification(this.notification)) {
        return tipDescription(this.notification.data, i18n);
      }
      return super.description;
    }
  };
}
