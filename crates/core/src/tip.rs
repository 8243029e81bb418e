//! The tip state machine and the settlement watcher's check schedule.
//!
//! States: `UNPAID → PENDING → SETTLED`, `UNPAID|PENDING → EXPIRED`, `UNPAID → FAILED`. A tip the hub
//! reports `Paid` is always credited, whatever its local state (a late payment is the payer's money).
//! Only what the hub says ends a tip; a hub that cannot be reached never does.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TipState {
    /// Invoice issued (or being issued), nothing received yet.
    Unpaid,
    /// The hub reports the payment `Received`; not yet `Paid`.
    Pending,
    /// Paid at the hub and credited to the author. Final.
    Settled,
    /// Unpaid when its invoice expired; the invoice was cancelled at the hub.
    Expired,
    /// The hub reports the invoice cancelled (not by us), or it never had an invoice.
    Failed,
}

impl TipState {
    pub const ALL: [TipState; 5] = [
        TipState::Unpaid,
        TipState::Pending,
        TipState::Settled,
        TipState::Expired,
        TipState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TipState::Unpaid => "UNPAID",
            TipState::Pending => "PENDING",
            TipState::Settled => "SETTLED",
            TipState::Expired => "EXPIRED",
            TipState::Failed => "FAILED",
        }
    }

    /// Whether the payer can still pay it as far as we know.
    pub fn is_open(self) -> bool {
        matches!(self, TipState::Unpaid | TipState::Pending)
    }
}

impl fmt::Display for TipState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TipState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TipState::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown tip state {s:?}"))
    }
}

/// FNN's `CkbInvoiceStatus`, as `get_invoice` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvoiceStatus {
    Open,
    Received,
    Paid,
    Expired,
    Cancelled,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "Open",
            InvoiceStatus::Received => "Received",
            InvoiceStatus::Paid => "Paid",
            InvoiceStatus::Expired => "Expired",
            InvoiceStatus::Cancelled => "Cancelled",
        }
    }
}

/// What the watcher must do after the hub reported an invoice's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Credit the author through the one credit path (settles the tip).
    Credit,
    /// The payment arrived but is not final yet.
    MarkPending,
    /// The invoice expired unpaid: call `cancel_invoice` to make that final at the hub, then
    /// record the tip EXPIRED (or credit it if the cancel reports it was paid after all).
    CancelAtHub,
    /// The hub cancelled the invoice on its own.
    MarkFailed,
    /// Nothing changes; check again later.
    Keep,
}

/// The transition table: our state × the hub's invoice status.
pub fn decide(state: TipState, status: InvoiceStatus) -> Decision {
    use InvoiceStatus as S;
    use TipState as T;
    match (state, status) {
        (T::Settled, _) => Decision::Keep,
        (_, S::Paid) => Decision::Credit,
        (T::Unpaid, S::Received) => Decision::MarkPending,
        // Received past expiry is not cancelled: a normal invoice becomes Paid on its own.
        (_, S::Received) | (_, S::Open) => Decision::Keep,
        (_, S::Expired) => Decision::CancelAtHub,
        (T::Unpaid | T::Pending, S::Cancelled) => Decision::MarkFailed,
        (T::Expired | T::Failed, S::Cancelled) => Decision::Keep,
    }
}

/// The watcher's check schedule. Fresh invoices are checked often, older ones back off; each is
/// checked once more just after its expiry; expired and failed tips are still watched for a late
/// payment, less and less often, for `late_window`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Schedule {
    /// Interval while the invoice is younger than `fresh_window`.
    #[serde(with = "millis")]
    pub fresh_interval: Duration,
    #[serde(with = "millis")]
    pub fresh_window: Duration,
    /// Interval for older open invoices.
    #[serde(with = "millis")]
    pub open_interval: Duration,
    /// Interval for open invoices while the hub's store-change stream is followed (a payment is
    /// announced; this poll is only the safety net).
    #[serde(with = "millis")]
    pub streamed_interval: Duration,
    /// Interval while someone is watching the tip (status requests coming in).
    #[serde(with = "millis")]
    pub watched_interval: Duration,
    /// How long after `expires_at` the final check happens (covers clock skew with the hub).
    #[serde(with = "millis")]
    pub expiry_grace: Duration,
    /// First and largest interval of the late-payment watch on EXPIRED and FAILED tips.
    #[serde(with = "millis")]
    pub late_initial: Duration,
    #[serde(with = "millis")]
    pub late_max: Duration,
    /// How long after expiry a late payment is still looked for by the watcher (backfill covers
    /// anything later).
    #[serde(with = "millis")]
    pub late_window: Duration,
    /// Backoff after a failed hub call: `error_base * 2^failures`, capped, with jitter.
    #[serde(with = "millis")]
    pub error_base: Duration,
    #[serde(with = "millis")]
    pub error_max: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            fresh_interval: Duration::from_secs(2),
            fresh_window: Duration::from_secs(120),
            open_interval: Duration::from_secs(10),
            streamed_interval: Duration::from_secs(3600),
            watched_interval: Duration::from_secs(1),
            expiry_grace: Duration::from_secs(2),
            late_initial: Duration::from_secs(60),
            late_max: Duration::from_secs(3600),
            late_window: Duration::from_secs(7 * 24 * 3600),
            error_base: Duration::from_secs(1),
            error_max: Duration::from_secs(60),
        }
    }
}

