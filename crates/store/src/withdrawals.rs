//! Withdrawals: the request (policy checked and funds reserved in one transaction), the worker's
//! two-phase execution records, completion and release, and the operator's actions.

use crate::ledger::{self, Account, Cause, Entry};
use crate::tips::parse_amount;
use crate::{is_unique_violation, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use fiber_link_core::withdrawal::{Refusal, Standing};
use fiber_link_core::{Amount, FeeMode, Policy, Rail, WithdrawalState};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};
use std::time::Duration;
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

/// An app's overrides of the configured policy for one asset (`None` = the default).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PolicyOverride {
    pub allowed: Option<bool>,
    pub min: Option<Amount>,
    pub max_per_request: Option<Amount>,
    pub author_daily_cap: Option<Amount>,
    pub app_daily_cap: Option<Amount>,
    pub cooldown_secs: Option<u64>,
    pub approval_threshold: Option<Amount>,
}

impl PolicyOverride {
    pub fn apply(&self, defaults: &Policy) -> Policy {
        Policy {
            allowed: self.allowed.unwrap_or(defaults.allowed),
            min: self.min.unwrap_or(defaults.min),
            max_per_request: self.max_per_request.or(defaults.max_per_request),
            author_daily_cap: self.author_daily_cap.or(defaults.author_daily_cap),
            app_daily_cap: self.app_daily_cap.or(defaults.app_daily_cap),
            cooldown_secs: self.cooldown_secs.unwrap_or(defaults.cooldown_secs),
            approval_threshold: self.approval_threshold.or(defaults.approval_threshold),
        }
    }
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

const COLUMNS: &str =
    "w.id, w.app_id, u.external_id AS user_ext, w.asset, w.amount::text AS amount,
    w.fee::text AS fee, w.receive_amount::text AS receive_amount, w.fee_mode, w.rail,
    w.destination, w.request_fingerprint, w.state, w.payment_hash, w.signed_tx, w.tx_hash,
    w.tx_builds, w.actual_fee::text AS actual_fee, w.confirmations, w.block_number,
    w.failure_reason, w.failure_message, w.next_attempt_at, w.attempts, w.last_error,
    w.created_at, w.updated_at, w.progressed_at, w.approved_at, w.approved_by, w.submitted_at,
    w.completed_at";

const FROM: &str = "FROM withdrawals w JOIN users u ON u.id = w.user_id";

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {v:?}"))
}

