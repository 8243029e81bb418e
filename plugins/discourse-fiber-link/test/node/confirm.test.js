// A withdrawal refused with confirm_session_required: confirm, then the same request once more.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  callConfirmingSession,
  secondFactorNonce,
} from "../../assets/javascripts/discourse/lib/fiber-link/confirm.js";
import {
  normalizeError,
  RpcFailure,
} from "../../assets/javascripts/discourse/lib/fiber-link/errors.js";

const refusal = () =>
  normalizeError({
    error: {
      code: -32003,
      reason: "confirm_session_required",
      message: "confirm",
    },
  });

test("a refusal opens the confirmation, then the same request goes again once", async () => {
  const calls = [];
  let confirms = 0;
  const result = await callConfirmingSession({
    call: async () => {
      calls.push("withdrawal.request");
      if (calls.length === 1) {
        throw refusal();
      }
      return { withdrawal_id: "w1" };
    },
    confirm: async () => {
      confirms += 1;
      return true;
    },
  });
  assert.deepEqual(result, { withdrawal_id: "w1" });
  assert.equal(calls.length, 2);
  assert.equal(confirms, 1);
});

test("no confirmation when the first request goes through", async () => {
  let confirms = 0;
  const result = await callConfirmingSession({
    call: async () => "ok",
    confirm: async () => ++confirms > 0,
  });
  assert.equal(result, "ok");
  assert.equal(confirms, 0);
});

test("giving up at the dialog keeps the refusal and sends nothing more", async () => {
  let calls = 0;
  await assert.rejects(
    callConfirmingSession({
      call: async () => {
        calls += 1;
        throw refusal();
      },
      confirm: async () => false,
    }),
    (e) => e.reason === "confirm_session_required"
  );
  assert.equal(calls, 1);
});

test("the retry happens at most once, and other failures are not confirmations", async () => {
  let calls = 0;
  let confirms = 0;
  await assert.rejects(
    callConfirmingSession({
      call: async () => {
        calls += 1;
        throw refusal();
      },
      confirm: async () => ++confirms > 0,
    }),
    (e) => e.reason === "confirm_session_required"
  );
  assert.deepEqual([calls, confirms], [2, 1]);

  let asked = 0;
  await assert.rejects(
    callConfirmingSession({
      call: async () => {
        throw new RpcFailure({ reason: "insufficient_balance" });
      },
      confirm: async () => ++asked > 0,
    }),
    (e) => e.reason === "insufficient_balance"
  );
  assert.equal(asked, 0);
});

test("a second-factor challenge gives its nonce, anything else none", () => {
  const f = normalizeError({
    error: {
      code: -32003,
      reason: "second_factor_required",
      message: "2fa",
      second_factor_challenge_nonce: "abc123",
    },
  });
  assert.equal(secondFactorNonce(f), "abc123");
  assert.equal(secondFactorNonce(refusal()), null);
  assert.equal(
    secondFactorNonce(new RpcFailure({ reason: "second_factor_required" })),
    null
  );
  assert.equal(secondFactorNonce(undefined), null);
});
