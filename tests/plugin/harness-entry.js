// What the harness page can do with the plugin, wired as Discourse wires it rather than by hand:
//  * the plugin's real api-initializer runs against a stand-in plugin API that records what it
//    registers (value transformers, icons, notification renderers, saveable custom fields, the
//    user-menu link) and refuses any API the stand-in does not know;
//  * each post's menu is the DAG the registered "post-menu-buttons" transformer edits (starting
//    with stand-ins for two of core's buttons), rendered in the order it resolves to, each button
//    only where its static shouldRender says so, with the showLabel the transformer asked for;
//  * the route maps (found by name, like Discourse's mapRoutes) are loaded into a stand-in of
//    Discourse's route tree; the tips page is its real route template; connectors are looked up
//    by outlet; services by name (the real fiber-link service over the ajax stand-in);
//  * notifications are rendered by whatever renderer the plugin registered for their type,
//    through the markup of core's user-menu item.
// The owner provides the services components inject; the modal service renders what it is asked
// to show, as Discourse's does; the dialog service renders a dialog's body component.
import { setOwner } from "@ember/owner";
import { renderComponent } from "@ember/renderer";
import {
  apiInitializers,
  connectors,
  routeMaps,
  routes,
  services as pluginServices,
  templates,
} from "harness:plugin";
import { setPluginApiFactory } from "./stand-ins/api.js";
import { CoreLikeButton, CoreReplyButton, CoreShowMoreButton } from "./stand-ins/core-post-buttons.gjs";
import DAG from "./stand-ins/dag.js";
import { createDialogService } from "./stand-ins/dialog.js";
import NotificationTypeBase from "./stand-ins/notification-type-base.js";
import { mapRoutes } from "./stand-ins/route-map.js";
import UserMenu from "./stand-ins/user-menu.gjs";

const dasherize = (s) => s.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
// How Discourse's resolver finds a route's modules: "user.fiberLinkTips" -> "user/fiber-link-tips"
const moduleNameFor = (routeName) => routeName.split(".").map(dasherize).join("/");

function makeOwner({ siteSettings, currentUser }) {
  const modalRoot = document.getElementById("modal-root");
  let open = null;
  const modal = {
    shown: [],
    show(Component, { model } = {}) {
      this.shown.push({ name: Component.name, model });
      open?.destroy();
      // Closing destroys the component (running its destructors) and removes its DOM.
      const closeModal = () => {
        open?.destroy();
        open = null;
        window.__harness.modalClosed += 1;
      };
      open = renderComponent(Component, { into: modalRoot, owner, args: { model, closeModal } });
    },
  };
  const router = {
    transitions: [],
    transitionTo(...args) {
      this.transitions.push(["transitionTo", ...args]);
    },
    replaceWith(...args) {
      this.transitions.push(["replaceWith", ...args]);
    },
  };
  const services = {
    "site-settings": siteSettings,
    "current-user": currentUser,
    modal,
    router,
    dialog: createDialogService(() => owner),
  };
  // the plugin's own services, by file name, as Discourse's resolver finds them
  for (const [name, Service] of Object.entries(pluginServices)) {
    services[name] = Service.create();
  }
  const owner = {
    lookup(fullName) {
      const [type, name] = fullName.split(":");
      if (type !== "service") {
        throw new Error(`harness owner: no ${fullName}`);
      }
      const key = dasherize(name);
      if (!(key in services)) {
        throw new Error(`harness owner: no service ${key}`);
      }
      return services[key];
    },
  };
  return { owner, modal, router, dialog: services.dialog };
}

// A stand-in of Discourse's plugin API: records what the plugin registers; any other API the
// plugin calls fails loudly (so the stand-in has to be extended, knowingly).
function makePluginApi(owner, registry) {
  const api = {
    container: { lookup: (name) => owner.lookup(name) },
    getCurrentUser: () => owner.lookup("service:current-user"),
    registerValueTransformer(name, fn) {
      (registry.transformers[name] ??= []).push(fn);
    },
    replaceIcon(source, destination) {
      registry.icons[source] = destination;
    },
    registerNotificationTypeRenderer(type, func) {
      registry.renderers[type] = func(NotificationTypeBase);
    },
    addSaveableCustomFields(page) {
      registry.saveableCustomFields.push(page);
    },
    addQuickAccessProfileItem(item) {
      registry.profileItems.push(item);
    },
  };
  return new Proxy(api, {
    get(target, key) {
      if (typeof key === "symbol" || key in target) {
        return target[key];
      }
      throw new Error(`harness plugin API: ${String(key)} is not stood in for`);
    },
  });
}

