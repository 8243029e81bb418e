//! Tips: creation with its intent persisted before the hub is asked, the watcher's claims and
//! state transitions, and the one credit path.

use crate::ledger::{self, Account, Cause, Entry};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use fiber_link_core::{Amount, TipState};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// A tip about to be created: everything is validated; the payment hash is derived.
#[derive(Clone, Debug)]
pub struct NewTip {
    pub id: Uuid,
    pub app_id: String,
    pub post_id: String,
    pub from_user: String,
    pub to_user: String,
    pub asset: String,
    pub amount: Amount,
    pub message: Option<String>,
    pub idempotency_key: Option<String>,
    /// A digest of the request's parameters; the same idempotency key with another fingerprint
    /// is refused.
    pub fingerprint: String,
    pub payment_hash: String,
    pub expires_at: DateTime<Utc>,
    pub first_check_at: DateTime<Utc>,
    /// The nonce of the request that asks for the tip, recorded in the tip's own statement
    /// (`None`: the caller recorded it already).
    pub nonce: Option<String>,
}

impl NewTip {
    /// The tip as stored at `at`.
    fn row(&self, at: DateTime<Utc>) -> TipRow {
        TipRow {
            id: self.id,
            app_id: self.app_id.clone(),
            post_id: self.post_id.clone(),
            from_user: self.from_user.clone(),
            to_user: self.to_user.clone(),
            asset: self.asset.clone(),
            amount: self.amount,
            message: self.message.clone(),
            idempotency_key: self.idempotency_key.clone(),
            request_fingerprint: self.fingerprint.clone(),
            payment_hash: self.payment_hash.clone(),
            invoice: None,
            state: TipState::Unpaid,
            hub_status: None,
            created_at: at,
            expires_at: self.expires_at,
            updated_at: at,
            invoice_at: None,
            pending_at: None,
            settled_at: None,
            ended_at: None,
            next_check_at: Some(self.first_check_at),
        }
    }
}