/// Times as seen by the schedule, all in milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug)]
pub struct TipClock {
    pub now_ms: i64,
    pub created_ms: i64,
    pub expires_ms: i64,
}

impl Schedule {
    /// When to check a tip next, in ms since the epoch; `None` when it needs no more checks.
    /// `late_checks` counts the late-payment checks already made (drives their backoff).
    pub fn next_check(&self, state: TipState, t: TipClock, late_checks: u32) -> Option<i64> {
        let ms = |d: Duration| d.as_millis() as i64;
        match state {
            TipState::Settled => None,
            TipState::Unpaid | TipState::Pending => {
                let final_check = t.expires_ms + ms(self.expiry_grace);
                if t.now_ms >= final_check {
                    // Past the final check and still open (the hub said Open/Received): keep asking.
                    return Some(t.now_ms + ms(self.open_interval));
                }
                let age = t.now_ms - t.created_ms;
                let interval = if age < ms(self.fresh_window) {
                    self.fresh_interval
                } else {
                    self.open_interval
                };
                Some((t.now_ms + ms(interval)).min(final_check))
            }
            TipState::Expired | TipState::Failed => {
                if t.now_ms > t.expires_ms + ms(self.late_window) {
                    return None;
                }
                let factor = 1u32.checked_shl(late_checks.min(20)).unwrap_or(u32::MAX);
                let interval = self.late_initial.saturating_mul(factor).min(self.late_max);
                Some(t.now_ms + ms(interval))
            }
        }
    }

    /// [`Schedule::next_check`] while the hub's store-change stream is followed: the stream
    /// announces every status write, so an open invoice is polled every `streamed_interval` as
    /// a safety net and once just after its expiry (to cancel it); an ended tip is not watched
    /// for a late payment (its invoice is cancelled at the hub, and any status write would be
    /// announced).
    pub fn next_check_streamed(&self, state: TipState, t: TipClock) -> Option<i64> {
        let ms = |d: Duration| d.as_millis() as i64;
        match state {
            TipState::Settled | TipState::Expired | TipState::Failed => None,
            TipState::Unpaid | TipState::Pending => {
                let next = t.now_ms + ms(self.streamed_interval);
                let final_check = t.expires_ms + ms(self.expiry_grace);
                // a safety-net check that would fall at or after the expiry is the final one
                Some(if t.now_ms >= final_check || next < t.expires_ms {
                    next
                } else {
                    final_check
                })
            }
        }
    }

    /// The first check of a new tip (its invoice is being issued).
    pub fn first_check(&self, t: TipClock, streamed: bool) -> i64 {
        let next = if streamed {
            self.next_check_streamed(TipState::Unpaid, t)
        } else {
            self.next_check(TipState::Unpaid, t, 0)
        };
        next.unwrap_or(t.now_ms)
    }

