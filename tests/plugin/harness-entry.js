// What the harness page can render: the plugin's real components, with a small owner that
// provides the services they inject (the real fiber-link service over the ajax stand-in; the
// modal service renders what it is asked to show, as Discourse's does).
import { renderComponent } from "@ember/renderer";
import FiberLinkDashboard from "../../plugins/discourse-fiber-link/assets/javascripts/discourse/components/fiber-link-dashboard.gjs";
import FiberLinkPostTotals from "../../plugins/discourse-fiber-link/assets/javascripts/discourse/components/fiber-link-post-totals.gjs";
import FiberLinkTipButton from "../../plugins/discourse-fiber-link/assets/javascripts/discourse/components/fiber-link-tip-button.gjs";
import FiberLinkService from "../../plugins/discourse-fiber-link/assets/javascripts/discourse/services/fiber-link.js";

const dasherize = (s) => s.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();

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
  const services = {
    "site-settings": siteSettings,
    "current-user": currentUser,
    modal,
    "fiber-link": FiberLinkService.create(),
  };
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
  return { owner, modal };
}

window.__harness = {
  modalClosed: 0,
  // Renders the Tip button for each post (as the post menu would), in #posts.
  renderPosts({ posts, siteSettings, currentUser }) {
    const { owner, modal } = makeOwner({ siteSettings, currentUser });
    this.modal = modal;
    for (const post of posts) {
      const article = document.createElement("article");
      article.dataset.postId = post.id;
      // one slot per menu item: renderComponent replaces what is in the element it renders into
      article.innerHTML = `<p class="cooked"></p><nav class="post-controls"><span class="slot-tip"></span><span class="slot-totals"></span></nav>`;
      article.querySelector(".cooked").textContent = post.cooked;
      document.getElementById("posts").append(article);
      if (FiberLinkTipButton.shouldRender({ post })) {
        renderComponent(FiberLinkTipButton, {
          into: article.querySelector(".slot-tip"),
          owner,
          args: { post, showLabel: true },
        });
      }
      if (FiberLinkPostTotals.shouldRender({ post })) {
        renderComponent(FiberLinkPostTotals, {
          into: article.querySelector(".slot-totals"),
          owner,
          args: { post },
        });
      }
    }
  },
  renderDashboard({ siteSettings, currentUser }) {
    const { owner } = makeOwner({ siteSettings, currentUser });
    renderComponent(FiberLinkDashboard, { into: document.getElementById("main"), owner, args: {} });
  },
};
