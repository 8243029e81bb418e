//! Request nonces: each accepted once per app, remembered in Postgres so replays fail across
//! restarts and across API instances.

use crate::{Result, Store};
use std::collections::HashSet;
use std::time::Duration;

impl Store {
    /// Records a batch of `(app_id, nonce)` pairs in one statement (one commit for many requests)
    /// and tells, per pair, whether it was new. A pair that appears twice in the batch is new at
    /// most once. `lazy`: the commit does not wait for the disk (for requests that only read: a
    /// database crash just after may forget these nonces).
    pub async fn consume_nonces(
        &self,
        batch: &[(String, String)],
        lazy: bool,
    ) -> Result<Vec<bool>> {
        let (apps, nonces): (Vec<&str>, Vec<&str>) =
            batch.iter().map(|(a, n)| (a.as_str(), n.as_str())).unzip();
        let inserted: Vec<(String, String)> = sqlx::query_as(
            "WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true) WHERE $3)
             INSERT INTO used_nonces (app_id, nonce)
             SELECT v.* FROM unnest($1::text[], $2::text[]) AS v
              WHERE (SELECT count(*) FROM lazy) >= 0
             ON CONFLICT DO NOTHING
             RETURNING app_id, nonce",
        )
        .bind(&apps)
        .bind(&nonces)
        .bind(lazy)
        .fetch_all(&self.pool)
        .await?;
        let mut fresh: HashSet<(String, String)> = inserted.into_iter().collect();
        Ok(batch.iter().map(|p| fresh.remove(p)).collect())
    }

    /// Forgets nonces older than `keep` (which must exceed twice the timestamp window).
    pub async fn prune_nonces(&self, keep: Duration) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM used_nonces WHERE seen_at < now() - make_interval(secs => $1)",
        )
        .bind(keep.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
