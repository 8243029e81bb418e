// Stand-in for discourse/helpers/d-icon: an element with Discourse's icon classes (the harness
// page draws the few icons the plugin uses with CSS).
import { htmlSafe } from "@ember/template";

export default function icon(name) {
  const safe = String(name).replace(/[^a-z0-9._-]/gi, "");
  return htmlSafe(
    `<span class="fa d-icon d-icon-${safe} svg-icon" aria-hidden="true"></span>`
  );
}
