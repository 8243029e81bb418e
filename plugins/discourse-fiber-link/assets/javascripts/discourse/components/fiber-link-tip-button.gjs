import Component from "@glimmer/component";
import { action } from "@ember/object";
import { service } from "@ember/service";
import DButton from "discourse/ui-kit/d-button";
import FiberLinkTipModal from "./modal/fiber-link-tip-modal";

// The Tip button in a post's menu. The server says whether the current user may tip this post
// (post.fiber_link_can_tip: logged in, can see it, not their own, a real author).
export default class FiberLinkTipButton extends Component {
  static shouldRender(args) {
    return args.post?.fiber_link_can_tip === true;
  }

  @service modal;

  @action
  openTip() {
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
    />
  </template>
}
