//! Posting to the double-entry ledger. Every posting is one ledger transaction with a unique
//! idempotency key, written inside the caller's database transaction together with the state change
//! that causes it. The schema refuses unbalanced postings and negative author balances.

use crate::Result;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// An account of an app, by kind (and user, for an author).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Account {
    Author(i64),
    Hub,
    HotWallet,
    PayoutsInFlight,
    Fees,
    Operator,
}

impl Account {
    fn kind(self) -> &'static str {
        match self {
            Account::Author(_) => "author",
            Account::Hub => "hub",
            Account::HotWallet => "hot_wallet",
            Account::PayoutsInFlight => "payouts_in_flight",
            Account::Fees => "fees",
            Account::Operator => "operator",
        }
    }

    fn user(self) -> Option<i64> {
        match self {
            Account::Author(u) => Some(u),
            _ => None,
        }
    }
}

/// What a ledger transaction is about.
#[derive(Clone, Copy, Debug)]
pub enum Cause {
    Tip(Uuid),
    Withdrawal(Uuid),
}

/// One entry: the account, and the amount in base units as a credit (`true`: +) or debit (`-`).
pub struct Entry {
    pub account: Account,
    pub amount: u128,
    pub credit: bool,
}

impl Entry {
    pub fn credit(account: Account, amount: u128) -> Entry {
        Entry {
            account,
            amount,
            credit: true,
        }
    }
    pub fn debit(account: Account, amount: u128) -> Entry {
        Entry {
            account,
            amount,
            credit: false,
        }
    }
}

/// The id of an account, created on first use.
pub(crate) async fn ensure_account(
    tx: &mut Transaction<'_, Postgres>,
    app_id: &str,
    account: Account,
    asset: &str,
) -> Result<i64> {
    sqlx::query(
        "INSERT INTO accounts (app_id, kind, user_id, asset) VALUES ($1, $2, $3, $4)
         ON CONFLICT (app_id, kind, COALESCE(user_id, 0), asset) DO NOTHING",
    )
    .bind(app_id)
    .bind(account.kind())
    .bind(account.user())
    .bind(asset)
    .execute(&mut **tx)
    .await?;
    // A row inserted by a concurrent transaction is visible here: ON CONFLICT waited for it
    // to commit, and each statement of a read-committed transaction takes a new snapshot.
    Ok(sqlx::query_scalar(
        "SELECT id FROM accounts WHERE app_id = $1 AND kind = $2
            AND COALESCE(user_id, 0) = COALESCE($3, 0) AND asset = $4",
    )
    .bind(app_id)
    .bind(account.kind())
    .bind(account.user())
    .bind(asset)
    .fetch_one(&mut **tx)
    .await?)
}

/// Writes one ledger transaction of `entries` (zero amounts are left out) in one asset.
pub(crate) async fn post(
    tx: &mut Transaction<'_, Postgres>,
    app_id: &str,
    asset: &str,
    kind: &str,
    key: &str,
    cause: Cause,
    entries: &[Entry],
) -> Result<i64> {
    let (tip_id, withdrawal_id) = match cause {
        Cause::Tip(id) => (Some(id), None),
        Cause::Withdrawal(id) => (None, Some(id)),
    };
    let txn_id: i64 = sqlx::query_scalar(
        "INSERT INTO ledger_transactions (app_id, kind, idempotency_key, tip_id, withdrawal_id)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(app_id)
    .bind(kind)
    .bind(key)
    .bind(tip_id)
    .bind(withdrawal_id)
    .fetch_one(&mut **tx)
    .await?;
    let mut accounts = Vec::with_capacity(entries.len());
    let mut amounts = Vec::with_capacity(entries.len());
    for e in entries.iter().filter(|e| e.amount != 0) {
        accounts.push(ensure_account(tx, app_id, e.account, asset).await?);
        amounts.push(if e.credit {
            e.amount.to_string()
        } else {
            format!("-{}", e.amount)
        });
    }
    sqlx::query(
        "INSERT INTO ledger_entries (transaction_id, account_id, app_id, asset, amount)
         SELECT $1, a, $2, $3, m::numeric FROM unnest($4::bigint[], $5::text[]) AS x(a, m)",
    )
    .bind(txn_id)
    .bind(app_id)
    .bind(asset)
    .bind(&accounts)
    .bind(&amounts)
    .execute(&mut **tx)
    .await?;
    Ok(txn_id)
}
