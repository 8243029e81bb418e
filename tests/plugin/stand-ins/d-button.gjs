// Stand-in for Discourse's DButton (discourse/components/d-button; discourse/ui-kit/d-button on
// main), mirroring only the arguments the plugin passes: @action, @label / @title / @ariaLabel
// (i18n keys), @translatedLabel, @translatedAriaLabel, @icon, @disabled, @isLoading, plus
// ...attributes (class, role, aria-*). Not Discourse's markup or styling.
import Component from "@glimmer/component";
import { on } from "@ember/modifier";
import { i18n } from "discourse-i18n";

export default class DButton extends Component {
  get label() {
    if (this.args.translatedLabel) {
      return this.args.translatedLabel;
    }
    return this.args.label ? i18n(this.args.label) : null;
  }

  get title() {
    return this.args.title ? i18n(this.args.title) : null;
  }

  // as core's computedAriaLabel: @ariaLabel is a key, @translatedAriaLabel the text
  get ariaLabel() {
    if (this.args.ariaLabel) {
      return i18n(this.args.ariaLabel);
    }
    return this.args.translatedAriaLabel ?? null;
  }

  get disabled() {
    return Boolean(this.args.disabled || this.args.isLoading);
  }

  click = (event) => {
    event.preventDefault();
    this.args.action?.();
  };

  <template>
    <button
      type="button"
      class="btn {{if this.label 'btn-text' 'no-text btn-icon'}}"
      title={{this.title}}
      aria-label={{this.ariaLabel}}
      disabled={{this.disabled}}
      aria-busy={{if @isLoading "true"}}
      ...attributes
      {{on "click" this.click}}
    >{{#if @icon}}<span
          class="d-icon d-icon-{{@icon}}"
          aria-hidden="true"
        ></span>{{/if}}{{#if this.label}}<span
          class="d-button-label"
        >{{this.label}}</span>{{/if}}</button>
  </template>
}
