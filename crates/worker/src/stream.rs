//! Following the hub's store-change stream (DESIGN §5): FNN's `subscribe_store_changes` announces
//! every invoice status write, so a payment is seen the moment the hub records it, and open
//! invoices need polling only as a slow safety net.
//!
//! An event is a hint, never the truth: it only makes its tip due, and the watcher's
//! `get_invoice` decides. Events are coalesced (a burst becomes one statement); a hash of no tip
//! changes nothing; a malformed event is logged and dropped. The stream keeps no backlog, so:
//! - while this worker is subscribed, it holds a lease in `stream_followers` (the API and the
//!   other workers read it: while any lease is live, new tips are scheduled on the slow
//!   schedule);
//! - when its stream ends, it reconnects with backoff and polls on the fast schedule meanwhile;
//!   when nobody follows the stream any more, open tips on the slow schedule are pulled in;
//! - on every subscription, unless another follower covered the whole gap, every open tip not
//!   checked since the gap began is checked once (a payment may have landed while nobody
//!   listened).

use chrono::{DateTime, Utc};
use fiber_link_fnn::{CkbInvoiceStatus, HubClient, StoreChange, StreamItem, SubscribeError};
use fiber_link_metrics::StreamState;
use fiber_link_store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tracing::{debug, info, warn};

#[derive(Clone, Debug)]
pub struct StreamSettings {
    /// Subscribe at all (`[worker] stream`).
    pub enabled: bool,
    /// Silence after which a ping is sent; twice this unanswered and the stream counts as dead.
    pub idle: Duration,
    /// How long a follower's lease lasts; renewed every third of it. Longer than the API's
    /// interval between readings of it (2 s), or the API would see it lapse between readings.
    pub lease: Duration,
    /// Events are gathered this long before their tips are made due in one statement.
    pub coalesce: Duration,
    /// How long after a Received announcement its tip is checked (Paid normally follows at
    /// once, and is then seen by that one check).
    pub received_wait: Duration,
    /// Reconnect backoff: first and largest delay.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// How often a hub without the module (or refusing the token) is asked again.
    pub retry_unavailable: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            enabled: true,
            idle: Duration::from_secs(15),
            lease: Duration::from_secs(10),
            coalesce: Duration::from_millis(5),
            received_wait: Duration::from_millis(1000),
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            retry_unavailable: Duration::from_secs(60),
        }
    }
}

/// What the watcher and the follower share.
#[derive(Clone, Default)]
pub struct StreamLink {
    /// This worker's own subscription is live: the tips it checks go on the slow schedule.
    pub up: Arc<AtomicBool>,
    /// Rung when tips were made due, so the watcher claims them without waiting its idle poll.
    pub wake: Arc<Notify>,
}

impl StreamLink {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }
}

/// How long after the stream's lease ends open tips are still pulled in (an API reads the lease
/// every 2 s; a tip it scheduled on the stream's slow schedule just before is caught meanwhile).
const PULL_IN_FOR: Duration = Duration::from_secs(60);

/// How long after a tip ended a payment racing its expiry or its cancel may still be written
/// at the hub: the sweep after a gap in the stream also checks tips that ended this long before
/// the gap.
const LATE_RACE: Duration = Duration::from_secs(60);

/// Most hashes kept for another try while the database refuses them.
const MAX_KEPT: usize = 65_536;

/// Most hashes gathered before they are written, whatever the coalescing time.
const MAX_PENDING: usize = 4096;

pub struct Follower {
    pub(crate) store: Store,
    pub(crate) hub: HubClient,
    pub(crate) settings: StreamSettings,
    pub(crate) link: StreamLink,
    /// Open tips scheduled further out than this are pulled in while nobody follows the stream
    /// (the polling schedule never schedules further).
    pub(crate) pull_in_horizon: Duration,
    pub(crate) worker_id: String,
}

enum Ended {
    Shutdown,
    Broke(String),
}

