//! The worker's two-phase execution records: claim, `SUBMITTING` before the send, `SUBMITTED`
//! after it, a Fiber resend, and rescheduling.

use super::read::{from_row, COLUMNS, FROM};
use super::{insert_event, DueWithdrawal};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use fiber_link_core::{Rail, WithdrawalState};
use std::time::Duration;
use uuid::Uuid;

impl Store {
    /// Claims due withdrawals for execution (`FOR UPDATE SKIP LOCKED`; the claim is a lease:
    /// `next_attempt_at` moves `lease` ahead, so a crashed worker's claim comes back).
    pub async fn claim_due_withdrawals(
        &self,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<DueWithdrawal>> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "WITH due AS (SELECT id FROM withdrawals
                           WHERE next_attempt_at <= now()
                           ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
             UPDATE withdrawals w SET next_attempt_at = now() + make_interval(secs => $2)
               FROM due WHERE w.id = due.id RETURNING w.id",
        )
        .bind(limit)
        .bind(lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        let sql = format!("SELECT {COLUMNS} {FROM} WHERE w.id = ANY($1) ORDER BY w.created_at");
        let rows = sqlx::query(&sql).bind(&ids).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// Phase one of a Fiber payout: `QUEUED → SUBMITTING` is persisted before `send_payment`.
    /// `Ok(false)` if the withdrawal was no longer queued (cancelled meanwhile).
    pub async fn begin_fiber_payout(&self, id: Uuid) -> Result<bool> {
        self.to_submitting(id, None).await
    }

    /// Phase one of an on-chain payout: the signed transaction and its hash are persisted (state
    /// `SUBMITTING`) before the transaction is sent. Replaces an earlier transaction only when
    /// the caller proved it can never commit. `Ok(false)` if the state did not allow it.
    ///
    /// Compare-and-swap: `replaces` is the transaction hash the caller saw (`None` for the first
    /// build). If another worker stored a transaction meanwhile, nothing is written and the
    /// caller must not send what it built.
    pub async fn begin_onchain_payout(
        &self,
        id: Uuid,
        replaces: Option<&str>,
        signed_tx: &serde_json::Value,
        tx_hash: &str,
        inputs: &[String],
    ) -> Result<bool> {
        self.to_submitting(id, Some((signed_tx, tx_hash, inputs, replaces)))
            .await
    }

    /// The hot wallet's cells that payouts in flight spend (not to be used by another payout).
    pub async fn reserved_inputs(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT h.out_point FROM hot_wallet_inputs h JOIN withdrawals w ON w.id = h.withdrawal_id
              WHERE w.state IN ('SUBMITTING','SUBMITTED')",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn to_submitting(
        &self,
        id: Uuid,
        onchain: Option<(&serde_json::Value, &str, &[String], Option<&str>)>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let (w, _) = Self::lock(&mut tx, None, id).await?;
        if !matches!(
            w.state,
            WithdrawalState::Queued | WithdrawalState::Submitting | WithdrawalState::Submitted
        ) {
            return Ok(false);
        }
        if w.state != WithdrawalState::Queued && onchain.is_none() {
            return Ok(false);
        }
        if let Some((_, _, _, replaces)) = onchain {
            if w.tx_hash.as_deref() != replaces
                || (replaces.is_none() && w.state != WithdrawalState::Queued)
            {
                return Ok(false);
            }
        }
        if let Some((_, _, inputs, _)) = onchain {
            // A new transaction replaces the old one only after the caller proved the old one can
            // never commit; its cells go back to the wallet.
            sqlx::query("DELETE FROM hot_wallet_inputs WHERE withdrawal_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO hot_wallet_inputs (out_point, withdrawal_id)
                 SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING",
            )
            .bind(inputs)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted != inputs.len() as u64 {
                return Err(StoreError::Conflict(
                    "a cell of this transaction is spent by another payout".into(),
                ));
            }
        }
        sqlx::query(
            "UPDATE withdrawals SET state = 'SUBMITTING', signed_tx = COALESCE($2, signed_tx),
                    tx_hash = COALESCE($3, tx_hash),
                    tx_builds = tx_builds + CASE WHEN $2::jsonb IS NULL THEN 0 ELSE 1 END,
                    updated_at = now(), progressed_at = now()
              WHERE id = $1",
        )
        .bind(id)
        .bind(onchain.map(|o| o.0))
        .bind(onchain.map(|o| o.1))
        .execute(&mut *tx)
        .await?;
        let detail = onchain.map(|o| format!("transaction {} built and signed", o.1));
        insert_event(
            &mut tx,
            id,
            &w.app_id,
            Some(w.state),
            WithdrawalState::Submitting,
            "worker",
            detail.as_deref().or(Some("payment about to be sent")),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Whether the withdrawal is still `SUBMITTING`, read just before a send: a worker holding an
    /// old copy (its claim ran out, an operator acted) must not send.
    pub async fn still_submitting(&self, id: Uuid) -> Result<bool> {
        let st: Option<String> = sqlx::query_scalar("SELECT state FROM withdrawals WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(st.as_deref() == Some("SUBMITTING"))
    }

    /// Phase two: the payout was sent (or found sent): `SUBMITTING → SUBMITTED`.
    pub async fn mark_submitted(&self, id: Uuid, detail: &str, next: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let (w, _) = Self::lock(&mut tx, None, id).await?;
        if w.state != WithdrawalState::Submitting {
            return Ok(());
        }
        sqlx::query(
            "UPDATE withdrawals SET state = 'SUBMITTED', submitted_at = now(), updated_at = now(),
                    progressed_at = now(), next_attempt_at = $2, last_error = NULL
              WHERE id = $1",
        )
        .bind(id)
        .bind(next)
        .execute(&mut *tx)
        .await?;
        insert_event(
            &mut tx,
            id,
            &w.app_id,
            Some(w.state),
            WithdrawalState::Submitted,
            "worker",
            Some(detail),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A Fiber payment the hub reports `Failed` while its invoice can still be paid is sent
    /// again (FNN accepts a new `send_payment` for the same hash): `SUBMITTED → SUBMITTING`, one
    /// more attempt, looked at again at `next`. `Ok(false)` if it was not `SUBMITTED` on the
    /// Fiber rail any more.
    pub async fn resend_fiber_payout(
        &self,
        id: Uuid,
        failed_error: &str,
        next: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let (w, _) = Self::lock(&mut tx, None, id).await?;
        if w.state != WithdrawalState::Submitted || w.rail != Rail::Fiber {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE withdrawals SET state = 'SUBMITTING', updated_at = now(), progressed_at = now(),
                    attempts = attempts + 1, last_error = $2, next_attempt_at = $3
              WHERE id = $1",
        )
        .bind(id)
        .bind(failed_error)
        .bind(next)
        .execute(&mut *tx)
        .await?;
        insert_event(
            &mut tx,
            id,
            &w.app_id,
            Some(w.state),
            WithdrawalState::Submitting,
            "worker",
            Some(&format!(
                "the hub reports the payment Failed ({failed_error}); the invoice can still be paid, so it is sent again"
            )),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a check that changed nothing (or a transient error) and when to look again.
    pub async fn reschedule_withdrawal(
        &self,
        id: Uuid,
        next: DateTime<Utc>,
        error: Option<&str>,
        confirmations: Option<(i64, i64)>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE withdrawals SET next_attempt_at = $2, updated_at = now(),
                    attempts = attempts + CASE WHEN $3::text IS NULL THEN 0 ELSE 1 END,
                    last_error = $3,
                    confirmations = COALESCE($4, confirmations),
                    block_number = COALESCE($5, block_number)
              WHERE id = $1 AND state NOT IN ('COMPLETED','FAILED','CANCELLED')",
        )
        .bind(id)
        .bind(next)
        .bind(error)
        .bind(confirmations.map(|c| c.0))
        .bind(confirmations.map(|c| c.1))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
