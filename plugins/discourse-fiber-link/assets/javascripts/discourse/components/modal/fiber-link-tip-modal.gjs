import Component from "@glimmer/component";
import { tracked } from "@glimmer/tracking";
import { registerDestructor } from "@ember/destroyable";
import { fn } from "@ember/helper";
import { on } from "@ember/modifier";
import { action } from "@ember/object";
import { service } from "@ember/service";
import DButton from "discourse/components/d-button";
import DModal from "discourse/components/d-modal";
import { i18n } from "discourse-i18n";
import {
  formatAmount,
  parseAmount,
  parsePresets,
} from "../../lib/fiber-link/amount";
import { errorMessageKey, isTransient } from "../../lib/fiber-link/errors";
import { eq } from "../../lib/fiber-link/helpers";
import { newIdempotencyKey } from "../../lib/fiber-link/ids";
import { Poller } from "../../lib/fiber-link/poll";
import {
  formatCountdown,
  isFinalTipState,
  secondsLeft,
  TIP_STATES,
  tipStateKey,
} from "../../lib/fiber-link/states";

const MESSAGE_MAX = 280;

// The tip dialog: choose an amount, asset and message; generate an invoice; watch it settle.
// @model.post is the post being tipped (its author is decided by the server, not here).
export default class FiberLinkTipModal extends Component {
  @service fiberLink;
  @service siteSettings;

  @tracked assets = [];
  @tracked asset = this.siteSettings.fiber_link_default_asset || "CKB";
  @tracked amountInput = "";
  @tracked amountTouched = false;
  @tracked message = "";
  @tracked busy = false;
  @tracked failure = null;
  @tracked assetsFailure = null;
  @tracked pollTrouble = false;
  @tracked tip = null;
  @tracked state = null;
  @tracked now = Date.now();
  @tracked copied = false;

  idempotencyKey = null;
  poller = null;
  clock = null;

  constructor() {
    super(...arguments);
    registerDestructor(this, () => this.stopWatching());
    this.loadAssets();
  }

  get presets() {
    return parsePresets(this.siteSettings.fiber_link_tip_presets);
  }

  get decimals() {
    return this.assets.find((a) => a.asset === this.asset)?.decimals ?? 8;
  }

  get validation() {
    return parseAmount(this.amountInput, {
      decimals: this.decimals,
      min: this.siteSettings.fiber_link_tip_min_amount,
      max: this.siteSettings.fiber_link_tip_max_amount,
    });
  }

  get amountError() {
    const v = this.validation;
    if (!this.amountTouched || v.ok) {
      return null;
    }
    return i18n(errorMessageKey(v), {
      decimals: v.decimals,
      limit: v.limit,
      asset: this.asset,
    });
  }

  get messageLength() {
    return [...this.message].length;
  }

  get messageTooLong() {
    return this.messageLength > MESSAGE_MAX;
  }

  get messageCounter() {
    return i18n("fiber_link.tip.message_counter", {
      count: this.messageLength,
      max: MESSAGE_MAX,
    });
  }

  get generateDisabled() {
    return (
      this.busy ||
      this.messageTooLong ||
      (this.amountTouched && !this.validation.ok)
    );
  }

  get errorMessage() {
    const failure = this.failure ?? this.assetsFailure;
    return failure ? i18n(errorMessageKey(failure)) : null;
  }

  get authorName() {
    return this.args.model?.post?.username ?? "";
  }

  get stateLabel() {
    return i18n(tipStateKey(this.state));
  }

  get stateTone() {
    return TIP_STATES[this.state]?.tone ?? "waiting";
  }

  get isOpen() {
    return this.tip && !isFinalTipState(this.state);
  }

  get isFinal() {
    return isFinalTipState(this.state);
  }

  get isSettled() {
    return this.state === "SETTLED";
  }

  get countdown() {
    return formatCountdown(secondsLeft(this.tip?.expires_at, this.now));
  }

  get displayAmount() {
    return formatAmount(this.tip?.amount ?? "");
  }

  get endedText() {
    if (this.state === "SETTLED") {
      return i18n("fiber_link.tip.settled_text", {
        amount: this.displayAmount,
        asset: this.tip.asset,
        username: this.authorName,
      });
    }
    if (this.state === "EXPIRED") {
      return i18n("fiber_link.tip.expired_text");
    }
    return i18n("fiber_link.tip.failed_text");
  }

  async loadAssets() {
    try {
      const result = await this.fiberLink.call("balance.get");
      if (this.isDestroying || this.isDestroyed) {
        return;
      }
      this.assets = (result?.balances ?? []).map((b) => ({
        asset: b.asset,
        decimals: b.decimals,
      }));
      if (
        this.assets.length &&
        !this.assets.some((a) => a.asset === this.asset)
      ) {
        this.asset = this.assets[0].asset;
      }
    } catch (e) {
      if (!(this.isDestroying || this.isDestroyed)) {
        this.assetsFailure = e;
      }
    }
  }

