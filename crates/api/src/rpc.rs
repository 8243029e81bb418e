//! The JSON-RPC 2.0 envelope: body limit, authentication, request shape, dispatch, error form.

use crate::auth::{authenticate, record_nonce, Caller, NonceUse};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fiber_link_core::{ApiError, ErrorCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

fn error_object(e: &ApiError) -> Value {
    json!({"code": e.code.code(), "message": e.message, "data": {"reason": e.reason}})
}

fn rpc_error(id: Value, e: &ApiError) -> Response {
    // JSON-RPC errors travel with HTTP 200, except when the request could not be read or
    // authenticated at all: then the HTTP status says so too.
    let status = match e.code {
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::OK,
    };
    (
        status,
        Json(json!({"jsonrpc": "2.0", "id": id, "error": error_object(e)})),
    )
        .into_response()
}

/// Reads the body up to the configured limit.
async fn read_body(state: &AppState, body: Body) -> Result<Bytes, ApiError> {
    let limit = state.settings.max_body_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    })
}

/// Parses a method's params: a JSON object with exactly the documented fields.
pub(crate) fn params<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    let v = match v {
        Value::Null => json!({}),
        Value::Object(_) => v,
        _ => {
            return Err(ApiError::invalid(
                "params_not_object",
                "params must be a JSON object of named parameters",
            ))
        }
    };
    serde_json::from_value(v)
        .map_err(|e| ApiError::invalid("invalid_params", format!("invalid params: {e}")))
}

/// How each method's nonce is recorded: methods that only read do not wait for the disk;
/// `tip.create` records it with its tip; everything else (unknown methods too) durably.
fn nonce_use(method: &str) -> NonceUse {
    match method {
        "tip.create" => NonceUse::WithTip,
        "tip.get" | "balance.get" | "tip.list" | "tip.settled_feed" | "dashboard.summary"
        | "post.totals" | "withdrawal.quote" | "withdrawal.get" | "withdrawal.list"
        | "health.ping" => NonceUse::Lazy,
        _ => NonceUse::Durable,
    }
}

async fn dispatch(
    state: &AppState,
    caller: &mut Caller,
    method: &str,
    p: Value,
) -> Result<Value, ApiError> {
    match method {
        "tip.create" => crate::tips::create_signed(state, caller, p).await,
        "tip.get" => crate::tips::get(state, caller, params(p)?).await,
        "balance.get" => crate::tips::balance(state, caller, params(p)?).await,
        "tip.list" => crate::tips::list(state, caller, params(p)?).await,
        "tip.settled_feed" => crate::tips::settled_feed(state, caller, params(p)?).await,
        "dashboard.summary" => crate::tips::dashboard(state, caller, params(p)?).await,
        "post.totals" => crate::posts::totals(state, caller, params(p)?).await,
        "withdrawal.quote" => crate::withdrawals::quote(state, caller, params(p)?).await,
        "withdrawal.request" => crate::withdrawals::request(state, caller, params(p)?).await,
        "withdrawal.get" => crate::withdrawals::get(state, caller, params(p)?).await,
        "withdrawal.list" => crate::withdrawals::list(state, caller, params(p)?).await,
        "withdrawal.cancel" => crate::withdrawals::cancel(state, caller, params(p)?).await,
        "health.ping" => {
            state.check_rate(&caller.app_id, "health.ping", None)?;
            Ok(
                json!({"ok": true, "app_id": caller.app_id, "time": chrono::Utc::now().to_rfc3339()}),
            )
        }
        _ => Err(ApiError::new(
            ErrorCode::MethodNotFound,
            "method_not_found",
            format!("no method {method:?}; see docs/api.md for the list"),
        )),
    }
}

/// A request's envelope: its id, method and params, or why it is not a JSON-RPC 2.0 request
/// (with the id to answer it under).
fn envelope(body: &[u8]) -> Result<(Value, String, Value), (Value, ApiError)> {
    let req: Value = serde_json::from_slice(body).map_err(|_| {
        let e = ApiError::new(
            ErrorCode::ParseError,
            "parse_error",
            "the body is not valid JSON",
        );
        (Value::Null, e)
    })?;
    let Value::Object(mut req) = req else {
        let e = ApiError::new(
            ErrorCode::InvalidRequest,
            "invalid_request",
            "the body must be one JSON-RPC 2.0 request object (batches are not supported)",
        );
        return Err((Value::Null, e));
    };
    let id = req.remove("id").unwrap_or(Value::Null);
    let invalid = |msg: &str| ApiError::new(ErrorCode::InvalidRequest, "invalid_request", msg);
    if req.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err((id, invalid("\"jsonrpc\" must be \"2.0\"")));
    }
    if !(id.is_string() || id.is_number()) {
        return Err((id, invalid("\"id\" must be a string or a number")));
    }
    let Some(method) = req
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Err((id, invalid("\"method\" must be a string")));
    };
    if let Some(k) = req
        .keys()
        .find(|k| !matches!(k.as_str(), "jsonrpc" | "method" | "params"))
    {
        let e = invalid(&format!("unknown member {k:?} in the request"));
        return Err((id, e));
    }
    let p = req.remove("params").unwrap_or(Value::Null);
    Ok((id, method, p))
}

pub(crate) async fn rpc_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(&state, body).await {
        Ok(b) => b,
        Err(e) => return rpc_error(Value::Null, &e),
    };
    let mut caller = match authenticate(&state, &headers, &body).await {
        Ok(c) => c,
        Err(e) => return rpc_error(Value::Null, &e),
    };
    let req = envelope(&body);
    // the nonce is recorded before anything else is answered: a replay is refused as one
    let how = match &req {
        Ok((_, method, _)) => nonce_use(method),
        Err(_) => NonceUse::Durable,
    };
    if how != NonceUse::WithTip {
        if let Err(e) = record_nonce(&state, &mut caller, how == NonceUse::Lazy).await {
            return rpc_error(Value::Null, &e);
        }
    }
    let (id, method, p) = match req {
        Ok(r) => r,
        Err((id, e)) => return rpc_error(id, &e),
    };
    match dispatch(&state, &mut caller, &method, p).await {
        Ok(result) => Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response(),
        Err(e) => rpc_error(id, &e),
    }
}

/// `POST /tips`: the same signed body as `tip.create`'s params, answered as REST.
pub(crate) async fn rest_create_tip(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rest_error = |e: &ApiError| {
        let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(json!({"error": error_object(e)}))).into_response()
    };
    let body = match read_body(&state, body).await {
        Ok(b) => b,
        Err(e) => return rest_error(&e),
    };
    let mut caller = match authenticate(&state, &headers, &body).await {
        Ok(c) => c,
        Err(e) => return rest_error(&e),
    };
    let p: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            let e = match record_nonce(&state, &mut caller, false).await {
                Ok(()) => ApiError::new(
                    ErrorCode::ParseError,
                    "parse_error",
                    "the body is not valid JSON",
                ),
                Err(e) => e,
            };
            return rest_error(&e);
        }
    };
    match crate::tips::create_signed(&state, &mut caller, p).await {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => rest_error(&e),
    }
}
