// A reader for the plugin's locale files: nested maps of `key: value` lines, values plain or
// double/single quoted. Enough for config/locales/*.yml (which keep to that subset on purpose);
// it throws on anything else rather than guess.
import { readFileSync } from "node:fs";

export function parseLocaleYaml(text) {
  const root = {};
  const stack = [{ indent: -1, node: root }];
  text.split("\n").forEach((raw, i) => {
    if (/^\s*(#.*)?$/.test(raw)) {
      return;
    }
    const m = /^( *)([A-Za-z0-9_.-]+):(?: (.*))?$/.exec(raw);
    if (!m) {
      throw new Error(`line ${i + 1}: unsupported YAML: ${raw}`);
    }
    const indent = m[1].length;
    while (stack.at(-1).indent >= indent) {
      stack.pop();
    }
    const parent = stack.at(-1).node;
    const value = m[3]?.trim();
    if (value === undefined || value === "") {
      parent[m[2]] = {};
      stack.push({ indent, node: parent[m[2]] });
    } else {
      parent[m[2]] = unquote(value, i + 1);
    }
  });
  return root;
}

function unquote(v, line) {
  if (v.startsWith('"')) {
    if (!v.endsWith('"') || v.length < 2) {
      throw new Error(`line ${line}: unterminated string`);
    }
    return JSON.parse(v);
  }
  if (v.startsWith("'")) {
    return v.slice(1, -1).replaceAll("''", "'");
  }
  if (/^[|>[{&*!%@`]/.test(v)) {
    throw new Error(`line ${line}: unsupported YAML value: ${v}`);
  }
  return v;
}

export function readLocale(path) {
  return parseLocaleYaml(readFileSync(path, "utf8"));
}

// The value at a dotted key, or undefined.
export function lookup(tree, key) {
  return key
    .split(".")
    .reduce(
      (node, part) =>
        node && typeof node === "object" ? node[part] : undefined,
      tree
    );
}
