import Component from "@glimmer/component";
import { action } from "@ember/object";
import { service } from "@ember/service";
import DButton from "discourse/components/d-button";
import { i18n } from "discourse-i18n";
import FiberLinkTipModal from "./modal/fiber-link-tip-modal";

// The Tip button in a post's menu. The server says where it belongs (post.fiber_link_can_tip:
// for a signed-in reader, whether they may tip this post; for an anonymous one, whether the post
// can be tipped at all, so the button shows and asks them to log in, as core's Like button does).
export default class FiberLinkTipButton extends Component {
  static shouldRender(args) {
    return args.post?.fiber_link_can_tip === true;
  }

  @service modal;
  @service currentUser;

  get ariaLabel() {
    return i18n("fiber_link.tip.button_aria_label", {
      username: this.args.post?.username ?? "",
    });
  }

  @action
  openTip() {
    if (!this.currentUser) {
      // the post menu's own action, the one core's Like button calls for anonymous readers
      this.args.buttonActions?.showLogin?.();
      return;
    }
    this.modal.show(FiberLinkTipModal, { model: { post: this.args.post } });
  }

  <template>
    <DButton
      class="post-action-menu__fiber-link-tip fiber-link-tip-button"
      ...attributes
      @action={{this.openTip}}
      @icon="bolt"
      @label={{if @showLabel "fiber_link.tip.button_label"}}
      @title="fiber_link.tip.button_title"
      @translatedAriaLabel={{this.ariaLabel}}
    />
  </template>
}
