//! The operator's queries: kill switches, the audit trail, what reconciliation and backfill read,
//! and the database gauges of `/metrics`.

use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

/// One kill-switch row: an app's, or the global one (`scope = "global"`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Control {
    pub scope: String,
    pub tips_paused: bool,
    pub withdrawals_paused: bool,
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// The scope of the global switches.
pub const GLOBAL: &str = "global";

/// One row of the audit trail.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub app_id: Option<String>,
    pub event: String,
    pub actor: String,
    pub tip_id: Option<Uuid>,
    pub withdrawal_id: Option<Uuid>,
    pub user_id: Option<i64>,
    pub payer_id: Option<i64>,
    pub detail: serde_json::Value,
}

/// What `fiber-link audit` asks for.
#[derive(Clone, Debug)]
pub enum AuditFilter {
    Tip(Uuid),
    Withdrawal(Uuid),
    /// A user by the community's own id: events about their money and tips they paid.
    User {
        app_id: String,
        external_id: String,
    },
    /// Everything an operator did (actor `operator:<name>`).
    Operator(String),
}

/// The window of tips and withdrawals a reconciliation or a backfill looks at (by creation
/// time), and an optional app.
#[derive(Clone, Debug, Default)]
pub struct Window {
    pub app_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// A ledger transaction whose entries do not sum to zero in an asset.
#[derive(Clone, Debug)]
pub struct Unbalanced {
    pub transaction_id: i64,
    pub app_id: String,
    pub key: String,
    pub asset: String,
    pub sum: String,
}

/// An author account whose balance row differs from the sum of its entries.
#[derive(Clone, Debug)]
pub struct BalanceMismatch {
    pub account_id: i64,
    pub app_id: String,
    pub user: String,
    pub asset: String,
    pub balance: String,
    pub entries: String,
}

/// A tip with the number of settle transactions it has.
#[derive(Clone, Debug)]
pub struct TipCredits {
    pub id: Uuid,
    pub app_id: String,
    pub state: String,
    pub settles: i64,
}

/// A withdrawal with its ledger transactions by kind.
#[derive(Clone, Debug)]
pub struct WithdrawalLedger {
    pub id: Uuid,
    pub app_id: String,
    pub state: String,
    pub rail: String,
    pub payment_hash: Option<String>,
    pub tx_hash: Option<String>,
    pub reserves: i64,
    pub completes: i64,
    pub releases: i64,
}

/// A tip as reconciliation and backfill compare it with the hub.
#[derive(Clone, Debug)]
pub struct WindowTip {
    pub id: Uuid,
    pub app_id: String,
    pub asset: String,
    pub amount: String,
    pub state: String,
    pub payment_hash: String,
    pub has_invoice: bool,
    pub created_at: DateTime<Utc>,
}

/// Per asset, what the service owes: author balances and withdrawals reserved but not finished.
#[derive(Clone, Debug)]
pub struct Owed {
    pub asset: String,
    pub balances: String,
    pub in_flight: String,
    /// Reserved for withdrawals not sent yet (AWAITING_APPROVAL, QUEUED).
    pub unsent: String,
}

/// The watcher's and the executor's backlog, for `fiber-link ops summary`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Backlog {
    /// Tips whose check is due (now or earlier).
    pub tips_due: i64,
    /// How late the most overdue check is, in seconds (0: none overdue).
    pub oldest_due_secs: f64,
    /// Tips still UNPAID or PENDING.
    pub open_tips: i64,
    /// Age of the oldest UNPAID or PENDING tip, in seconds.
    pub oldest_open_secs: f64,
    /// Open tips whose invoice expired more than 10 minutes ago (the watcher should have ended
    /// them).
    pub open_past_expiry: i64,
    pub withdrawals_awaiting_approval: i64,
    pub withdrawals_queued: i64,
    /// Age of the oldest withdrawal not finished, in seconds.
    pub oldest_unfinished_withdrawal_secs: f64,
}

