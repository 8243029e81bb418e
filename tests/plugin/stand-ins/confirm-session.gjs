// Stand-in for core's ConfirmSession (discourse/components/dialog-messages/confirm-session), the
// dialog body that confirms the session: as core's, it posts the password to
// /u/confirm-session.json (the harness server answers like core) and, on success, calls
// dialog.didConfirmWrapped(); on failure it shows the error. No passkeys, no password reset.
import Component from "@glimmer/component";
import { tracked } from "@glimmer/tracking";
import { on } from "@ember/modifier";
import { service } from "@ember/service";
import DButton from "discourse/components/d-button";
import { ajax } from "discourse/lib/ajax";

export default class ConfirmSession extends Component {
  @service dialog;

  @tracked password = "";
  @tracked errorMessage = null;
  @tracked isLoading = false;

  updatePassword = (event) => {
    this.password = event.target.value;
  };

  submit = async () => {
    this.isLoading = true;
    try {
      const result = await ajax("/u/confirm-session.json", {
        type: "POST",
        data: { password: this.password },
      });
      if (result.success) {
        this.errorMessage = null;
        this.dialog.didConfirmWrapped();
      } else {
        this.errorMessage = result.error ?? "Incorrect password";
      }
    } catch (e) {
      this.errorMessage = e?.jqXHR?.responseJSON?.errors?.[0] ?? "error";
    } finally {
      this.isLoading = false;
    }
  };

  <template>
    {{#if this.errorMessage}}
      <div class="alert alert-error">{{this.errorMessage}}</div>
    {{/if}}
    <div class="control-group confirm-session">
      <div class="confirm-session__instructions">
        For your security, confirm your password.
      </div>
      <form>
        <label class="control-label" for="password">Password</label>
        <div class="controls inline-form">
          <input
            id="password"
            class="input-large"
            type="password"
            value={{this.password}}
            {{on "input" this.updatePassword}}
          />
          <DButton
            class="btn-primary"
            @action={{this.submit}}
            @isLoading={{this.isLoading}}
            @translatedLabel="Confirm"
          />
        </div>
      </form>
    </div>
  </template>
}
