import Component from "@glimmer/component";
import { tracked } from "@glimmer/tracking";
import { registerDestructor } from "@ember/destroyable";
import { fn } from "@ember/helper";
import { on } from "@ember/modifier";
import { action } from "@ember/object";
import { service } from "@ember/service";
import DButton from "discourse/components/d-button";
import ConfirmSession from "discourse/components/dialog-messages/confirm-session";
import { i18n } from "discourse-i18n";
import { formatAmount, parseAmount } from "../lib/fiber-link/amount";
import {
  callConfirmingSession,
  secondFactorNonce,
} from "../lib/fiber-link/confirm";
import { errorMessageKey } from "../lib/fiber-link/errors";
import { eq } from "../lib/fiber-link/helpers";
import { newIdempotencyKey } from "../lib/fiber-link/ids";
import {
  destinationProblem,
  explorerUrl,
  formatDateTime,
  isCancellable,
  WITHDRAWAL_STATES,
  withdrawalStateKey,
} from "../lib/fiber-link/states";

const PAGE_SIZE = 10;
const FINAL = ["COMPLETED", "FAILED", "CANCELLED"];
const REFRESH_MS = 5000;

// Take money out: choose asset, destination and amount; see the service's quote (fee, what
// arrives, whether it needs approval) before confirming; then the history with its states.
// The forum may refuse a request until the session is confirmed (confirm_session_required):
// then Discourse's own confirm-session dialog (password or passkey, as core uses it before
// changing second factors) asks who it is, and the same request is sent once more. A user with
// a second factor is then sent to Discourse's second-factor page (second_factor_required), which
// makes the withdrawal and comes back here.
export default class FiberLinkWithdrawals extends Component {
  @service fiberLink;
  @service siteSettings;
  @service dialog;
  @service router;

  @tracked asset = this.args.balances?.[0]?.asset ?? "CKB";
  @tracked kind = "ckb_address";
  @tracked destination = "";
  @tracked amountInput = "";
  @tracked quote = null;
  @tracked busy = false;
  @tracked failure = null;
  @tracked localProblem = null;
  @tracked created = null;
  @tracked history = [];
  @tracked nextCursor = null;

  idempotencyKey = null;
  refreshTimer = null;

  constructor() {
    super(...arguments);
    registerDestructor(this, () => clearTimeout(this.refreshTimer));
    this.loadHistory();
  }

  get assets() {
    return (this.args.balances ?? []).map((b) => b.asset);
  }

  get decimals() {
    return (
      (this.args.balances ?? []).find((b) => b.asset === this.asset)
        ?.decimals ?? 8
    );
  }

  get errorMessage() {
    if (this.localProblem) {
      return i18n(errorMessageKey({ reason: this.localProblem }), {
        decimals: this.decimals,
      });
    }
    return this.failure ? i18n(errorMessageKey(this.failure)) : null;
  }

  get quoteRefusal() {
    const q = this.quote;
    const problem = q?.destination_error ?? q?.refusal;
    return problem ? i18n(errorMessageKey(problem)) : null;
  }