  formChanged() {
    this.idempotencyKey = null;
    this.failure = null;
  }

  @action
  updateAmount(event) {
    this.amountInput = event.target.value;
    this.amountTouched = true;
    this.formChanged();
  }

  @action
  choosePreset(preset) {
    this.amountInput = preset;
    this.amountTouched = true;
    this.formChanged();
  }

  @action
  chooseAsset(event) {
    this.asset = event.target.value;
    this.formChanged();
  }

  @action
  updateMessage(event) {
    this.message = event.target.value;
    this.formChanged();
  }

  @action
  submitForm(event) {
    event.preventDefault();
    this.generate();
  }

  @action
  async generate() {
    this.amountTouched = true;
    if (!this.validation.ok || this.messageTooLong || this.busy) {
      return;
    }
    // Kept across retries of the same form, so a retry after a timeout gets the same tip.
    this.idempotencyKey ??= newIdempotencyKey();
    this.busy = true;
    this.failure = null;
    try {
      const params = {
        post_id: String(this.args.model.post.id),
        asset: this.asset,
        amount: this.validation.amount,
        idempotency_key: this.idempotencyKey,
      };
      if (this.message.trim() !== "") {
        params.message = this.message;
      }
      const tip = await this.fiberLink.call("tip.create", params);
      if (this.isDestroying || this.isDestroyed) {
        return;
      }
      this.tip = tip;
      this.state = tip.state;
      this.watch();
    } catch (e) {
      if (!(this.isDestroying || this.isDestroyed)) {
        this.failure = e;
        if (!isTransient(e)) {
          this.idempotencyKey = null;
        }
      }
    } finally {
      if (!(this.isDestroying || this.isDestroyed)) {
        this.busy = false;
      }
    }
  }

  watch() {
    this.stopWatching();
    this.now = Date.now();
    this.clock = setInterval(() => (this.now = Date.now()), 1000);
    this.poller = new Poller({
      task: () => this.fiberLink.call("tip.get", { tip_id: this.tip.tip_id }),
      isDone: (tip) => isFinalTipState(tip.state),
      onResult: (tip) => {
        this.pollTrouble = false;
        this.state = tip.state;
        if (isFinalTipState(tip.state)) {
          this.stopWatching();
        }
      },
      onError: (e) => {
        if (isTransient(e)) {
          this.pollTrouble = true;
          return true;
        }
        this.failure = e;
        return false;
      },
    });
    this.poller.start();
  }

  stopWatching() {
    this.poller?.stop();
    this.poller = null;
    if (this.clock) {
      clearInterval(this.clock);
      this.clock = null;
    }
  }

  @action
  async copyInvoice() {
    try {
      await navigator.clipboard.writeText(this.tip.invoice);
      this.copied = true;
    } catch {
      document.getElementById("fiber-link-invoice")?.select();
    }
  }

  @action
  startOver() {
    this.stopWatching();
    this.tip = null;
    this.state = null;
    this.failure = null;
    this.pollTrouble = false;
    this.copied = false;
    this.idempotencyKey = null;
  }

