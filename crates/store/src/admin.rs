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
}