fn control_from_row(r: &PgRow) -> Result<Control> {
    Ok(Control {
        scope: r.try_get("scope")?,
        tips_paused: r.try_get("tips_paused")?,
        withdrawals_paused: r.try_get("withdrawals_paused")?,
        reason: r.try_get("reason")?,
        updated_at: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
    })
}

/// Writes an operator action to the audit trail, inside the caller's transaction.
pub(crate) async fn audit_action(
    tx: &mut Transaction<'_, Postgres>,
    app_id: Option<&str>,
    event: &str,
    actor: &str,
    detail: serde_json::Value,
) -> Result<()> {
    sqlx::query("INSERT INTO audit_log (app_id, event, actor, detail) VALUES ($1, $2, $3, $4)")
        .bind(app_id)
        .bind(event)
        .bind(actor)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const WINDOW: &str = "($1::text IS NULL OR x.app_id = $1)
                  AND ($2::timestamptz IS NULL OR x.created_at >= $2)
                  AND ($3::timestamptz IS NULL OR x.created_at < $3)";

/// A query over a [`Window`]: its app, since and until bound as $1, $2, $3 (see `WINDOW`).
fn in_window<'q>(
    sql: &'q str,
    w: &'q Window,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql).bind(&w.app_id).bind(w.since).bind(w.until)
}

