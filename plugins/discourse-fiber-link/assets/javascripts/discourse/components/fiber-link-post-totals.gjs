import Component from "@glimmer/component";
import { i18n } from "discourse-i18n";
import { summarizeTotals } from "../lib/fiber-link/totals";

// What the post has received, beside its Tip button ("⚡ 12.5 CKB · 3 tips"), from
// post.fiber_link_totals (settled tips only; loaded for a whole topic page in one service call).
// Shown to everyone who can see the post, the author included.
export default class FiberLinkPostTotals extends Component {
  static shouldRender(args) {
    return summarizeTotals(args.post?.fiber_link_totals) !== null;
  }

  get summary() {
    return summarizeTotals(this.args.post?.fiber_link_totals);
  }

  get label() {
    const s = this.summary;
    return s
      ? i18n("fiber_link.totals.label", {
          amounts: s.amounts,
          count: s.tips,
        })
      : "";
  }

  <template>
    {{#if this.summary}}
      <span
        class="fiber-link-post-totals"
        title={{this.label}}
        aria-label={{this.label}}
      >{{i18n
          "fiber_link.totals.summary"
          amounts=this.summary.amounts
          count=this.summary.tips
        }}</span>
    {{/if}}
  </template>
}
