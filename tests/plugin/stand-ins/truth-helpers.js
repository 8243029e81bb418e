// Stand-in for discourse/truth-helpers: eq is the only helper the plugin uses.
export function eq(a, b) {
  return a === b;
}
