// One place that turns anything a call can fail with into { code, reason, message }, and a
// reason into the i18n key of a plain sentence. Pure module, tested with `node --test`.
//
// A call fails in one of three shapes:
//  * the proxy answered 200 with { error: { code, reason, message } } (service and policy errors);
//  * Discourse's ajax() rejected with { jqXHR, textStatus, errorThrown } for a non-2xx answer
//    (not logged in, CSRF, rate limit, plugin disabled) or no answer at all;
//  * anything else thrown (a bug, a network error in fetch).

// Every reason the service documents (docs/api.md) plus the proxy's own, each with a sentence
// under fiber_link.errors in config/locales/client.en.yml.
export const KNOWN_REASONS = [
  // amounts and tips
  "amount_empty",
  "amount_malformed",
  "amount_invalid",
  "amount_not_string",
  "amount_not_positive",
  "amount_too_many_decimals",
  "amount_too_large",
  "unknown_asset",
  "message_too_long",
  "message_malformed",
  "self_tip",
  "tipping_not_allowed",
  "category_not_allowed",
  "author_not_tippable",
  "tip_below_minimum",
  "tip_above_maximum",
  "empty_id",
  "id_too_long",
  "id_malformed",
  "tip_id_malformed",
  "invalid_params",
  "params_not_object",
  "parse_error",
  "invalid_request",
  "method_not_found",
  "method_not_allowed",
  "cursor_malformed",
  // authentication of the forum to the service
  "missing_header",
  "malformed_header",
  "stale_timestamp",
  "future_timestamp",
  "unknown_app",
  "bad_signature",
  "replayed_nonce",
  // objects
  "tip_not_found",
  "post_not_found",
  "post_author_missing",
  "withdrawal_not_found",
  "idempotency_key_reused",
  "idempotency_key_missing",
  "body_too_large",
  "hub_unavailable",
  "invoice_unavailable",
  "internal",
  "rate_limited",
  "rate_limited_user",
  "tips_paused",
  // withdrawals
  "destination_empty",
  "destination_malformed",
  "address_malformed",
  "address_wrong_network",
  "invoice_malformed",
  "invoice_wrong_network",
  "invoice_wrong_asset",
  "invoice_amount_mismatch",
  "invoice_expired",
  "invoice_own",
  "rail_unsupported",
  "asset_not_allowed",
  "amount_below_minimum",
  "amount_above_maximum",
  "insufficient_balance",
  "author_daily_cap",
  "app_daily_cap",
  "cooldown",
  "withdrawals_paused",
  "withdrawal_not_cancellable",
  "confirm_session_required",
  "second_factor_required",
  "withdrawals_unavailable",
  // the forum and the connection
  "plugin_disabled",
  "not_logged_in",
  "service_unavailable",
  "service_timeout",
  "network_error",
];

const REASONS = new Set(KNOWN_REASONS);

// When a reason is new to this plugin, the code still says what kind of failure it was.
const CODE_FALLBACK = {
  "-32001": "bad_signature",
  "-32002": "not_found",
  "-32003": "idempotency_key_reused",
  "-32004": "body_too_large",
  "-32005": "hub_unavailable",
  "-32009": "not_allowed_now",
  "-32010": "withdrawal_refused",
  "-32011": "service_paused",
  "-32029": "rate_limited",
  "-32602": "invalid_params",
  "-32603": "internal",
};

export const FALLBACK_REASONS = [
  "not_found",
  "not_allowed_now",
  "withdrawal_refused",
  "service_paused",
  "unknown",
];

const HTTP_REASON = {
  403: "not_logged_in",
  404: "plugin_disabled",
  429: "rate_limited",
};

export class RpcFailure extends Error {
  constructor({
    code = null,
    reason = "unknown",
    message = "",
    data = {},
  } = {}) {
    super(message || reason);
    this.name = "RpcFailure";
    this.code = code;
    this.reason = reason;
    // what else the error said (e.g. second_factor_challenge_nonce)
    this.data = data;
  }
}

function fromEnvelope(error) {
  const { code, reason, message, ...rest } = error;
  return new RpcFailure({
    code: code ?? null,
    reason: reason ?? error.data?.reason ?? "unknown",
    message: message ?? "",
    data: rest,
  });
}

export function normalizeError(e) {
  if (e instanceof RpcFailure) {
    return e;
  }
  if (e?.error && typeof e.error === "object") {
    return fromEnvelope(e.error);
  }
  const jqXHR = e?.jqXHR;
  if (jqXHR) {
    const json = jqXHR.responseJSON;
    if (json?.error && typeof json.error === "object") {
      return fromEnvelope(json.error);
    }
    const status = jqXHR.status ?? 0;
    if (status === 0) {
      return new RpcFailure({ reason: "network_error" });
    }
    if (status === 429 || json?.error_type === "rate_limit") {
      return new RpcFailure({ code: -32029, reason: "rate_limited" });
    }
    if (status === 403 && json?.error_type === "not_logged_in") {
      return new RpcFailure({ reason: "not_logged_in" });
    }
    return new RpcFailure({
      reason:
        HTTP_REASON[status] ??
        (status >= 500 ? "service_unavailable" : "unknown"),
      message: (json?.errors ?? []).join(" "),
    });
  }
  if (e instanceof TypeError) {
    return new RpcFailure({ reason: "network_error", message: e.message });
  }
  return new RpcFailure({
    reason: "unknown",
    message: e?.message ?? String(e),
  });
}

// The i18n key of the sentence to show for a failure (or for a local validation result with a
// reason, such as parseAmount's).
export function errorMessageKey(failure) {
  const reason = failure?.reason;
  if (REASONS.has(reason)) {
    return `fiber_link.errors.${reason}`;
  }
  const fallback = CODE_FALLBACK[String(failure?.code)];
  return `fiber_link.errors.${fallback ?? "unknown"}`;
}

// Failures worth retrying by themselves (polling keeps going through these).
export function isTransient(failure) {
  return [
    "service_unavailable",
    "service_timeout",
    "network_error",
    "rate_limited",
    "rate_limited_user",
    "internal",
    "hub_unavailable",
  ].includes(failure?.reason);
}
