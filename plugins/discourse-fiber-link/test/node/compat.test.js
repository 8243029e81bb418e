// Import paths that resolve on the current stable Discourse and on main: no discourse/ui-kit/*
// (recent main only) and no truth-helpers (moved to discourse/truth-helpers), and every
// discourse/* module the plugin imports is one that exists on both (DButton, DModal, dIcon
// through core's ui-kit-shims on main).
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const root = new URL("../..", import.meta.url).pathname;
const assets = join(root, "assets/javascripts/discourse");

function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

const sources = files(assets).filter((f) => /\.(gjs|js)$/.test(f));
const imports = sources.flatMap((f) =>
  [...readFileSync(f, "utf8").matchAll(/^import .* from "([^"]+)";$/gm)].map(
    (m) => ({ file: f.slice(root.length), path: m[1] })
  )
);

// Each checked against Discourse's source (see README "Which Discourse").
const DISCOURSE_MODULES = new Set([
  "discourse/components/d-button",
  "discourse/components/d-modal",
  "discourse/components/dialog-messages/confirm-session",
  "discourse/helpers/d-icon",
  "discourse/lib/ajax",
  "discourse/lib/api",
  "discourse/lib/url",
  "discourse/routes/discourse",
  "discourse-i18n",
]);

test("only Discourse modules that exist on stable and main", () => {
  const used = imports.filter(
    (i) => i.path.startsWith("discourse") || i.path.includes("truth-helpers")
  );
  assert.ok(used.length > 10);
  for (const { file, path } of used) {
    assert.ok(DISCOURSE_MODULES.has(path), `${file}: ${path}`);
  }
});

test("pure modules import nothing from Discourse or Ember", () => {
  for (const { file, path } of imports) {
    if (file.includes("/lib/fiber-link/")) {
      assert.match(path, /^\.\//, `${file}: ${path}`);
    }
  }
});
