//! Reading withdrawals: the row mapping, single rows, lists, events and ledger transactions.

use super::{WithdrawalEvent, WithdrawalRow};
use crate::tips::parse_amount;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use fiber_link_core::{Amount, FeeMode, Rail, WithdrawalState};
use sqlx::postgres::PgRow;
use sqlx::Row;
use std::time::Duration;
use uuid::Uuid;

pub(crate) const COLUMNS: &str =
    "w.id, w.app_id, u.external_id AS user_ext, w.asset, w.amount::text AS amount,
    w.fee::text AS fee, w.receive_amount::text AS receive_amount, w.fee_mode, w.rail,
    w.destination, w.request_fingerprint, w.state, w.payment_hash, w.signed_tx, w.tx_hash,
    w.tx_builds, w.actual_fee::text AS actual_fee, w.confirmations, w.block_number,
    w.failure_reason, w.failure_message, w.next_attempt_at, w.attempts, w.last_error,
    w.created_at, w.updated_at, w.progressed_at, w.approved_at, w.approved_by, w.submitted_at,
    w.completed_at";

pub(crate) const FROM: &str = "FROM withdrawals w JOIN users u ON u.id = w.user_id";

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {v:?}"))
}

pub(crate) fn from_row(r: &PgRow) -> Result<WithdrawalRow> {
    let opt_amount = |c: &str| -> Result<Option<Amount>> {
        r.try_get::<Option<String>, _>(c)?
            .as_deref()
            .map(parse_amount)
            .transpose()
    };
    let fee_mode: String = r.try_get("fee_mode")?;
    let rail: String = r.try_get("rail")?;
    let state: String = r.try_get("state")?;
    Ok(WithdrawalRow {
        id: r.try_get("id")?,
        app_id: r.try_get("app_id")?,
        user: r.try_get("user_ext")?,
        asset: r.try_get("asset")?,
        amount: parse_amount(r.try_get("amount")?)?,
        fee: parse_amount(r.try_get("fee")?)?,
        receive: parse_amount(r.try_get("receive_amount")?)?,
        fee_mode: FeeMode::parse(&fee_mode).ok_or_else(|| corrupt("fee mode", &fee_mode))?,
        rail: Rail::parse(&rail).ok_or_else(|| corrupt("rail", &rail))?,
        destination: r.try_get("destination")?,
        request_fingerprint: r.try_get("request_fingerprint")?,
        state: state.parse().map_err(StoreError::Corrupt)?,
        payment_hash: r.try_get("payment_hash")?,
        signed_tx: r.try_get("signed_tx")?,
        tx_hash: r.try_get("tx_hash")?,
        tx_builds: r.try_get("tx_builds")?,
        actual_fee: opt_amount("actual_fee")?,
        confirmations: r.try_get("confirmations")?,
        block_number: r.try_get("block_number")?,
        failure_reason: r.try_get("failure_reason")?,
        failure_message: r.try_get("failure_message")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        progressed_at: r.try_get("progressed_at")?,
        approved_at: r.try_get("approved_at")?,
        approved_by: r.try_get("approved_by")?,
        submitted_at: r.try_get("submitted_at")?,
        completed_at: r.try_get("completed_at")?,
    })
}

impl Store {
    pub async fn withdrawal_by_key(
        &self,
        app_id: &str,
        key: &str,
    ) -> Result<Option<WithdrawalRow>> {
        let sql = format!("SELECT {COLUMNS} {FROM} WHERE w.app_id = $1 AND w.idempotency_key = $2");
        let row = sqlx::query(&sql)
            .bind(app_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// A withdrawal of this app; `None` for an unknown id or another app's withdrawal.
    pub async fn withdrawal(&self, app_id: &str, id: Uuid) -> Result<Option<WithdrawalRow>> {
        let sql = format!("SELECT {COLUMNS} {FROM} WHERE w.id = $1 AND w.app_id = $2");
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// A withdrawal by id alone, for the operator's tools and the worker.
    pub async fn withdrawal_any_app(&self, id: Uuid) -> Result<Option<WithdrawalRow>> {
        let sql = format!("SELECT {COLUMNS} {FROM} WHERE w.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// An author's withdrawals, newest first, after the keyset `cursor` (created_at, id).
    pub async fn list_withdrawals(
        &self,
        app_id: &str,
        user: &str,
        cursor: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<WithdrawalRow>> {
        let cursor_cond = if cursor.is_some() {
            "AND (w.created_at, w.id) < ($3, $4)"
        } else {
            "AND $3::timestamptz IS NULL AND $4::uuid IS NULL"
        };
        let sql = format!(
            "SELECT {COLUMNS} {FROM}
              WHERE w.app_id = $1
                AND w.user_id = (SELECT id FROM users WHERE app_id = $1 AND external_id = $2)
                {cursor_cond}
              ORDER BY w.created_at DESC, w.id DESC LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(app_id)
            .bind(user)
            .bind(cursor.map(|c| c.0))
            .bind(cursor.map(|c| c.1))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Withdrawals for the operator, optionally only in some states, oldest first.
    pub async fn operator_withdrawals(
        &self,
        states: &[WithdrawalState],
        limit: i64,
    ) -> Result<Vec<WithdrawalRow>> {
        let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
        let sql = format!(
            "SELECT {COLUMNS} {FROM}
              WHERE (cardinality($1::text[]) = 0 OR w.state = ANY($1))
              ORDER BY w.created_at LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(&states)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Unfinished withdrawals that have not moved forward for `older_than`.
    pub async fn stuck_withdrawals(&self, older_than: Duration) -> Result<Vec<WithdrawalRow>> {
        let sql = format!(
            "SELECT {COLUMNS} {FROM}
              WHERE w.state NOT IN ('COMPLETED','FAILED','CANCELLED')
                AND w.progressed_at < now() - make_interval(secs => $1)
              ORDER BY w.progressed_at"
        );
        let rows = sqlx::query(&sql)
            .bind(older_than.as_secs_f64())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn withdrawal_events(&self, id: Uuid) -> Result<Vec<WithdrawalEvent>> {
        let rows = sqlx::query(
            "SELECT at, from_state, to_state, source, detail FROM withdrawal_events
              WHERE withdrawal_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WithdrawalEvent {
                    at: r.try_get("at")?,
                    from_state: r.try_get("from_state")?,
                    to_state: r.try_get("to_state")?,
                    source: r.try_get("source")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// The ledger transactions of a withdrawal, by kind (for tests and reconcile).
    pub async fn withdrawal_ledger(&self, id: Uuid) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT t.kind, t.idempotency_key FROM ledger_transactions t
              WHERE t.withdrawal_id = $1 ORDER BY t.id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get("idempotency_key")?)))
            .collect()
    }

    pub async fn count_withdrawals(&self, app_id: &str, user: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM withdrawals w JOIN users u ON u.id = w.user_id
              WHERE w.app_id = $1 AND u.app_id = $1 AND u.external_id = $2",
        )
        .bind(app_id)
        .bind(user)
        .fetch_one(&self.pool)
        .await?)
    }
}
