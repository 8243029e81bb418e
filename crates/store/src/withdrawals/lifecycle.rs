//! The operator's and the worker's state changes: approve, retry, cancel, fail (funds released),
//! complete (the payout's ledger movement).

use super::{insert_event, Completion, WithdrawalRow};
use crate::ledger::{self, Account, Cause, Entry};
use crate::{Result, Store, StoreError};
use fiber_link_core::{Amount, FeeMode, Rail, WithdrawalState};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// The ledger movement that ends a payout, in the withdrawal's asset: the reservation leaves
/// `payouts_in_flight`; what went to the recipient and the network fee leave custody (the hub, or
/// the hot wallet); an operator-paid fee is the operator's; what a Fiber route did not use of a
/// deducted fee goes back to the author.
fn completion_entries(w: &WithdrawalRow, user_id: i64, actual_fee: Amount) -> Result<Vec<Entry>> {
    let custody = match w.rail {
        Rail::Fiber => Account::Hub,
        Rail::Onchain => Account::HotWallet,
    };
    let amount = w.amount.base_units();
    let receive = w.receive.base_units();
    let fee = actual_fee.base_units();
    let mut entries = vec![
        Entry::debit(Account::PayoutsInFlight, amount),
        Entry::credit(custody, receive),
        Entry::credit(Account::Fees, fee),
    ];
    match w.fee_mode {
        FeeMode::Operator => entries.push(Entry::debit(Account::Operator, fee)),
        FeeMode::Deduct => {
            let refund = amount
                .checked_sub(receive)
                .and_then(|r| r.checked_sub(fee))
                .ok_or_else(|| {
                    StoreError::Conflict(format!(
                        "withdrawal {}: the fee {fee} is more than was reserved for it",
                        w.id
                    ))
                })?;
            entries.push(Entry::credit(Account::Author(user_id), refund));
        }
    }
    Ok(entries)
}

