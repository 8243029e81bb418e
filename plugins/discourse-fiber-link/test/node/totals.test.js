import assert from "node:assert/strict";
import { test } from "node:test";
import { summarizeTotals } from "../../assets/javascripts/discourse/lib/fiber-link/totals.js";

test("sums the tips and lists each asset's amount", () => {
  assert.deepEqual(
    summarizeTotals([
      { asset: "CKB", decimals: 8, amount: "12.5", tips: 3 },
      { asset: "DEMO", decimals: 6, amount: "1000", tips: 1 },
    ]),
    { amounts: "12.5 CKB + 1,000 DEMO", tips: 4 }
  );
});

test("nothing received, or nothing usable, is nothing to show", () => {
  for (const none of [
    undefined,
    null,
    [],
    "x",
    [{ asset: "CKB", amount: "0", tips: 0 }],
    [null],
  ]) {
    assert.equal(summarizeTotals(none), null, JSON.stringify(none));
  }
});
