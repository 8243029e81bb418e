//! The settlement watcher (DESIGN §5).
//!
//! FNN lists no invoices and pushes nothing durable, so the database is the index: due tips are
//! claimed with `FOR UPDATE SKIP LOCKED` (any number of workers, no coordination), each is asked
//! about with `get_invoice`, and what the hub says is applied through the tip state machine in
//! `core`. Crediting goes through the store's one credit path. A hub that fails or cannot be
//! reached only delays a check (backoff with jitter); it never ends a tip.
//!
//! Where the hub offers its store-change stream, a follower ([`stream`]) makes a tip due the
//! moment the hub announces a status change for it, and open invoices are polled only as a slow
//! safety net while the stream is followed.

pub mod ops;
pub mod payouts;
pub mod stream;

use chrono::{DateTime, Utc};
use fiber_link_core::crypto::PreimageKey;
use fiber_link_core::{
    decide, invoice_expiry_secs, Assets, Decision, InvoiceStatus, Schedule, TipClock, TipState,
};
use fiber_link_fnn::{
    check_invoice_address, hash256, invoice_status, script_json, Hash256, HubClient, HubError,
    NewInvoiceParams,
};
use fiber_link_store::tips::{CreditOutcome, DueTip, Reschedule, Transition};
use fiber_link_store::Store;
use rand::Rng;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

#[derive(Clone, Debug)]
pub struct WorkerSettings {
    pub schedule: Schedule,
    /// Tips claimed per round (and checked concurrently).
    pub batch: i64,
    /// How long a claim lasts before another worker may take the tip (a crashed worker's claims
    /// run out).
    pub lease: Duration,
    /// Sleep when nothing was due.
    pub idle_poll: Duration,
    /// How long an invoice-less tip is left to the API request that created it before the
    /// watcher completes or fails it.
    pub invoice_grace: Duration,
    pub currency: String,
    pub assets: Assets,
    /// How long used nonces are kept (must exceed twice the API's timestamp window).
    pub nonce_retention: Duration,
    /// The hub's store-change stream.
    pub stream: stream::StreamSettings,
}

impl WorkerSettings {
    pub fn new(currency: String, assets: Assets) -> WorkerSettings {
        WorkerSettings {
            schedule: Schedule::default(),
            batch: 100,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(250),
            invoice_grace: Duration::from_secs(60),
            currency,
            assets,
            nonce_retention: Duration::from_secs(900),
            stream: stream::StreamSettings::default(),
        }
    }
}

#[derive(Clone)]
pub struct Watcher {
    store: Store,
    hub: HubClient,
    settings: WorkerSettings,
    preimages: PreimageKey,
    link: stream::StreamLink,
}

