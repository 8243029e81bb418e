import { service } from "@ember/service";
import DiscourseRoute from "discourse/routes/discourse";
import { i18n } from "discourse-i18n";

// The old address of the dashboard: redirects to the signed-in user's /u/:username/tips, and
// otherwise shows the dashboard's "log in" text (templates/fiber-link.gjs).
export default class FiberLinkRoute extends DiscourseRoute {
  @service router;
  @service currentUser;

  beforeModel() {
    if (this.currentUser) {
      return this.router.replaceWith(
        "user.fiberLinkTips",
        this.currentUser.username
      );
    }
  }

  titleToken() {
    return i18n("fiber_link.dashboard.title");
  }
}
