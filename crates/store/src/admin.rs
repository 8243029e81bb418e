//! Databases and read-outs for the benchmark and the operator's tools.

use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "invalid database name {name:?}"
        )))
    }
}

impl Store {
    /// Creates a database on this server (the name is checked: lower-case letters, digits, _).
    pub async fn create_database(&self, name: &str) -> Result<()> {
        check_name(name)?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn drop_database(&self, name: &str) -> Result<()> {
        check_name(name)?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Lets the server catch up between benchmark phases: vacuum and analyze the tips, then
    /// checkpoint (the checkpoint needs a superuser; without one it is skipped).
    pub async fn settle_down(&self) -> Result<()> {
        sqlx::query("VACUUM (ANALYZE) tip_intents")
            .execute(&self.pool)
            .await?;
        let _ = sqlx::query("CHECKPOINT").execute(&self.pool).await;
        Ok(())
    }

    /// The process ids of this database server's backends and background processes (for a
    /// benchmark that counts the server's CPU time on the same machine).
    pub async fn server_pids(&self) -> Result<Vec<i32>> {
        Ok(sqlx::query_scalar("SELECT pid FROM pg_stat_activity")
            .fetch_all(&self.pool)
            .await?)
    }

    /// How many of these tips are in one of `states`.
    pub async fn count_in_states(&self, ids: &[Uuid], states: &[&str]) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM tip_intents WHERE id = ANY($1) AND state = ANY($2)",
        )
        .bind(ids)
        .bind(states)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Up to `n` tip ids, any app.
    pub async fn some_tip_ids(&self, n: i64) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar("SELECT id FROM tip_intents LIMIT $1")
            .bind(n)
            .fetch_all(&self.pool)
            .await?)
    }

    /// When each of these tips was settled (settled ones only).
    pub async fn settled_at(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, DateTime<Utc>)>> {
        Ok(sqlx::query_as(
            "SELECT id, settled_at FROM tip_intents WHERE id = ANY($1) AND settled_at IS NOT NULL",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Seeds an app with a history for the read benchmark, in a few set-based statements: 1000
    /// authors and 1000 readers; `tips` tips of 1.5 CKB (a fifth of them to `author-0`, 80 %
    /// settled with their ledger transactions); then, per author who received tips,
    /// `withdrawals_per_author` completed Fiber withdrawals of 0.5 CKB (reserve and complete
    /// transactions). Goes through
    /// the ledger's own triggers and constraints, so the books are as real ones would be.
    pub async fn seed_history(
        &self,
        app_id: &str,
        tips: i64,
        withdrawals_per_author: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO users (app_id, external_id)
             SELECT $1, k || '-' || g FROM generate_series(0, 999) g, (VALUES ('author'), ('reader')) v(k)
             ON CONFLICT DO NOTHING",
        )
        .bind(app_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO accounts (app_id, kind, user_id, asset)
             SELECT $1, 'author', id, 'CKB' FROM users WHERE app_id = $1 AND external_id LIKE 'author-%'
             UNION ALL SELECT $1, k, NULL, 'CKB' FROM (VALUES ('hub'), ('payouts_in_flight'), ('fees')) v(k)
             ON CONFLICT DO NOTHING",
        )
        .bind(app_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO tip_intents (id, app_id, post_id, from_user_id, to_user_id, asset, amount,
                    request_fingerprint, payment_hash, state, created_at, expires_at, updated_at,
                    settled_at, ended_at)
             SELECT gen_random_uuid(), $1, 'post-' || (g % 5000), r.id, a.id, 'CKB', 150000000, 'seed',
                    '0x' || encode(sha256(convert_to($1 || g, 'UTF8')), 'hex'),
                    CASE WHEN (g / 1000) % 5 = 4 THEN 'EXPIRED' ELSE 'SETTLED' END,
                    now() - make_interval(secs => $2 - g), now() - make_interval(secs => $2 - g - 3600),
                    now(),
                    CASE WHEN (g / 1000) % 5 = 4 THEN NULL ELSE now() - make_interval(secs => $2 - g - 5) END,
                    CASE WHEN (g / 1000) % 5 = 4 THEN now() - make_interval(secs => $2 - g - 3600) END
               FROM generate_series(0, $2 - 1) g
               JOIN users a ON a.app_id = $1
                AND a.external_id = 'author-' || CASE WHEN g % 5 = 0 THEN 0 ELSE g % 1000 END
               JOIN users r ON r.app_id = $1 AND r.external_id = 'reader-' || (g % 1000)",
        )
        .bind(app_id)
        .bind(tips)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO withdrawals (id, app_id, user_id, asset, amount, fee, receive_amount, fee_mode,
                    rail, destination, idempotency_key, request_fingerprint, state, payment_hash,
                    actual_fee, created_at, updated_at, progressed_at, submitted_at, completed_at, ended_at)
             SELECT gen_random_uuid(), $1, u.id, 'CKB', 50000000, 250000, 49750000, 'deduct', 'fiber',
                    '{\"kind\": \"fiber_invoice\", \"invoice\": \"seed\"}', 'seed-' || u.id || '-' || g, 'seed',
                    'COMPLETED', '0x' || encode(sha256(convert_to($1 || u.id || '-' || g, 'UTF8')), 'hex'),
                    50000, now() - make_interval(secs => g * 60), now(), now(), now(), now(), now()
               FROM users u, generate_series(1, $2) g
              WHERE u.app_id = $1 AND u.external_id LIKE 'author-%'
                AND (u.external_id = 'author-0'
                     OR (regexp_replace(u.external_id, '\\D', '', 'g'))::int % 5 <> 0)",
        )
        .bind(app_id)
        .bind(withdrawals_per_author)
        .execute(&mut *tx)
        .await?;
        // Tips and withdrawals are inserted first (one transaction); their ledger transactions
        // follow in 16 chunks, each committed: one transaction updating an author's balance row
        // tens of thousands of times would crawl along its own chain of row versions.
        tx.commit().await?;
        for chunk in "0123456789abcdef".chars().map(String::from) {
            sqlx::query(
            "WITH t AS (SELECT id, to_user_id FROM tip_intents WHERE app_id = $1 AND state = 'SETTLED'
                                AND left(id::text, 1) = $2),
                  lt AS (INSERT INTO ledger_transactions (app_id, kind, idempotency_key, tip_id)
                         SELECT $1, 'tip_settle', 'tip:' || id || ':settle', id FROM t
                         RETURNING id, tip_id)
             INSERT INTO ledger_entries (transaction_id, account_id, app_id, asset, amount)
             SELECT lt.id, x.account, $1, 'CKB', x.amount
               FROM lt JOIN t ON t.id = lt.tip_id
               JOIN accounts au ON au.app_id = $1 AND au.kind = 'author' AND au.user_id = t.to_user_id
               JOIN accounts hub ON hub.app_id = $1 AND hub.kind = 'hub' AND hub.asset = 'CKB'
               CROSS JOIN LATERAL (VALUES (au.id, 150000000::numeric), (hub.id, -150000000::numeric)) x(account, amount)",
        )
            .bind(app_id)
            .bind(chunk)
            .execute(&self.pool)
            .await?;
        }
        for (kind, key, entries) in [
            (
                "withdrawal_reserve",
                "reserve",
                "(au.id, -50000000::numeric), (fl.id, 50000000::numeric)",
            ),
            (
                "withdrawal_complete",
                "complete",
                "(fl.id, -50000000::numeric), (hub.id, 49750000::numeric), (fees.id, 50000::numeric), (au.id, 200000::numeric)",
            ),
        ] {
            let sql = format!(
                "WITH w AS (SELECT id, user_id FROM withdrawals WHERE app_id = $1
                             AND left(id::text, 1) = $2),
                      lt AS (INSERT INTO ledger_transactions (app_id, kind, idempotency_key, withdrawal_id)
                             SELECT $1, '{kind}', 'withdrawal:' || id || ':{key}', id FROM w
                             RETURNING id, withdrawal_id)
                 INSERT INTO ledger_entries (transaction_id, account_id, app_id, asset, amount)
                 SELECT lt.id, x.account, $1, 'CKB', x.amount
                   FROM lt JOIN w ON w.id = lt.withdrawal_id
                   JOIN accounts au ON au.app_id = $1 AND au.kind = 'author' AND au.user_id = w.user_id
                   JOIN accounts hub ON hub.app_id = $1 AND hub.kind = 'hub' AND hub.asset = 'CKB'
                   JOIN accounts fl ON fl.app_id = $1 AND fl.kind = 'payouts_in_flight' AND fl.asset = 'CKB'
                   JOIN accounts fees ON fees.app_id = $1 AND fees.kind = 'fees' AND fees.asset = 'CKB'
                   CROSS JOIN LATERAL (VALUES {entries}) x(account, amount)"
            );
            for chunk in "0123456789abcdef".chars().map(String::from) {
                sqlx::query(&sql)
                    .bind(app_id)
                    .bind(&chunk)
                    .execute(&self.pool)
                    .await?;
            }
        }
        // as autovacuum leaves a table that grew over time: statistics and visibility map
        sqlx::query("VACUUM ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    /// Rows per table of what a request can write (tips, users, withdrawals, the ledger, nonces,
    /// policies, audit), for checkers that compare a database with what was accepted.
    pub async fn row_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT 'tip_intents', count(*) FROM tip_intents
             UNION ALL SELECT 'tip_invoices', count(*) FROM tip_invoices
             UNION ALL SELECT 'tip_events', count(*) FROM tip_events
             UNION ALL SELECT 'users', count(*) FROM users
             UNION ALL SELECT 'withdrawals', count(*) FROM withdrawals
             UNION ALL SELECT 'withdrawal_events', count(*) FROM withdrawal_events
             UNION ALL SELECT 'withdrawal_policies', count(*) FROM withdrawal_policies
             UNION ALL SELECT 'ledger_transactions', count(*) FROM ledger_transactions
             UNION ALL SELECT 'ledger_entries', count(*) FROM ledger_entries
             UNION ALL SELECT 'accounts', count(*) FROM accounts
             UNION ALL SELECT 'used_nonces', count(*) FROM used_nonces
             UNION ALL SELECT 'audit_log', count(*) FROM audit_log
             UNION ALL SELECT 'apps', count(*) FROM apps",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many ledger entries the database holds.
    pub async fn ledger_entry_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM ledger_entries")
            .fetch_one(&self.pool)
            .await?)
    }
}