// Runs every api-initializer of the plugin, as Discourse does at boot.
function bootPlugin(owner) {
  const registry = {
    transformers: {},
    icons: {},
    renderers: {},
    saveableCustomFields: [],
    profileItems: [],
  };
  setPluginApiFactory((o) => makePluginApi(o, registry));
  for (const initializer of Object.values(apiInitializers)) {
    initializer.initialize(owner);
  }
  return registry;
}

function describeRegistry(registry) {
  return {
    transformers: Object.fromEntries(
      Object.entries(registry.transformers).map(([k, v]) => [k, v.length])
    ),
    icons: registry.icons,
    renderers: Object.keys(registry.renderers),
    saveableCustomFields: registry.saveableCustomFields,
    profileItems: registry.profileItems.map(({ icon, href, content, className }) => ({
      icon,
      href,
      content,
      className,
    })),
  };
}

// The post menu: core's buttons in a DAG, edited by every registered "post-menu-buttons"
// transformer with the context core passes (firstButtonKey, buttonLabels, …), resolved, and each
// button rendered where its shouldRender allows, with @post, @state, @buttonActions, @showLabel.
// Core positions the configured buttons around show-more (post menu's configuredPositions: the
// ones before it { before: showMore }, the ones after it { after: showMore }) and gives added
// buttons the default position { before: showMore }.
function renderPostMenu({ post, nav, owner, registry, currentUser }) {
  const dag = DAG.from(
    [
      ["like", CoreLikeButton, { before: ["showMore"] }],
      ["showMore", CoreShowMoreButton, null],
      ["reply", CoreReplyButton, { after: ["showMore"] }],
    ],
    { defaultPosition: { before: "showMore" } }
  );
  const labels = new Map();
  const state = Object.freeze({ currentUser, collapsed: true });
  const context = {
    post,
    state,
    buttonKeys: { LIKE: "like", REPLY: "reply", SHOW_MORE: "showMore" },
    firstButtonKey: "like",
    lastHiddenButtonKey: null,
    lastItemBeforeMoreItemsButtonKey: "reply",
    secondLastHiddenButtonKey: null,
    buttonLabels: {
      show: (key) => labels.set(key, true),
      hide: (key) => labels.set(key, false),
      default: (key) => labels.delete(key),
    },
    collapsedButtons: { show() {}, hide() {}, default() {} },
  };
  for (const transformer of registry.transformers["post-menu-buttons"] ?? []) {
    transformer({ value: dag, context });
  }
  const buttonActions = {
    // core's post menu passes the topic's showLogin (the login modal or page)
    showLogin: () => {
      window.__harness.loginShown += 1;
    },
  };
  const helperContext = {
    siteSettings: owner.lookup("service:site-settings"),
    currentUser,
  };
  const rendered = [];
  for (const { key, value: Button } of dag.resolve()) {
    const args = { post, state, buttonActions };
    if (typeof Button.shouldRender === "function" && !Button.shouldRender(args, helperContext, owner)) {
      continue;
    }
    const slot = document.createElement("span");
    slot.className = "post-menu-slot";
    slot.dataset.key = key;
    nav.append(slot);
    renderComponent(Button, {
      into: slot,
      owner,
      args: { ...args, showLabel: labels.get(key) ?? null },
    });
    rendered.push(key);
  }
  return rendered;
}

