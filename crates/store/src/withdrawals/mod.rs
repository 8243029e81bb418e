//! Withdrawals: the request (policy checked and funds reserved in one transaction), the worker's
//! two-phase execution records, completion and release, and the operator's actions.

mod lifecycle;
mod payout;
mod policy;
pub(crate) mod read;
mod request;

pub use policy::PolicyOverride;

use self::read::{from_row, COLUMNS, FROM};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use fiber_link_core::withdrawal::Refusal;
use fiber_link_core::{Amount, FeeMode, Rail, WithdrawalState};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

/// A validated withdrawal request with its figures computed.
#[derive(Clone, Debug)]
pub struct NewWithdrawal {
    pub id: Uuid,
    pub app_id: String,
    pub user: String,
    pub asset: String,
    pub amount: Amount,
    pub fee: Amount,
    pub receive: Amount,
    pub fee_mode: FeeMode,
    pub rail: Rail,
    pub destination: serde_json::Value,
    pub payment_hash: Option<String>,
    pub idempotency_key: String,
    pub fingerprint: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct WithdrawalRow {
    pub id: Uuid,
    pub app_id: String,
    pub user: String,
    pub asset: String,
    pub amount: Amount,
    pub fee: Amount,
    pub receive: Amount,
    pub fee_mode: FeeMode,
    #[serde(skip)]
    pub rail: Rail,
    pub destination: serde_json::Value,
    pub request_fingerprint: String,
    pub state: WithdrawalState,
    pub payment_hash: Option<String>,
    pub signed_tx: Option<serde_json::Value>,
    pub tx_hash: Option<String>,
    pub tx_builds: i32,
    pub actual_fee: Option<Amount>,
    pub confirmations: Option<i64>,
    pub block_number: Option<i64>,
    pub failure_reason: Option<String>,
    pub failure_message: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub progressed_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct WithdrawalEvent {
    pub at: DateTime<Utc>,
    pub from_state: Option<String>,
    pub to_state: String,
    pub source: String,
    pub detail: Option<String>,
}

#[derive(Debug)]
pub enum RequestOutcome {
    Created(WithdrawalRow),
    /// This idempotency key was used before (the caller compares fingerprints).
    Existing(WithdrawalRow),
    Refused(Refusal),
    /// Another live withdrawal pays the same invoice.
    InvoiceInUse,
}

/// A withdrawal the executor claimed.
pub type DueWithdrawal = WithdrawalRow;

/// What ends a withdrawal's execution successfully.
#[derive(Clone, Debug)]
pub struct Completion {
    pub actual_fee: Amount,
    pub confirmations: Option<i64>,
    pub block_number: Option<i64>,
    pub source: String,
    pub detail: Option<String>,
}

async fn insert_event(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    app_id: &str,
    from: Option<WithdrawalState>,
    to: WithdrawalState,
    source: &str,
    detail: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO withdrawal_events (withdrawal_id, app_id, from_state, to_state, source, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(app_id)
    .bind(from.map(|s| s.as_str()))
    .bind(to.as_str())
    .bind(source)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Locks a withdrawal for a state change; `app_id` scopes an API caller.
    async fn lock(
        tx: &mut Transaction<'_, Postgres>,
        app_id: Option<&str>,
        id: Uuid,
    ) -> Result<(WithdrawalRow, i64)> {
        sqlx::query("SELECT 1 FROM withdrawals WHERE id = $1 FOR UPDATE")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        let sql = format!(
            "SELECT {COLUMNS}, w.user_id AS uid {FROM}
              WHERE w.id = $1 AND ($2::text IS NULL OR w.app_id = $2)"
        );
        let r = sqlx::query(&sql)
            .bind(id)
            .bind(app_id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((from_row(&r)?, r.try_get("uid")?))
    }
}
