//! The app's policy overrides per asset, and the author's standing that the policy is checked
//! against.

use crate::tips::parse_amount;
use crate::{Result, Store, StoreError};
use fiber_link_core::withdrawal::Standing;
use fiber_link_core::{Amount, Policy};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

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

pub(super) fn policy_from_row(r: &PgRow) -> Result<PolicyOverride> {
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

pub(super) const POLICY_COLUMNS: &str = "allowed, min_amount::text AS min_amount,
    max_per_request::text AS max_per_request, author_daily_cap::text AS author_daily_cap,
    app_daily_cap::text AS app_daily_cap, cooldown_secs,
    approval_threshold::text AS approval_threshold";

/// The author's standing in one asset, read inside `tx` (after the locks are taken).
pub(super) async fn standing(
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

pub(super) async fn user_id(
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
}
