// Every user-visible string lives in config/locales/client.en.yml: each i18n key used by the
// JS and templates exists there, and every error reason the code can produce has a sentence.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  FALLBACK_REASONS,
  KNOWN_REASONS,
} from "../../assets/javascripts/discourse/lib/fiber-link/errors.js";
import {
  TIP_STATES,
  WITHDRAWAL_STATES,
} from "../../assets/javascripts/discourse/lib/fiber-link/states.js";
import { lookup, readLocale } from "./mini-yaml.js";

const root = new URL("../..", import.meta.url).pathname;
const client = readLocale(join(root, "config/locales/client.en.yml")).en.js;
const server = readLocale(join(root, "config/locales/server.en.yml")).en;

function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

const sources = files(join(root, "assets/javascripts")).filter((f) =>
  /\.(gjs|js)$/.test(f)
);

test("every fiber_link.* key in the code has an English string", () => {
  const keys = new Set();
  for (const f of sources) {
    for (const m of readFileSync(f, "utf8").matchAll(
      /["'`](fiber_link\.[a-z0-9_.]+[a-z0-9_])["'`]/g
    )) {
      keys.add(m[1]);
    }
  }
  assert.ok(keys.size > 40, `found ${keys.size} keys`);
  for (const key of keys) {
    const v = lookup(client, key);
    assert.ok(
      typeof v === "string" || (v && typeof v.other === "string"),
      `missing client string ${key}`
    );
  }
});

test("every error reason and state has a sentence", () => {
  for (const r of [...KNOWN_REASONS, ...FALLBACK_REASONS]) {
    assert.equal(typeof client.fiber_link.errors[r], "string", r);
  }
  for (const s of [
    ...Object.values(TIP_STATES),
    ...Object.values(WITHDRAWAL_STATES),
  ]) {
    assert.equal(typeof lookup(client, s.key), "string", s.key);
  }
});

test("no hard-coded English in templates", () => {
  for (const f of sources.filter((s) => s.endsWith(".gjs"))) {
    const text = readFileSync(f, "utf8");
    const template = text.slice(text.indexOf("<template>"));
    // text between tags that is not only a {{…}} expression or whitespace
    for (const m of template.matchAll(/>([^<>]+)</g)) {
      const bare = m[1].replace(/\{\{[\s\S]*?\}\}/g, "").trim();
      assert.equal(bare, "", `${f}: literal text "${bare}"`);
    }
    for (const m of template.matchAll(/@translatedLabel="([^"]*)"/g)) {
      assert.fail(`${f}: literal translatedLabel "${m[1]}"`);
    }
  }
});

test("every site setting has a description", () => {
  const settings = readFileSync(join(root, "config/settings.yml"), "utf8");
  const names = [...settings.matchAll(/^ {2}([a-z_]+):$/gm)].map((m) => m[1]);
  assert.ok(names.includes("fiber_link_app_secret"));
  for (const n of names) {
    assert.equal(
      typeof server.site_settings[n],
      "string",
      `no description for ${n}`
    );
  }
  assert.match(
    settings,
    /fiber_link_app_secret:\n(?: {4}.*\n)*? {4}secret: true/,
    "the app secret is a secret setting"
  );
  assert.doesNotMatch(
    settings,
    /fiber_link_app_secret:\n(?: {4}[a-z_]+: .*\n)*? {4}client: true/,
    "the app secret is never sent to browsers"
  );
});
