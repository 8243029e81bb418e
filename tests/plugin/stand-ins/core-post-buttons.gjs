// Three of core's post-menu buttons (like, show-more, reply), standing in for the buttons already
// in the DAG when the plugin's "post-menu-buttons" transformer runs. Markup only. Show-more
// renders only when buttons are collapsed behind it, which none are here.
export const CoreLikeButton = <template>
  <button
    type="button"
    class="btn btn-flat no-text post-action-menu__like"
    aria-label="like"
  ><span class="d-icon d-icon-heart" aria-hidden="true"></span></button>
</template>;

export const CoreReplyButton = <template>
  <button
    type="button"
    class="btn btn-flat post-action-menu__reply"
    aria-label="reply"
  ><span class="d-icon d-icon-reply" aria-hidden="true"></span></button>
</template>;

export class CoreShowMoreButton {
  static shouldRender() {
    return false;
  }
}
