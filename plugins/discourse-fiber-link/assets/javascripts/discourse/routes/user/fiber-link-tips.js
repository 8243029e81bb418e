import DiscourseRoute from "discourse/routes/discourse";
import { i18n } from "discourse-i18n";

// /u/:username/tips: the tips page of the user whose pages these are (the user route's model).
export default class UserFiberLinkTipsRoute extends DiscourseRoute {
  model() {
    return this.modelFor("user");
  }

  titleToken() {
    return i18n("fiber_link.dashboard.title");
  }
}
