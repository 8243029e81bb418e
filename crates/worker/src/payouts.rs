//! The withdrawal executor (DESIGN §6): two-phase payouts that are never sent twice.
//!
//! Phase one persists what is about to be sent (the signed transaction and its hash, or the
//! invoice's payment hash, with the state `SUBMITTING`); phase two sends it. A withdrawal found in
//! `SUBMITTING` (after a crash, a timeout or an error) is first looked up where it was sent
//! (`get_transaction` on the chain, `get_payment` at the hub) and only sent again when that proves
//! it is safe: the very same signed transaction, or the same payment hash, which the chain and
//! the hub can each accept only once. A new on-chain transaction replaces an old one only when one
//! of the old one's inputs is proven spent by another transaction buried `confirmations` deep, so
//! the two can never both commit; payouts spend only wallet cells that deep. A Fiber payout's
//! funds go back to the author only when nothing is under way at the hub and its invoice can
//! never be paid any more (`fiber_payout_step`, the same rule as the operator's `fail`).

use chrono::{DateTime, Utc};
use fiber_link_chain::{ChainClient, ChainError, HotWallet, TxState};
use fiber_link_core::withdrawal::fiber_payout_step;
use fiber_link_core::{Amount, FiberPayoutStep, HubPayment, Rail, WithdrawalState};
use fiber_link_fnn::{hash256, HubClient, HubError, PaymentStatus};
use fiber_link_store::withdrawals::{Completion, WithdrawalRow};
use fiber_link_store::{Store, StoreError};
use rand::Rng;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};
use tracing::{debug, error, info, warn};
use uuid::Uuid;

/// On-chain payouts: the node, the hot wallet and the rules.
pub struct Onchain {
    pub chain: ChainClient,
    pub wallet: HotWallet,
    pub max_tx_bytes: u64,
    /// Shannons per 1000 bytes: with a withdrawal's stored fee it bounds the transaction's size.
    pub fee_rate: u64,
    pub confirmations: u64,
}

#[derive(Clone, Debug)]
pub struct PayoutSettings {
    /// Withdrawals claimed per round.
    pub batch: i64,
    pub lease: Duration,
    pub idle_poll: Duration,
    /// How often an unfinished payout is looked at again.
    pub poll: Duration,
    /// The longest wait between two attempts after errors.
    pub max_backoff: Duration,
    /// A withdrawal that has not moved for this long is reported as stuck.
    pub stuck_after: Duration,
    /// How long past its expiry an unpaid invoice counts as unpayable (the hub's clock may lag
    /// ours): only then are the funds of a failed Fiber payout released.
    pub invoice_expiry_margin: Duration,
}

impl Default for PayoutSettings {
    fn default() -> Self {
        PayoutSettings {
            batch: 20,
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_millis(250),
            poll: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            stuck_after: Duration::from_secs(3600),
            invoice_expiry_margin: Duration::from_secs(
                fiber_link_core::withdrawal::INVOICE_EXPIRY_MARGIN_SECS,
            ),
        }
    }
}

#[derive(Clone)]
pub struct Payouts {
    store: Store,
    hub: HubClient,
    onchain: Option<Arc<Onchain>>,
    settings: PayoutSettings,
    /// One on-chain payout is built at a time in this process (several processes are kept apart
    /// by the database: a cell can be reserved by one payout only).
    building: Arc<Mutex<()>>,
    pauses: fiber_link_store::ops::PauseCache,
}

#[derive(Debug, thiserror::Error)]
pub enum PayoutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("hub: {0}")]
    Hub(#[from] HubError),
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    #[error("{0}")]
    Other(String),
}

/// What an operator's `fail` found.
#[derive(Debug, PartialEq, Eq)]
pub enum FailOutcome {
    Failed,
    /// The payout was, or may still be, made; the withdrawal was not failed.
    Refused(String),
}