  <template>
    <DModal
      @title={{i18n "fiber_link.tip.title" username=this.authorName}}
      @closeModal={{@closeModal}}
      class="fiber-link-tip-modal"
    >
      <:body>
        {{#if this.tip}}
          <div class="fiber-link-tip-modal__invoice" data-state={{this.state}}>
            <p class="fiber-link-tip-modal__summary">
              {{i18n
                "fiber_link.tip.invoice_summary"
                amount=this.displayAmount
                asset=this.tip.asset
                username=this.authorName
              }}
            </p>
            <p
              class="fiber-link-state fiber-link-state--{{this.stateTone}}
                fiber-link-tip-modal__state"
              role="status"
              aria-live="polite"
            >{{this.stateLabel}}</p>

            {{#if this.isOpen}}
              <div class="fiber-link-tip-modal__pay">
                {{#if this.tip.qr_data_url}}
                  <img
                    class="fiber-link-tip-modal__qr"
                    src={{this.tip.qr_data_url}}
                    alt={{i18n "fiber_link.tip.qr_alt"}}
                    width="220"
                    height="220"
                  />
                {{/if}}
                <div class="fiber-link-tip-modal__pay-text">
                  <label for="fiber-link-invoice">
                    {{i18n "fiber_link.tip.invoice_label"}}
                  </label>
                  <textarea
                    id="fiber-link-invoice"
                    class="fiber-link-tip-modal__invoice-text"
                    readonly
                    rows="4"
                  >{{this.tip.invoice}}</textarea>
                  <DButton
                    @action={{this.copyInvoice}}
                    @icon="copy"
                    @label={{if
                      this.copied
                      "fiber_link.tip.copied"
                      "fiber_link.tip.copy"
                    }}
                    class="btn-default fiber-link-tip-modal__copy"
                  />
                  <p class="fiber-link-tip-modal__countdown">
                    {{i18n "fiber_link.tip.expires_in" time=this.countdown}}
                  </p>
                  {{#if this.pollTrouble}}
                    <p class="fiber-link-tip-modal__trouble">
                      {{i18n "fiber_link.tip.poll_trouble"}}
                    </p>
                  {{/if}}
                </div>
              </div>
              <p class="fiber-link-tip-modal__hint">
                {{i18n "fiber_link.tip.pay_hint"}}
              </p>
            {{else}}
              <p class="fiber-link-tip-modal__ended">{{this.endedText}}</p>
            {{/if}}
          </div>
        {{else}}
          <form
            class="fiber-link-tip-modal__form"
            {{on "submit" this.submitForm}}
          >
            {{#if this.presets.length}}
              <div
                class="fiber-link-tip-modal__presets"
                role="group"
                aria-label={{i18n "fiber_link.tip.presets_label"}}
              >
                {{#each this.presets as |preset|}}
                  <DButton
                    @action={{fn this.choosePreset preset}}
                    @translatedLabel={{preset}}
                    class="btn-default fiber-link-tip-modal__preset"
                  />
                {{/each}}
              </div>
            {{/if}}

            <div class="fiber-link-tip-modal__row">
              <label for="fiber-link-amount">{{i18n
                  "fiber_link.tip.amount_label"
                }}</label>
              <input
                id="fiber-link-amount"
                class="fiber-link-tip-modal__amount"
                type="text"
                inputmode="decimal"
                autocomplete="off"
                value={{this.amountInput}}
                aria-invalid={{if this.amountError "true" "false"}}
                {{on "input" this.updateAmount}}
              />
              <label for="fiber-link-asset" class="sr-only">{{i18n
                  "fiber_link.tip.asset_label"
                }}</label>
              <select
                id="fiber-link-asset"
                class="fiber-link-tip-modal__asset"
                {{on "change" this.chooseAsset}}
              >
                {{#each this.assets as |a|}}
                  <option
                    value={{a.asset}}
                    selected={{eq a.asset this.asset}}
                  >{{a.asset}}</option>
                {{else}}
                  <option value={{this.asset}}>{{this.asset}}</option>
                {{/each}}
              </select>
            </div>
            {{#if this.amountError}}
              <p class="fiber-link-tip-modal__amount-error" role="alert">
                {{this.amountError}}
              </p>
            {{/if}}

            <label for="fiber-link-message">{{i18n
                "fiber_link.tip.message_label"
              }}</label>
            <textarea
              id="fiber-link-message"
              class="fiber-link-tip-modal__message"
              rows="3"
              placeholder={{i18n "fiber_link.tip.message_placeholder"}}
              {{on "input" this.updateMessage}}
            >{{this.message}}</textarea>
            <p
              class="fiber-link-tip-modal__counter
                {{if
                  this.messageTooLong
                  'fiber-link-tip-modal__counter--over'
                }}"
            >{{this.messageCounter}}</p>
          </form>
        {{/if}}

        {{#if this.errorMessage}}
          <div
            class="alert alert-error fiber-link-tip-modal__error"
            role="alert"
            data-reason={{if
              this.failure
              this.failure.reason
              this.assetsFailure.reason
            }}
          >{{this.errorMessage}}</div>
        {{/if}}
      </:body>

      <:footer>
        {{#if this.tip}}
          {{#if this.isFinal}}
            <DButton
              @action={{this.startOver}}
              @label={{if
                this.isSettled
                "fiber_link.tip.tip_again"
                "fiber_link.tip.start_over"
              }}
              class="btn-primary fiber-link-tip-modal__again"
            />
          {{/if}}
          <DButton
            @action={{@closeModal}}
            @label="fiber_link.tip.close"
            class="btn-flat fiber-link-tip-modal__close"
          />
        {{else}}
          <DButton
            @action={{this.generate}}
            @label="fiber_link.tip.generate"
            @icon="bolt"
            @disabled={{this.generateDisabled}}
            @isLoading={{this.busy}}
            class="btn-primary fiber-link-tip-modal__generate"
          />
          <DButton
            @action={{@closeModal}}
            @label="fiber_link.tip.cancel"
            class="btn-flat fiber-link-tip-modal__cancel"
          />
        {{/if}}
      </:footer>
    </DModal>
  </template>
}
