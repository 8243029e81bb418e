//! Whole-database invariant reads for checkers that compare the books with an outside record
//! (the chaos run compares them with the hub simulator's). Read-only; each is one statement.

use crate::{Result, Store};
use sqlx::Row;

/// One tip as a checker sees it.
#[derive(Clone, Debug)]
pub struct TipFact {
    pub payment_hash: String,
    pub state: String,
    pub asset: String,
    /// Base units.
    pub amount: String,
    /// How many `tip_settle` ledger transactions credit it.
    pub settles: i64,
    /// Still open (UNPAID or PENDING) more than a minute past its expiry.
    pub open_past_expiry: bool,
}

/// One withdrawal as a checker sees it.
#[derive(Clone, Debug)]
pub struct WithdrawalFact {
    pub id: uuid::Uuid,
    pub state: String,
    pub rail: String,
    pub payment_hash: Option<String>,
    /// The kinds of its ledger transactions, oldest first.
    pub ledger: Vec<String>,
}

/// Totals over the whole ledger.
#[derive(Clone, Debug, Default)]
pub struct LedgerFacts {
    /// Ledger transactions whose entries do not sum to zero in some asset.
    pub unbalanced: i64,
    /// The smallest author balance (0 when there is none).
    pub min_author_balance: String,
    /// Author accounts whose balance row differs from the sum of their entries.
    pub balance_mismatches: i64,
    pub transactions: i64,
}

impl Store {
    /// Every tip with its credit count.
    pub async fn tip_facts(&self) -> Result<Vec<TipFact>> {
        let rows = sqlx::query(
            "SELECT t.payment_hash, t.state, t.asset, t.amount::text AS amount,
                    (SELECT count(*) FROM ledger_transactions l
                      WHERE l.tip_id = t.id AND l.kind = 'tip_settle') AS settles,
                    (t.state IN ('UNPAID','PENDING') AND t.expires_at < now() - interval '60 seconds')
                        AS open_past_expiry
               FROM tip_intents t",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TipFact {
                    payment_hash: r.try_get("payment_hash")?,
                    state: r.try_get("state")?,
                    asset: r.try_get("asset")?,
                    amount: r.try_get("amount")?,
                    settles: r.try_get("settles")?,
                    open_past_expiry: r.try_get("open_past_expiry")?,
                })
            })
            .collect()
    }

    /// Every withdrawal with the kinds of its ledger transactions.
    pub async fn withdrawal_facts(&self) -> Result<Vec<WithdrawalFact>> {
        let rows = sqlx::query(
            "SELECT w.id, w.state, w.rail, w.payment_hash,
                    COALESCE((SELECT array_agg(l.kind ORDER BY l.id) FROM ledger_transactions l
                               WHERE l.withdrawal_id = w.id), '{}') AS ledger
               FROM withdrawals w",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WithdrawalFact {
                    id: r.try_get("id")?,
                    state: r.try_get("state")?,
                    rail: r.try_get("rail")?,
                    payment_hash: r.try_get("payment_hash")?,
                    ledger: r.try_get("ledger")?,
                })
            })
            .collect()
    }

    /// The ledger's own rules, counted over everything.
    pub async fn ledger_facts(&self) -> Result<LedgerFacts> {
        let r = sqlx::query(
            "SELECT
               (SELECT count(*) FROM (SELECT 1 FROM ledger_entries
                  GROUP BY transaction_id, asset HAVING sum(amount) <> 0) u) AS unbalanced,
               (SELECT COALESCE(min(balance), 0)::text FROM accounts WHERE kind = 'author')
                  AS min_author_balance,
               (SELECT count(*) FROM accounts a WHERE a.kind = 'author' AND a.balance <>
                  COALESCE((SELECT sum(e.amount) FROM ledger_entries e WHERE e.account_id = a.id), 0))
                  AS balance_mismatches,
               (SELECT count(*) FROM ledger_transactions) AS transactions",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(LedgerFacts {
            unbalanced: r.try_get("unbalanced")?,
            min_author_balance: r.try_get("min_author_balance")?,
            balance_mismatches: r.try_get("balance_mismatches")?,
            transactions: r.try_get("transactions")?,
        })
    }
}
