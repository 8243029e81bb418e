//! A withdrawal request: policy checked and funds reserved in one transaction.

use super::policy::{policy_from_row, standing, user_id, POLICY_COLUMNS};
use super::{insert_event, NewWithdrawal, RequestOutcome};
use crate::ledger::{self, Account, Cause, Entry};
use crate::{is_unique_violation, Result, Store, StoreError};
use fiber_link_core::withdrawal::{Refusal, Standing};
use fiber_link_core::{Policy, WithdrawalState};

impl Store {
    /// Accepts or refuses a withdrawal. In one database transaction: the app's policy row for the
    /// asset and the author's account are locked (in that order, everywhere), the policy is
    /// checked against what the database says under those locks, and the funds are reserved.
    /// `check` returns whether the withdrawal needs an operator's approval.
    pub async fn request_withdrawal(
        &self,
        w: &NewWithdrawal,
        defaults: &Policy,
        check: impl Fn(&Policy, &Standing) -> Result<bool, Refusal>,
    ) -> Result<RequestOutcome> {
        for _ in 0..3 {
            if let Some(existing) = self
                .withdrawal_by_key(&w.app_id, &w.idempotency_key)
                .await?
            {
                return Ok(RequestOutcome::Existing(existing));
            }
            match self.try_request(w, defaults, &check).await {
                Err(StoreError::Db(e)) if is_unique_violation(&e) => {
                    let idem = matches!(&e, sqlx::Error::Database(d)
                        if d.constraint() == Some("withdrawals_app_id_idempotency_key_key"));
                    if !idem {
                        return Ok(RequestOutcome::InvoiceInUse);
                    }
                    // the same key committed concurrently: read it back
                }
                other => return other,
            }
        }
        Err(StoreError::Conflict(
            "the withdrawal could not be stored; retry".into(),
        ))
    }

    async fn try_request(
        &self,
        w: &NewWithdrawal,
        defaults: &Policy,
        check: &impl Fn(&Policy, &Standing) -> Result<bool, Refusal>,
    ) -> Result<RequestOutcome> {
        let mut tx = self.pool.begin().await?;
        // Lock 1: the app's policy row for this asset (created empty on first use): serializes
        // the app's requests in the asset, so the app cap holds.
        sqlx::query(
            "INSERT INTO withdrawal_policies (app_id, asset) VALUES ($1, $2)
             ON CONFLICT (app_id, asset) DO NOTHING",
        )
        .bind(&w.app_id)
        .bind(&w.asset)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM withdrawal_policies
              WHERE app_id = $1 AND asset = $2 FOR UPDATE"
        );
        let row = sqlx::query(&sql)
            .bind(&w.app_id)
            .bind(&w.asset)
            .fetch_one(&mut *tx)
            .await?;
        let policy = policy_from_row(&row)?.apply(defaults);
        let uid = user_id(&mut tx, &w.app_id, &w.user).await?;
        // Lock 2: the author's account (the balance the reservation takes from).
        if let Some(uid) = uid {
            sqlx::query(
                "SELECT 1 FROM accounts WHERE app_id = $1 AND kind = 'author' AND COALESCE(user_id, 0) = $2
                    AND asset = $3 FOR UPDATE",
            )
            .bind(&w.app_id)
            .bind(uid)
            .bind(&w.asset)
            .execute(&mut *tx)
            .await?;
        }
        let st = standing(&mut tx, &w.app_id, uid, &w.asset).await?;
        let needs_approval = match check(&policy, &st) {
            Ok(n) => n,
            Err(refusal) => return Ok(RequestOutcome::Refused(refusal)),
        };
        let Some(uid) = uid else {
            // check() refuses an unknown author (nothing available); never reached
            return Err(StoreError::NotFound);
        };
        let state = if needs_approval {
            WithdrawalState::AwaitingApproval
        } else {
            WithdrawalState::Queued
        };
        sqlx::query(
            "INSERT INTO withdrawals (id, app_id, user_id, asset, amount, fee, receive_amount,
                    fee_mode, rail, destination, idempotency_key, request_fingerprint, state,
                    payment_hash, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5::numeric, $6::numeric, $7::numeric, $8, $9, $10, $11, $12,
                     $13, $14, CASE WHEN $13 = 'QUEUED' THEN now() END)",
        )
        .bind(w.id)
        .bind(&w.app_id)
        .bind(uid)
        .bind(&w.asset)
        .bind(w.amount.base_units().to_string())
        .bind(w.fee.base_units().to_string())
        .bind(w.receive.base_units().to_string())
        .bind(w.fee_mode.as_str())
        .bind(w.rail.as_str())
        .bind(&w.destination)
        .bind(&w.idempotency_key)
        .bind(&w.fingerprint)
        .bind(state.as_str())
        .bind(&w.payment_hash)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut tx, w.id, &w.app_id, None, state, "api", None).await?;
        let amount = w.amount.base_units();
        ledger::post(
            &mut tx,
            &w.app_id,
            &w.asset,
            "withdrawal_reserve",
            &format!("withdrawal:{}:reserve", w.id),
            Cause::Withdrawal(w.id),
            &[
                Entry::debit(Account::Author(uid), amount),
                Entry::credit(Account::PayoutsInFlight, amount),
            ],
        )
        .await?;
        tx.commit().await?;
        let row = self
            .withdrawal(&w.app_id, w.id)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(RequestOutcome::Created(row))
    }
}
