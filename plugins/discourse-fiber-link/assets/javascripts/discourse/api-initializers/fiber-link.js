import { apiInitializer } from "discourse/lib/api";
import { userPath } from "discourse/lib/url";
import { i18n } from "discourse-i18n";
import FiberLinkPostTotals from "../components/fiber-link-post-totals";
import FiberLinkTipButton from "../components/fiber-link-tip-button";
import {
  customNotificationRenderer,
  TIP_RECEIVED_ICON,
} from "../lib/fiber-link/notification";

export default apiInitializer((api) => {
  const siteSettings = api.container.lookup("service:site-settings");
  if (!siteSettings.fiber_link_enabled) {
    return;
  }

  // The Tip button (with its label) and what the post has received, first in each post's menu.
  api.registerValueTransformer(
    "post-menu-buttons",
    ({ value: dag, context: { firstButtonKey, buttonLabels } }) => {
      dag.add("fiber-link-tip", FiberLinkTipButton, {
        before: firstButtonKey,
      });
      dag.add("fiber-link-totals", FiberLinkPostTotals, {
        after: "fiber-link-tip",
        before: firstButtonKey,
      });
      buttonLabels?.show("fiber-link-tip");
    }
  );

  // "carol tipped you 2.5 CKB for “Topic”" with a bolt, linking to the post. The renderer
  // keeps core's behaviour for every other plugin's custom notifications.
  api.replaceIcon(TIP_RECEIVED_ICON, "bolt");
  api.registerNotificationTypeRenderer("custom", (NotificationTypeBase) =>
    customNotificationRenderer(NotificationTypeBase, { i18n })
  );

  // The two preferences (connectors/user-preferences-notifications) are user custom fields,
  // saved with the notification preferences.
  api.addSaveableCustomFields("notifications");

  const currentUser = api.getCurrentUser();
  if (currentUser) {
    api.addQuickAccessProfileItem({
      icon: "bolt",
      href: userPath(
        `${currentUser.username_lower ?? currentUser.username}/tips`
      ),
      content: i18n("fiber_link.dashboard.menu_item"),
      className: "fiber-link-dashboard-link",
    });
  }
});