impl Store {
    /// Every asset the books or the tips name (read once at start-up: a seq scan of the tips).
    pub async fn assets_in_use(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT asset FROM accounts UNION SELECT DISTINCT asset FROM tip_intents ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every kill-switch row.
    pub async fn controls(&self) -> Result<Vec<Control>> {
        let rows = sqlx::query("SELECT * FROM controls ORDER BY scope")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(control_from_row).collect()
    }

    /// Turns switches of `scope` (an app id or [`GLOBAL`]) on or off (`None`: left as is), with
    /// the audit record of who did it, in one transaction. Returns the row as it is now.
    pub async fn set_control(
        &self,
        scope: &str,
        tips_paused: Option<bool>,
        withdrawals_paused: Option<bool>,
        reason: Option<&str>,
        by: &str,
    ) -> Result<Control> {
        let mut tx = self.pool.begin().await?;
        if scope != GLOBAL {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM apps WHERE id = $1)")
                    .bind(scope)
                    .fetch_one(&mut *tx)
                    .await?;
            if !exists {
                return Err(StoreError::NotFound);
            }
        }
        let row = sqlx::query(
            "INSERT INTO controls (scope, tips_paused, withdrawals_paused, reason, updated_by)
             VALUES ($1, COALESCE($2, false), COALESCE($3, false), $4, $5)
             ON CONFLICT (scope) DO UPDATE
                SET tips_paused = COALESCE($2, controls.tips_paused),
                    withdrawals_paused = COALESCE($3, controls.withdrawals_paused),
                    -- a partial resume keeps the reason of the switch still on
                    reason = CASE WHEN COALESCE($2, controls.tips_paused)
                                    OR COALESCE($3, controls.withdrawals_paused)
                                  THEN COALESCE($4, controls.reason) ELSE $4 END,
                    updated_at = now(), updated_by = $5
             RETURNING *",
        )
        .bind(scope)
        .bind(tips_paused)
        .bind(withdrawals_paused)
        .bind(reason)
        .bind(by)
        .fetch_one(&mut *tx)
        .await?;
        let c = control_from_row(&row)?;
        let event = if tips_paused == Some(true) || withdrawals_paused == Some(true) {
            "operator.pause"
        } else {
            "operator.resume"
        };
        audit_action(
            &mut tx,
            (scope != GLOBAL).then_some(scope),
            event,
            &format!("operator:{by}"),
            serde_json::json!({
                "scope": scope, "tips_paused": c.tips_paused,
                "withdrawals_paused": c.withdrawals_paused, "reason": reason,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(c)
    }

    /// The audit trail of a tip, a withdrawal, a user or an operator, oldest first.
    pub async fn audit_trail(&self, f: &AuditFilter) -> Result<Vec<AuditRow>> {
        self.audit_page(f, None, i64::MAX, false).await
    }

    /// A page of the audit trail: at most `limit` entries with ids below `before`, newest first
    /// when `newest_first`.
    pub async fn audit_page(
        &self,
        f: &AuditFilter,
        before: Option<i64>,
        limit: i64,
        newest_first: bool,
    ) -> Result<Vec<AuditRow>> {
        let order = if newest_first { "DESC" } else { "" };
        let page = format!("AND ($2::bigint IS NULL OR a.id < $2) ORDER BY a.id {order} LIMIT $3");
        let sql = match f {
            AuditFilter::Tip(_) => {
                format!("SELECT a.* FROM audit_log a WHERE a.tip_id = $1::text::uuid {page}")
            }
            AuditFilter::Withdrawal(_) => {
                format!("SELECT a.* FROM audit_log a WHERE a.withdrawal_id = $1::text::uuid {page}")
            }
            AuditFilter::User { .. } => format!(
                "WITH u AS (SELECT id FROM users WHERE app_id = $1 AND external_id = $4)
                 SELECT a.* FROM audit_log a, u
                  WHERE a.app_id = $1 AND (a.user_id = u.id OR a.payer_id = u.id) {page}"
            ),
            AuditFilter::Operator(_) => format!(
                "SELECT a.* FROM audit_log a
                  WHERE a.actor LIKE 'operator:%' AND a.actor = 'operator:' || $1 {page}"
            ),
        };
        let (first, user) = match f {
            AuditFilter::Tip(id) | AuditFilter::Withdrawal(id) => (id.to_string(), None),
            AuditFilter::User {
                app_id,
                external_id,
            } => (app_id.clone(), Some(external_id.clone())),
            AuditFilter::Operator(name) => (name.clone(), None),
        };
        let mut q = sqlx::query(&sql).bind(first).bind(before).bind(limit);
        if let Some(u) = user {
            q = q.bind(u);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    app_id: r.try_get("app_id")?,
                    event: r.try_get("event")?,
                    actor: r.try_get("actor")?,
                    tip_id: r.try_get("tip_id")?,
                    withdrawal_id: r.try_get("withdrawal_id")?,
                    user_id: r.try_get("user_id")?,
                    payer_id: r.try_get("payer_id")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Ledger transactions (of the window, by creation time) whose entries do not sum to zero
    /// in an asset.
    pub async fn unbalanced_transactions(&self, w: &Window) -> Result<Vec<Unbalanced>> {
        let sql = format!(
            "SELECT x.id, x.app_id, x.idempotency_key, e.asset, sum(e.amount)::text AS total
               FROM ledger_transactions x JOIN ledger_entries e ON e.transaction_id = x.id
              WHERE {WINDOW}
              GROUP BY x.id, x.app_id, x.idempotency_key, e.asset
             HAVING sum(e.amount) <> 0
              ORDER BY x.id"
        );
        let rows = in_window(&sql, w).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Unbalanced {
                    transaction_id: r.try_get("id")?,
                    app_id: r.try_get("app_id")?,
                    key: r.try_get("idempotency_key")?,
                    asset: r.try_get("asset")?,
                    sum: r.try_get("total")?,
                })
            })
            .collect()
    }

    /// Author accounts whose balance row differs from the sum of all their entries (balances
    /// are totals: no window).
    pub async fn balance_mismatches(&self, app_id: Option<&str>) -> Result<Vec<BalanceMismatch>> {
        let rows = sqlx::query(
            "SELECT a.id, a.app_id, u.external_id, a.asset, a.balance::text AS balance,
                    COALESCE(s.total, 0)::text AS entries
               FROM accounts a
               JOIN users u ON u.id = a.user_id
               LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_entries
                           GROUP BY account_id) s ON s.account_id = a.id
              WHERE a.kind = 'author' AND ($1::text IS NULL OR a.app_id = $1)
                AND a.balance <> COALESCE(s.total, 0)
              ORDER BY a.id",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BalanceMismatch {
                    account_id: r.try_get("id")?,
                    app_id: r.try_get("app_id")?,
                    user: r.try_get("external_id")?,
                    asset: r.try_get("asset")?,
                    balance: r.try_get("balance")?,
                    entries: r.try_get("entries")?,
                })
            })
            .collect()
    }

    /// Tips of the window whose settle transactions do not match their state: SETTLED with
    /// other than exactly one, any other state with one or more.
    pub async fn tip_credit_mismatches(&self, w: &Window) -> Result<Vec<TipCredits>> {
        let sql = format!(
            "SELECT x.id, x.app_id, x.state, count(l.id) AS settles
               FROM tip_intents x
               LEFT JOIN ledger_transactions l ON l.tip_id = x.id AND l.kind = 'tip_settle'
              WHERE {WINDOW}
              GROUP BY x.id, x.app_id, x.state
             HAVING (x.state = 'SETTLED' AND count(l.id) <> 1)
                 OR (x.state <> 'SETTLED' AND count(l.id) > 0)
              ORDER BY x.id"
        );
        let rows = in_window(&sql, w).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(TipCredits {
                    id: r.try_get("id")?,
                    app_id: r.try_get("app_id")?,
                    state: r.try_get("state")?,
                    settles: r.try_get("settles")?,
                })
            })
            .collect()
    }

    /// Every withdrawal of the window with its ledger transactions counted by kind.
    pub async fn withdrawal_ledgers(&self, w: &Window) -> Result<Vec<WithdrawalLedger>> {
        let sql = format!(
            "SELECT x.id, x.app_id, x.state, x.rail, x.payment_hash, x.tx_hash,
                    count(l.id) FILTER (WHERE l.kind = 'withdrawal_reserve') AS reserves,
                    count(l.id) FILTER (WHERE l.kind = 'withdrawal_complete') AS completes,
                    count(l.id) FILTER (WHERE l.kind = 'withdrawal_release') AS releases
               FROM withdrawals x
               LEFT JOIN ledger_transactions l ON l.withdrawal_id = x.id
              WHERE {WINDOW}
              GROUP BY x.id
              ORDER BY x.created_at, x.id"
        );
        let rows = in_window(&sql, w).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(WithdrawalLedger {
                    id: r.try_get("id")?,
                    app_id: r.try_get("app_id")?,
                    state: r.try_get("state")?,
                    rail: r.try_get("rail")?,
                    payment_hash: r.try_get("payment_hash")?,
                    tx_hash: r.try_get("tx_hash")?,
                    reserves: r.try_get("reserves")?,
                    completes: r.try_get("completes")?,
                    releases: r.try_get("releases")?,
                })
            })
            .collect()
    }

    /// Tips of the window in creation order, `limit` at a time after `after` (a previous page's
    /// last `(created_at, id)`).
    pub async fn window_tips(
        &self,
        w: &Window,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<WindowTip>> {
        let sql = format!(
            "SELECT x.id, x.app_id, x.asset, x.amount::text AS amount, x.state, x.payment_hash,
                    EXISTS (SELECT 1 FROM tip_invoices i WHERE i.tip_id = x.id) AS has_invoice,
                    x.created_at
               FROM tip_intents x
              WHERE {WINDOW}
                AND ($4::timestamptz IS NULL OR (x.created_at, x.id) > ($4, $5))
              ORDER BY x.created_at, x.id
              LIMIT $6"
        );
        let rows = in_window(&sql, w)
            .bind(after.map(|a| a.0))
            .bind(after.map(|a| a.1))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(WindowTip {
                    id: r.try_get("id")?,
                    app_id: r.try_get("app_id")?,
                    asset: r.try_get("asset")?,
                    amount: r.try_get("amount")?,
                    state: r.try_get("state")?,
                    payment_hash: r.try_get("payment_hash")?,
                    has_invoice: r.try_get("has_invoice")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// A tip's state and when the watcher looks at it next (`None`: never again).
    pub async fn tip_watch(&self, id: Uuid) -> Result<Option<(String, Option<DateTime<Utc>>)>> {
        Ok(
            sqlx::query_as("SELECT state, next_check_at FROM tip_intents WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// How many tips a window holds (for a progress bar).
    pub async fn count_window_tips(&self, w: &Window) -> Result<i64> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT count(*) FROM tip_intents x WHERE {WINDOW}"
        ))
        .bind(&w.app_id)
        .bind(w.since)
        .bind(w.until)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Per asset, over every app (the hub and the hot wallet are shared): author balances and
    /// what withdrawals hold reserved.
    pub async fn owed(&self) -> Result<Vec<Owed>> {
        let rows = sqlx::query(
            "SELECT asset,
                    COALESCE(sum(balance) FILTER (WHERE kind = 'author'), 0)::text AS balances,
                    COALESCE((SELECT sum(e.amount) FROM ledger_entries e JOIN accounts f
                                ON f.id = e.account_id
                               WHERE f.kind = 'payouts_in_flight' AND f.asset = a.asset), 0)::text
                        AS in_flight,
                    COALESCE((SELECT sum(w.amount) FROM withdrawals w
                               WHERE w.asset = a.asset
                                 AND w.state IN ('AWAITING_APPROVAL','QUEUED')), 0)::text AS unsent
               FROM accounts a
              GROUP BY asset
              ORDER BY asset",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Owed {
                    asset: r.try_get("asset")?,
                    balances: r.try_get("balances")?,
                    in_flight: r.try_get("in_flight")?,
                    unsent: r.try_get("unsent")?,
                })
            })
            .collect()
    }

    /// The watcher's and the executor's backlog.
    pub async fn backlog(&self) -> Result<Backlog> {
        let r = sqlx::query(
            "SELECT
               (SELECT count(*) FROM tip_intents WHERE next_check_at <= now()) AS tips_due,
               (SELECT COALESCE(extract(epoch FROM now() - min(next_check_at)), 0)::float8
                  FROM tip_intents WHERE next_check_at <= now()) AS oldest_due,
               (SELECT count(*) FROM tip_intents WHERE state IN ('UNPAID','PENDING')) AS open_tips,
               (SELECT COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float8
                  FROM tip_intents WHERE state IN ('UNPAID','PENDING')) AS oldest_open,
               (SELECT count(*) FROM tip_intents WHERE state IN ('UNPAID','PENDING')
                   AND expires_at < now() - interval '10 minutes') AS past_expiry,
               (SELECT count(*) FROM withdrawals WHERE state = 'AWAITING_APPROVAL') AS awaiting,
               (SELECT count(*) FROM withdrawals WHERE state = 'QUEUED') AS queued,
               (SELECT COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float8
                  FROM withdrawals WHERE state NOT IN ('COMPLETED','FAILED','CANCELLED'))
                   AS oldest_w",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Backlog {
            tips_due: r.try_get("tips_due")?,
            oldest_due_secs: r.try_get("oldest_due")?,
            open_tips: r.try_get("open_tips")?,
            oldest_open_secs: r.try_get("oldest_open")?,
            open_past_expiry: r.try_get("past_expiry")?,
            withdrawals_awaiting_approval: r.try_get("awaiting")?,
            withdrawals_queued: r.try_get("queued")?,
            oldest_unfinished_withdrawal_secs: r.try_get("oldest_w")?,
        })
    }

    /// The database's state for `/metrics`: tips and withdrawals by state, open invoices, the
    /// oldest unfinished withdrawal. Returns `(tips, withdrawals, open, oldest_secs)`.
    #[allow(clippy::type_complexity)]
    pub async fn state_counts(&self) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>, i64, f64)> {
        let tips: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM tip_intents GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        let withdrawals: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM withdrawals GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        let open = tips
            .iter()
            .filter(|(s, _)| s == "UNPAID" || s == "PENDING")
            .map(|x| x.1)
            .sum();
        let oldest: f64 = sqlx::query_scalar(
            "SELECT COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float8
               FROM withdrawals WHERE state NOT IN ('COMPLETED','FAILED','CANCELLED')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((tips, withdrawals, open, oldest))
    }
}