/// What the batch statement did with one tip.
enum Inserted {
    At(DateTime<Utc>),
    /// its idempotency key names a tip already
    KeyUsed,
    /// its nonce was used before
    Replayed,
    /// neither written nor refused (never expected)
    Missing,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct TipRow {
    pub id: Uuid,
    pub app_id: String,
    pub post_id: String,
    pub from_user: String,
    pub to_user: String,
    pub asset: String,
    pub amount: Amount,
    pub message: Option<String>,
    pub idempotency_key: Option<String>,
    pub request_fingerprint: String,
    pub payment_hash: String,
    pub invoice: Option<String>,
    pub state: TipState,
    pub hub_status: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub invoice_at: Option<DateTime<Utc>>,
    pub pending_at: Option<DateTime<Utc>>,
    pub settled_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// When the watcher checks it next (`None`: no more checks).
    pub next_check_at: Option<DateTime<Utc>>,
}

#[derive(Debug)]
pub enum CreateOutcome {
    Created(TipRow),
    /// A tip with this idempotency key existed already (with the same parameters or not: the
    /// caller compares fingerprints).
    Existing(TipRow),
    /// The request's nonce was used before: nothing was written.
    ReplayedNonce,
}

/// A tip the watcher claimed for a check.
#[derive(Clone, Debug)]
pub struct DueTip {
    pub id: Uuid,
    pub app_id: String,
    pub state: TipState,
    pub payment_hash: String,
    pub has_invoice: bool,
    pub asset: String,
    pub amount: Amount,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub check_failures: i32,
    pub late_checks: i32,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct TipEvent {
    pub at: DateTime<Utc>,
    pub from_state: Option<String>,
    pub to_state: String,
    pub source: String,
    pub hub_status: Option<String>,
    pub detail: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CreditOutcome {
    /// The tip is now SETTLED and the author credited, in this call. `lag_secs`: since the last
    /// check that did not see the payment (or since the tip was created).
    Credited { lag_secs: f64 },
    /// It was settled before; nothing moved.
    AlreadySettled,
}

/// Per asset, what an author has: credited and available; received by the hub and being
/// credited (incoming); invoices issued and not paid yet (awaiting payment: not income).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserBalance {
    pub asset: String,
    pub available: Amount,
    /// Tips the hub has received (PENDING) and the watcher has not credited yet.
    pub incoming: Amount,
    /// Unpaid tips whose invoice has not expired: a payer may still pay them, or walk away.
    pub awaiting_payment: Amount,
    /// Held for the author's withdrawals that are not finished.
    pub reserved: Amount,
}

/// When the watcher looks at a tip next, after a check that changed nothing.
#[derive(Clone, Debug)]
pub struct Reschedule {
    pub id: Uuid,
    pub next_check_at: Option<DateTime<Utc>>,
    pub hub_status: Option<String>,
    /// A late-payment check of an EXPIRED or FAILED tip (counts toward its backoff).
    pub late_check: bool,
}

/// A state change the watcher records.
#[derive(Clone, Debug)]
pub struct Transition<'a> {
    pub from: &'a [TipState],
    pub to: TipState,
    pub source: &'a str,
    pub hub_status: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub next_check_at: Option<DateTime<Utc>>,
}

pub(crate) const TIP_COLUMNS: &str = "t.id, t.app_id, t.post_id, fu.external_id AS from_user,
    tu.external_id AS to_user, t.asset, t.amount::text AS amount, t.message, t.idempotency_key,
    t.request_fingerprint, t.payment_hash, ti.invoice, t.state, t.hub_status, t.created_at,
    t.expires_at, GREATEST(t.updated_at, ti.issued_at) AS updated_at, ti.issued_at AS invoice_at,
    t.pending_at, t.settled_at, t.ended_at, t.next_check_at";

/// The joins [`TIP_COLUMNS`] reads from besides `tip_intents t`: the payer, the author and the
/// invoice (a tip has none until the hub's is attached).
macro_rules! tip_joins {
    () => {
        "JOIN users fu ON fu.id = t.from_user_id
    JOIN users tu ON tu.id = t.to_user_id
    LEFT JOIN tip_invoices ti ON ti.tip_id = t.id"
    };
}

pub(crate) const TIP_JOINS: &str = tip_joins!();

pub(crate) const TIP_FROM: &str = concat!("FROM tip_intents t\n    ", tip_joins!());

pub(crate) fn parse_amount(s: &str) -> Result<Amount> {
    s.parse::<u128>()
        .map(Amount::from_base_units)
        .map_err(|_| StoreError::Corrupt(format!("amount {s:?} is not a u128")))
}

fn parse_state(s: &str) -> Result<TipState> {
    s.parse().map_err(StoreError::Corrupt)
}

pub(crate) fn tip_from_row(r: &PgRow) -> Result<TipRow> {
    Ok(TipRow {
        id: r.try_get("id")?,
        app_id: r.try_get("app_id")?,
        post_id: r.try_get("post_id")?,
        from_user: r.try_get("from_user")?,
        to_user: r.try_get("to_user")?,
        asset: r.try_get("asset")?,
        amount: parse_amount(r.try_get("amount")?)?,
        message: r.try_get("message")?,
        idempotency_key: r.try_get("idempotency_key")?,
        request_fingerprint: r.try_get("request_fingerprint")?,
        payment_hash: r.try_get("payment_hash")?,
        invoice: r.try_get("invoice")?,
        state: parse_state(r.try_get("state")?)?,
        hub_status: r.try_get("hub_status")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        updated_at: r.try_get("updated_at")?,
        invoice_at: r.try_get("invoice_at")?,
        pending_at: r.try_get("pending_at")?,
        settled_at: r.try_get("settled_at")?,
        ended_at: r.try_get("ended_at")?,
        next_check_at: r.try_get("next_check_at")?,
    })
}

/// A row of a tip's timeline.
struct EventRow<'a> {
    from: Option<TipState>,
    to: TipState,
    source: &'a str,
    hub_status: Option<&'a str>,
    detail: Option<&'a str>,
}

