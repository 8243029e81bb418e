import assert from "node:assert/strict";
import { test } from "node:test";
import {
  errorMessageKey,
  isTransient,
  KNOWN_REASONS,
  normalizeError,
  RpcFailure,
} from "../../assets/javascripts/discourse/lib/fiber-link/errors.js";

test("a proxy error envelope keeps its code, reason and message", () => {
  const f = normalizeError({
    error: { code: -32602, reason: "self_tip", message: "no" },
  });
  assert.ok(f instanceof RpcFailure);
  assert.deepEqual([f.code, f.reason, f.message], [-32602, "self_tip", "no"]);
});

test("a JSON-RPC error with data.reason is read too", () => {
  const f = normalizeError({
    error: { code: -32005, message: "m", data: { reason: "hub_unavailable" } },
  });
  assert.equal(f.reason, "hub_unavailable");
});

test("Discourse ajax rejections are read from jqXHR", () => {
  const withBody = normalizeError({
    jqXHR: {
      status: 404,
      responseJSON: { error: { code: -32000, reason: "plugin_disabled" } },
    },
    textStatus: "error",
  });
  assert.equal(withBody.reason, "plugin_disabled");
  assert.equal(
    normalizeError({ jqXHR: { status: 0 }, textStatus: "error" }).reason,
    "network_error"
  );
  assert.equal(
    normalizeError({
      jqXHR: {
        status: 429,
        responseJSON: { error_type: "rate_limit", errors: ["slow down"] },
      },
    }).reason,
    "rate_limited"
  );
  assert.equal(
    normalizeError({
      jqXHR: {
        status: 403,
        responseJSON: { error_type: "not_logged_in", errors: ["x"] },
      },
    }).reason,
    "not_logged_in"
  );
  assert.equal(
    normalizeError({ jqXHR: { status: 404, responseJSON: { errors: ["x"] } } })
      .reason,
    "plugin_disabled"
  );
  assert.equal(
    normalizeError({ jqXHR: { status: 502 } }).reason,
    "service_unavailable"
  );
});

test("other throwables become network or unknown failures", () => {
  assert.equal(
    normalizeError(new TypeError("fetch failed")).reason,
    "network_error"
  );
  assert.equal(normalizeError(new Error("boom")).reason, "unknown");
  assert.equal(normalizeError("weird").reason, "unknown");
  const f = new RpcFailure({ reason: "self_tip" });
  assert.equal(normalizeError(f), f);
});

test("every documented reason maps to its own message key", () => {
  for (const reason of KNOWN_REASONS) {
    assert.equal(
      errorMessageKey({ reason }),
      `fiber_link.errors.${reason}`,
      reason
    );
  }
  assert.ok(KNOWN_REASONS.includes("replayed_nonce"));
  assert.ok(KNOWN_REASONS.includes("insufficient_balance"));
  assert.equal(
    new Set(KNOWN_REASONS).size,
    KNOWN_REASONS.length,
    "no duplicates"
  );
});

test("an unknown reason falls back on its code, then on a generic sentence", () => {
  assert.equal(
    errorMessageKey({ code: -32010, reason: "something_new" }),
    "fiber_link.errors.withdrawal_refused"
  );
  assert.equal(
    errorMessageKey({ code: -32002, reason: "gizmo_not_found" }),
    "fiber_link.errors.not_found"
  );
  assert.equal(
    errorMessageKey({ code: 1, reason: "?" }),
    "fiber_link.errors.unknown"
  );
  assert.equal(errorMessageKey(undefined), "fiber_link.errors.unknown");
});

test("only retryable failures are transient", () => {
  assert.equal(isTransient({ reason: "service_unavailable" }), true);
  assert.equal(isTransient({ reason: "rate_limited_user" }), true);
  assert.equal(isTransient({ reason: "self_tip" }), false);
  assert.equal(isTransient({ reason: "tip_not_found" }), false);
});
