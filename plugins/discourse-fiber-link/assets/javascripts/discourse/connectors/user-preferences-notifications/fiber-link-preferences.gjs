import Component from "@glimmer/component";
import { fn } from "@ember/helper";
import { on } from "@ember/modifier";
import { action, get, set } from "@ember/object";
import { i18n } from "discourse-i18n";
import {
  ALLOW_TIPS_FIELD,
  preferenceEnabled,
  TIP_NOTIFICATIONS_FIELD,
} from "../../lib/fiber-link/preferences";

// Two checkboxes in the user's notification preferences (outlet user-preferences-notifications,
// args model and save): "Allow others to tip my posts" and "Notify me when a tip to me
// settles". They edit the user's custom fields, which the page's Save sends
// (api.addSaveableCustomFields("notifications") in the api-initializer). Both are on unless
// turned off, so an absent field shows checked.
export default class FiberLinkPreferences extends Component {
  static shouldRender(args, { siteSettings }) {
    return siteSettings.fiber_link_enabled;
  }

  allowTipsField = ALLOW_TIPS_FIELD;
  tipNotificationsField = TIP_NOTIFICATIONS_FIELD;

  get model() {
    return this.args.outletArgs?.model;
  }

  get allowTips() {
    return preferenceEnabled(
      get(this.model ?? {}, `custom_fields.${ALLOW_TIPS_FIELD}`)
    );
  }

  get tipNotifications() {
    return preferenceEnabled(
      get(this.model ?? {}, `custom_fields.${TIP_NOTIFICATIONS_FIELD}`)
    );
  }

  @action
  toggle(field, event) {
    const model = this.model;
    if (!model) {
      return;
    }
    if (!get(model, "custom_fields")) {
      set(model, "custom_fields", {});
    }
    set(get(model, "custom_fields"), field, event.target.checked);
  }

  <template>
    <div class="control-group fiber-link-preferences">
      <label class="control-label">{{i18n
          "fiber_link.preferences.title"
        }}</label>
      <div class="controls">
        <label class="checkbox-label">
          <input
            type="checkbox"
            class="fiber-link-preferences__allow-tips"
            checked={{this.allowTips}}
            {{on "change" (fn this.toggle this.allowTipsField)}}
          />
          {{i18n "fiber_link.preferences.allow_tips"}}
        </label>
      </div>
      <div class="controls">
        <label class="checkbox-label">
          <input
            type="checkbox"
            class="fiber-link-preferences__tip-notifications"
            checked={{this.tipNotifications}}
            {{on "change" (fn this.toggle this.tipNotificationsField)}}
          />
          {{i18n "fiber_link.preferences.tip_notifications"}}
        </label>
      </div>
    </div>
  </template>
}