window.__harness = {
  modalClosed: 0,
  loginShown: 0,

  // The posts of a topic page, each with the post menu the plugin's transformer builds.
  renderPosts({ posts, siteSettings, currentUser }) {
    const { owner, modal, dialog } = makeOwner({ siteSettings, currentUser });
    const registry = bootPlugin(owner);
    this.modal = modal;
    this.dialog = dialog;
    this.plugin = describeRegistry(registry);
    for (const post of posts) {
      const article = document.createElement("article");
      article.dataset.postId = post.id;
      article.innerHTML = `<p class="cooked"></p><nav class="post-controls"><div class="actions"></div></nav>`;
      article.querySelector(".cooked").textContent = post.cooked;
      document.getElementById("posts").append(article);
      const menu = renderPostMenu({
        post,
        nav: article.querySelector(".post-controls .actions"),
        owner,
        registry,
        currentUser,
      });
      article.dataset.menu = menu.join(" ");
    }
    return this.plugin;
  },

  // The user's tips page, /u/:username/tips: the plugin's route (its model is the user route's
  // model) and its route template, rendered as the router would.
  renderUserTips({ siteSettings, currentUser, user }) {
    const { owner, router, dialog } = makeOwner({ siteSettings, currentUser });
    bootPlugin(owner);
    this.router = router;
    this.dialog = dialog;
    const name = moduleNameFor("user.fiberLinkTips");
    const route = new routes[name]();
    setOwner(route, owner);
    route.models.user = user ?? currentUser;
    const model = route.model();
    renderComponent(templates[name], {
      into: document.getElementById("main"),
      owner,
      args: { model, controller: {} },
    });
  },

  renderDashboard({ siteSettings, currentUser }) {
    this.renderUserTips({ siteSettings, currentUser, user: currentUser });
  },

  // Notifications in the user menu, each rendered by the renderer the plugin registered for its
  // type (core's base class otherwise), with icons replaced as the plugin asked.
  renderNotifications({ notifications, siteSettings, currentUser, notificationTypes }) {
    const { owner } = makeOwner({ siteSettings, currentUser });
    const registry = bootPlugin(owner);
    const site = { notificationLookup: Object.fromEntries(Object.entries(notificationTypes).map(([k, v]) => [v, k])) };
    const items = notifications.map((notification) => {
      const type = site.notificationLookup[notification.notification_type];
      const Renderer = registry.renderers[type] ?? NotificationTypeBase;
      const director = new Renderer({ notification, currentUser, siteSettings, site });
      return {
        className: director.classNames.join(" "),
        linkHref: director.linkHref,
        linkTitle: director.linkTitle,
        icon: registry.icons[director.icon] ?? director.icon,
        label: director.label,
        description: director.description,
        topicId: director.topicId,
      };
    });
    renderComponent(UserMenu, { into: document.getElementById("menu"), owner, args: { items } });
    return items;
  },

  // A connector, as the plugin outlet renders it: looked up by outlet name, shown only where its
  // static shouldRender(outletArgs, helperContext) allows.
  connectorShouldRender({ outlet, name, outletArgs, siteSettings, currentUser }) {
    const Connector = connectors[`${outlet}/${name}`];
    if (!Connector) {
      throw new Error(`no connector ${outlet}/${name}`);
    }
    return Connector.shouldRender ? Connector.shouldRender(outletArgs, { siteSettings, currentUser }) : true;
  },

  renderPreferences({ siteSettings, currentUser, user }) {
    const { owner } = makeOwner({ siteSettings, currentUser });
    const registry = bootPlugin(owner);
    const outlet = "user-preferences-notifications";
    const found = Object.entries(connectors).filter(([k]) => k.startsWith(`${outlet}/`));
    this.preferencesUser = user;
    const root = document.getElementById("main");
    for (const [, Connector] of found) {
      if (Connector.shouldRender && !Connector.shouldRender({ model: user }, { siteSettings, currentUser })) {
        continue;
      }
      const slot = document.createElement("div");
      slot.className = "user-preferences-notifications-outlet";
      root.append(slot);
      renderComponent(Connector, { into: slot, owner, args: { outletArgs: { model: user, save: () => {} } } });
    }
    return { connectors: found.map(([k]) => k), saveableCustomFields: registry.saveableCustomFields };
  },

  // The routes the plugin's route maps add to Discourse's route tree, and whether each has its
  // route and template modules where Discourse's resolver looks.
  routes() {
    return mapRoutes(routeMaps).map(({ name, path }) => ({
      name,
      path,
      route: Boolean(routes[moduleNameFor(name)]),
      template: Boolean(templates[moduleNameFor(name)]),
    }));
  },

  // The old /fiber-link address: what its route does for a signed-in user and for a visitor.
  async visitFiberLink({ siteSettings, currentUser }) {
    const { owner, router } = makeOwner({ siteSettings, currentUser });
    const route = new routes["fiber-link"]();
    setOwner(route, owner);
    await route.beforeModel();
    return router.transitions;
  },
};