/// The kill switches as one process last read them (with the store-change stream's lease, read
/// at the same time).
#[derive(Clone, Debug, Default)]
pub struct Pauses {
    rows: Vec<Control>,
    /// Until when some worker follows the hub's store changes.
    stream_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a pause stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paused {
    Tips,
    Withdrawals,
}

impl Pauses {
    pub fn new(rows: Vec<Control>) -> Pauses {
        Pauses {
            rows,
            stream_until: None,
        }
    }

    /// Whether some worker follows the hub's store changes now (as last read): then a payment to
    /// a new tip is announced, and the tip needs no early polls.
    pub fn streamed(&self) -> bool {
        self.stream_until
            .is_some_and(|until| chrono::Utc::now() < until)
    }

    /// Whether `what` is paused for `app_id` (by its own switch or the global one), with the
    /// operator's reason.
    pub fn check(&self, app_id: &str, what: Paused) -> Option<PauseInfo> {
        self.rows
            .iter()
            .filter(|c| c.scope == GLOBAL || c.scope == app_id)
            .find(|c| match what {
                Paused::Tips => c.tips_paused,
                Paused::Withdrawals => c.withdrawals_paused,
            })
            .map(|c| PauseInfo {
                global: c.scope == GLOBAL,
                reason: c.reason.clone(),
            })
    }

