import { apiInitializer } from "discourse/lib/api";
import { i18n } from "discourse-i18n";
import FiberLinkPostTotals from "../components/fiber-link-post-totals";
import FiberLinkTipButton from "../components/fiber-link-tip-button";

export default apiInitializer((api) => {
  const siteSettings = api.container.lookup("service:site-settings");
  if (!siteSettings.fiber_link_enabled) {
    return;
  }

  api.registerValueTransformer(
    "post-menu-buttons",
    ({ value: dag, context: { firstButtonKey } }) => {
      dag.add("fiber-link-tip", FiberLinkTipButton, {
        before: firstButtonKey,
      });
      dag.add("fiber-link-totals", FiberLinkPostTotals, {
        after: "fiber-link-tip",
        before: firstButtonKey,
      });
    }
  );

  if (api.getCurrentUser()) {
    api.addQuickAccessProfileItem({
      icon: "bolt",
      href: "/fiber-link",
      content: i18n("fiber_link.dashboard.menu_item"),
      className: "fiber-link-dashboard-link",
    });
  }
});
