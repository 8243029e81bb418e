// Template helpers as plain functions (Ember's default helper manager), so the plugin needs no
// `truth-helpers` import: that package moved to `discourse/truth-helpers` on recent cores, and
// neither path exists on every core this plugin supports. Pure module.

export function eq(a, b) {
  return a === b;
}
