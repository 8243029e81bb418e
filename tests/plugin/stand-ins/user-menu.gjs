// What the harness renders a notification with: the markup of core's user-menu item
// (components/user-menu/menu-item.gjs: li > a[href][title] > icon, div > span.item-label,
// span.item-description), in a list like the user menu's notifications panel. The items' text
// comes from the registered renderer.
<template>
  <div class="user-menu harness-user-menu">
    <ul class="notifications">
      {{#each @items as |item|}}
        <li class={{item.className}}>
          <a href={{item.linkHref}} title={{item.linkTitle}}>
            <span
              class="fa d-icon d-icon-{{item.icon}} svg-icon"
              aria-hidden="true"
            ></span>
            <div>
              {{#if item.label}}
                <span class="item-label">{{item.label}}</span>
              {{/if}}
              {{#if item.description}}
                <span
                  class="item-description"
                  data-topic-id={{item.topicId}}
                >{{item.description}}</span>
              {{/if}}
            </div>
          </a>
        </li>
      {{/each}}
    </ul>
  </div>
</template>