    /// Backoff after a failed hub call. `jitter` is a number in [0, 1) (from the caller's RNG,
    /// so this stays deterministic); the delay is spread over 50 %–150 % of the nominal value.
    pub fn error_backoff(&self, failures: u32, jitter: f64) -> Duration {
        let factor = 1u32.checked_shl(failures.min(20)).unwrap_or(u32::MAX);
        let nominal = self.error_base.saturating_mul(factor).min(self.error_max);
        let spread = 0.5 + jitter.clamp(0.0, 1.0);
        Duration::from_millis((nominal.as_millis() as f64 * spread) as u64)
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paid_is_always_credited_unless_already_settled() {
        for s in [
            TipState::Unpaid,
            TipState::Pending,
            TipState::Expired,
            TipState::Failed,
        ] {
            assert_eq!(decide(s, InvoiceStatus::Paid), Decision::Credit, "{s}");
        }
        assert_eq!(
            decide(TipState::Settled, InvoiceStatus::Paid),
            Decision::Keep
        );
    }

    #[test]
    fn transition_table() {
        use Decision::*;
        use InvoiceStatus as S;
        use TipState as T;
        assert_eq!(decide(T::Unpaid, S::Open), Keep);
        assert_eq!(decide(T::Unpaid, S::Received), MarkPending);
        assert_eq!(decide(T::Pending, S::Received), Keep);
        assert_eq!(decide(T::Unpaid, S::Expired), CancelAtHub);
        assert_eq!(decide(T::Unpaid, S::Cancelled), MarkFailed);
        assert_eq!(decide(T::Pending, S::Cancelled), MarkFailed);
        assert_eq!(decide(T::Expired, S::Cancelled), Keep);
        assert_eq!(decide(T::Failed, S::Cancelled), Keep);
        assert_eq!(decide(T::Settled, S::Cancelled), Keep);
    }

    #[test]
    fn schedule_checks_fresh_often_and_once_after_expiry() {
        let s = Schedule::default();
        let t = TipClock {
            now_ms: 10_000,
            created_ms: 0,
            expires_ms: 3_600_000,
        };
        assert_eq!(s.next_check(TipState::Unpaid, t, 0), Some(12_000));
        let old = TipClock {
            now_ms: 1_000_000,
            ..t
        };
        assert_eq!(s.next_check(TipState::Unpaid, old, 0), Some(1_010_000));
        let near = TipClock {
            now_ms: 3_599_000,
            ..t
        };
        assert_eq!(s.next_check(TipState::Unpaid, near, 0), Some(3_602_000));
        assert_eq!(s.next_check(TipState::Settled, t, 0), None);
    }

    #[test]
    fn late_watch_backs_off_and_ends() {
        let s = Schedule::default();
        let t = TipClock {
            now_ms: 4_000_000,
            created_ms: 0,
            expires_ms: 3_600_000,
        };
        assert_eq!(s.next_check(TipState::Expired, t, 0), Some(4_060_000));
        assert_eq!(s.next_check(TipState::Expired, t, 1), Some(4_120_000));
        assert_eq!(
            s.next_check(TipState::Expired, t, 30),
            Some(4_000_000 + 3_600_000)
        );
        let late = TipClock {
            now_ms: 3_600_000 + 8 * 24 * 3_600_000,
            ..t
        };
        assert_eq!(s.next_check(TipState::Failed, late, 3), None);
    }

    #[test]
    fn streamed_schedule_polls_open_invoices_slowly_and_checks_once_after_expiry() {
        let s = Schedule::default();
        // an invoice that lives a day
        let t = TipClock {
            now_ms: 10_000,
            created_ms: 10_000,
            expires_ms: 86_400_000,
        };
        assert_eq!(
            s.next_check_streamed(TipState::Unpaid, t),
            Some(3_610_000),
            "every streamed_interval"
        );
        let near = TipClock {
            now_ms: 86_300_000,
            ..t
        };
        assert_eq!(
            s.next_check_streamed(TipState::Pending, near),
            Some(86_402_000),
            "just after expiry"
        );
        let past = TipClock {
            now_ms: 86_500_000,
            ..t
        };
        assert_eq!(
            s.next_check_streamed(TipState::Unpaid, past),
            Some(90_100_000)
        );
        for ended in [TipState::Expired, TipState::Failed, TipState::Settled] {
            assert_eq!(s.next_check_streamed(ended, t), None);
        }
        assert_eq!(s.first_check(t, true), 3_610_000);
        assert_eq!(s.first_check(t, false), 12_000);
        // with the default expiry (1 h) the first check is the one just after expiry: an invoice
        // nobody pays costs the hub new_invoice, that get_invoice and cancel_invoice
        let hour = TipClock {
            expires_ms: 10_000 + 3_600_000,
            ..t
        };
        assert_eq!(s.first_check(hour, true), 3_612_000);
    }

    #[test]
    fn error_backoff_is_capped_and_jittered() {
        let s = Schedule::default();
        assert_eq!(s.error_backoff(0, 0.5), Duration::from_secs(1));
        assert_eq!(s.error_backoff(3, 0.5), Duration::from_secs(8));
        assert_eq!(s.error_backoff(50, 0.5), Duration::from_secs(60));
        assert_eq!(s.error_backoff(50, 0.0), Duration::from_secs(30));
        assert!(s.error_backoff(50, 0.999) < Duration::from_secs(90));
    }
}

/// The `expiry` (whole seconds, rounded up) to ask the hub for so that an invoice issued now
/// lives at least until the tip's `expires_at`; `None` when the tip has expired already.
pub fn invoice_expiry_secs(now_ms: i64, expires_ms: i64) -> Option<u64> {
    let remaining = expires_ms - now_ms;
    (remaining > 0).then(|| (remaining as u64).div_ceil(1000))
}

#[cfg(test)]
mod expiry_tests {
    #[test]
    fn rounds_up_and_refuses_the_past() {
        assert_eq!(super::invoice_expiry_secs(0, 1), Some(1));
        assert_eq!(super::invoice_expiry_secs(0, 1000), Some(1));
        assert_eq!(super::invoice_expiry_secs(0, 3_600_000), Some(3600));
        assert_eq!(super::invoice_expiry_secs(5, 5), None);
    }
}
