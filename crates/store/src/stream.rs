//! What the workers that follow the hub's store-change stream record (DESIGN §5): their leases
//! (`stream_followers`), and the tips an event or a gap in the stream makes due.

use crate::{Result, Store};
use chrono::{DateTime, Utc};
use std::time::Duration;

impl Store {
    /// Records that `worker_id` follows the stream since `since`, for `valid_for` from now
    /// (called when the subscription is made and then as a heartbeat).
    pub async fn follow_stream(
        &self,
        worker_id: &str,
        since: DateTime<Utc>,
        valid_for: Duration,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO stream_followers (worker_id, since, followed_until)
             VALUES ($1, $2, greatest($2, now() + make_interval(secs => $3)))
             ON CONFLICT (worker_id) DO UPDATE
                SET since = EXCLUDED.since, followed_until = EXCLUDED.followed_until",
        )
        .bind(worker_id)
        .bind(since)
        .bind(valid_for.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `worker_id`'s stream ended; rows of followers whose lease ran out a day ago go too.
    pub async fn unfollow_stream(&self, worker_id: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM stream_followers
              WHERE worker_id = $1 OR followed_until < now() - interval '1 day'",
        )
        .bind(worker_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Until when some worker follows the stream (`None`: nobody does now).
    pub async fn stream_followed_until(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(sqlx::query_scalar(
            "SELECT max(followed_until) FROM stream_followers WHERE followed_until > now()",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Whether a follower other than `worker_id` has followed the stream without a break from
    /// `since` until now (then nothing the hub announced in between was missed).
    pub async fn stream_covered_since(
        &self,
        worker_id: &str,
        since: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM stream_followers
                             WHERE worker_id <> $1 AND since <= $2 AND followed_until > now())",
        )
        .bind(worker_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The hub announced a status change for these payment hashes: their tips (any state but
    /// SETTLED) are checked within `within` (zero: at once). Hashes of no tip are ignored. With
    /// `before_expiry`, only tips still open and not yet expired (a cancel after expiry is the
    /// watcher's own, whose outcome it already has). Returns how many tips.
    pub async fn tips_due_now(
        &self,
        payment_hashes: &[String],
        within: Duration,
        before_expiry: bool,
    ) -> Result<u64> {
        if payment_hashes.is_empty() {
            return Ok(0);
        }
        Ok(sqlx::query(
            "UPDATE tip_intents SET next_check_at = now() + make_interval(secs => $2)
              WHERE payment_hash = ANY($1) AND state <> 'SETTLED'
                AND (next_check_at IS NULL OR next_check_at > now() + make_interval(secs => $2))
                AND (NOT $3 OR (state IN ('UNPAID','PENDING') AND expires_at > now()))",
        )
        .bind(payment_hashes)
        .bind(within.as_secs_f64())
        .bind(before_expiry)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// After a gap in the stream: every open tip (UNPAID, PENDING) not checked since `since` and
    /// not already due is checked at once; so is every tip that ended (EXPIRED, FAILED) after
    /// `since - late_race`. A payment can reach an ended tip's invoice only by racing its expiry
    /// or its cancel, within `late_race` of the check that ended the tip (anything written before
    /// that check, the check saw); if that write fell in the gap, nobody heard it. Returns how
    /// many.
    pub async fn sweep_open_tips(&self, since: DateTime<Utc>, late_race: Duration) -> Result<u64> {
        let open = sqlx::query(
            "UPDATE tip_intents SET next_check_at = now()
              WHERE next_check_at > now() AND state IN ('UNPAID','PENDING')
                AND (last_checked_at IS NULL OR last_checked_at < $1)",
        )
        .bind(since)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let ended = sqlx::query(
            "UPDATE tip_intents SET next_check_at = now()
              WHERE state IN ('EXPIRED','FAILED')
                AND ended_at > $1 - make_interval(secs => $2)
                AND (next_check_at IS NULL OR next_check_at > now())",
        )
        .bind(since)
        .bind(late_race.as_secs_f64())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(open + ended)
    }

    /// While nobody follows the stream: open tips scheduled further out than `horizon` (on the
    /// stream's slow schedule) are checked at once, and then on the polling schedule. Returns
    /// how many.
    pub async fn pull_in_open_tips(&self, horizon: Duration) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE tip_intents SET next_check_at = now()
              WHERE next_check_at > now() + make_interval(secs => $1)
                AND state IN ('UNPAID','PENDING')",
        )
        .bind(horizon.as_secs_f64())
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
