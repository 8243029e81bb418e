import Component from "@glimmer/component";
import { LinkTo } from "@ember/routing";
import icon from "discourse/helpers/d-icon";
import { i18n } from "discourse-i18n";
import { canSeeTipsPage } from "../../lib/fiber-link/preferences";

// "Tips" in the user's page navigation (outlet user-main-nav, whose wrapper is an <li>), shown
// only to the user themself and to staff (as discourse-subscriptions shows "Billing").
export default class FiberLinkTipsNavItem extends Component {
  static shouldRender(args, { siteSettings, currentUser }) {
    return (
      siteSettings.fiber_link_enabled && canSeeTipsPage(args.model, currentUser)
    );
  }

  <template>
    <LinkTo
      @route="user.fiberLinkTips"
      @model={{@outletArgs.model.username}}
      class="user-nav__fiber-link-tips"
    >
      {{icon "bolt"}}
      <span>{{i18n "fiber_link.dashboard.title"}}</span>
    </LinkTo>
  </template>
}
