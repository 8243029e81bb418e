//! The operator console: operator accounts, their sessions and failed logins, the record of
//! reconciliations, and the console's read-only views (searches, daily figures).

use crate::ops::audit_action;
use crate::tips::{tip_from_row, TipRow, TIP_COLUMNS, TIP_FROM};
use crate::withdrawals::read::{from_row, COLUMNS, FROM};
use crate::withdrawals::WithdrawalRow;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use fiber_link_core::WithdrawalState;
use sqlx::Row;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Operator {
    pub name: String,
    pub role: String,
    #[serde(skip)]
    pub password_hash: String,
    /// Sealed with the master key; `None` until enrolled.
    #[serde(skip)]
    pub totp_secret: Option<Vec<u8>>,
    #[serde(skip)]
    pub totp_pending: Option<Vec<u8>>,
    #[serde(skip)]
    pub totp_last_step: i64,
    pub enrolled: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub sessions: i64,
}

/// A session looked up by its token, already touched (its idle clock restarted).
#[derive(Clone, Debug)]
pub struct Session {
    pub operator: String,
    pub role: String,
    pub stage: String,
    pub csrf: String,
}

/// Why a session token did not give a session.
#[derive(Debug, PartialEq, Eq)]
pub enum NoSession {
    Unknown,
    Expired,
}

/// A recorded reconciliation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReconcileRun {
    pub at: DateTime<Utc>,
    pub scope: String,
    pub actor: String,
    pub clean: Option<bool>,
    pub findings: Option<i32>,
    pub error: Option<String>,
    /// [{asset, owed, held}]
    pub solvency: serde_json::Value,
}

/// One day of tips: how many were created, settled, and the settled volume per asset.
#[derive(Clone, Debug)]
pub struct DailyTips {
    pub day: NaiveDate,
    pub asset: String,
    pub created: i64,
    pub settled: i64,
    /// base units
    pub volume: String,
}

/// What the withdrawals page filters by.
#[derive(Clone, Debug, Default)]
pub struct WithdrawalFilter {
    /// Empty: every state.
    pub states: Vec<WithdrawalState>,
    pub app_id: Option<String>,
    pub user: Option<String>,
    /// Only withdrawals created at least this long ago.
    pub older_than: Option<Duration>,
    pub limit: i64,
}

/// How a tip is looked for.
#[derive(Clone, Debug)]
pub enum TipQuery {
    Id(Uuid),
    PaymentHash(String),
    User { app_id: String, user: String },
    Post { app_id: String, post_id: String },
}

const OPERATOR_COLUMNS: &str = "o.name, o.role, o.password_hash, o.totp_secret, o.totp_pending,
    o.totp_last_step, o.created_at, o.created_by,
    (SELECT count(*) FROM operator_sessions s WHERE s.operator = o.name AND s.stage = 'full') AS sessions";

fn operator_from_row(r: &sqlx::postgres::PgRow) -> Result<Operator> {
    let secret: Option<Vec<u8>> = r.try_get("totp_secret")?;
    Ok(Operator {
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        password_hash: r.try_get("password_hash")?,
        enrolled: secret.is_some(),
        totp_secret: secret,
        totp_pending: r.try_get("totp_pending")?,
        totp_last_step: r.try_get("totp_last_step")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        sessions: r.try_get("sessions")?,
    })
}

