import Component from "@glimmer/component";
import { tracked } from "@glimmer/tracking";
import { action } from "@ember/object";
import { service } from "@ember/service";
import DButton from "discourse/components/d-button";
import { i18n } from "discourse-i18n";
import { formatAmount } from "../lib/fiber-link/amount";
import { errorMessageKey } from "../lib/fiber-link/errors";
import { isOwnPage } from "../lib/fiber-link/preferences";
import FiberLinkTipHistory from "./fiber-link-tip-history";
import FiberLinkWithdrawals from "./fiber-link-withdrawals";

// The creator dashboard, on the user's own pages at /u/:username/tips (@user is the user whose
// page it is): balances per asset, tips received and sent, withdrawals. Everything is the signed-in
// user's own (the server decides whose data it reads), so on somebody else's page (staff can
// open it) it says so and asks nothing.
export default class FiberLinkDashboard extends Component {
  @service fiberLink;
  @service currentUser;

  @tracked summary = null;
  @tracked failure = null;
  @tracked loading = false;

  constructor() {
    super(...arguments);
    if (this.isOwn) {
      this.load();
    }
  }

  get isOwn() {
    return isOwnPage(this.args.user, this.currentUser);
  }

  get othersPage() {
    return this.currentUser && !this.isOwn;
  }

  get othersPageText() {
    return i18n("fiber_link.dashboard.only_owner", {
      username: this.args.user?.username ?? "",
    });
  }

  get balances() {
    return (this.summary?.balances ?? []).map((b) => ({
      ...b,
      availableText: formatAmount(b.available),
      incomingText: formatAmount(b.incoming),
      awaitingText: formatAmount(b.awaiting_payment ?? "0"),
      reservedText: formatAmount(b.reserved),
    }));
  }

  get errorMessage() {
    return this.failure ? i18n(errorMessageKey(this.failure)) : null;
  }

  @action
  async load() {
    this.loading = true;
    this.failure = null;
    try {
      const summary = await this.fiberLink.call("dashboard.summary");
      if (!(this.isDestroying || this.isDestroyed)) {
        this.summary = summary;
      }
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
    <section class="fiber-link-dashboard">
      <header class="fiber-link-dashboard__header">
        <h1>{{i18n "fiber_link.dashboard.title"}}</h1>
        {{#if this.isOwn}}
          <DButton
            @action={{this.load}}
            @icon="arrows-rotate"
            @label="fiber_link.dashboard.refresh"
            @disabled={{this.loading}}
            class="btn-default fiber-link-dashboard__refresh"
          />
        {{/if}}
      </header>

      {{#unless this.currentUser}}
        <p class="fiber-link-dashboard__login">
          {{i18n "fiber_link.dashboard.log_in"}}
        </p>
      {{/unless}}

      {{#if this.othersPage}}
        <p class="fiber-link-dashboard__others">{{this.othersPageText}}</p>
      {{/if}}

      {{#if this.errorMessage}}
        <div
          class="alert alert-error fiber-link-dashboard__error"
          role="alert"
          data-reason={{this.failure.reason}}
        >{{this.errorMessage}}</div>
      {{/if}}

      {{#if this.summary}}
        <h2>{{i18n "fiber_link.dashboard.balances"}}</h2>
        <div class="fiber-link-table-scroll">
          <table class="fiber-link-dashboard__balances">
            <thead>
              <tr>
                <th>{{i18n "fiber_link.dashboard.asset"}}</th>
                <th>{{i18n "fiber_link.dashboard.available"}}</th>
                <th>{{i18n "fiber_link.dashboard.incoming"}}</th>
                <th>{{i18n "fiber_link.dashboard.awaiting_payment"}}</th>
                <th>{{i18n "fiber_link.dashboard.reserved"}}</th>
              </tr>
            </thead>
            <tbody>
              {{#each this.balances as |b|}}
                <tr data-asset={{b.asset}}>
                  <td class="fiber-link-dashboard__asset">{{b.asset}}</td>
                  <td class="fiber-link-dashboard__available">
                    {{b.availableText}}
                  </td>
                  <td class="fiber-link-dashboard__incoming">
                    {{b.incomingText}}
                  </td>
                  <td class="fiber-link-dashboard__awaiting">
                    {{b.awaitingText}}
                  </td>
                  <td class="fiber-link-dashboard__reserved">
                    {{b.reservedText}}
                  </td>
                </tr>
              {{/each}}
            </tbody>
          </table>
        </div>

        <FiberLinkTipHistory @counts={{this.summary.counts}} />

        <FiberLinkWithdrawals
          @balances={{this.summary.balances}}
          @onChanged={{this.load}}
        />
      {{else if this.loading}}
        <p class="fiber-link-dashboard__loading">
          {{i18n "fiber_link.dashboard.loading"}}
        </p>
      {{/if}}
    </section>
  </template>
}
