// ember-source's ESM build imports isDevelopingApp from @embroider/macros, which an Embroider
// build replaces at compile time; the harness is a development build.
export function isDevelopingApp() {
  return true;
}
export function isTesting() {
  return false;
}
export function macroCondition(value) {
  return value;
}