fn later(d: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Payouts {
    pub fn new(
        store: Store,
        hub: HubClient,
        onchain: Option<Onchain>,
        settings: PayoutSettings,
    ) -> Payouts {
        Payouts {
            pauses: fiber_link_store::ops::PauseCache::new(store.clone()),
            store,
            hub,
            onchain: onchain.map(Arc::new),
            settings,
            building: Arc::new(Mutex::new(())),
        }
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut last_stuck_check = std::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            if last_stuck_check.elapsed() > Duration::from_secs(60) {
                last_stuck_check = std::time::Instant::now();
                self.report_stuck().await;
            }
            let worked = match self.tick().await {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "claiming due withdrawals failed; retrying");
                    0
                }
            };
            if worked == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.idle_poll) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        info!("withdrawal executor stopped");
    }

    /// Logs every withdrawal that has not moved forward for `stuck_after`.
    pub async fn report_stuck(&self) -> usize {
        match self
            .store
            .stuck_withdrawals(self.settings.stuck_after)
            .await
        {
            Ok(stuck) => {
                for w in &stuck {
                    warn!(withdrawal_id = %w.id, app_id = %w.app_id, state = %w.state,
                          since = %w.progressed_at, last_error = ?w.last_error,
                          "withdrawal stuck: see `fiber-link withdrawal list --stuck`; retry or fail it");
                }
                stuck.len()
            }
            Err(e) => {
                warn!(error = %e, "looking for stuck withdrawals failed");
                0
            }
        }
    }

    /// One round: claim due withdrawals and move each one step. Returns how many.
    pub async fn tick(&self) -> Result<usize, StoreError> {
        let due = self
            .store
            .claim_due_withdrawals(self.settings.batch, self.settings.lease)
            .await?;
        let n = due.len();
        let mut set = tokio::task::JoinSet::new();
        for w in due {
            let p = self.clone();
            set.spawn(async move {
                let id = w.id;
                let attempts = w.attempts;
                if let Err(e) = p.step(&w).await {
                    let wait = p.backoff(attempts);
                    if attempts == 0 || attempts % 10 == 9 {
                        warn!(withdrawal_id = %id, error = %e, retry_in = ?wait, "withdrawal step failed; will retry");
                    }
                    let msg = e.to_string();
                    if let Err(e) = p
                        .store
                        .reschedule_withdrawal(id, later(wait), Some(&msg), None)
                        .await
                    {
                        warn!(withdrawal_id = %id, error = %e, "could not record the failure; the lease will bring it back");
                    }
                }
            });
        }
        while set.join_next().await.is_some() {}
        Ok(n)
    }

    /// Capped exponential backoff with jitter.
    fn backoff(&self, attempts: i32) -> Duration {
        let base = self.settings.poll.as_millis() as u64;
        let exp = base.saturating_mul(1u64 << attempts.clamp(0, 16));
        let capped = exp.min(self.settings.max_backoff.as_millis() as u64).max(1);
        let jitter = rand::thread_rng().gen_range(0..=capped / 4);
        Duration::from_millis(capped - capped / 8 + jitter)
    }

    /// While the operator has paused withdrawals (for the app or all), nothing is sent that the
    /// hub or the chain does not already have: no payout starts, no Fiber payment is sent again
    /// after a refusal, no on-chain transaction is broadcast again or rebuilt. Payouts the hub or
    /// the chain already hold are still followed to the end. Returns true (and looks again after
    /// the pause refresh) when paused.
    async fn held_by_pause(&self, w: &WithdrawalRow) -> Result<bool, PayoutError> {
        let paused = self
            .pauses
            .get()
            .await
            .check(&w.app_id, fiber_link_store::ops::Paused::Withdrawals);
        if paused.is_none() {
            return Ok(false);
        }
        debug!(withdrawal_id = %w.id, app_id = %w.app_id, state = %w.state, "withdrawals are paused; nothing is sent");
        self.store
            .reschedule_withdrawal(
                w.id,
                later(fiber_link_store::ops::PAUSE_REFRESH),
                None,
                None,
            )
            .await?;
        Ok(true)
    }

    /// Moves one withdrawal one step.
    pub async fn step(&self, w: &WithdrawalRow) -> Result<(), PayoutError> {
        if w.state == WithdrawalState::Queued && self.held_by_pause(w).await? {
            return Ok(());
        }
        match (w.rail, w.state) {
            (_, s) if s.is_final() || s == WithdrawalState::AwaitingApproval => Ok(()),
            (Rail::Fiber, WithdrawalState::Queued) => {
                if self.store.begin_fiber_payout(w.id).await? {
                    // [crash here: SUBMITTING without a payment; get_payment says not found]
                    self.send_fiber(w).await
                } else {
                    Ok(())
                }
            }
            (Rail::Fiber, _) => self.follow_fiber(w).await,
            (Rail::Onchain, WithdrawalState::Queued) => self.build_and_send(w, None).await,
            (Rail::Onchain, _) => self.follow_onchain(w).await,
        }
    }

    // ----- Fiber ------------------------------------------------------------------------------

    fn payment_hash(w: &WithdrawalRow) -> Result<fiber_link_fnn::Hash256, PayoutError> {
        let h = w
            .payment_hash
            .as_deref()
            .ok_or_else(|| PayoutError::Other("a Fiber withdrawal without payment hash".into()))?;
        hash256(h).map_err(PayoutError::Other)
    }

    /// Whether the withdrawal's invoice is past its expiry by more than the margin: from then on
    /// the hub refuses every send, so nothing can pay it any more.
    fn invoice_unpayable(&self, w: &WithdrawalRow) -> bool {
        let invoice = w
            .destination
            .get("invoice")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        fiber_link_core::withdrawal::invoice_past_expiry(
            fiber_link_fnn::invoice_expires_at_ms(invoice),
            Utc::now().timestamp_millis().max(0) as u128,
            self.settings.invoice_expiry_margin.as_millis(),
        )
    }

    /// What the hub holds for this payout's payment hash.
    async fn hub_payment(
        &self,
        w: &WithdrawalRow,
    ) -> Result<(HubPayment, Option<fiber_link_fnn::GetPaymentCommandResult>), PayoutError> {
        match self.hub.get_payment(Self::payment_hash(w)?).await {
            Ok(r) => {
                let p = match r.status {
                    PaymentStatus::Success => HubPayment::Success,
                    PaymentStatus::Failed => HubPayment::Failed,
                    _ => HubPayment::InFlight,
                };
                Ok((p, Some(r)))
            }
            Err(e) if e.is_payment_not_found() => Ok((HubPayment::NotFound, None)),
            Err(e) => Err(e.into()),
        }
    }

    async fn send_fiber(&self, w: &WithdrawalRow) -> Result<(), PayoutError> {
        // fencing: a worker with an old copy of the row (its claim ran out, an operator failed
        // the withdrawal) must not send
        if !self.store.still_submitting(w.id).await? {
            return Ok(());
        }
        let invoice = w
            .destination
            .get("invoice")
            .and_then(|v| v.as_str())
            .ok_or_else(|| PayoutError::Other("a Fiber withdrawal without invoice".into()))?;
        let params =
            fiber_link_fnn::pay_invoice_params(invoice, w.receive.base_units(), w.fee.base_units())
                .map_err(PayoutError::Other)?;
        match self.hub.send_payment(&params).await {
            Ok(r) => {
                info!(withdrawal_id = %w.id, status = ?r.status, "payment sent");
                self.store
                    .mark_submitted(
                        w.id,
                        &format!("payment {:?}", r.status),
                        later(self.settings.poll),
                    )
                    .await?;
                Ok(())
            }
            // Timeouts and outages are ambiguous: the next step asks get_payment.
            Err(
                e @ (HubError::Unreachable(_)
                | HubError::BadResponse(_)
                | HubError::Unauthorized(_)),
            ) => Err(e.into()),
            Err(e) => {
                // Refused. FNN stores a Failed session for a send it could not route, and takes
                // a new send for the same hash later, so whether the funds go back is decided by
                // the one rule: only when nothing is under way and the invoice can never be paid.
                let refusal = e
                    .message()
                    .unwrap_or("the hub refused the payment")
                    .to_string();
                let (payment, r) = self.hub_payment(w).await?;
                let for_good = fiber_link_fnn::refusal_is_final(&refusal);
                match fiber_payout_step(payment, for_good || self.invoice_unpayable(w)) {
                    FiberPayoutStep::Release => {
                        let reason = release_reason(payment, r.as_ref());
                        warn!(withdrawal_id = %w.id, reason, detail = %refusal, "payment refused by the hub and the invoice can no longer be paid; funds released");
                        self.store
                            .fail_withdrawal(
                                w.id,
                                &[WithdrawalState::Submitting],
                                "worker",
                                reason,
                                &refusal,
                            )
                            .await?;
                        Ok(())
                    }
                    // refused for now (no route, no liquidity, …): tried again later
                    FiberPayoutStep::Send => Err(e.into()),
                    FiberPayoutStep::Wait | FiberPayoutStep::Complete => {
                        self.store
                            .mark_submitted(
                                w.id,
                                "payment found at the hub",
                                later(self.settings.poll),
                            )
                            .await?;
                        Ok(())
                    }
                }
            }
        }
    }

    /// A Fiber withdrawal in `SUBMITTING` or `SUBMITTED`: the hub's `get_payment` and the
    /// invoice's expiry decide, by [`fiber_payout_step`].
    async fn follow_fiber(&self, w: &WithdrawalRow) -> Result<(), PayoutError> {
        let (payment, r) = self.hub_payment(w).await?;
        let unpayable = self.invoice_unpayable(w);
        if w.state == WithdrawalState::Submitting
            && matches!(payment, HubPayment::InFlight | HubPayment::Success)
        {
            self.store
                .mark_submitted(w.id, "payment found at the hub", Utc::now())
                .await?;
        }
        let failed_error = r
            .as_ref()
            .and_then(|r| r.failed_error.clone())
            .unwrap_or_else(|| "no payment at the hub".into());
        match fiber_payout_step(payment, unpayable) {
            FiberPayoutStep::Complete => {
                let r = r.ok_or_else(|| PayoutError::Other("Success without a payment".into()))?;
                let fee = Amount::from_base_units(r.fee);
                if fee > w.fee {
                    error!(withdrawal_id = %w.id, fee = r.fee, cap = %w.fee, "the route cost more than the cap; the difference is the operator's");
                }
                let done = self
                    .store
                    .complete_withdrawal(
                        w.id,
                        &Completion {
                            actual_fee: fee.min(w.fee),
                            confirmations: None,
                            block_number: None,
                            source: "worker".into(),
                            detail: Some(format!("payment Success, fee {}", r.fee)),
                        },
                    )
                    .await?;
                if done {
                    info!(withdrawal_id = %w.id, "withdrawal completed (payment Success)");
                }
            }
            FiberPayoutStep::Wait => {
                self.store
                    .reschedule_withdrawal(w.id, later(self.settings.poll), None, None)
                    .await?;
            }
            FiberPayoutStep::Release => {
                let reason = release_reason(payment, r.as_ref());
                warn!(withdrawal_id = %w.id, reason, detail = %failed_error, "the invoice expired unpaid; funds released");
                self.store
                    .fail_withdrawal(
                        w.id,
                        &[WithdrawalState::Submitting, WithdrawalState::Submitted],
                        "worker",
                        reason,
                        &format!("{failed_error}; the invoice expired unpaid"),
                    )
                    .await?;
            }
            FiberPayoutStep::Send => {
                // Not paid, and the invoice can still be paid: send (again), unless paused.
                if self.held_by_pause(w).await? {
                    return Ok(());
                }
                if w.state == WithdrawalState::Submitted {
                    // sent and failed: back to SUBMITTING, sent again after the backoff
                    let next = later(self.backoff(w.attempts + 1));
                    if self
                        .store
                        .resend_fiber_payout(w.id, &failed_error, next)
                        .await?
                    {
                        info!(withdrawal_id = %w.id, reason = %failed_error, "payment failed at the hub; the invoice can still be paid, so it will be sent again");
                    }
                    return Ok(());
                }
                return self.send_fiber(w).await;
            }
        }
        Ok(())
    }

    // ----- on chain ---------------------------------------------------------------------------

    fn onchain(&self) -> Result<&Onchain, PayoutError> {
        self.onchain.as_deref().ok_or_else(|| {
            PayoutError::Other(
                "on-chain payouts are not configured on this worker (chain RPC and hot wallet key)"
                    .into(),
            )
        })
    }

    /// Phase one (build, sign, persist) and phase two (send) of an on-chain payout.
    async fn build_and_send(
        &self,
        w: &WithdrawalRow,
        replaces: Option<&str>,
    ) -> Result<(), PayoutError> {
        let oc = self.onchain()?;
        let to = w
            .destination
            .get("address")
            .and_then(|v| v.as_str())
            .ok_or_else(|| PayoutError::Other("an on-chain withdrawal without address".into()))?;
        let to_u64 = |a: Amount| -> Result<u64, PayoutError> {
            u64::try_from(a.base_units()).map_err(|_| PayoutError::Other("amount over u64".into()))
        };
        let guard = self.building.lock().await;
        let reserved: HashSet<String> = self.store.reserved_inputs().await?.into_iter().collect();
        // the fee was fixed when the withdrawal was accepted: the transaction may be no bigger
        // than that fee pays for at today's rate
        let fee = to_u64(w.fee)?;
        let max_bytes = oc
            .max_tx_bytes
            .min(fee.saturating_mul(1000) / oc.fee_rate.max(1));
        let built = oc
            .wallet
            .build_payout(
                &oc.chain,
                to,
                to_u64(w.receive)?,
                fee,
                max_bytes,
                &reserved,
                oc.confirmations,
            )
            .await?;
        let json =
            serde_json::to_value(&built.tx).map_err(|e| PayoutError::Other(e.to_string()))?;
        let persisted = self
            .store
            .begin_onchain_payout(w.id, replaces, &json, &built.hash, &built.inputs)
            .await?;
        drop(guard);
        if !persisted {
            return Ok(());
        }
        info!(withdrawal_id = %w.id, tx_hash = %built.hash, size = built.size, "payout transaction persisted");
        pause_point("after_persist");
        self.send_onchain(w.id, &built.tx, &built.hash).await
    }

    async fn send_onchain(
        &self,
        id: Uuid,
        tx: &ckb_jsonrpc_types::Transaction,
        hash: &str,
    ) -> Result<(), PayoutError> {
        self.onchain()?.chain.send(tx).await?;
        pause_point("after_send");
        info!(withdrawal_id = %id, tx_hash = %hash, "payout transaction sent");
        self.store
            .mark_submitted(
                id,
                &format!("transaction {hash} sent"),
                later(self.settings.poll),
            )
            .await?;
        Ok(())
    }

    /// An on-chain withdrawal in `SUBMITTING` or `SUBMITTED`: the chain decides.
    async fn follow_onchain(&self, w: &WithdrawalRow) -> Result<(), PayoutError> {
        let oc = self.onchain()?;
        let (Some(json), Some(hash)) = (&w.signed_tx, &w.tx_hash) else {
            return Err(PayoutError::Other(
                "an executing on-chain withdrawal without its transaction".into(),
            ));
        };
        let tx: ckb_jsonrpc_types::Transaction =
            serde_json::from_value(json.clone()).map_err(|e| PayoutError::Other(e.to_string()))?;
        let h = fiber_link_chain::parse_hash(hash).map_err(PayoutError::Other)?;
        match oc.chain.tx_state(&h).await? {
            TxState::InPool => {
                if w.state == WithdrawalState::Submitting {
                    self.store
                        .mark_submitted(
                            w.id,
                            "transaction found in the pool",
                            later(self.settings.poll),
                        )
                        .await?;
                } else {
                    self.store
                        .reschedule_withdrawal(w.id, later(self.settings.poll), None, None)
                        .await?;
                }
                Ok(())
            }
            TxState::Committed { block_number } => {
                let tip = oc.chain.tip_block_number().await?;
                let confs = tip.saturating_sub(block_number) + 1;
                if w.state == WithdrawalState::Submitting {
                    self.store
                        .mark_submitted(w.id, "transaction found on chain", Utc::now())
                        .await?;
                }
                if confs >= oc.confirmations {
                    let done = self
                        .store
                        .complete_withdrawal(
                            w.id,
                            &Completion {
                                actual_fee: w.fee,
                                confirmations: Some(confs as i64),
                                block_number: Some(block_number as i64),
                                source: "worker".into(),
                                detail: Some(format!(
                                    "{hash} in block {block_number}, {confs} confirmations"
                                )),
                            },
                        )
                        .await?;
                    if done {
                        info!(withdrawal_id = %w.id, tx_hash = %hash, confs, "withdrawal completed on chain");
                    }
                } else {
                    self.store
                        .reschedule_withdrawal(
                            w.id,
                            later(self.settings.poll),
                            None,
                            Some((confs as i64, block_number as i64)),
                        )
                        .await?;
                }
                Ok(())
            }
            TxState::Unknown { reason } => {
                // Not in the pool, not on chain. A new transaction replaces it only when one of
                // its inputs is proven spent by another transaction buried `confirmations` deep:
                // then it can never commit. Otherwise the very same transaction is sent again
                // (the node may refuse it while an input is unknown to it; that is retried).
                // Neither while withdrawals are paused.
                if self.held_by_pause(w).await? {
                    return Ok(());
                }
                match self.input_spent_elsewhere(oc, &tx, &h).await? {
                    InputSpent::Proven(by) => {
                        warn!(withdrawal_id = %w.id, tx_hash = %hash, spent_by = %by, ?reason, "the payout transaction can never commit (an input is spent by a transaction buried deep enough); building a new one");
                        self.build_and_send(w, Some(hash)).await
                    }
                    InputSpent::NotYetDeep(by) => {
                        info!(withdrawal_id = %w.id, tx_hash = %hash, spent_by = %by, "an input of the payout is spent by a transaction not yet buried deep enough; waiting");
                        self.store
                            .reschedule_withdrawal(w.id, later(self.settings.poll), None, None)
                            .await?;
                        Ok(())
                    }
                    InputSpent::NotShown => {
                        if w.state == WithdrawalState::Submitted {
                            warn!(withdrawal_id = %w.id, tx_hash = %hash, ?reason, "the payout transaction left the pool; sending it again");
                        }
                        self.send_onchain(w.id, &tx, hash).await
                    }
                }
            }
        }
    }

    /// Whether an input of a payout transaction that is neither in the pool nor on chain is
    /// spent by another transaction, and how deep that one is. "Not live" proves nothing: the
    /// node says the same of a cell it has not seen.
    async fn input_spent_elsewhere(
        &self,
        oc: &Onchain,
        tx: &ckb_jsonrpc_types::Transaction,
        hash: &fiber_link_chain::H256,
    ) -> Result<InputSpent, PayoutError> {
        let mut shallow = None;
        for op in fiber_link_chain::tx_inputs(tx) {
            if oc.chain.is_live(&op).await? {
                continue;
            }
            let Some(by) = oc.chain.spender(&op).await? else {
                continue;
            };
            if &by.tx_hash == hash {
                // it is this very transaction (committed meanwhile): the next look finds it
                return Ok(InputSpent::NotShown);
            }
            let tip = oc.chain.tip_block_number().await?;
            let by_hash = format!("{:#x}", by.tx_hash);
            if fiber_link_chain::depth(by.block_number, tip) >= oc.confirmations {
                return Ok(InputSpent::Proven(by_hash));
            }
            shallow = Some(by_hash);
        }
        Ok(shallow.map_or(InputSpent::NotShown, InputSpent::NotYetDeep))
    }

    /// The operator's `fail`: only when the payout was provably not made and cannot be made
    /// any more; then the funds are released.
    pub async fn operator_fail(
        &self,
        w: &WithdrawalRow,
        reason: &str,
    ) -> Result<FailOutcome, PayoutError> {
        let msg = format!("failed by the operator: {reason}");
        let refused = |s: &str| Ok(FailOutcome::Refused(s.to_string()));
        match (w.rail, w.state) {
            (_, s) if s.is_final() => refused("the withdrawal is already final"),
            (_, WithdrawalState::AwaitingApproval | WithdrawalState::Queued) => {
                let from = [WithdrawalState::AwaitingApproval, WithdrawalState::Queued];
                Ok(
                    if self
                        .store
                        .fail_withdrawal(w.id, &from, "operator", "operator_failed", &msg)
                        .await?
                    {
                        FailOutcome::Failed
                    } else {
                        FailOutcome::Refused(
                            "the withdrawal changed state meanwhile; look again".into(),
                        )
                    },
                )
            }
            (Rail::Fiber, _) => {
                // The worker's rule: only when nothing is under way and the invoice can never be
                // paid (until it expires, a send — a stale worker's, or a retry of a failed
                // session — could still pay it).
                let (payment, _) = self.hub_payment(w).await?;
                match fiber_payout_step(payment, self.invoice_unpayable(w)) {
                    FiberPayoutStep::Release => self.fail_now(w, &msg).await,
                    FiberPayoutStep::Send => refused("the invoice has not expired, so a payment could still be made; fail it after it expires, or retry"),
                    FiberPayoutStep::Wait | FiberPayoutStep::Complete => refused(&format!(
                        "the hub reports the payment {payment:?}; it is not failed"
                    )),
                }
            }
            (Rail::Onchain, _) => {
                let oc = self.onchain()?;
                let (Some(json), Some(hash)) = (&w.signed_tx, &w.tx_hash) else {
                    return self.fail_now(w, &msg).await;
                };
                let h = fiber_link_chain::parse_hash(hash).map_err(PayoutError::Other)?;
                if !matches!(oc.chain.tx_state(&h).await?, TxState::Unknown { .. }) {
                    return refused("the transaction is in the pool or on chain");
                }
                let tx: ckb_jsonrpc_types::Transaction = serde_json::from_value(json.clone())
                    .map_err(|e| PayoutError::Other(e.to_string()))?;
                match self.input_spent_elsewhere(oc, &tx, &h).await? {
                    InputSpent::Proven(_) => self.fail_now(w, &msg).await,
                    InputSpent::NotYetDeep(by) => refused(&format!(
                        "an input is spent by {by}, which is not yet {} blocks deep (a reorganisation could still undo it); try again later",
                        oc.confirmations
                    )),
                    InputSpent::NotShown => refused("the signed transaction could still be sent and commit (no input is shown spent by a transaction buried deep enough); spend one of them elsewhere first, or retry"),
                }
            }
        }
    }

    async fn fail_now(&self, w: &WithdrawalRow, msg: &str) -> Result<FailOutcome, PayoutError> {
        let from = [WithdrawalState::Submitting, WithdrawalState::Submitted];
        Ok(
            if self
                .store
                .fail_withdrawal(w.id, &from, "operator", "operator_failed", msg)
                .await?
            {
                FailOutcome::Failed
            } else {
                FailOutcome::Refused("the withdrawal changed state meanwhile; look again".into())
            },
        )
    }
}