fn from_row(r: &PgRow) -> Result<WithdrawalRow> {
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

fn policy_from_row(r: &PgRow) -> Result<PolicyOverride> {
    let amount = |c: &str| -> Result<Option<Amount>> {
        r.try_get::<Option<String>, _>(c)?
            .as_deref()
            .map(parse_amount)
            .transpose()
    };
    Ok(PolicyOverride {
        allowed: r.try_get("allowed")?,
        min: amount("min_amount")?,
        max_per_request: amount("max_per_request")?,
        author_daily_cap: amount("author_daily_cap")?,
        app_daily_cap: amount("app_daily_cap")?,
        cooldown_secs: r
            .try_get::<Option<i64>, _>("cooldown_secs")?
            .map(|v| v.max(0) as u64),
        approval_threshold: amount("approval_threshold")?,
    })
}

const POLICY_COLUMNS: &str = "allowed, min_amount::text AS min_amount,
    max_per_request::text AS max_per_request, author_daily_cap::text AS author_daily_cap,
    app_daily_cap::text AS app_daily_cap, cooldown_secs,
    approval_threshold::text AS approval_threshold";

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

/// The author's standing in one asset, read inside `tx` (after the locks are taken).
async fn standing(
    tx: &mut Transaction<'_, Postgres>,
    app_id: &str,
    user_id: Option<i64>,
    asset: &str,
) -> Result<Standing> {
    let r = sqlx::query(
        "SELECT
           (SELECT balance::text FROM accounts
             WHERE app_id = $1 AND kind = 'author' AND COALESCE(user_id, 0) = $2
               AND asset = $3) AS available,
           (SELECT COALESCE(sum(amount), 0)::text FROM withdrawals
             WHERE app_id = $1 AND user_id = $2 AND asset = $3
               AND created_at > now() - interval '24 hours'
               AND state NOT IN ('FAILED','CANCELLED')) AS author_24h,
           (SELECT COALESCE(sum(amount), 0)::text FROM withdrawals
             WHERE app_id = $1 AND asset = $3 AND created_at > now() - interval '24 hours'
               AND state NOT IN ('FAILED','CANCELLED')) AS app_24h,
           (SELECT floor(extract(epoch FROM now() - max(created_at)))::bigint FROM withdrawals
             WHERE app_id = $1 AND user_id = $2 AND asset = $3
               AND state NOT IN ('FAILED','CANCELLED')) AS since",
    )
    .bind(app_id)
    .bind(user_id)
    .bind(asset)
    .fetch_one(&mut **tx)
    .await?;
    let available: Option<String> = r.try_get("available")?;
    Ok(Standing {
        available: available
            .as_deref()
            .map(parse_amount)
            .transpose()?
            .unwrap_or(Amount::ZERO),
        author_24h: parse_amount(r.try_get("author_24h")?)?,
        app_24h: parse_amount(r.try_get("app_24h")?)?,
        secs_since_last: r
            .try_get::<Option<i64>, _>("since")?
            .map(|s| s.max(0) as u64),
    })
}

async fn user_id(
    tx: &mut Transaction<'_, Postgres>,
    app_id: &str,
    user: &str,
) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM users WHERE app_id = $1 AND external_id = $2")
            .bind(app_id)
            .bind(user)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

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
    /// The app's policy overrides for an asset (all `None` when it has none).
    pub async fn policy_override(&self, app_id: &str, asset: &str) -> Result<PolicyOverride> {
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM withdrawal_policies WHERE app_id = $1 AND asset = $2"
        );
        let row = sqlx::query(&sql)
            .bind(app_id)
            .bind(asset)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .as_ref()
            .map(policy_from_row)
            .transpose()?
            .unwrap_or_default())
    }

    /// Replaces the app's overrides for an asset (a `None` goes back to the default).
    pub async fn set_policy_override(
        &self,
        app_id: &str,
        asset: &str,
        p: &PolicyOverride,
        by: &str,
    ) -> Result<()> {
        let s = |a: Option<Amount>| a.map(|a| a.base_units().to_string());
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO withdrawal_policies (app_id, asset, allowed, min_amount, max_per_request,
                    author_daily_cap, app_daily_cap, cooldown_secs, approval_threshold, updated_by)
             VALUES ($1, $2, $3, $4::numeric, $5::numeric, $6::numeric, $7::numeric, $8,
                     $9::numeric, $10)
             ON CONFLICT (app_id, asset) DO UPDATE SET allowed = EXCLUDED.allowed,
                    min_amount = EXCLUDED.min_amount, max_per_request = EXCLUDED.max_per_request,
                    author_daily_cap = EXCLUDED.author_daily_cap,
                    app_daily_cap = EXCLUDED.app_daily_cap, cooldown_secs = EXCLUDED.cooldown_secs,
                    approval_threshold = EXCLUDED.approval_threshold, updated_at = now(),
                    updated_by = EXCLUDED.updated_by",
        )
        .bind(app_id)
        .bind(asset)
        .bind(p.allowed)
        .bind(s(p.min))
        .bind(s(p.max_per_request))
        .bind(s(p.author_daily_cap))
        .bind(s(p.app_daily_cap))
        .bind(p.cooldown_secs.map(|c| c.min(i64::MAX as u64) as i64))
        .bind(s(p.approval_threshold))
        .bind(by)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("23503") => {
                StoreError::NotFound
            }
            _ => StoreError::Db(e),
        })?;
        let detail = serde_json::json!({
            "asset": asset, "allowed": p.allowed, "min": s(p.min),
            "max_per_request": s(p.max_per_request), "author_daily_cap": s(p.author_daily_cap),
            "app_daily_cap": s(p.app_daily_cap), "cooldown_secs": p.cooldown_secs,
            "approval_threshold": s(p.approval_threshold),
        });
        crate::ops::audit_action(
            &mut tx,
            Some(app_id),
            "operator.policy_set",
            &format!("operator:{by}"),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The author's standing and the app's overrides for a quote (no locks: a quote promises
    /// nothing; the request checks again under locks).
    pub async fn withdrawal_standing(
        &self,
        app_id: &str,
        user: &str,
        asset: &str,
    ) -> Result<(PolicyOverride, Standing)> {
        let mut tx = self.pool.begin().await?;
        let uid = user_id(&mut tx, app_id, user).await?;
        let st = standing(&mut tx, app_id, uid, asset).await?;
        tx.commit().await?;
        Ok((self.policy_override(app_id, asset).await?, st))
    }

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
