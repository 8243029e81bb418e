import assert from "node:assert/strict";
import { test } from "node:test";
import {
  destinationProblem,
  explorerUrl,
  formatCountdown,
  formatDateTime,
  isCancellable,
  isFinalTipState,
  secondsLeft,
  tipStateKey,
  withdrawalStateKey,
} from "../../assets/javascripts/discourse/lib/fiber-link/states.js";

test("tip states: labels and finality", () => {
  assert.equal(tipStateKey("SETTLED"), "fiber_link.tip_state.settled");
  assert.equal(tipStateKey("WAT"), "fiber_link.tip_state.unknown");
  assert.deepEqual(
    ["UNPAID", "PENDING", "SETTLED", "EXPIRED", "FAILED"].map(isFinalTipState),
    [false, false, true, true, true]
  );
});

test("withdrawal states: labels and which can be cancelled", () => {
  assert.equal(
    withdrawalStateKey("AWAITING_APPROVAL"),
    "fiber_link.withdrawal_state.awaiting_approval"
  );
  assert.deepEqual(
    ["AWAITING_APPROVAL", "QUEUED", "SUBMITTING", "COMPLETED", "CANCELLED"].map(
      isCancellable
    ),
    [true, true, false, false, false]
  );
});

test("the expiry countdown", () => {
  const now = Date.parse("2026-11-26T10:00:00.000Z");
  assert.equal(secondsLeft("2026-11-26T11:00:00.000Z", now), 3600);
  assert.equal(secondsLeft("2026-11-26T10:00:00.900Z", now), 0);
  assert.equal(
    secondsLeft("2026-11-26T09:00:00.000Z", now),
    0,
    "never negative"
  );
  assert.equal(secondsLeft("garbage", now), null);
  assert.equal(formatCountdown(3600), "1:00:00");
  assert.equal(formatCountdown(3547), "59:07");
  assert.equal(formatCountdown(5), "0:05");
  assert.equal(formatCountdown(null), "");
});

test("dates are formatted for the reader's locale", () => {
  const s = formatDateTime("2026-11-26T10:00:00.000Z", "en");
  assert.match(s, /2026/);
  assert.equal(formatDateTime("nope"), "");
});

test("explorer links only for real hashes and https templates", () => {
  const hash = `0x${"ab".repeat(32)}`;
  assert.equal(
    explorerUrl("https://explorer.example/tx/%{tx_hash}", hash),
    `https://explorer.example/tx/${hash}`
  );
  assert.equal(
    explorerUrl(["javascript", "alert(1)//%{tx_hash}"].join(":"), hash),
    null
  );
  assert.equal(
    explorerUrl("https://explorer.example/tx/%{tx_hash}", "0x12"),
    null
  );
  assert.equal(explorerUrl("", hash), null);
});

test("a quick destination check before asking the service", () => {
  assert.equal(destinationProblem("ckb_address", ""), "destination_empty");
  assert.equal(
    destinationProblem(
      "ckb_address",
      "ckt1qzda0cr08m85hc8jlnfp3zer7xulejywt49kt2rr0vthywaa50xwsqflz4emgssc6nqj4yv3nfv2sca7g9dzhscgmg28x"
    ),
    null
  );
  assert.equal(
    destinationProblem("ckb_address", "bc1qxyz"),
    "address_malformed"
  );
  assert.equal(
    destinationProblem("fiber_invoice", "fibt1000000001pcsaug"),
    null
  );
  assert.equal(
    destinationProblem("fiber_invoice", "lnbc1"),
    "invoice_malformed"
  );
  assert.equal(destinationProblem("bank", "x"), "destination_malformed");
});
