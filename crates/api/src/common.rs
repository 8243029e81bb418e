//! What the RPC handlers share: external ids in params, the internal-error mapping, timestamps
//! and withdrawals as JSON, and keyset paging (cursor and limit params, pages).

use crate::AppState;
use chrono::{DateTime, Utc};
use fiber_link_core::{input, Amount, ApiError};
use fiber_link_store::withdrawals::WithdrawalRow;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// A community's id for a post or user: a string, or a non-negative integer (Discourse's ids).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum ExternalId {
    Text(String),
    Number(u64),
}

impl ExternalId {
    pub(crate) fn validated(&self, field: &'static str) -> Result<String, ApiError> {
        match self {
            ExternalId::Text(s) => input::external_id(field, s),
            ExternalId::Number(n) => Ok(n.to_string()),
        }
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "request failed");
    ApiError::internal()
}

pub(crate) fn ts(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

pub(crate) fn withdrawal_json(state: &AppState, w: &WithdrawalRow) -> Value {
    let fmt = |x: Amount| state.format_amount(&w.asset, x);
    let failure = w
        .failure_reason
        .as_ref()
        .map(|r| json!({"reason": r, "message": w.failure_message}));
    json!({
        "withdrawal_id": w.id.to_string(),
        "user_id": w.user,
        "asset": w.asset,
        "amount": fmt(w.amount),
        "fee": fmt(w.fee),
        "actual_fee": w.actual_fee.map(fmt),
        "receive_amount": fmt(w.receive),
        "fee_mode": w.fee_mode.as_str(),
        "rail": w.rail.as_str(),
        "destination": w.destination,
        "state": w.state.as_str(),
        "tx_hash": w.tx_hash,
        "payment_hash": w.payment_hash,
        "confirmations": w.confirmations,
        "failure": failure,
        "created_at": ts(Some(w.created_at)),
        "updated_at": ts(Some(w.updated_at)),
        "completed_at": ts(w.completed_at),
    })
}

/// A keyset cursor: `<created_at in µs>_<id>`.
pub(crate) fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{}", at.timestamp_micros(), id)
}

/// One page of `rows` (fetched with `limit + 1`) and the cursor of the next page, if any.
pub(crate) fn keyset_page<T>(
    rows: &[T],
    limit: i64,
    key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
) -> (&[T], Option<String>) {
    let page = &rows[..rows.len().min(limit as usize)];
    let next = (rows.len() as i64 > limit)
        .then(|| {
            page.last().map(|r| {
                let (at, id) = key(r);
                encode_cursor(at, id)
            })
        })
        .flatten();
    (page, next)
}

pub(crate) fn cursor_param(s: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || {
        ApiError::invalid(
            "cursor_malformed",
            "cursor must be a next_cursor returned by the service",
        )
    };
    let (micros, id) = s.split_once('_').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok((at, Uuid::try_parse(id).map_err(|_| bad())?))
}

pub(crate) fn limit_param(v: Option<&Value>, default: i64, max: i64) -> Result<i64, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_i64().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
            ApiError::invalid(
                "limit_out_of_range",
                format!("limit must be an integer from 1 to {max}"),
            )
        }),
    }
}