fn at(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Watcher {
    pub fn new(
        store: Store,
        hub: HubClient,
        settings: WorkerSettings,
        preimages: PreimageKey,
    ) -> Watcher {
        Watcher {
            store,
            hub,
            settings,
            preimages,
            link: stream::StreamLink::default(),
        }
    }

    /// What this watcher shares with its store-change follower.
    pub fn stream_link(&self) -> &stream::StreamLink {
        &self.link
    }

    /// The follower of the hub's store changes for this watcher (spawned by [`Watcher::run`]
    /// when `settings.stream.enabled`).
    pub fn follower(&self) -> stream::Follower {
        let s = &self.settings;
        stream::Follower {
            store: self.store.clone(),
            hub: self.hub.clone(),
            settings: s.stream.clone(),
            link: self.link.clone(),
            pull_in_horizon: s
                .schedule
                .open_interval
                .max(s.schedule.fresh_interval)
                .max(s.lease)
                + Duration::from_secs(1),
            worker_id: format!(
                "{}-{:08x}",
                std::process::id(),
                rand::thread_rng().gen::<u32>()
            ),
        }
    }

    /// Runs until `shutdown` turns true: claims due tips and checks them; prunes old nonces.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let follower = if self.settings.stream.enabled {
            fiber_link_metrics::global().stream_state(fiber_link_metrics::StreamState::Down);
            Some(tokio::spawn(self.follower().run(shutdown.clone())))
        } else {
            fiber_link_metrics::global().stream_state(fiber_link_metrics::StreamState::Off);
            info!("the hub's store-change stream is not followed ([worker] stream = false); settlement is detected by polling");
            None
        };
        let mut last_prune = std::time::Instant::now() - Duration::from_secs(3600);
        loop {
            if *shutdown.borrow() {
                break;
            }
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = std::time::Instant::now();
                match self.store.prune_nonces(self.settings.nonce_retention).await {
                    Ok(n) if n > 0 => debug!(pruned = n, "old nonces pruned"),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "pruning nonces failed"),
                }
            }
            let worked = match self.tick().await {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "claiming due tips failed; retrying");
                    0
                }
            };
            if worked == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.idle_poll) => {}
                    _ = self.link.wake.notified() => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        if let Some(f) = follower {
            let _ = f.await;
        }
        info!("settlement watcher stopped");
    }

    /// One round: claim a batch of due tips and check them concurrently. Returns how many.
    pub async fn tick(&self) -> Result<usize, fiber_link_store::StoreError> {
        let due = self
            .store
            .claim_due_tips(self.settings.batch, self.settings.lease)
            .await?;
        let n = due.len();
        let mut set = JoinSet::new();
        for tip in due {
            let w = self.clone();
            set.spawn(async move {
                let id = tip.id;
                match w.check(tip).await {
                    Ok(r) => r,
                    Err(e) => {
                        // The claim's lease runs out and the tip is checked again.
                        warn!(tip_id = %id, error = %e, "checking a tip failed");
                        None
                    }
                }
            });
        }
        // Checks that changed nothing are written together: one statement per round.
        let mut unchanged = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(Some(r)) = r {
                unchanged.push(r);
            }
        }
        self.store.reschedule_tips(&unchanged).await?;
        Ok(n)
    }

    fn clock(&self, tip: &DueTip) -> TipClock {
        TipClock {
            now_ms: Utc::now().timestamp_millis(),
            created_ms: tip.created_at.timestamp_millis(),
            expires_ms: tip.expires_at.timestamp_millis(),
        }
    }

    /// On the slow schedule while this worker follows the hub's store changes.
    fn next_check(&self, state: TipState, tip: &DueTip, late_checks: i32) -> Option<DateTime<Utc>> {
        let s = &self.settings.schedule;
        if self.link.is_up() {
            s.next_check_streamed(state, self.clock(tip))
        } else {
            s.next_check(state, self.clock(tip), late_checks.max(0) as u32)
        }
        .map(from_ms)
    }

    async fn backoff(
        &self,
        tip: &DueTip,
        e: &HubError,
    ) -> Result<Option<Reschedule>, fiber_link_store::StoreError> {
        let jitter: f64 = rand::thread_rng().gen();
        let delay = self
            .settings
            .schedule
            .error_backoff(tip.check_failures.max(0) as u32, jitter);
        let failures = tip.check_failures + 1;
        if failures == 1 || failures % 10 == 0 {
            // seen by the operator (a wrong hub token or URL shows here), without one line per
            // retry of every tip during an outage
            warn!(tip_id = %tip.id, failures, error = %e, retry_in_ms = delay.as_millis() as u64, "hub call failed; the tip keeps its state and is retried");
        } else {
            debug!(tip_id = %tip.id, failures, error = %e, retry_in_ms = delay.as_millis() as u64, "hub call failed");
        }
        self.store
            .record_check_failure(tip.id, at(Utc::now(), delay), &e.to_string())
            .await?;
        Ok(None)
    }

    /// Checks one tip against the hub and applies what the hub says.
    pub async fn check(
        &self,
        tip: DueTip,
    ) -> Result<Option<Reschedule>, fiber_link_store::StoreError> {
        let hash = match hash256(&tip.payment_hash) {
            Ok(h) => h,
            Err(e) => return Err(fiber_link_store::StoreError::Corrupt(e)),
        };
        if !tip.has_invoice {
            return self.complete_invoice(&tip, hash).await;
        }
        let status = match self.hub.get_invoice(hash).await {
            Ok(r) => invoice_status(r.status),
            Err(e) => {
                if e.is_invoice_not_found() {
                    warn!(tip_id = %tip.id, "the hub does not know this tip's invoice; it keeps being checked");
                }
                return self.backoff(&tip, &e).await;
            }
        };
        self.apply(&tip, hash, status).await
    }

    async fn apply(
        &self,
        tip: &DueTip,
        hash: Hash256,
        status: InvoiceStatus,
    ) -> Result<Option<Reschedule>, fiber_link_store::StoreError> {
        match decide(tip.state, status) {
            Decision::Credit => self.credit(tip, "worker").await,
            Decision::MarkPending => {
                let tr = Transition {
                    from: &[TipState::Unpaid],
                    to: TipState::Pending,
                    source: "worker",
                    hub_status: Some(status.as_str()),
                    detail: None,
                    next_check_at: self.next_check(TipState::Pending, tip, 0),
                };
                self.transition_or_keep(tip, &tr, status).await
            }
            Decision::MarkFailed => {
                // Cancelled after the tip's expiry is our own cancel_invoice whose outcome was
                // not recorded (a crash in between): the tip expired.
                let (to, detail) = if Utc::now() > tip.expires_at {
                    (
                        TipState::Expired,
                        "expired unpaid; invoice cancelled at the hub",
                    )
                } else {
                    (TipState::Failed, "the hub reports the invoice cancelled")
                };
                let tr = Transition {
                    from: &[TipState::Unpaid, TipState::Pending],
                    to,
                    source: "worker",
                    hub_status: Some(status.as_str()),
                    detail: Some(detail),
                    next_check_at: self.next_check(to, tip, 0),
                };
                self.transition_or_keep(tip, &tr, status).await
            }
            Decision::CancelAtHub => self.cancel_expired(tip, hash).await,
            // Past the tip's own expiry and its grace, the hub's invoice may still be open for a
            // moment (its expiry counts from the hub's clock when it was issued: a slow
            // new_invoice, whole seconds). No event announces an expiry, so instead of waiting
            // for the next poll (an hour while the stream is followed) the tip ends now, as one
            // that expired at the hub: cancel_invoice, then EXPIRED (a payment racing the cancel
            // makes it refused as Paid, and the tip is credited).
            Decision::Keep
                if status == InvoiceStatus::Open
                    && tip.state == TipState::Unpaid
                    && Utc::now() >= at(tip.expires_at, self.settings.schedule.expiry_grace) =>
            {
                self.cancel_expired(tip, hash).await
            }
            Decision::Keep => self.keep(tip, status).await,
        }
    }

    async fn keep(
        &self,
        tip: &DueTip,
        status: InvoiceStatus,
    ) -> Result<Option<Reschedule>, fiber_link_store::StoreError> {
        Ok(Some(Reschedule {
            id: tip.id,
            next_check_at: self.next_check(tip.state, tip, tip.late_checks),
            hub_status: Some(status.as_str().to_string()),
            late_check: matches!(tip.state, TipState::Expired | TipState::Failed),
        }))
    }

    async fn transition_or_keep(
        &self,
        tip: &DueTip,
        tr: &Transition<'_>,
        status: InvoiceStatus,
    ) -> Result<Option<Reschedule>, fiber_link_store::StoreError> {
        if self.store.transition_tip(tip.id, tr).await? {
            info!(tip_id = %tip.id, app_id = %tip.app_id, from = %tip.state, to = %tr.to, "tip state changed");
            Ok(None)
        } else {
            // Someone else moved it (a credit, another worker): look again on schedule.
            self.keep(tip, status).await
        }
    }

    async fn credit(
        &self,
        tip: &DueTip,
        source: &str,
    ) -> Result<Option<Reschedule>, fiber_link_store::StoreError> {
        match self.store.credit_tip(tip.id, source, None).await? {
            CreditOutcome::Credited { lag_secs } => {
                fiber_link_metrics::global().tip_settled(&tip.app_id, &tip.asset, lag_secs);
                info!(
                    tip_id = %tip.id, app_id = %tip.app_id, asset = %tip.asset, amount = %tip.amount,
                    from = %tip.state, source, "tip settled and credited"
                )
            }
            CreditOutcome::AlreadySettled => debug!(tip_id = %tip.id, "tip was already settled"),
        }
        Ok(None)
    }

    /// The invoice expired unpaid: `cancel_invoice` makes that final at the hub (after expiry
    /// the hub can no longer accept the payment, so this is race-free); a cancel refused because
    /// the invoice is Paid means a credit.
    async fn cancel_expired(
        &self,
        tip: &DueTip,
        hash: Hash256,
    ) -> Result<Option<Reschedule>, fiber_link_store::StoreError> {
        let outcome = match self.hub.cancel_invoice(hash).await {
            Ok(r) => invoice_status(r.status),
            Err(e) => match e.cancel_refused_status() {
                Some(s) => s,
                None => return self.backoff(tip, &e).await,
            },
        };
        match outcome {
            InvoiceStatus::Paid => self.credit(tip, "worker").await,
            InvoiceStatus::Cancelled => {
                let tr = Transition {
                    from: &[TipState::Unpaid, TipState::Pending],
                    to: TipState::Expired,
                    source: "worker",
                    hub_status: Some("Cancelled"),
                    detail: Some("expired unpaid; invoice cancelled at the hub"),
                    next_check_at: self.next_check(TipState::Expired, tip, 0),
                };
                self.transition_or_keep(tip, &tr, InvoiceStatus::Cancelled)
                    .await
            }
            other => self.keep(tip, other).await,
        }
    }

    /// A tip without an invoice: its API request failed or is still running. After a grace
    /// period, read the invoice back (it may exist), create it if the tip is still open, or end
    /// the tip FAILED if it expired without one.
    async fn complete_invoice(
        &self,
        tip: &DueTip,
        hash: Hash256,
    ) -> Result<Option<Reschedule>, fiber_link_store::StoreError> {
        let now = Utc::now();
        let grace_end = at(tip.created_at, self.settings.invoice_grace);
        if now < grace_end && now < tip.expires_at {
            return Ok(Some(Reschedule {
                id: tip.id,
                next_check_at: Some(grace_end),
                hub_status: None,
                late_check: false,
            }));
        }
        match self.hub.get_invoice(hash).await {
            Ok(r) => {
                let status = invoice_status(r.status);
                let address = match self.verified(tip, hash, r.invoice_address) {
                    Ok(a) => a,
                    Err(e) => return self.backoff(tip, &e).await,
                };
                self.store
                    .attach_invoice(&tip.app_id, tip.id, &address, "worker")
                    .await?;
                self.apply(tip, hash, status).await
            }
            Err(e) if e.is_invoice_not_found() => {
                let Some(expiry) =
                    invoice_expiry_secs(now.timestamp_millis(), tip.expires_at.timestamp_millis())
                else {
                    let tr = Transition {
                        from: &[TipState::Unpaid],
                        to: TipState::Failed,
                        source: "worker",
                        hub_status: None,
                        detail: Some("no invoice was issued before the tip expired"),
                        next_check_at: None,
                    };
                    self.store.transition_tip(tip.id, &tr).await?;
                    return Ok(None);
                };
                match self.new_invoice(tip, hash, expiry).await {
                    Ok(address) => {
                        self.store
                            .attach_invoice(&tip.app_id, tip.id, &address, "worker")
                            .await?;
                        Ok(Some(Reschedule {
                            id: tip.id,
                            next_check_at: self.next_check(TipState::Unpaid, tip, 0),
                            hub_status: Some("Open".into()),
                            late_check: false,
                        }))
                    }
                    Err(e) => self.backoff(tip, &e).await,
                }
            }
            Err(e) => self.backoff(tip, &e).await,
        }
    }

    async fn new_invoice(
        &self,
        tip: &DueTip,
        hash: Hash256,
        expiry: u64,
    ) -> Result<String, HubError> {
        let bad = |m: String| HubError::BadResponse(m);
        let currency = fiber_link_fnn::currency_from_str(&self.settings.currency)
            .ok_or_else(|| bad(format!("unknown currency {}", self.settings.currency)))?;
        let udt = match self.settings.assets.get(&tip.asset) {
            Some(a) => a
                .udt_type_script
                .as_ref()
                .map(script_json)
                .transpose()
                .map_err(bad)?,
            None => return Err(bad(format!("asset {} is no longer configured", tip.asset))),
        };
        let params = NewInvoiceParams {
            amount: tip.amount.base_units(),
            description: Some("Fiber Link tip".into()),
            currency,
            payment_preimage: Some(Hash256(self.preimages.preimage_for(tip.id.as_bytes()))),
            expiry: Some(expiry),
            udt_type_script: udt,
            ..Default::default()
        };
        let address = match self.hub.new_invoice(&params).await {
            Ok(r) => r.invoice_address,
            Err(e) if e.is_invoice_already_exists() => {
                self.hub.get_invoice(hash).await?.invoice_address
            }
            Err(e) => return Err(e),
        };
        self.verified(tip, hash, address)
    }

    /// The invoice string, once checked to be for this tip (hash, amount, network, signature).
    fn verified(&self, tip: &DueTip, hash: Hash256, address: String) -> Result<String, HubError> {
        let currency =
            fiber_link_fnn::currency_from_str(&self.settings.currency).ok_or_else(|| {
                HubError::BadResponse(format!("unknown currency {}", self.settings.currency))
            })?;
        check_invoice_address(&address, &hash, tip.amount.base_units(), currency).map_err(
            |why| HubError::BadResponse(format!("the hub's invoice does not match the tip: {why}")),
        )?;
        Ok(address)
    }
}
