// The tips page under the user's own pages: /u/:username/tips (route user.fiberLinkTips), as
// discourse-subscriptions adds "Billing" under "user". The server answers GET /u/:username/tips
// with the app shell (config/routes.rb), so a reload or a shared link works.
export default {
  resource: "user",
  path: "users/:username",
  map() {
    this.route("fiberLinkTips", { path: "/tips" });
  },
};