    /// Every switch that is on, as (scope, "tips" | "withdrawals").
    pub fn on(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for c in &self.rows {
            if c.tips_paused {
                out.push((c.scope.clone(), "tips"));
            }
            if c.withdrawals_paused {
                out.push((c.scope.clone(), "withdrawals"));
            }
        }
        out
    }
}

/// A pause in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseInfo {
    pub global: bool,
    pub reason: Option<String>,
}

/// How often a process re-reads the kill switches: a pause takes effect everywhere within this.
pub const PAUSE_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// The kill switches, re-read from the database at most every [`PAUSE_REFRESH`] by one caller at
/// a time (the others go on with the last reading meanwhile). When the database cannot be read,
/// the last reading stays in force (and the caller's own database work fails anyway).
#[derive(Clone, Debug)]
pub struct PauseCache {
    store: Store,
    last: std::sync::Arc<std::sync::Mutex<(Option<std::time::Instant>, std::sync::Arc<Pauses>)>>,
    refreshing: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl PauseCache {
    pub fn new(store: Store) -> PauseCache {
        PauseCache {
            store,
            last: Default::default(),
            refreshing: Default::default(),
        }
    }

    fn reading(&self) -> (Option<std::time::Instant>, std::sync::Arc<Pauses>) {
        let g = self.last.lock().unwrap_or_else(|e| e.into_inner());
        (g.0, g.1.clone())
    }

    pub async fn get(&self) -> std::sync::Arc<Pauses> {
        let (at, pauses) = self.reading();
        if at.is_some_and(|t| t.elapsed() < PAUSE_REFRESH) {
            return pauses;
        }
        // Before the first reading everyone waits for it; later, one refreshes and the others
        // use the last reading.
        let _guard = match (at, self.refreshing.try_lock()) {
            (_, Ok(g)) => g,
            (Some(_), Err(_)) => return pauses,
            (None, Err(_)) => self.refreshing.lock().await,
        };
        let (at, pauses) = self.reading();
        if at.is_some_and(|t| t.elapsed() < PAUSE_REFRESH) {
            return pauses;
        }
        let read = async {
            let rows = self.store.controls().await?;
            let stream_until = self.store.stream_followed_until().await?;
            Ok::<_, crate::StoreError>((rows, stream_until))
        };
        match read.await {
            Ok((rows, stream_until)) => {
                let fresh = std::sync::Arc::new(Pauses { rows, stream_until });
                *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
                    (Some(std::time::Instant::now()), fresh.clone());
                fresh
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the kill switches failed");
                pauses
            }
        }
    }
}

impl Store {
    /// An app's withdrawal policy overrides, per asset, as stored.
    pub async fn policy_overrides(&self, app_id: &str) -> Result<Vec<(String, serde_json::Value)>> {
        Ok(sqlx::query_as(
            "SELECT asset, to_jsonb(p) - 'app_id' - 'asset' FROM withdrawal_policies p
              WHERE app_id = $1 ORDER BY asset",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?)
    }
}
