import assert from "node:assert/strict";
import { test } from "node:test";
import {
  formatAmount,
  fromUnits,
  parseAmount,
  parsePresets,
  toUnits,
} from "../../assets/javascripts/discourse/lib/fiber-link/amount.js";

test("accepts what the service accepts, per asset decimals", () => {
  assert.deepEqual(parseAmount("1.5", { decimals: 8 }), {
    ok: true,
    amount: "1.5",
    units: 150000000n,
  });
  assert.equal(parseAmount("0.00000001", { decimals: 8 }).units, 1n);
  assert.equal(parseAmount("200", { decimals: 0 }).units, 200n);
  assert.equal(parseAmount("1.50", { decimals: 8 }).amount, "1.50");
  assert.equal(parseAmount("  2 ", { decimals: 8 }).amount, "2", "trimmed");
  assert.equal(parseAmount("0.5", { decimals: 8 }).ok, true);
});

test("refuses what the service refuses, with the service's reason", () => {
  for (const bad of [
    "-1",
    "+1",
    "1e3",
    ".5",
    "5.",
    "01",
    "1.2.3",
    "0x10",
    "1,5",
    "١",
    "1 000",
  ]) {
    assert.equal(parseAmount(bad).reason, "amount_malformed", bad);
  }
  assert.equal(parseAmount("").reason, "amount_empty");
  assert.equal(parseAmount(null).reason, "amount_empty");
  assert.equal(parseAmount("0").reason, "amount_not_positive");
  assert.equal(parseAmount("0.000").reason, "amount_not_positive");
  assert.deepEqual(parseAmount("1.1234567", { decimals: 6 }), {
    ok: false,
    reason: "amount_too_many_decimals",
    decimals: 6,
  });
  assert.equal(
    parseAmount("1.5", { decimals: 0 }).reason,
    "amount_too_many_decimals"
  );
});

test("applies the forum's minimum and maximum exactly, without floating point", () => {
  const limits = { decimals: 8, min: "0.1", max: "1000" };
  assert.deepEqual(parseAmount("0.09999999", limits), {
    ok: false,
    reason: "tip_below_minimum",
    limit: "0.1",
  });
  assert.equal(parseAmount("0.1", limits).ok, true);
  assert.equal(parseAmount("1000", limits).ok, true);
  assert.equal(
    parseAmount("1000.00000001", limits).reason,
    "tip_above_maximum"
  );
  // 0.1 + 0.2 style traps
  assert.equal(parseAmount("0.3", { decimals: 8, max: "0.3" }).ok, true);
  // huge numbers stay exact
  assert.equal(
    parseAmount("123456789012345678901234567890.12345678", { decimals: 8 })
      .units,
    12345678901234567890123456789012345678n
  );
  // empty limits are no limits
  assert.equal(parseAmount("5", { decimals: 8, min: "", max: null }).ok, true);
});

test("converts between decimal strings and base units", () => {
  assert.equal(toUnits("1.5", 8), 150000000n);
  assert.equal(toUnits("1.123", 2), null);
  assert.equal(toUnits("x", 2), null);
  assert.equal(fromUnits(150000000n, 8), "1.5");
  assert.equal(fromUnits(1n, 8), "0.00000001");
  assert.equal(fromUnits(0n, 8), "0");
  assert.equal(fromUnits(2500000n, 6), "2.5");
  assert.equal(fromUnits(42n, 0), "42");
});

test("formats amounts for people without rounding", () => {
  assert.equal(formatAmount("1234567.12345678", "en"), "1,234,567.12345678");
  assert.equal(formatAmount("1234.5", "de"), "1.234,5");
  assert.equal(formatAmount("0", "en"), "0");
  assert.equal(formatAmount("not a number"), "not a number");
});

test("reads the presets setting", () => {
  assert.deepEqual(parsePresets("1|5|10"), ["1", "5", "10"]);
  assert.deepEqual(parsePresets(" 1 | 0 | x | 5 | 1 | 2.5 "), [
    "1",
    "5",
    "2.5",
  ]);
  assert.deepEqual(parsePresets(""), []);
  assert.deepEqual(parsePresets(undefined), []);
});
