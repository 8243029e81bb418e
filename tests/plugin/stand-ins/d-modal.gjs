// Stand-in for Discourse's DModal: @title, @closeModal, the :body and :footer named blocks and
// ...attributes. Not Discourse's markup, focus handling or animation.
import { on } from "@ember/modifier";

<template>
  <div class="modal d-modal" role="dialog" aria-modal="true" ...attributes>
    <div class="d-modal__container">
      <div class="d-modal__header">
        <h1 class="d-modal__title-text">{{@title}}</h1>
        <button
          type="button"
          class="modal-close"
          aria-label="close"
          {{on "click" @closeModal}}
        >x</button>
      </div>
      <div class="d-modal__body">{{yield to="body"}}</div>
      <div class="d-modal__footer">{{yield to="footer"}}</div>
    </div>
  </div>
</template>