impl Follower {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let m = fiber_link_metrics::global();
        // Nothing is known of the time before this process: the gap starts now.
        let mut gap_since = Utc::now();
        let mut retry = self.settings.retry_min;
        let mut subscribed_once = false;
        let mut said_unavailable = false;
        // When this worker last saw that nobody follows the stream (unknown at start: a lapse
        // may have happened while it was not running, so the first minute counts as one).
        let mut lapsed_at: Option<Instant> = Some(Instant::now());
        loop {
            if *shutdown.borrow() {
                break;
            }
            let wait = match self.hub.subscribe_store_changes(self.settings.idle).await {
                Ok(stream) => {
                    if subscribed_once {
                        m.stream_reconnected();
                    }
                    subscribed_once = true;
                    said_unavailable = false;
                    // followed now: when it ends, pulling in starts afresh
                    lapsed_at = None;
                    retry = self.settings.retry_min;
                    info!(subscription = %stream.id(), "following the hub's store changes");
                    match self.follow(stream, gap_since, &mut shutdown).await {
                        Ended::Shutdown => break,
                        Ended::Broke(why) => {
                            warn!(reason = %why, "the hub's store-change stream ended; polling on the fast schedule until it is back");
                        }
                    }
                    // The stream may have been dead a while before that was noticed.
                    gap_since = Utc::now()
                        - chrono::Duration::from_std(self.settings.idle * 2).unwrap_or_default();
                    retry
                }
                Err(e) if !e.is_transient() => {
                    m.stream_state(StreamState::Off);
                    if !said_unavailable {
                        said_unavailable = true;
                        match e {
                            SubscribeError::NotOffered(_) => {
                                info!(error = %e, "the hub offers no store-change stream; settlement is detected by polling (enable FNN's pubsub module for instant settlement)")
                            }
                            _ => {
                                warn!(error = %e, "the hub refused the store-change stream; settlement is detected by polling")
                            }
                        }
                    }
                    self.settings.retry_unavailable
                }
                Err(e) => {
                    m.stream_state(StreamState::Down);
                    warn!(error = %e, retry_in_ms = retry.as_millis() as u64, "cannot subscribe to the hub's store changes; polling meanwhile");
                    let w = retry;
                    retry = (retry * 2).min(self.settings.retry_max);
                    w
                }
            };
            if self.wait_polling(wait, &mut lapsed_at, &mut shutdown).await {
                break;
            }
        }
        self.link.up.store(false, Ordering::Release);
        if let Err(e) = self.store.unfollow_stream(&self.worker_id).await {
            debug!(error = %e, "could not drop this worker's stream lease");
        }
        info!("store-change follower stopped");
    }

    /// Waits `d` while not subscribed; meanwhile, for a while after nobody follows the stream
    /// any more, pulls in the open tips on the slow schedule (once is enough for those; the
    /// repeats catch tips an API scheduled just before it saw the lease end). True on shutdown.
    async fn wait_polling(
        &self,
        d: Duration,
        lapsed_at: &mut Option<Instant>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let until = Instant::now() + d;
        loop {
            match self.store.stream_followed_until().await {
                Ok(Some(_)) => *lapsed_at = None,
                Ok(None) => {
                    let since = *lapsed_at.get_or_insert_with(Instant::now);
                    if since.elapsed() < PULL_IN_FOR {
                        self.pull_in().await;
                    }
                }
                Err(e) => warn!(error = %e, "reading the stream leases failed"),
            }
            let step = (until - Instant::now()).min(Duration::from_secs(2));
            if step.is_zero() {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                _ = shutdown.changed() => return true,
            }
        }
    }

    async fn pull_in(&self) {
        match self.store.pull_in_open_tips(self.pull_in_horizon).await {
            Ok(0) => {}
            Ok(n) => {
                fiber_link_metrics::global().stream_tips_due("pull_in", n);
                info!(tips = n, "nobody follows the hub's store changes: open tips go back on the polling schedule");
                self.link.wake.notify_one();
            }
            Err(e) => warn!(error = %e, "pulling in open tips failed"),
        }
    }

    async fn follow(
        &self,
        mut stream: fiber_link_fnn::StoreChanges,
        gap_since: DateTime<Utc>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Ended {
        let m = fiber_link_metrics::global();
        let since = Utc::now();
        if let Err(e) = self
            .store
            .follow_stream(&self.worker_id, since, self.settings.lease)
            .await
        {
            return Ended::Broke(format!("recording the stream lease: {e}"));
        }
        // A payment may have landed while nobody listened.
        match self
            .store
            .stream_covered_since(&self.worker_id, gap_since)
            .await
        {
            Ok(true) => debug!("another worker followed the stream meanwhile; no sweep"),
            Ok(false) => match self.store.sweep_open_tips(gap_since, LATE_RACE).await {
                Ok(n) => {
                    m.stream_tips_due("sweep", n);
                    info!(
                        tips = n,
                        "open tips not checked since the stream's gap, and tips that ended just before or during it, are checked once now"
                    );
                }
                Err(e) => return Ended::Broke(format!("sweeping open tips: {e}")),
            },
            Err(e) => return Ended::Broke(format!("reading the stream leases: {e}")),
        }
        self.link.up.store(true, Ordering::Release);
        m.stream_state(StreamState::Up);
        self.link.wake.notify_one();
        let ended = self.events(&mut stream, since, shutdown).await;
        self.link.up.store(false, Ordering::Release);
        m.stream_state(StreamState::Down);
        if let Err(e) = self.store.unfollow_stream(&self.worker_id).await {
            warn!(error = %e, "could not drop this worker's stream lease; it runs out by itself");
        }
        if matches!(ended, Ended::Shutdown) {
            stream.close().await;
        }
        ended
    }

    async fn events(
        &self,
        stream: &mut fiber_link_fnn::StoreChanges,
        since: DateTime<Utc>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Ended {
        let m = fiber_link_metrics::global();
        let mut pending: HashMap<String, Hint> = HashMap::new();
        let mut flush_at: Option<Instant> = None;
        let mut heartbeat = tokio::time::interval(self.settings.lease / 3);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            let flush_due = async {
                match flush_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                item = stream.next() => match item {
                    Ok(StreamItem::Change(StoreChange::InvoiceStatus { payment_hash, status })) => {
                        m.stream_event("invoice_status");
                        // Open is written when the invoice is issued: nothing to look at.
                        if let Some(hint) = Hint::of(status) {
                            let seen = pending.entry(payment_hash.to_string()).or_insert(hint);
                            *seen = seen.merge(hint);
                            flush_at.get_or_insert(Instant::now() + self.settings.coalesce);
                            if pending.len() == MAX_PENDING {
                                flush_at = Some(Instant::now());
                            }
                        }
                    }
                    Ok(StreamItem::Change(StoreChange::Other(_))) => m.stream_event("other"),
                    Ok(StreamItem::Malformed(why)) => {
                        m.stream_event("malformed");
                        warn!(reason = %why, "a malformed store-change event was dropped");
                    }
                    Err(why) => {
                        // what was gathered still counts
                        self.flush(&mut pending).await;
                        return Ended::Broke(why);
                    }
                },
                _ = flush_due => {
                    flush_at = None;
                    if !self.flush(&mut pending).await {
                        flush_at = Some(Instant::now() + Duration::from_secs(1));
                    }
                }
                _ = heartbeat.tick() => {
                    if let Err(e) = self.store.follow_stream(&self.worker_id, since, self.settings.lease).await {
                        // Without a live lease others poll fast: safe, only slower.
                        warn!(error = %e, "renewing the stream lease failed");
                    }
                }
                _ = shutdown.changed() => {
                    self.flush(&mut pending).await;
                    return Ended::Shutdown;
                }
            }
        }
    }

    /// Makes the gathered hashes' tips due (see [`Hint`]). What the database did not take (an
    /// error) is kept for the next flush, up to [`MAX_KEPT`] hashes; returns false then. Beyond
    /// that (a long database outage) announcements are dropped, and the reconnect sweep or the
    /// safety-net poll finds those payments.
    async fn flush(&self, pending: &mut HashMap<String, Hint>) -> bool {
        if pending.is_empty() {
            return true;
        }
        let mut by_hint: HashMap<Hint, Vec<String>> = HashMap::new();
        for (hash, hint) in pending.drain() {
            by_hint.entry(hint).or_default().push(hash);
        }
        let mut due = 0;
        let mut all_taken = true;
        for (hint, hashes) in by_hint {
            let (within, before_expiry) = match hint {
                Hint::Change => (Duration::ZERO, false),
                Hint::Received => (self.settings.received_wait, false),
                Hint::Cancelled => (Duration::ZERO, true),
            };
            match self
                .store
                .tips_due_now(&hashes, within, before_expiry)
                .await
            {
                Ok(n) => due += n,
                Err(e) => {
                    all_taken = false;
                    let room = MAX_KEPT.saturating_sub(pending.len());
                    if hashes.len() > room {
                        warn!(dropped = hashes.len() - room, "announcements dropped while the database fails; the sweep or the safety-net poll finds those payments");
                    }
                    warn!(error = %e, hashes = hashes.len(), "making announced tips due failed; retrying");
                    for h in hashes.into_iter().take(room) {
                        let kept = pending.entry(h).or_insert(hint);
                        *kept = kept.merge(hint);
                    }
                }
            }
        }
        if due > 0 {
            fiber_link_metrics::global().stream_tips_due("event", due);
            self.link.wake.notify_one();
        }
        debug!(tips = due, "store changes made tips due");
        all_taken
    }
}

/// What an announced status asks of the watcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Hint {
    /// Paid (or several statuses at once): look now.
    Change,
    /// Received: Paid normally follows within a fraction of a second (FNN v0.8.0: ~115 ms), so
    /// the tip is looked at a moment later, and one check sees it Paid; if Paid does not come
    /// (a hold invoice, a stuck payment), that check shows the tip PENDING.
    Received,
    /// Cancelled: look now, unless the tip has expired (then the cancel is the watcher's own).
    Cancelled,
}

impl Hint {
    fn of(status: CkbInvoiceStatus) -> Option<Hint> {
        match status {
            CkbInvoiceStatus::Open => None,
            CkbInvoiceStatus::Received => Some(Hint::Received),
            CkbInvoiceStatus::Cancelled => Some(Hint::Cancelled),
            CkbInvoiceStatus::Paid | CkbInvoiceStatus::Expired => Some(Hint::Change),
        }
    }

    fn merge(self, other: Hint) -> Hint {
        if self == other {
            self
        } else {
            Hint::Change
        }
    }
}