/// Why the funds of a Fiber payout go back: `payment_failed` when the hub got a payment under way
/// and it failed (the payee or a hop refused it), `payment_refused` when it never did (no route
/// until the invoice expired, or an invoice it cannot pay).
fn release_reason(
    payment: HubPayment,
    r: Option<&fiber_link_fnn::GetPaymentCommandResult>,
) -> &'static str {
    let never_routed = r
        .and_then(|r| r.failed_error.as_deref())
        .is_none_or(|e| e.contains("Failed to build route"));
    if payment == HubPayment::Failed && !never_routed {
        "payment_failed"
    } else {
        "payment_refused"
    }
}

/// What the chain shows of a stored payout transaction's inputs.
enum InputSpent {
    /// Spent by this other transaction, buried at least `confirmations` deep: the payout can
    /// never commit.
    Proven(String),
    /// Spent by this other transaction, not yet that deep: a reorganisation could undo it.
    NotYetDeep(String),
    /// No input is shown spent by another committed transaction.
    NotShown,
}

/// Test hook: with `FIBER_LINK_PAUSE_AT=<name>` the executor stops at that point for good (it
/// logs that it did), so a test can kill the process there with SIGKILL, as a crash would.
fn pause_point(name: &str) {
    if std::env::var("FIBER_LINK_PAUSE_AT").is_ok_and(|v| v == name) {
        error!(point = name, "pause point reached; waiting to be killed");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}