impl Store {
    /// Cancels a withdrawal that has not started executing and releases its funds (one
    /// transaction). Cancelling a cancelled withdrawal returns it unchanged; any other state is
    /// a `Conflict`.
    pub async fn cancel_withdrawal(
        &self,
        app_id: Option<&str>,
        id: Uuid,
        source: &str,
        reason: &str,
        message: &str,
    ) -> Result<WithdrawalRow> {
        let mut tx = self.pool.begin().await?;
        let (w, uid) = Self::lock(&mut tx, app_id, id).await?;
        if w.state == WithdrawalState::Cancelled {
            return Ok(w);
        }
        if !w.state.is_cancellable() {
            return Err(StoreError::Conflict(format!(
                "the withdrawal is {}; only one awaiting approval or queued can be cancelled",
                w.state
            )));
        }
        Self::end_with_release(
            &mut tx,
            &w,
            uid,
            WithdrawalState::Cancelled,
            source,
            reason,
            message,
        )
        .await?;
        tx.commit().await?;
        self.withdrawal_any_app(id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn end_with_release(
        tx: &mut Transaction<'_, Postgres>,
        w: &WithdrawalRow,
        uid: i64,
        to: WithdrawalState,
        source: &str,
        reason: &str,
        message: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE withdrawals SET state = $2, failure_reason = $3, failure_message = $4,
                    next_attempt_at = NULL, updated_at = now(), progressed_at = now(),
                    ended_at = now()
              WHERE id = $1",
        )
        .bind(w.id)
        .bind(to.as_str())
        .bind(reason)
        .bind(message)
        .execute(&mut **tx)
        .await?;
        insert_event(
            tx,
            w.id,
            &w.app_id,
            Some(w.state),
            to,
            source,
            Some(message),
        )
        .await?;
        let amount = w.amount.base_units();
        ledger::post(
            tx,
            &w.app_id,
            &w.asset,
            "withdrawal_release",
            &format!("withdrawal:{}:release", w.id),
            Cause::Withdrawal(w.id),
            &[
                Entry::debit(Account::PayoutsInFlight, amount),
                Entry::credit(Account::Author(uid), amount),
            ],
        )
        .await?;
        Ok(())
    }

    /// Fails a withdrawal and releases its funds, if it is still in one of `from` (the caller
    /// has established that nothing was, or ever will be, paid out). `Ok(false)` if it was not.
    pub async fn fail_withdrawal(
        &self,
        id: Uuid,
        from: &[WithdrawalState],
        source: &str,
        reason: &str,
        message: &str,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let (w, uid) = Self::lock(&mut tx, None, id).await?;
        if !from.contains(&w.state) {
            return Ok(false);
        }
        Self::end_with_release(
            &mut tx,
            &w,
            uid,
            WithdrawalState::Failed,
            source,
            reason,
            message,
        )
        .await?;
        sqlx::query("DELETE FROM hot_wallet_inputs WHERE withdrawal_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Completes a withdrawal in `SUBMITTED` (or `SUBMITTING`: the evidence was found after a
    /// crash) with its ledger transaction. `Ok(false)` if it was in another state.
    pub async fn complete_withdrawal(&self, id: Uuid, c: &Completion) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let (w, uid) = Self::lock(&mut tx, None, id).await?;
        if !matches!(
            w.state,
            WithdrawalState::Submitted | WithdrawalState::Submitting
        ) {
            return Ok(false);
        }
        let entries = completion_entries(&w, uid, c.actual_fee)?;
        sqlx::query(
            "UPDATE withdrawals SET state = 'COMPLETED', actual_fee = $2::numeric,
                    confirmations = $3, block_number = $4, next_attempt_at = NULL,
                    completed_at = now(), ended_at = now(), updated_at = now(),
                    progressed_at = now(), last_error = NULL,
                    submitted_at = COALESCE(submitted_at, now())
              WHERE id = $1",
        )
        .bind(id)
        .bind(c.actual_fee.base_units().to_string())
        .bind(c.confirmations)
        .bind(c.block_number)
        .execute(&mut *tx)
        .await?;
        insert_event(
            &mut tx,
            id,
            &w.app_id,
            Some(w.state),
            WithdrawalState::Completed,
            &c.source,
            c.detail.as_deref(),
        )
        .await?;
        // its cells are spent now; the reservation rows are not needed any more
        sqlx::query("DELETE FROM hot_wallet_inputs WHERE withdrawal_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        ledger::post(
            &mut tx,
            &w.app_id,
            &w.asset,
            "withdrawal_complete",
            &format!("withdrawal:{id}:complete"),
            Cause::Withdrawal(id),
            &entries,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Approves a withdrawal awaiting approval: it is queued for the worker.
    pub async fn approve_withdrawal(&self, id: Uuid, by: &str) -> Result<WithdrawalRow> {
        let mut tx = self.pool.begin().await?;
        let (w, _) = Self::lock(&mut tx, None, id).await?;
        if w.state != WithdrawalState::AwaitingApproval {
            return Err(StoreError::Conflict(format!(
                "the withdrawal is {}, not awaiting approval",
                w.state
            )));
        }
        sqlx::query(
            "UPDATE withdrawals SET state = 'QUEUED', approved_at = now(), approved_by = $2,
                    next_attempt_at = now(), updated_at = now(), progressed_at = now()
              WHERE id = $1",
        )
        .bind(id)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        let detail = format!("approved by {by}");
        insert_event(
            &mut tx,
            id,
            &w.app_id,
            Some(w.state),
            WithdrawalState::Queued,
            &format!("operator:{by}"),
            Some(&detail),
        )
        .await?;
        tx.commit().await?;
        self.withdrawal_any_app(id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Makes an unfinished withdrawal due for the worker now (operator's retry).
    pub async fn retry_withdrawal(&self, id: Uuid, by: &str) -> Result<WithdrawalRow> {
        let mut tx = self.pool.begin().await?;
        let (w, _) = Self::lock(&mut tx, None, id).await?;
        if w.state.is_final() || w.state == WithdrawalState::AwaitingApproval {
            return Err(StoreError::Conflict(format!(
                "the withdrawal is {}; only a queued or executing one can be retried",
                w.state
            )));
        }
        sqlx::query(
            "UPDATE withdrawals SET next_attempt_at = now(), attempts = 0, updated_at = now()
              WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let detail = format!("retry by {by}");
        insert_event(
            &mut tx,
            id,
            &w.app_id,
            Some(w.state),
            w.state,
            &format!("operator:{by}"),
            Some(&detail),
        )
        .await?;
        tx.commit().await?;
        self.withdrawal_any_app(id)
            .await?
            .ok_or(StoreError::NotFound)
    }
}
