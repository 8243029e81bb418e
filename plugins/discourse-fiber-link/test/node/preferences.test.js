import assert from "node:assert/strict";
import { test } from "node:test";
import {
  canSeeTipsPage,
  isOwnPage,
  preferenceEnabled,
} from "../../assets/javascripts/discourse/lib/fiber-link/preferences.js";

test("both preferences are on unless turned off", () => {
  for (const on of [undefined, null, true, "true", "t", "1", "TRUE"]) {
    assert.equal(preferenceEnabled(on), true, JSON.stringify(on));
  }
  for (const off of [false, "false", "f", "0", "", "yes please", 1, {}]) {
    assert.equal(preferenceEnabled(off), false, JSON.stringify(off));
  }
});

test("the tips page is for the user themself and staff", () => {
  const bob = { id: 2, username: "Bob" };
  assert.equal(canSeeTipsPage(bob, { id: 2, username: "bob" }), true);
  assert.equal(canSeeTipsPage(bob, { id: 3, username: "carol" }), false);
  assert.equal(
    canSeeTipsPage(bob, { id: 4, username: "mod", staff: true }),
    true
  );
  assert.equal(
    canSeeTipsPage(bob, { id: 5, username: "a", admin: true }),
    true
  );
  assert.equal(canSeeTipsPage(bob, null), false, "not logged in");
  assert.equal(canSeeTipsPage(null, { id: 2, username: "bob" }), false);
});

test("own page: the service answers for the signed-in user only", () => {
  assert.equal(isOwnPage({ id: 2 }, { id: "2" }), true);
  assert.equal(isOwnPage({ id: 2 }, { id: 3 }), false);
  assert.equal(isOwnPage({ username: "Bob" }, { username: "bob" }), true);
  assert.equal(isOwnPage(undefined, { id: 3 }), true, "no user: /fiber-link");
  assert.equal(isOwnPage({ id: 2 }, null), false);
});