async fn insert_event(
    tx: &mut Transaction<'_, Postgres>,
    tip_id: Uuid,
    app_id: &str,
    e: EventRow<'_>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tip_events (tip_id, app_id, from_state, to_state, source, hub_status, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tip_id)
    .bind(app_id)
    .bind(e.from.map(|s| s.as_str()))
    .bind(e.to.as_str())
    .bind(e.source)
    .bind(e.hub_status)
    .bind(e.detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Persists many tips (the records of intent) in one statement and one commit, each with the
    /// request nonce that asked for it: the nonce is recorded whatever happens to the tip, and a
    /// tip is written only when its nonce is new and its idempotency key (if any) unused. Nothing
    /// else is written for a key used before, users included. Answered in order.
    ///
    /// Every outcome is its own: a row the database refuses is retried alone, so one bad request
    /// never fails the others of its batch.
    pub async fn create_tips(&self, batch: &[NewTip]) -> Result<Vec<Result<CreateOutcome>>> {
        match self.create_tips_once(batch).await {
            Ok(out) => Ok(out),
            // nothing of the batch was written: each request alone, so that only the one the
            // database refuses fails
            Err(_) if batch.len() > 1 => {
                let mut out = Vec::with_capacity(batch.len());
                for t in batch {
                    out.push(match self.create_tips_once(std::slice::from_ref(t)).await {
                        Ok(mut one) => one.remove(0),
                        Err(e) => Err(e),
                    });
                }
                Ok(out)
            }
            Err(e) => Ok(vec![Err(e)]),
        }
    }

    /// One statement for the batch, asked again (up to three times) when a concurrent
    /// transaction created a user this one could not yet see. `Err`: nothing was written; an
    /// item's own `Err`: its statement was written, but what it did for that item could not be
    /// read back.
    async fn create_tips_once(&self, batch: &[NewTip]) -> Result<Vec<Result<CreateOutcome>>> {
        // a nonce twice in one batch: the later request is a replay of the earlier
        let mut seen = std::collections::HashSet::new();
        let replay: Vec<bool> = batch
            .iter()
            .map(|t| {
                t.nonce
                    .as_deref()
                    .is_some_and(|n| !seen.insert((t.app_id.as_str(), n)))
            })
            .collect();
        let rows: Vec<&NewTip> = batch
            .iter()
            .zip(&replay)
            .filter(|(_, r)| !**r)
            .map(|(t, _)| t)
            .collect();
        let mut last = None;
        for _ in 0..3 {
            match self.insert_tips(&rows).await {
                Ok(done) => {
                    let mut out = Vec::with_capacity(batch.len());
                    for (t, replayed) in batch.iter().zip(&replay) {
                        out.push(match (replayed, done.get(&t.id)) {
                            (true, _) | (false, Some(Inserted::Replayed)) => {
                                Ok(CreateOutcome::ReplayedNonce)
                            }
                            (false, Some(Inserted::At(at))) => {
                                Ok(CreateOutcome::Created(t.row(*at)))
                            }
                            (false, Some(Inserted::KeyUsed)) => {
                                let key = t.idempotency_key.as_deref().unwrap_or_default();
                                match self.tip_by_idempotency_key(&t.app_id, key).await {
                                    Ok(Some(existing)) => Ok(CreateOutcome::Existing(existing)),
                                    Ok(None) => Err(StoreError::Conflict(
                                        "the tip with this idempotency key could not be read; retry"
                                            .into(),
                                    )),
                                    Err(e) => Err(e),
                                }
                            }
                            (false, Some(Inserted::Missing)) | (false, None) => {
                                Err(StoreError::Conflict(
                                    "the tip was neither stored nor refused; retry".into(),
                                ))
                            }
                        });
                    }
                    return Ok(out);
                }
                // a user row inserted by a concurrent request was not visible to this statement
                // (its user id came out NULL): ask again
                Err(StoreError::Db(sqlx::Error::Database(d)))
                    if d.code().as_deref() == Some("23502") =>
                {
                    last = Some(d.message().to_string());
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!(
            "the tip could not be stored ({}); retry",
            last.unwrap_or_default()
        )))
    }

    /// The batch's statement: per tip id, whether it was written (and when), or why not.
    async fn insert_tips(&self, rows: &[&NewTip]) -> Result<HashMap<Uuid, Inserted>> {
        let col = |f: fn(&NewTip) -> Option<String>| -> Vec<Option<String>> {
            rows.iter().map(|t| f(t)).collect()
        };
        let ids: Vec<Uuid> = rows.iter().map(|t| t.id).collect();
        let expires: Vec<DateTime<Utc>> = rows.iter().map(|t| t.expires_at).collect();
        let first_checks: Vec<DateTime<Utc>> = rows.iter().map(|t| t.first_check_at).collect();
        let done: Vec<(Uuid, bool, Option<DateTime<Utc>>, bool)> = sqlx::query_as(
            "WITH v AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],
                                             $5::text[], $6::text[], $7::text[], $8::text[],
                                             $9::text[], $10::text[], $11::text[],
                                             $12::timestamptz[], $13::timestamptz[], $14::text[])
                          AS v(id, app_id, post_id, from_ext, to_ext, asset, amount, message,
                               idempotency_key, fingerprint, payment_hash, expires_at,
                               next_check_at, nonce)),
                  -- every request's nonce is used up, whatever becomes of its tip
                  nonce AS (INSERT INTO used_nonces (app_id, nonce)
                            SELECT app_id, nonce FROM v WHERE nonce IS NOT NULL
                            ON CONFLICT DO NOTHING
                            RETURNING app_id, nonce),
                  fresh AS (SELECT v.* FROM v
                             WHERE v.nonce IS NULL
                                OR EXISTS (SELECT 1 FROM nonce n
                                            WHERE n.app_id = v.app_id AND n.nonce = v.nonce)),
                  -- a key used before: nothing is written (the caller reads that tip)
                  go AS (SELECT * FROM fresh f
                          WHERE NOT EXISTS (SELECT 1 FROM tip_intents t
                                             WHERE t.app_id = f.app_id
                                               AND t.idempotency_key = f.idempotency_key)),
                  wanted AS (SELECT DISTINCT go.app_id, x.ext FROM go,
                                    LATERAL (VALUES (go.from_ext), (go.to_ext)) AS x(ext)),
                  ins AS (INSERT INTO users (app_id, external_id)
                          SELECT app_id, ext FROM wanted
                          ON CONFLICT (app_id, external_id) DO NOTHING
                          RETURNING id, app_id, external_id),
                  u AS (SELECT id, app_id, external_id FROM ins
                        UNION ALL
                        SELECT us.id, us.app_id, us.external_id FROM users us
                          JOIN wanted w ON us.app_id = w.app_id AND us.external_id = w.ext),
                  tip AS (INSERT INTO tip_intents (id, app_id, post_id, from_user_id, to_user_id,
                              asset, amount, message, idempotency_key, request_fingerprint,
                              payment_hash, state, expires_at, next_check_at)
                          SELECT go.id, go.app_id, go.post_id,
                                 (SELECT id FROM u WHERE u.app_id = go.app_id
                                                     AND u.external_id = go.from_ext LIMIT 1),
                                 (SELECT id FROM u WHERE u.app_id = go.app_id
                                                     AND u.external_id = go.to_ext LIMIT 1),
                                 go.asset, go.amount::numeric, go.message, go.idempotency_key,
                                 go.fingerprint, go.payment_hash, 'UNPAID', go.expires_at,
                                 go.next_check_at
                            FROM go
                          ON CONFLICT (app_id, idempotency_key) DO NOTHING
                          RETURNING id, app_id, created_at, from_user_id, to_user_id, asset,
                                    amount, post_id),
                  audit AS (INSERT INTO audit_log (app_id, event, actor, tip_id, user_id, payer_id, detail)
                            SELECT app_id, 'tip.created', 'api', id, to_user_id, from_user_id,
                                   jsonb_build_object('to', 'UNPAID', 'detail', 'created',
                                       'asset', asset, 'amount', amount::text, 'post_id', post_id)
                              FROM tip)
             SELECT v.id,
                    EXISTS (SELECT 1 FROM fresh f WHERE f.id = v.id) AS fresh,
                    tip.created_at,
                    v.idempotency_key IS NOT NULL AS keyed
               FROM v LEFT JOIN tip ON tip.id = v.id",
        )
        .bind(&ids)
        .bind(col(|t| Some(t.app_id.clone())))
        .bind(col(|t| Some(t.post_id.clone())))
        .bind(col(|t| Some(t.from_user.clone())))
        .bind(col(|t| Some(t.to_user.clone())))
        .bind(col(|t| Some(t.asset.clone())))
        .bind(col(|t| Some(t.amount.to_string())))
        .bind(col(|t| t.message.clone()))
        .bind(col(|t| t.idempotency_key.clone()))
        .bind(col(|t| Some(t.fingerprint.clone())))
        .bind(col(|t| Some(t.payment_hash.clone())))
        .bind(&expires)
        .bind(&first_checks)
        .bind(col(|t| t.nonce.clone()))
        .fetch_all(&self.pool)
        .await?;
        Ok(done
            .into_iter()
            .map(|(id, fresh, at, keyed)| {
                let what = match (fresh, at) {
                    (false, _) => Inserted::Replayed,
                    (true, Some(at)) => Inserted::At(at),
                    (true, None) if keyed => Inserted::KeyUsed,
                    (true, None) => Inserted::Missing,
                };
                (id, what)
            })
            .collect())
    }

    pub async fn tip_by_idempotency_key(&self, app_id: &str, key: &str) -> Result<Option<TipRow>> {
        let sql = format!(
            "SELECT {TIP_COLUMNS} {TIP_FROM} WHERE t.app_id = $1 AND t.idempotency_key = $2"
        );
        let row = sqlx::query(&sql)
            .bind(app_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tip_from_row).transpose()
    }

    /// A tip of this app; `None` for an unknown id or another app's tip.
    pub async fn tip(&self, app_id: &str, id: Uuid) -> Result<Option<TipRow>> {
        let sql = format!("SELECT {TIP_COLUMNS} {TIP_FROM} WHERE t.id = $1 AND t.app_id = $2");
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tip_from_row).transpose()
    }

    /// A tip by id alone, for the operator's tools and the watcher (never for an API caller).
    pub async fn tip_any_app(&self, id: Uuid) -> Result<Option<TipRow>> {
        let sql = format!("SELECT {TIP_COLUMNS} {TIP_FROM} WHERE t.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tip_from_row).transpose()
    }

    /// A tip's events in order. The first two come from the tip row itself (since migration 7
    /// they are not written as event rows): "created" at `created_at`, and "invoice issued" at
    /// `invoice_at` by `invoice_source`.
    pub async fn tip_events(&self, app_id: &str, id: Uuid) -> Result<Vec<TipEvent>> {
        let rows = sqlx::query(
            "SELECT at, from_state, to_state, source, hub_status, detail, id AS ord FROM tip_events
              WHERE tip_id = $1 AND app_id = $2
             UNION ALL
             SELECT created_at, NULL, 'UNPAID', 'api', NULL, 'created', -2 FROM tip_intents t
              WHERE id = $1 AND app_id = $2
                AND NOT EXISTS (SELECT 1 FROM tip_events e
                                 WHERE e.tip_id = t.id AND e.app_id = t.app_id AND e.from_state IS NULL)
             UNION ALL
             SELECT i.issued_at, 'UNPAID', 'UNPAID', i.source, NULL, 'invoice issued', -1
               FROM tip_invoices i JOIN tip_intents t ON t.id = i.tip_id
              WHERE i.tip_id = $1 AND t.app_id = $2 AND i.source IS NOT NULL
             ORDER BY at, ord",
        )
        .bind(id)
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TipEvent {
                    at: r.try_get("at")?,
                    from_state: r.try_get("from_state")?,
                    to_state: r.try_get("to_state")?,
                    source: r.try_get("source")?,
                    hub_status: r.try_get("hub_status")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Stores the invoice the hub issued for a tip (once), with its event. Returns when it was
    /// stored, or `None` if the tip had an invoice already.
    pub async fn attach_invoice(
        &self,
        app_id: &str,
        id: Uuid,
        invoice: &str,
        source: &str,
    ) -> Result<Option<DateTime<Utc>>> {
        let one = [(id, app_id.to_string(), invoice.to_string())];
        Ok(self.attach_invoices(&one, source).await?.pop().flatten())
    }

    /// [`Store::attach_invoice`] for many tips in one statement: `(tip id, app id, invoice)`,
    /// answered in order.
    pub async fn attach_invoices(
        &self,
        batch: &[(Uuid, String, String)],
        source: &str,
    ) -> Result<Vec<Option<DateTime<Utc>>>> {
        let ids: Vec<Uuid> = batch.iter().map(|b| b.0).collect();
        let apps: Vec<&str> = batch.iter().map(|b| b.1.as_str()).collect();
        let invoices: Vec<&str> = batch.iter().map(|b| b.2.as_str()).collect();
        // The invoice's row is its "issued" event too (issued_at, source). The commit does
        // not wait for the disk (synchronous_commit off for this one transaction): if the
        // database crashes before the write reaches it, the tip is left without its invoice, and
        // the watcher reads the invoice back from the hub by the payment hash that was stored
        // first (Watcher::complete_invoice).
        let done: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true)),
                  v AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) AS v(id, app_id, invoice))
             INSERT INTO tip_invoices (tip_id, invoice, source)
             SELECT t.id, v.invoice, $4
               FROM v JOIN tip_intents t ON t.id = v.id AND t.app_id = v.app_id, lazy
             ON CONFLICT (tip_id) DO NOTHING
             RETURNING tip_id, issued_at",
        )
        .bind(&ids)
        .bind(&apps)
        .bind(&invoices)
        .bind(source)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids
            .iter()
            .map(|id| done.iter().find(|(d, _)| d == id).map(|(_, at)| *at))
            .collect())
    }

    /// Someone is watching this tip: have the watcher check it by `at` (no write if it will
    /// already).
    pub async fn watch_tip(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE tip_intents SET next_check_at = $2
              WHERE id = $1 AND state IN ('UNPAID','PENDING') AND next_check_at > $2",
        )
        .bind(id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims up to `limit` tips whose check is due, for `lease` (any number of workers may call
    /// this at once: `SKIP LOCKED` hands each due tip to one of them; a worker that dies lets the
    /// lease run out and another takes the tip).
    pub async fn claim_due_tips(&self, limit: i64, lease: Duration) -> Result<Vec<DueTip>> {
        let rows = sqlx::query(
            "UPDATE tip_intents t
                SET next_check_at = now() + make_interval(secs => $2)
               FROM (SELECT id FROM tip_intents
                      WHERE next_check_at <= now()
                      ORDER BY next_check_at
                      LIMIT $1
                      FOR UPDATE SKIP LOCKED) due
              WHERE t.id = due.id
             RETURNING t.id, t.app_id, t.state, t.payment_hash,
                       EXISTS (SELECT 1 FROM tip_invoices i WHERE i.tip_id = t.id) AS has_invoice,
                       t.asset, t.amount::text AS amount, t.created_at, t.expires_at,
                       t.check_failures, t.late_checks",
        )
        .bind(limit)
        .bind(lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DueTip {
                    id: r.try_get("id")?,
                    app_id: r.try_get("app_id")?,
                    state: parse_state(r.try_get("state")?)?,
                    payment_hash: r.try_get("payment_hash")?,
                    has_invoice: r.try_get("has_invoice")?,
                    asset: r.try_get("asset")?,
                    amount: parse_amount(r.try_get("amount")?)?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    check_failures: r.try_get("check_failures")?,
                    late_checks: r.try_get("late_checks")?,
                })
            })
            .collect()
    }

    /// Moves a tip from one of `tr.from` to `tr.to`, with its event, in one statement. Returns
    /// false (and changes nothing) when the tip is no longer in one of the `from` states.
    /// Crediting never goes through here: see [`Store::credit_tip`].
    pub async fn transition_tip(&self, id: Uuid, tr: &Transition<'_>) -> Result<bool> {
        debug_assert!(
            tr.to != TipState::Settled,
            "settling goes through credit_tip"
        );
        let from: Vec<&str> = tr.from.iter().map(|s| s.as_str()).collect();
        let row = sqlx::query(
            "WITH old AS (SELECT id, state FROM tip_intents
                           WHERE id = $1 AND state = ANY($2) FOR UPDATE),
                  upd AS (UPDATE tip_intents t SET
                              state = $3,
                              updated_at = now(),
                              hub_status = COALESCE($4, t.hub_status),
                              pending_at = CASE WHEN $3 = 'PENDING' THEN now() ELSE t.pending_at END,
                              ended_at = CASE WHEN $3 IN ('EXPIRED','FAILED') THEN now() ELSE t.ended_at END,
                              -- due already (an announcement came during the check): stays due
                              next_check_at = CASE WHEN t.next_check_at <= now() THEN t.next_check_at
                                                   ELSE $5 END,
                              last_checked_at = now(),
                              check_failures = 0,
                              late_checks = 0,
                              last_error = NULL
                            FROM old WHERE t.id = old.id
                          RETURNING t.id, t.app_id, old.state AS from_state)
             INSERT INTO tip_events (tip_id, app_id, from_state, to_state, source, hub_status, detail)
             SELECT id, app_id, from_state, $3, $6, $4, $7 FROM upd
             RETURNING id",
        )
        .bind(id)
        .bind(&from)
        .bind(tr.to.as_str())
        .bind(tr.hub_status)
        .bind(tr.next_check_at)
        .bind(tr.source)
        .bind(tr.detail)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Records a check that changed nothing: when to look again, and what the hub said.
    pub async fn reschedule_tip(
        &self,
        id: Uuid,
        next_check_at: Option<DateTime<Utc>>,
        hub_status: Option<&str>,
        late_check: bool,
    ) -> Result<()> {
        let one = Reschedule {
            id,
            next_check_at,
            hub_status: hub_status.map(str::to_string),
            late_check,
        };
        self.reschedule_tips(&[one]).await
    }

    /// Many [`Store::reschedule_tip`]s in one statement (the watcher's checks of one round).
    pub async fn reschedule_tips(&self, batch: &[Reschedule]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = batch.iter().map(|r| r.id).collect();
        let next: Vec<Option<DateTime<Utc>>> = batch.iter().map(|r| r.next_check_at).collect();
        let status: Vec<Option<&str>> = batch.iter().map(|r| r.hub_status.as_deref()).collect();
        let late: Vec<bool> = batch.iter().map(|r| r.late_check).collect();
        sqlx::query(
            // A tip made due while it was being checked (the hub announced a change meanwhile:
            // its claim's lease was cut short) stays due; otherwise it waits for its next check.
            "UPDATE tip_intents t
                SET next_check_at = CASE WHEN t.next_check_at <= now() THEN t.next_check_at
                                         ELSE v.next_check_at END,
                    last_checked_at = now(),
                    hub_status = COALESCE(v.hub_status, t.hub_status), check_failures = 0,
                    last_error = NULL,
                    late_checks = t.late_checks + CASE WHEN v.late THEN 1 ELSE 0 END
               FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::bool[])
                    AS v(id, next_check_at, hub_status, late)
              WHERE t.id = v.id AND t.state <> 'SETTLED'",
        )
        .bind(&ids)
        .bind(&next)
        .bind(&status)
        .bind(&late)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed hub call: the tip keeps its state and is retried at `next_check_at`.
    pub async fn record_check_failure(
        &self,
        id: Uuid,
        next_check_at: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE tip_intents SET next_check_at = $2, last_checked_at = now(),
                    check_failures = check_failures + 1, last_error = left($3, 500)
              WHERE id = $1 AND state <> 'SETTLED'",
        )
        .bind(id)
        .bind(next_check_at)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The one credit path: the tip becomes SETTLED and its author is credited with the tip's
    /// amount, in one database transaction (conditional state update + balanced ledger
    /// transaction under the key `tip:<id>:settle`). Whoever sees the hub report `Paid` calls
    /// this; calling it twice, or from two workers at once, credits once.
    pub async fn credit_tip(
        &self,
        id: Uuid,
        source: &str,
        detail: Option<&str>,
    ) -> Result<CreditOutcome> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT app_id, to_user_id, asset, amount::text AS amount, state,
                    extract(epoch FROM clock_timestamp() - COALESCE(last_checked_at, created_at))::float8
                        AS lag_secs
               FROM tip_intents WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let app_id: String = row.try_get("app_id")?;
        let to_user: i64 = row.try_get("to_user_id")?;
        let asset: String = row.try_get("asset")?;
        let amount: String = row.try_get("amount")?;
        let state = parse_state(row.try_get("state")?)?;
        let lag_secs: f64 = row.try_get("lag_secs")?;
        if state == TipState::Settled {
            return Ok(CreditOutcome::AlreadySettled);
        }
        sqlx::query(
            "UPDATE tip_intents SET state = 'SETTLED', hub_status = 'Paid', settled_at = now(),
                    updated_at = now(), next_check_at = NULL, last_checked_at = now(),
                    check_failures = 0, last_error = NULL
              WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let amount = parse_amount(&amount)?.base_units();
        ledger::post(
            &mut tx,
            &app_id,
            &asset,
            "tip_settle",
            &format!("tip:{id}:settle"),
            Cause::Tip(id),
            &[
                Entry::credit(Account::Author(to_user), amount),
                Entry::debit(Account::Hub, amount),
            ],
        )
        .await?;
        let settled = EventRow {
            from: Some(state),
            to: TipState::Settled,
            source,
            hub_status: Some("Paid"),
            detail,
        };
        insert_event(&mut tx, id, &app_id, settled).await?;
        tx.commit().await?;
        Ok(CreditOutcome::Credited { lag_secs })
    }

    /// An author's balances per asset (only assets with something in them).
    pub async fn user_balances(&self, app_id: &str, user: &str) -> Result<Vec<UserBalance>> {
        let rows = sqlx::query(
            "WITH u AS (SELECT id FROM users WHERE app_id = $1 AND external_id = $2),
                  avail AS (SELECT a.asset, a.balance AS amount FROM accounts a, u
                             WHERE a.app_id = $1 AND a.kind = 'author'
                               AND COALESCE(a.user_id, 0) = u.id),
                  open AS (SELECT t.asset,
                                  sum(t.amount) FILTER (WHERE t.state = 'PENDING') AS incoming,
                                  sum(t.amount) FILTER (WHERE t.state = 'UNPAID') AS awaiting
                                 FROM tip_intents t, u
                                WHERE t.app_id = $1 AND t.to_user_id = u.id
                                  AND t.state IN ('PENDING', 'UNPAID')
                                  AND (t.state = 'PENDING' OR t.expires_at > now())
                                GROUP BY t.asset),
                  reserved AS (SELECT w.asset, sum(w.amount) AS amount FROM withdrawals w, u
                                WHERE w.app_id = $1 AND w.user_id = u.id
                                  AND w.state NOT IN ('COMPLETED','FAILED','CANCELLED')
                                GROUP BY w.asset),
                  assets AS (SELECT asset FROM avail UNION SELECT asset FROM open
                             UNION SELECT asset FROM reserved)
             SELECT assets.asset,
                    COALESCE(avail.amount, 0)::text AS available,
                    COALESCE(open.incoming, 0)::text AS incoming,
                    COALESCE(open.awaiting, 0)::text AS awaiting_payment,
                    COALESCE(reserved.amount, 0)::text AS reserved
               FROM assets LEFT JOIN avail USING (asset) LEFT JOIN open USING (asset)
                    LEFT JOIN reserved USING (asset)
              ORDER BY 1",
        )
        .bind(app_id)
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UserBalance {
                    asset: r.try_get("asset")?,
                    available: parse_amount(r.try_get("available")?)?,
                    incoming: parse_amount(r.try_get("incoming")?)?,
                    awaiting_payment: parse_amount(r.try_get("awaiting_payment")?)?,
                    reserved: parse_amount(r.try_get("reserved")?)?,
                })
            })
            .collect()
    }

    /// What these posts of one app have received: settled tips per post and asset (amount in
    /// base units, count). Posts with none are absent.
    pub async fn post_totals(
        &self,
        app_id: &str,
        post_ids: &[String],
    ) -> Result<Vec<(String, String, Amount, i64)>> {
        let rows = sqlx::query(
            "SELECT post_id, asset, sum(amount)::text AS amount, count(*) AS tips
               FROM tip_intents
              WHERE app_id = $1 AND post_id = ANY($2) AND state = 'SETTLED'
              GROUP BY post_id, asset ORDER BY post_id, asset",
        )
        .bind(app_id)
        .bind(post_ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("post_id")?,
                    r.try_get("asset")?,
                    parse_amount(r.try_get("amount")?)?,
                    r.try_get("tips")?,
                ))
            })
            .collect()
    }

    /// How many ledger transactions a tip has (tests and reconciliation read the ledger, not the
    /// log).
    pub async fn tip_ledger_transactions(&self, id: Uuid) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM ledger_transactions WHERE tip_id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// A user's tips, received or sent, newest first, after the keyset `cursor` (created_at, id).
    pub async fn list_tips(
        &self,
        app_id: &str,
        user: &str,
        received: bool,
        state: Option<TipState>,
        cursor: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<TipRow>> {
        let side = if received {
            "to_user_id"
        } else {
            "from_user_id"
        };
        // Each optional condition is in the text only when used: "$x IS NULL OR …" would keep
        // the planner from starting the index scan at the cursor.
        let state_cond = if state.is_some() {
            "AND t.state = $4"
        } else {
            "AND $4::text IS NULL"
        };
        let cursor_cond = if cursor.is_some() {
            "AND (t.created_at, t.id) < ($5, $6)"
        } else {
            "AND $5::timestamptz IS NULL AND $6::uuid IS NULL"
        };
        let sql = format!(
            "SELECT {TIP_COLUMNS} {TIP_FROM}
              WHERE t.app_id = $1
                AND t.{side} = (SELECT id FROM users WHERE app_id = $1 AND external_id = $2)
                {state_cond} {cursor_cond}
              ORDER BY t.created_at DESC, t.id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(app_id)
            .bind(user)
            .bind(limit)
            .bind(state.map(|s| s.as_str()))
            .bind(cursor.map(|c| c.0))
            .bind(cursor.map(|c| c.1))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tip_from_row).collect()
    }

    /// Counts for a dashboard: tips received, received and settled, and sent.
    pub async fn tip_counts(&self, app_id: &str, user: &str) -> Result<(i64, i64, i64)> {
        let r = sqlx::query(
            "WITH u AS (SELECT id FROM users WHERE app_id = $1 AND external_id = $2),
                  r AS (SELECT count(*) AS received,
                               count(*) FILTER (WHERE t.state = 'SETTLED') AS settled
                          FROM tip_intents t, u WHERE t.app_id = $1 AND t.to_user_id = u.id)
             SELECT r.received, r.settled,
                    (SELECT count(*) FROM tip_intents t, u
                      WHERE t.app_id = $1 AND t.from_user_id = u.id) AS sent
               FROM r",
        )
        .bind(app_id)
        .bind(user)
        .fetch_one(&self.pool)
        .await?;
        Ok((
            r.try_get("received")?,
            r.try_get("settled")?,
            r.try_get("sent")?,
        ))
    }

    /// The app's settled tips in settlement order after `after` (commit xid, ledger id). Only
    /// settlements whose database transaction id is below the oldest still running are handed
    /// out, so one that commits late can never fall behind a cursor already given.
    pub async fn settled_feed(
        &self,
        app_id: &str,
        after: Option<(u64, i64)>,
        limit: i64,
    ) -> Result<Vec<(TipRow, (u64, i64))>> {
        let sql = format!(
            "SELECT {TIP_COLUMNS}, lt.commit_xid::text AS xid, lt.id AS lid
               FROM ledger_transactions lt
               JOIN tip_intents t ON t.id = lt.tip_id
               {TIP_JOINS}
              WHERE lt.app_id = $1 AND lt.kind = 'tip_settle'
                AND lt.commit_xid < pg_snapshot_xmin(pg_current_snapshot())
                AND ($2::text IS NULL OR (lt.commit_xid, lt.id) > ($2::text::xid8, $3))
              ORDER BY lt.commit_xid, lt.id LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(app_id)
            .bind(after.map(|a| a.0.to_string()))
            .bind(after.map(|a| a.1))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let xid: String = r.try_get("xid")?;
                let xid = xid
                    .parse::<u64>()
                    .map_err(|_| StoreError::Corrupt(format!("xid {xid:?}")))?;
                Ok((tip_from_row(r)?, (xid, r.try_get("lid")?)))
            })
            .collect()
    }
}
