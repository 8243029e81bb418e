// Stand-in for discourse-i18n: the plugin's real strings from config/locales/client.en.yml
// (served as JSON by the harness), with %{name} interpolation and one/other plurals. A missing
// key renders as "[en.key]", as Discourse shows it, so tests can catch it.
export function i18n(key, params = {}) {
  const tree = globalThis.__FIBER_LINK_LOCALE__ ?? {};
  let value = key.split(".").reduce((node, part) => node?.[part], tree);
  if (value && typeof value === "object") {
    value = params.count === 1 && value.one !== undefined ? value.one : value.other;
  }
  if (typeof value !== "string") {
    return `[en.${key}]`;
  }
  return value.replace(/%\{(\w+)\}/g, (m, name) =>
    params[name] === undefined ? m : String(params[name])
  );
}
