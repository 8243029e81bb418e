import Component from "@glimmer/component";
import { tracked } from "@glimmer/tracking";
import { fn } from "@ember/helper";
import { action } from "@ember/object";
import { service } from "@ember/service";
import DButton from "discourse/components/d-button";
import { i18n } from "discourse-i18n";
import { formatAmount } from "../lib/fiber-link/amount";
import { errorMessageKey } from "../lib/fiber-link/errors";
import {
  formatDateTime,
  TIP_STATES,
  tipStateKey,
} from "../lib/fiber-link/states";

const PAGE_SIZE = 10;

// Tips received and sent, newest first, a page at a time (tip.list with its cursor).
export default class FiberLinkTipHistory extends Component {
  @service fiberLink;

  @tracked direction = "received";
  @tracked tips = [];
  @tracked users = {};
  @tracked nextCursor = null;
  @tracked loading = false;
  @tracked failure = null;

  constructor() {
    super(...arguments);
    this.loadPage();
  }

  get rows() {
    return this.tips.map((t) => {
      const otherId =
        this.direction === "received" ? t.from_user_id : t.to_user_id;
      return {
        ...t,
        who: this.users[otherId] ?? otherId,
        amountText: formatAmount(t.amount),
        stateText: i18n(tipStateKey(t.state)),
        tone: TIP_STATES[t.state]?.tone ?? "waiting",
        when: formatDateTime(t.settled_at ?? t.created_at),
      };
    });
  }

  get receivedLabel() {
    return i18n("fiber_link.dashboard.received", {
      count: this.args.counts?.tips_received ?? 0,
    });
  }

  get sentLabel() {
    return i18n("fiber_link.dashboard.sent", {
      count: this.args.counts?.tips_sent ?? 0,
    });
  }

  get whoHeader() {
    return i18n(
      this.direction === "received"
        ? "fiber_link.dashboard.from"
        : "fiber_link.dashboard.to"
    );
  }

  get isReceived() {
    return this.direction === "received";
  }

  get errorMessage() {
    return this.failure ? i18n(errorMessageKey(this.failure)) : null;
  }

  @action
  show(direction) {
    if (direction === this.direction) {
      return;
    }
    this.direction = direction;
    this.tips = [];
    this.nextCursor = null;
    this.loadPage();
  }

  @action
  async loadPage() {
    const direction = this.direction;
    this.loading = true;
    this.failure = null;
    try {
      const params = { direction, limit: PAGE_SIZE };
      if (this.nextCursor) {
        params.cursor = this.nextCursor;
      }
      const page = await this.fiberLink.call("tip.list", params);
      if (
        this.isDestroying ||
        this.isDestroyed ||
        direction !== this.direction
      ) {
        return;
      }
      this.tips = [...this.tips, ...(page.tips ?? [])];
      this.users = { ...this.users, ...(page.users ?? {}) };
      this.nextCursor = page.next_cursor ?? null;
    } catch (e) {
      if (!(this.isDestroying || this.isDestroyed)) {
        this.failure = e;
      }
    } finally {
      if (!(this.isDestroying || this.isDestroyed)) {
        this.loading = false;
      }
    }
  }

  <template>
    <section class="fiber-link-tip-history" data-direction={{this.direction}}>
      <h2>{{i18n "fiber_link.dashboard.tips"}}</h2>
      <div class="fiber-link-tip-history__tabs" role="tablist">
        <DButton
          @action={{fn this.show "received"}}
          @translatedLabel={{this.receivedLabel}}
          class="fiber-link-tip-history__tab-received
            {{if this.isReceived 'btn-primary' 'btn-default'}}"
          role="tab"
          aria-selected={{if this.isReceived "true" "false"}}
        />
        <DButton
          @action={{fn this.show "sent"}}
          @translatedLabel={{this.sentLabel}}
          class="fiber-link-tip-history__tab-sent
            {{if this.isReceived 'btn-default' 'btn-primary'}}"
          role="tab"
          aria-selected={{if this.isReceived "false" "true"}}
        />
      </div>

      {{#if this.rows.length}}
        <div class="fiber-link-table-scroll">
          <table class="fiber-link-tip-history__table">
            <thead>
              <tr>
                <th>{{i18n "fiber_link.dashboard.when"}}</th>
                <th>{{this.whoHeader}}</th>
                <th>{{i18n "fiber_link.dashboard.amount"}}</th>
                <th>{{i18n "fiber_link.dashboard.state"}}</th>
                <th>{{i18n "fiber_link.dashboard.message"}}</th>
              </tr>
            </thead>
            <tbody>
              {{#each this.rows as |t|}}
                <tr data-tip-id={{t.tip_id}} data-state={{t.state}}>
                  <td class="fiber-link-tip-history__when">{{t.when}}</td>
                  <td class="fiber-link-tip-history__who">{{t.who}}</td>
                  <td class="fiber-link-tip-history__amount">
                    {{t.amountText}}
                    {{t.asset}}
                  </td>
                  <td>
                    <span
                      class="fiber-link-state fiber-link-state--{{t.tone}}"
                    >{{t.stateText}}</span>
                  </td>
                  <td class="fiber-link-tip-history__message">{{t.message}}</td>
                </tr>
              {{/each}}
            </tbody>
          </table>
        </div>
      {{else if this.loading}}
        <p>{{i18n "fiber_link.dashboard.loading"}}</p>
      {{else}}
        <p class="fiber-link-tip-history__empty">
          {{i18n "fiber_link.dashboard.no_tips"}}
        </p>
      {{/if}}

      {{#if this.errorMessage}}
        <div class="alert alert-error" role="alert">{{this.errorMessage}}</div>
      {{/if}}

      {{#if this.nextCursor}}
        <DButton
          @action={{this.loadPage}}
          @label="fiber_link.dashboard.load_more"
          @disabled={{this.loading}}
          class="btn-default fiber-link-tip-history__more"
        />
      {{/if}}
    </section>
  </template>
}
