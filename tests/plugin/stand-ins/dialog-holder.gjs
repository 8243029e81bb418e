// What the harness's dialog service renders: a title, the body component, a close button.
// Not Discourse's dialog markup.
import { on } from "@ember/modifier";

<template>
  <div
    class="dialog-container"
    role="dialog"
    aria-modal="true"
    aria-labelledby="dialog-title"
  >
    <div class="dialog-content">
      <div class="dialog-header">
        <h3 id="dialog-title">{{@params.title}}</h3>
        <button
          type="button"
          class="dialog-close"
          aria-label="close"
          {{on "click" @dialog.cancel}}
        >x</button>
      </div>
      <div class="dialog-body">
        <@params.bodyComponent @model={{@params.bodyComponentModel}} />
      </div>
    </div>
  </div>
</template>
