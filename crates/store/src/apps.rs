//! Apps (communities) and their sealed secrets.

use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::time::Duration;

#[derive(Clone, Debug, serde::Serialize)]
pub struct AppRow {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Secrets that authenticate requests now.
    pub live_secrets: i64,
}

/// One secret slot of an app, sealed as stored.
#[derive(Clone, Debug)]
pub struct SecretRow {
    pub secret_id: i32,
    pub sealed: Vec<u8>,
    /// `None` for the current secret; the end of the overlap for the previous one.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Which secrets `revoke_secrets` ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoke {
    /// The previous secret of a rotation, before its overlap ends.
    Previous,
    /// Every secret: the app can no longer authenticate until it is rotated.
    All,
}

impl Store {
    /// Creates an app with its first secret (slot 1), with the audit record of who did it.
    pub async fn create_app(
        &self,
        id: &str,
        name: &str,
        sealed_secret: Vec<u8>,
        by: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO apps (id, name) VALUES ($1, $2)")
            .bind(id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO app_secrets (app_id, secret_id, sealed) VALUES ($1, 1, $2)")
            .bind(id)
            .bind(sealed_secret)
            .execute(&mut *tx)
            .await?;
        crate::ops::audit_action(
            &mut tx,
            Some(id),
            "operator.app_created",
            &format!("operator:{by}"),
            serde_json::json!({"name": name}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_apps(&self) -> Result<Vec<AppRow>> {
        let rows = sqlx::query(
            "SELECT a.id, a.name, a.created_at,
                    (SELECT count(*) FROM app_secrets s
                      WHERE s.app_id = a.id AND s.revoked_at IS NULL
                        AND (s.expires_at IS NULL OR s.expires_at > now())) AS live
               FROM apps a ORDER BY a.created_at, a.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(AppRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    live_secrets: r.try_get("live")?,
                })
            })
            .collect()
    }

    pub async fn app_name(&self, app_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT name FROM apps WHERE id = $1")
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The secrets that authenticate requests for `app_id` now; `None` if the app does not exist.
    pub async fn live_secrets(&self, app_id: &str) -> Result<Option<Vec<SecretRow>>> {
        let rows = sqlx::query(
            "SELECT s.secret_id, s.sealed, s.expires_at
               FROM apps a
               LEFT JOIN app_secrets s
                 ON s.app_id = a.id AND s.revoked_at IS NULL
                AND (s.expires_at IS NULL OR s.expires_at > now())
              WHERE a.id = $1",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for r in rows {
            let id: Option<i32> = r.try_get("secret_id")?;
            if let Some(secret_id) = id {
                out.push(SecretRow {
                    secret_id,
                    sealed: r.try_get("sealed")?,
                    expires_at: r.try_get("expires_at")?,
                });
            }
        }
        Ok(Some(out))
    }

    /// Starts a rotation: the current secret stays valid for `overlap` more, any older previous
    /// secret is revoked, and a new current secret is stored. `seal` gets the new secret id.
    /// Returns the new secret id and the end of the old secret's validity. Audited with `by`.
    pub async fn rotate_secret(
        &self,
        app_id: &str,
        overlap: Duration,
        seal: impl FnOnce(i32) -> Vec<u8>,
        by: &str,
    ) -> Result<(i32, Option<DateTime<Utc>>)> {
        let mut tx = self.pool.begin().await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM apps WHERE id = $1 FOR UPDATE")
                .bind(app_id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE app_secrets SET revoked_at = now()
              WHERE app_id = $1 AND revoked_at IS NULL AND expires_at IS NOT NULL",
        )
        .bind(app_id)
        .execute(&mut *tx)
        .await?;
        let old_end: Option<DateTime<Utc>> = sqlx::query_scalar(
            "UPDATE app_secrets SET expires_at = now() + make_interval(secs => $2)
              WHERE app_id = $1 AND revoked_at IS NULL AND expires_at IS NULL
              RETURNING expires_at",
        )
        .bind(app_id)
        .bind(overlap.as_secs_f64())
        .fetch_optional(&mut *tx)
        .await?;
        let next: i32 = sqlx::query_scalar(
            "SELECT COALESCE(max(secret_id), 0) + 1 FROM app_secrets WHERE app_id = $1",
        )
        .bind(app_id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO app_secrets (app_id, secret_id, sealed) VALUES ($1, $2, $3)")
            .bind(app_id)
            .bind(next)
            .bind(seal(next))
            .execute(&mut *tx)
            .await?;
        crate::ops::audit_action(
            &mut tx,
            Some(app_id),
            "operator.secret_rotated",
            &format!("operator:{by}"),
            serde_json::json!({"secret_id": next, "previous_valid_until": old_end}),
        )
        .await?;
        tx.commit().await?;
        Ok((next, old_end))
    }

    /// Revokes secrets at once. Returns how many were revoked. Audited with `by`.
    pub async fn revoke_secrets(&self, app_id: &str, which: Revoke, by: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM apps WHERE id = $1")
            .bind(app_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let sql = match which {
            Revoke::Previous => {
                "UPDATE app_secrets SET revoked_at = now()
                  WHERE app_id = $1 AND revoked_at IS NULL AND expires_at IS NOT NULL"
            }
            Revoke::All => {
                "UPDATE app_secrets SET revoked_at = now() WHERE app_id = $1 AND revoked_at IS NULL"
            }
        };
        let done = sqlx::query(sql).bind(app_id).execute(&mut *tx).await?;
        crate::ops::audit_action(
            &mut tx,
            Some(app_id),
            "operator.secret_revoked",
            &format!("operator:{by}"),
            serde_json::json!({"all": which == Revoke::All, "revoked": done.rows_affected()}),
        )
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