impl Store {
    /// A new operator (not enrolled: the first login shows the TOTP secret). `Conflict` when the
    /// name is taken.
    pub async fn add_operator(
        &self,
        name: &str,
        role: &str,
        password_hash: &str,
        by: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "INSERT INTO operators (name, role, password_hash, created_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(role)
        .bind(password_hash)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "an operator named {name} exists"
            )));
        }
        audit_action(
            &mut tx,
            None,
            "operator.added",
            &format!("operator:{by}"),
            serde_json::json!({"operator": name, "role": role}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new password; the second factor is cleared (enrolled again at the next login) and every
    /// session ends. `NotFound` for an unknown name.
    pub async fn reset_operator(&self, name: &str, password_hash: &str, by: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE operators SET password_hash = $2, totp_secret = NULL, totp_pending = NULL,
                    totp_last_step = 0, password_set_at = now() WHERE name = $1",
        )
        .bind(name)
        .bind(password_hash)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM operator_sessions WHERE operator = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM operator_login_failures WHERE operator = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        audit_action(
            &mut tx,
            None,
            "operator.reset",
            &format!("operator:{by}"),
            serde_json::json!({"operator": name}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_operator(&self, name: &str, by: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("DELETE FROM operators WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        audit_action(
            &mut tx,
            None,
            "operator.removed",
            &format!("operator:{by}"),
            serde_json::json!({"operator": name}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn operators(&self) -> Result<Vec<Operator>> {
        let rows = sqlx::query(&format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators o ORDER BY o.name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(operator_from_row).collect()
    }

    pub async fn operator(&self, name: &str) -> Result<Option<Operator>> {
        let row = sqlx::query(&format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators o WHERE o.name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(operator_from_row).transpose()
    }

    /// Counts a login attempt before its credentials are checked, so that attempts made at once
    /// cannot all pass the throttle: returns the attempt's id and the attempts in the last
    /// `window` for this name and from this address, this one included. A right credential
    /// forgives its attempt ([`Store::forgive_login_attempt`]); a wrong one stays counted.
    pub async fn login_attempt(
        &self,
        name: &str,
        address: &str,
        window: Duration,
    ) -> Result<(i64, i64, i64)> {
        // Attempts for one name (or from one address) are counted one at a time: each waits for
        // the others' transactions, so it sees their rows (the two locks are taken in one order).
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock(k) FROM (
                 SELECT unnest(ARRAY[hashtext('fl-login-name:' || $1),
                                     hashtext('fl-login-addr:' || $2)])::bigint AS k
                  ORDER BY 1) keys",
        )
        .bind(name)
        .bind(address)
        .execute(&mut *tx)
        .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO operator_login_failures (operator, address) VALUES ($1, $2) RETURNING id",
        )
        .bind(name)
        .bind(address)
        .fetch_one(&mut *tx)
        .await?;
        let r = sqlx::query(
            "SELECT count(*) FILTER (WHERE operator = $1) AS by_name,
                    count(*) FILTER (WHERE address = $2) AS by_address
               FROM operator_login_failures
              WHERE at > now() - make_interval(secs => $3)
                AND (operator = $1 OR address = $2)",
        )
        .bind(name)
        .bind(address)
        .bind(window.as_secs_f64())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM operator_login_failures WHERE at < now() - interval '1 day'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((id, r.try_get("by_name")?, r.try_get("by_address")?))
    }

    /// The attempt's credential was right: it does not count against the account.
    pub async fn forgive_login_attempt(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM operator_login_failures WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Writes a failed login to the audit trail (its attempt stays counted).
    pub async fn audit_login_failure(&self, name: &str, address: &str, why: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        audit_action(
            &mut tx,
            None,
            "console.login_failed",
            &format!("operator:{name}"),
            serde_json::json!({"address": address, "why": why}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A session after a right password: the code is still due.
    pub async fn start_session(
        &self,
        id_hash: &[u8],
        operator: &str,
        csrf: &str,
        address: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO operator_sessions (id_hash, operator, stage, csrf, address)
             VALUES ($1, $2, 'password', $3, $4)",
        )
        .bind(id_hash)
        .bind(operator)
        .bind(csrf)
        .bind(address)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session of this token, its idle clock restarted; ended (deleted) when it was idle
    /// longer than `idle` or is older than `absolute` (a session still waiting for its code:
    /// five minutes).
    pub async fn touch_session(
        &self,
        id_hash: &[u8],
        idle: Duration,
        absolute: Duration,
    ) -> Result<Result<Session, NoSession>> {
        let row = sqlx::query(
            "WITH s AS (SELECT s.*, (s.last_seen < now() - make_interval(secs => $2)
                                     OR s.created_at < now() - make_interval(secs =>
                                          CASE WHEN s.stage = 'full' THEN $3 ELSE 300 END)) AS expired
                          FROM operator_sessions s WHERE s.id_hash = $1 FOR UPDATE),
                  gone AS (DELETE FROM operator_sessions d USING s
                            WHERE d.id_hash = s.id_hash AND s.expired),
                  kept AS (UPDATE operator_sessions u SET last_seen = now() FROM s
                            WHERE u.id_hash = s.id_hash AND NOT s.expired)
             SELECT s.operator, s.stage, s.csrf, s.expired, o.role
               FROM s JOIN operators o ON o.name = s.operator",
        )
        .bind(id_hash)
        .bind(idle.as_secs_f64())
        .bind(absolute.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(Err(NoSession::Unknown));
        };
        if r.try_get::<bool, _>("expired")? {
            return Ok(Err(NoSession::Expired));
        }
        Ok(Ok(Session {
            operator: r.try_get("operator")?,
            role: r.try_get("role")?,
            stage: r.try_get("stage")?,
            csrf: r.try_get("csrf")?,
        }))
    }

    /// Enrols a second factor directly (for `fiber-link dev`'s demo operator, whose key is
    /// printed instead of shown at a first login).
    pub async fn enrol_operator(&self, name: &str, sealed: &[u8]) -> Result<()> {
        sqlx::query("UPDATE operators SET totp_secret = $2, totp_pending = NULL WHERE name = $1")
            .bind(name)
            .bind(sealed)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores the secret shown on the enrolment page (sealed), until it is confirmed.
    pub async fn set_pending_totp(&self, name: &str, sealed: &[u8]) -> Result<()> {
        sqlx::query(
            "UPDATE operators SET totp_pending = $2 WHERE name = $1 AND totp_secret IS NULL",
        )
        .bind(name)
        .bind(sealed)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The code of `step` was right: takes the step (refused when it or a later one was used:
    /// a code is good once), makes a pending secret the operator's, and turns the password-stage
    /// session into a full one under a new token (the old token is dropped). `Conflict` on a
    /// replayed code.
    pub async fn complete_login(
        &self,
        old_hash: &[u8],
        new_hash: &[u8],
        name: &str,
        step: i64,
        new_csrf: &str,
        enrolled_now: bool,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE operators SET totp_last_step = $2,
                    totp_secret = CASE WHEN $3 THEN totp_pending ELSE totp_secret END,
                    totp_pending = CASE WHEN $3 THEN NULL ELSE totp_pending END
              WHERE name = $1 AND totp_last_step < $2
                AND (NOT $3 OR (totp_secret IS NULL AND totp_pending IS NOT NULL))",
        )
        .bind(name)
        .bind(step)
        .bind(enrolled_now)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Conflict("this code was already used".into()));
        }
        let r = sqlx::query(
            "UPDATE operator_sessions SET id_hash = $2, stage = 'full', csrf = $3,
                    created_at = now(), last_seen = now()
              WHERE id_hash = $1 AND operator = $4 AND stage = 'password'",
        )
        .bind(old_hash)
        .bind(new_hash)
        .bind(new_csrf)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM operator_login_failures WHERE operator = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        audit_action(
            &mut tx,
            None,
            if enrolled_now {
                "console.enrolled"
            } else {
                "console.login"
            },
            &format!("operator:{name}"),
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn end_session(&self, id_hash: &[u8]) -> Result<()> {
        sqlx::query("DELETE FROM operator_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every session of the operator; how many.
    pub async fn end_sessions(&self, name: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("DELETE FROM operator_sessions WHERE operator = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        audit_action(
            &mut tx,
            None,
            "console.logout_everywhere",
            &format!("operator:{name}"),
            serde_json::json!({"sessions": r.rows_affected()}),
        )
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    /// Takes a console form's one-time value: false when it was taken before (the form was
    /// sent twice). Values older than a day are forgotten (a form that old has a dead session).
    pub async fn take_form_once(&self, once: &str) -> Result<bool> {
        let taken: Option<String> = sqlx::query_scalar(
            "WITH old AS (DELETE FROM console_form_once WHERE at < now() - interval '1 day')
             INSERT INTO console_form_once (once) VALUES ($1)
             ON CONFLICT (once) DO NOTHING RETURNING once",
        )
        .bind(once)
        .fetch_optional(&self.pool)
        .await?;
        Ok(taken.is_some())
    }

    /// Records a reconciliation's outcome.
    pub async fn record_reconcile(
        &self,
        scope: &str,
        actor: &str,
        outcome: std::result::Result<(bool, i32, serde_json::Value), String>,
    ) -> Result<()> {
        let (clean, findings, solvency, error) = match outcome {
            Ok((c, f, s)) => (Some(c), Some(f), s, None),
            Err(e) => (None, None, serde_json::json!([]), Some(e)),
        };
        // kept 90 days (the overview charts 30)
        sqlx::query(
            "WITH old AS (DELETE FROM reconcile_runs WHERE at < now() - interval '90 days')
             INSERT INTO reconcile_runs (scope, actor, clean, findings, error, solvency)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(scope)
        .bind(actor)
        .bind(clean)
        .bind(findings)
        .bind(error)
        .bind(solvency)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The reconciliations of the last `days` days, oldest first: the last one of each hour (a
    /// cron `ops summary` every few minutes adds thousands a month), so the newest is the last.
    pub async fn reconcile_runs(&self, days: i32) -> Result<Vec<ReconcileRun>> {
        let rows = sqlx::query(
            "SELECT * FROM (
                 SELECT DISTINCT ON (date_trunc('hour', at))
                        at, scope, actor, clean, findings, error, solvency
                   FROM reconcile_runs
                  WHERE at > now() - make_interval(days => $1)
                  ORDER BY date_trunc('hour', at), at DESC, id DESC) r
              ORDER BY at",
        )
        .bind(days)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReconcileRun {
                    at: r.try_get("at")?,
                    scope: r.try_get("scope")?,
                    actor: r.try_get("actor")?,
                    clean: r.try_get("clean")?,
                    findings: r.try_get("findings")?,
                    error: r.try_get("error")?,
                    solvency: r.try_get("solvency")?,
                })
            })
            .collect()
    }

    /// Tips created and settled per day and asset over the last `days` days (by creation day).
    pub async fn daily_tips(&self, days: i32) -> Result<Vec<DailyTips>> {
        let rows = sqlx::query(
            "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, asset, count(*) AS created,
                    count(*) FILTER (WHERE state = 'SETTLED') AS settled,
                    COALESCE(sum(amount) FILTER (WHERE state = 'SETTLED'), 0)::text AS volume
               FROM tip_intents
              WHERE created_at > date_trunc('day', now()) - make_interval(days => $1 - 1)
              GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(days)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DailyTips {
                    day: r.try_get("day")?,
                    asset: r.try_get("asset")?,
                    created: r.try_get("created")?,
                    settled: r.try_get("settled")?,
                    volume: r.try_get("volume")?,
                })
            })
            .collect()
    }

    /// Withdrawals for the console's list, oldest first.
    pub async fn filter_withdrawals(&self, f: &WithdrawalFilter) -> Result<Vec<WithdrawalRow>> {
        let states: Vec<&str> = f.states.iter().map(|s| s.as_str()).collect();
        let sql = format!(
            "SELECT {COLUMNS} {FROM}
              WHERE (cardinality($1::text[]) = 0 OR w.state = ANY($1))
                AND ($2::text IS NULL OR w.app_id = $2)
                AND ($3::text IS NULL OR u.external_id = $3)
                AND ($4::float8 IS NULL OR w.created_at <= now() - make_interval(secs => $4))
              ORDER BY w.created_at LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(&states)
            .bind(&f.app_id)
            .bind(&f.user)
            .bind(f.older_than.map(|d| d.as_secs_f64()))
            .bind(f.limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Tips for the console's search, newest first.
    pub async fn find_tips(&self, q: &TipQuery, limit: i64) -> Result<Vec<TipRow>> {
        let (cond, a, b): (&str, String, Option<String>) = match q {
            TipQuery::Id(id) => ("t.id = $1::uuid", id.to_string(), None),
            TipQuery::PaymentHash(h) => ("t.payment_hash = $1", h.to_lowercase(), None),
            TipQuery::User { app_id, user } => (
                "t.app_id = $1 AND (tu.external_id = $2 OR fu.external_id = $2)",
                app_id.clone(),
                Some(user.clone()),
            ),
            TipQuery::Post { app_id, post_id } => (
                "t.app_id = $1 AND t.post_id = $2",
                app_id.clone(),
                Some(post_id.clone()),
            ),
        };
        let sql = format!(
            "SELECT {TIP_COLUMNS} {TIP_FROM} WHERE {cond} AND ($2::text IS NULL OR true)
              ORDER BY t.created_at DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(a)
            .bind(b)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tip_from_row).collect()
    }
}