  get quoteRows() {
    const q = this.quote;
    if (!q) {
      return [];
    }
    return [
      ["fiber_link.withdraw.quote_amount", q.amount],
      ["fiber_link.withdraw.quote_fee", q.fee],
      ["fiber_link.withdraw.quote_receive", q.receive_amount],
      ["fiber_link.withdraw.quote_available", q.available],
    ]
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([key, v]) => ({
        label: i18n(key),
        value: `${formatAmount(v)} ${q.asset}`,
      }));
  }

  get historyRows() {
    return this.history.map((w) => ({
      ...w,
      amountText: `${formatAmount(w.amount)} ${w.asset}`,
      stateText: i18n(withdrawalStateKey(w.state)),
      tone: WITHDRAWAL_STATES[w.state]?.tone ?? "waiting",
      when: formatDateTime(w.created_at),
      txUrl: explorerUrl(
        this.siteSettings.fiber_link_explorer_tx_url,
        w.tx_hash
      ),
      cancellable: isCancellable(w.state),
      failureText: w.failure ? i18n(errorMessageKey(w.failure)) : null,
    }));
  }

  formChanged() {
    this.quote = null;
    this.failure = null;
    this.localProblem = null;
    this.idempotencyKey = null;
  }

  @action
  chooseAsset(event) {
    this.asset = event.target.value;
    this.formChanged();
  }

  @action
  chooseKind(kind) {
    this.kind = kind;
    this.formChanged();
  }

  @action
  updateDestination(event) {
    this.destination = event.target.value;
    this.formChanged();
  }

  @action
  updateAmount(event) {
    this.amountInput = event.target.value;
    this.formChanged();
  }

  params() {
    const destination =
      this.kind === "ckb_address"
        ? { kind: "ckb_address", address: this.destination.trim() }
        : { kind: "fiber_invoice", invoice: this.destination.trim() };
    return { asset: this.asset, destination };
  }

  @action
  async review(event) {
    event?.preventDefault?.();
    this.formChanged();
    const problem = destinationProblem(this.kind, this.destination);
    if (problem) {
      this.localProblem = problem;
      return;
    }
    const params = this.params();
    if (this.amountInput.trim() !== "") {
      const v = parseAmount(this.amountInput, { decimals: this.decimals });
      if (!v.ok) {
        this.localProblem = v.reason;
        return;
      }
      params.amount = v.amount;
    }
    await this.run(async () => {
      this.quote = await this.fiberLink.call("withdrawal.quote", params);
      this.idempotencyKey = newIdempotencyKey();
    });
  }

  @action
  async confirm() {
    if (!this.quote?.allowed) {
      return;
    }
    const params = {
      ...this.params(),
      amount: this.quote.amount,
      idempotency_key: this.idempotencyKey,
    };
    await this.run(async () => {
      try {
        this.created = await callConfirmingSession({
          call: () => this.fiberLink.call("withdrawal.request", params),
          confirm: () => this.confirmSession(),
        });
      } catch (e) {
        const nonce = secondFactorNonce(e);
        if (nonce) {
          this.router.transitionTo("second-factor-auth", {
            queryParams: { nonce },
          });
          return;
        }
        throw e;
      }
      this.quote = null;
      this.destination = "";
      this.amountInput = "";
      this.idempotencyKey = null;
      await this.reloadHistory();
      this.args.onChanged?.();
    });
  }

  // Discourse's confirm-access dialog, as core opens it (user-passkeys, second-factor
  // preferences): resolves true once ConfirmSession has confirmed the session
  // (POST /u/confirm-session.json, then dialog.didConfirmWrapped()), false if it was closed.
  confirmSession() {
    return new Promise((resolve) => {
      this.dialog.dialog({
        title: i18n("fiber_link.withdraw.confirm_access_title"),
        type: "notice",
        bodyComponent: ConfirmSession,
        didConfirm: () => resolve(true),
        didCancel: () => resolve(false),
      });
    });
  }

  @action
  async cancel(withdrawalId) {
    await this.run(async () => {
      await this.fiberLink.call("withdrawal.cancel", {
        withdrawal_id: withdrawalId,
      });
      await this.reloadHistory();
      this.args.onChanged?.();
    });
  }

  async run(task) {
    this.busy = true;
    this.failure = null;
    try {
      await task();
    } catch (e) {
      if (!(this.isDestroying || this.isDestroyed)) {
        this.failure = e;
      }
    } finally {
      if (!(this.isDestroying || this.isDestroyed)) {
        this.busy = false;
      }
    }
  }

  async reloadHistory() {
    this.history = [];
    this.nextCursor = null;
    await this.fetchHistory();
  }

  @action
  async loadHistory() {
    await this.run(() => this.fetchHistory());
  }

  async fetchHistory() {
    const params = { limit: PAGE_SIZE };
    if (this.nextCursor) {
      params.cursor = this.nextCursor;
    }
    const page = await this.fiberLink.call("withdrawal.list", params);
    if (this.isDestroying || this.isDestroyed) {
      return;
    }
    this.history = [...this.history, ...(page.withdrawals ?? [])];
    this.nextCursor = page.next_cursor ?? null;
    this.scheduleRefresh();
  }

  // While a withdrawal on the first page is still on its way, its state is refreshed every few
  // seconds (withdrawal.get, one per open withdrawal), until it is final or the page is left.
  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    if (!this.history.some((w) => !FINAL.includes(w.state))) {
      return;
    }
    this.refreshTimer = setTimeout(() => this.refreshOpen(), REFRESH_MS);
  }

  async refreshOpen() {
    const open = this.history.filter((w) => !FINAL.includes(w.state));
    try {
      const fresh = await Promise.all(
        open.map((w) =>
          this.fiberLink.call("withdrawal.get", {
            withdrawal_id: w.withdrawal_id,
          })
        )
      );
      if (this.isDestroying || this.isDestroyed) {
        return;
      }
      const byId = new Map(fresh.map((w) => [w.withdrawal_id, w]));
      this.history = this.history.map((w) => byId.get(w.withdrawal_id) ?? w);
      if (fresh.some((w) => FINAL.includes(w.state))) {
        this.args.onChanged?.();
      }
    } catch {
      // a failed refresh is retried on the next round
    }
    if (!(this.isDestroying || this.isDestroyed)) {
      this.scheduleRefresh();
    }
  }

  <template>
    <section class="fiber-link-withdrawals">
      <h2>{{i18n "fiber_link.withdraw.title"}}</h2>
      <form class="fiber-link-withdrawals__form" {{on "submit" this.review}}>
        <div class="fiber-link-withdrawals__kinds" role="radiogroup">
          <label>
            <input
              type="radio"
              name="fiber-link-kind"
              value="ckb_address"
              checked={{eq this.kind "ckb_address"}}
              {{on "change" (fn this.chooseKind "ckb_address")}}
            />
            {{i18n "fiber_link.withdraw.kind_address"}}
          </label>
          <label>
            <input
              type="radio"
              name="fiber-link-kind"
              value="fiber_invoice"
              checked={{eq this.kind "fiber_invoice"}}
              {{on "change" (fn this.chooseKind "fiber_invoice")}}
            />
            {{i18n "fiber_link.withdraw.kind_invoice"}}
          </label>
        </div>
        <label for="fiber-link-destination">{{if
            (eq this.kind "ckb_address")
            (i18n "fiber_link.withdraw.address_label")
            (i18n "fiber_link.withdraw.invoice_label")
          }}</label>
        <input
          id="fiber-link-destination"
          class="fiber-link-withdrawals__destination"
          type="text"
          autocomplete="off"
          spellcheck="false"
          value={{this.destination}}
          {{on "input" this.updateDestination}}
        />
        <div class="fiber-link-withdrawals__row">
          <label for="fiber-link-withdraw-amount">{{i18n
              "fiber_link.withdraw.amount_label"
            }}</label>
          <input
            id="fiber-link-withdraw-amount"
            class="fiber-link-withdrawals__amount"
            type="text"
            inputmode="decimal"
            autocomplete="off"
            placeholder={{i18n "fiber_link.withdraw.amount_placeholder"}}
            value={{this.amountInput}}
            {{on "input" this.updateAmount}}
          />
          <label for="fiber-link-withdraw-asset" class="sr-only">{{i18n
              "fiber_link.tip.asset_label"
            }}</label>
          <select
            id="fiber-link-withdraw-asset"
            class="fiber-link-withdrawals__asset"
            {{on "change" this.chooseAsset}}
          >
            {{#each this.assets as |a|}}
              <option value={{a}} selected={{eq a this.asset}}>{{a}}</option>
            {{/each}}
          </select>
        </div>
        <DButton
          @action={{this.review}}
          @label="fiber_link.withdraw.review"
          @disabled={{this.busy}}
          class="btn-default fiber-link-withdrawals__review"
        />
      </form>

      {{#if this.quote}}
        <div
          class="fiber-link-withdrawals__quote"
          data-allowed={{if this.quote.allowed "true" "false"}}
        >
          <h3>{{i18n "fiber_link.withdraw.quote_title"}}</h3>
          <dl>
            {{#each this.quoteRows as |row|}}
              <dt>{{row.label}}</dt>
              <dd>{{row.value}}</dd>
            {{/each}}
          </dl>
          {{#if this.quote.needs_approval}}
            <p>{{i18n "fiber_link.withdraw.needs_approval"}}</p>
          {{/if}}
          {{#if this.quoteRefusal}}
            <p class="fiber-link-withdrawals__refusal" role="alert">
              {{this.quoteRefusal}}
            </p>
          {{else}}
            <DButton
              @action={{this.confirm}}
              @label="fiber_link.withdraw.confirm"
              @disabled={{this.busy}}
              class="btn-primary fiber-link-withdrawals__confirm"
            />
          {{/if}}
        </div>
      {{/if}}

      {{#if this.errorMessage}}
        <div
          class="alert alert-error fiber-link-withdrawals__error"
          role="alert"
        >{{this.errorMessage}}</div>
      {{/if}}

      <h3>{{i18n "fiber_link.withdraw.history"}}</h3>
      {{#if this.historyRows.length}}
        <div class="fiber-link-table-scroll">
          <table class="fiber-link-withdrawals__history">
            <thead>
              <tr>
                <th>{{i18n "fiber_link.dashboard.when"}}</th>
                <th>{{i18n "fiber_link.dashboard.amount"}}</th>
                <th>{{i18n "fiber_link.dashboard.state"}}</th>
                <th>{{i18n "fiber_link.withdraw.transaction"}}</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {{#each this.historyRows as |w|}}
                <tr
                  data-withdrawal-id={{w.withdrawal_id}}
                  data-state={{w.state}}
                >
                  <td class="fiber-link-withdrawals__when">{{w.when}}</td>
                  <td>{{w.amountText}}</td>
                  <td>
                    <span
                      class="fiber-link-state fiber-link-state--{{w.tone}}"
                    >{{w.stateText}}</span>
                    {{#if w.failureText}}
                      <br />{{w.failureText}}
                    {{/if}}
                  </td>
                  <td>
                    {{#if w.txUrl}}
                      <a
                        href={{w.txUrl}}
                        target="_blank"
                        rel="noopener noreferrer"
                      >{{i18n "fiber_link.withdraw.view_transaction"}}</a>
                    {{/if}}
                  </td>
                  <td>
                    {{#if w.cancellable}}
                      <DButton
                        @action={{fn this.cancel w.withdrawal_id}}
                        @label="fiber_link.withdraw.cancel"
                        @disabled={{this.busy}}
                        class="btn-flat fiber-link-withdrawals__cancel"
                      />
                    {{/if}}
                  </td>
                </tr>
              {{/each}}
            </tbody>
          </table>
        </div>
      {{else}}
        <p class="fiber-link-withdrawals__empty">
          {{i18n "fiber_link.withdraw.no_withdrawals"}}
        </p>
      {{/if}}
      {{#if this.nextCursor}}
        <DButton
          @action={{this.loadHistory}}
          @label="fiber_link.dashboard.load_more"
          @disabled={{this.busy}}
          class="btn-default fiber-link-withdrawals__more"
        />
      {{/if}}
    </section>
  </template>
}
