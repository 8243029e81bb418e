//! Reconciliation and backfill (DESIGN §3): prove the books, compare them with the hub and the
//! chain, and credit what the watcher missed through the one credit path.

use crate::payouts::Onchain;
use fiber_link_chain::{parse_hash, TxState};
use fiber_link_core::reconcile::{
    expected_withdrawal_ledger, tip_credit_finding, Finding, FindingKind, Report, Solvency,
};
use fiber_link_core::{Assets, InvoiceStatus, WithdrawalState};
use fiber_link_fnn::{
    hash256, invoice_status, script_json, HubClient, HubError, ListChannelsParams, PaymentStatus,
};
use fiber_link_store::ops::{Window, WindowTip};
use fiber_link_store::tips::CreditOutcome;
use fiber_link_store::{Store, StoreError};
use futures_util::stream::{self, StreamExt};
use tracing::{info, warn};

/// Why a reconciliation or a backfill could not run (exit 1, as opposed to findings).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("hub: {0}")]
    Hub(#[from] HubError),
    #[error("CKB node: {0}")]
    Chain(String),
    #[error("{0}")]
    Invalid(String),
}

/// How many hub calls run at once.
const CONCURRENCY: usize = 16;
const PAGE: i64 = 500;

/// Reads the books and the outside world.
pub struct Reconciler {
    pub store: Store,
    pub hub: HubClient,
    pub assets: Assets,
    /// The CKB node and the hot wallet, when on-chain payouts are on.
    pub onchain: Option<Onchain>,
}

fn parse_sum(s: &str) -> Result<i128, OpsError> {
    s.parse()
        .map_err(|_| OpsError::Invalid(format!("sum {s:?} is not an integer")))
}

/// What one tip looks like at the hub.
enum HubView {
    Paid,
    NotPaid(InvoiceStatus),
    Unknown,
}

/// What the outside world says about a COMPLETED withdrawal.
enum Evidence {
    Confirmed,
    Missing(Finding),
    /// On chain, with no CKB node configured.
    CannotAsk,
}

/// What backfill did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct BackfillSummary {
    pub tips: u64,
    pub asked: u64,
    pub credited: u64,
    pub already_settled: u64,
    pub not_paid: u64,
    pub unknown_at_hub: u64,
    pub without_invoice: u64,
    pub errors: u64,
}

impl Reconciler {
    /// The hub's view of a tip's invoice; a failed call is tried three times in all.
    async fn hub_view(&self, tip: &WindowTip) -> Result<HubView, OpsError> {
        let hash = hash256(&tip.payment_hash).map_err(OpsError::Invalid)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.hub.get_invoice(hash).await {
                Ok(r) => {
                    return Ok(match invoice_status(r.status) {
                        InvoiceStatus::Paid => HubView::Paid,
                        s => HubView::NotPaid(s),
                    })
                }
                Err(e) if e.is_invoice_not_found() => return Ok(HubView::Unknown),
                Err(e) if attempt >= 3 || !e.is_transient() => return Err(e.into()),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(300 * attempt)).await,
            }
        }
    }

    /// The hub's view of each tip, `CONCURRENCY` calls at a time.
    async fn hub_views(&self, tips: Vec<WindowTip>) -> Vec<(WindowTip, Result<HubView, OpsError>)> {
        stream::iter(tips)
            .map(|t| async move {
                let v = self.hub_view(&t).await;
                (t, v)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }

    /// Reconciles the window: the ledger's own rules, every tip against the hub, completed
    /// withdrawals against the chain or the hub, and solvency. An error means it could not run.
    ///
    /// A tip the hub reports Paid and the ledger has not credited yet is a finding only when the
    /// watcher will not get to it: it has no check scheduled, or its check is more than `grace`
    /// overdue. Within that it is counted as `paid_awaiting_credit`.
    pub async fn reconcile(
        &self,
        w: &Window,
        grace: std::time::Duration,
    ) -> Result<Report, OpsError> {
        let mut report = Report::default();
        let f = &mut report.findings;
        for u in self.store.unbalanced_transactions(w).await? {
            f.push(Finding {
                kind: FindingKind::UnbalancedTransaction,
                app_id: Some(u.app_id),
                subject: format!("ledger transaction {} ({})", u.transaction_id, u.key),
                detail: format!("entries in {} sum to {}, not 0", u.asset, u.sum),
            });
        }
        for b in self.store.balance_mismatches(w.app_id.as_deref()).await? {
            f.push(Finding {
                kind: FindingKind::BalanceMismatch,
                app_id: Some(b.app_id),
                subject: format!("account {} (user {}, {})", b.account_id, b.user, b.asset),
                detail: format!("balance row {} but entries sum to {}", b.balance, b.entries),
            });
        }
        for t in self.store.tip_credit_mismatches(w).await? {
            if let Some(kind) = tip_credit_finding(t.state == "SETTLED", t.settles) {
                f.push(Finding {
                    kind,
                    app_id: Some(t.app_id),
                    subject: format!("tip {}", t.id),
                    detail: format!("state {} with {} settle transaction(s)", t.state, t.settles),
                });
            }
        }
        let withdrawals = self.store.withdrawal_ledgers(w).await?;
        report.checked.withdrawals = withdrawals.len() as u64;
        let mut completed = Vec::new();
        for x in withdrawals {
            let state: WithdrawalState = x.state.parse().map_err(OpsError::Invalid)?;
            let want = expected_withdrawal_ledger(state);
            let have = (x.reserves, x.completes, x.releases);
            if have != want {
                f.push(Finding {
                    kind: FindingKind::WithdrawalLedgerMismatch,
                    app_id: Some(x.app_id.clone()),
                    subject: format!("withdrawal {}", x.id),
                    detail: format!(
                        "state {} with reserve/complete/release = {}/{}/{}, expected {}/{}/{}",
                        x.state, have.0, have.1, have.2, want.0, want.1, want.2
                    ),
                });
            }
            if state == WithdrawalState::Completed {
                completed.push(x);
            }
        }
        // Completed withdrawals: the chain or the hub must confirm them.
        let evidence: Vec<Result<Evidence, OpsError>> = stream::iter(completed)
            .map(|x| async move { self.evidence(&x).await })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for e in evidence {
            match e? {
                Evidence::Confirmed => report.checked.withdrawals_verified_outside += 1,
                Evidence::Missing(f) => {
                    report.checked.withdrawals_verified_outside += 1;
                    report.findings.push(f);
                }
                Evidence::CannotAsk => {}
            }
        }
        // Every tip with an invoice, against the hub.
        let mut after = None;
        loop {
            let page = self.store.window_tips(w, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.created_at, last.id));
            report.checked.tips += page.len() as u64;
            let asked: Vec<_> = page.into_iter().filter(|t| t.has_invoice).collect();
            report.checked.tips_asked_at_hub += asked.len() as u64;
            let views = self.hub_views(asked).await;
            for (t, v) in views {
                let settled = t.state == "SETTLED";
                let (kind, detail) = match (v?, settled) {
                    (HubView::Paid, false) if self.watcher_will_credit(&t, grace).await? => {
                        report.checked.paid_awaiting_credit += 1;
                        continue;
                    }
                    (HubView::Paid, false) => (
                        FindingKind::PaidNotCredited,
                        format!(
                            "the hub reports Paid; the tip is {} ({} {})",
                            t.state, t.amount, t.asset
                        ),
                    ),
                    (HubView::NotPaid(s), true) => (
                        FindingKind::CreditedNotPaid,
                        format!("credited, but the hub reports {}", s.as_str()),
                    ),
                    (HubView::Unknown, true) => (
                        FindingKind::CreditedNotPaid,
                        "credited, but the hub does not know the invoice".to_string(),
                    ),
                    _ => continue,
                };
                report.findings.push(Finding {
                    kind,
                    app_id: Some(t.app_id.clone()),
                    subject: format!("tip {}", t.id),
                    detail,
                });
            }
        }
        // Solvency, over every app: the hub and the hot wallet are shared.
        report.solvency = self.solvency().await?;
        for s in &report.solvency {
            if s.is_insolvent() {
                report.findings.push(Finding {
                    kind: FindingKind::Insolvent,
                    app_id: None,
                    subject: format!("asset {}", s.asset),
                    detail: format!(
                        "owed {} (balances) + {} (withdrawals in flight), held {} (hub channels){}: {}",
                        s.balances,
                        s.in_flight,
                        s.hub_channels,
                        s.hot_wallet
                            .as_ref()
                            .map(|h| format!(" + {h} (hot wallet)"))
                            .unwrap_or_default(),
                        s.surplus
                    ),
                });
            }
        }
        Ok(report.finish())
    }

    /// Whether a tip the hub reports Paid is still open and due for a check within `grace` (read
    /// now, after the hub answered: it may have been credited meanwhile).
    async fn watcher_will_credit(
        &self,
        t: &WindowTip,
        grace: std::time::Duration,
    ) -> Result<bool, OpsError> {
        let Some((state, next)) = self.store.tip_watch(t.id).await? else {
            return Ok(false);
        };
        if state == "SETTLED" {
            return Ok(true);
        }
        let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        Ok(next.is_some_and(|n| n >= chrono::Utc::now() - grace))
    }

    async fn evidence(
        &self,
        x: &fiber_link_store::ops::WithdrawalLedger,
    ) -> Result<Evidence, OpsError> {
        let missing = |detail: String| {
            Evidence::Missing(Finding {
                kind: FindingKind::CompletedWithdrawalWithoutEvidence,
                app_id: Some(x.app_id.clone()),
                subject: format!("withdrawal {}", x.id),
                detail,
            })
        };
        if x.rail == "fiber" {
            let Some(h) = &x.payment_hash else {
                return Ok(missing("no payment hash".into()));
            };
            let hash = hash256(h).map_err(OpsError::Invalid)?;
            return match self.hub.get_payment(hash).await {
                Ok(r) if r.status == PaymentStatus::Success => Ok(Evidence::Confirmed),
                Ok(r) => Ok(missing(format!(
                    "the hub reports the payment {:?}",
                    r.status
                ))),
                Err(e) if e.is_payment_not_found() => {
                    Ok(missing("the hub has no payment with this hash".into()))
                }
                Err(e) => Err(e.into()),
            };
        }
        let Some(h) = &x.tx_hash else {
            return Ok(missing("no transaction hash".into()));
        };
        let Some(oc) = &self.onchain else {
            // Without a CKB node configured the chain cannot be asked; `checked` shows it.
            return Ok(Evidence::CannotAsk);
        };
        let hash = parse_hash(h).map_err(OpsError::Invalid)?;
        match oc.chain.tx_state(&hash).await {
            Ok(TxState::Committed { .. }) => Ok(Evidence::Confirmed),
            Ok(TxState::InPool) => Ok(missing(format!("transaction {h} is not committed yet"))),
            Ok(TxState::Unknown { .. }) => {
                Ok(missing(format!("the chain does not know transaction {h}")))
            }
            Err(e) => Err(OpsError::Chain(e.to_string())),
        }
    }

    /// Per asset: owed (author balances + withdrawals in flight) against the hub's channels'
    /// local balances and the hot wallet.
    ///
    /// The books are read first, the hub and the wallet after: a payment that arrives in between
    /// only adds to what is held, and a payout sent in between was already not counted as owed
    /// (it had left the unsent states).
    pub async fn solvency(&self) -> Result<Vec<Solvency>, OpsError> {
        let owed = self.store.owed().await?;
        let channels = self
            .hub
            .list_channels(&ListChannelsParams {
                pubkey: None,
                include_closed: None,
                only_pending: None,
            })
            .await?
            .channels;
        let mut held: Vec<(String, u128)> = Vec::new();
        for c in channels {
            let asset = match &c.funding_udt_type_script {
                None => "CKB".to_string(),
                Some(s) => self
                    .assets
                    .iter()
                    .find(|a| {
                        a.udt_type_script
                            .as_ref()
                            .and_then(|u| script_json(u).ok())
                            .is_some_and(|u| &u == s)
                    })
                    .map(|a| a.symbol.clone())
                    .unwrap_or_else(|| format!("unknown UDT {}", s.code_hash)),
            };
            match held.iter_mut().find(|(a, _)| *a == asset) {
                Some((_, n)) => *n = n.saturating_add(c.local_balance),
                None => held.push((asset, c.local_balance)),
            }
        }
        let wallet = match &self.onchain {
            Some(oc) => Some(
                oc.wallet
                    .balance(&oc.chain)
                    .await
                    .map_err(|e| OpsError::Chain(e.to_string()))? as u128,
            ),
            None => None,
        };
        let mut out = Vec::new();
        for o in owed {
            let hub = held.iter().find(|(a, _)| *a == o.asset).map_or(0, |x| x.1);
            let hot = if o.asset == "CKB" { wallet } else { None };
            out.push(Solvency::new(
                &o.asset,
                parse_sum(&o.balances)?,
                (parse_sum(&o.in_flight)?, parse_sum(&o.unsent)?),
                hub,
                hot,
            ));
        }
        Ok(out)
    }

    /// Asks the hub about every tip of the window that is not SETTLED and credits those it
    /// reports Paid, through the one credit path (`source = "backfill"`). Safe to run any number
    /// of times and beside running workers: a tip is credited once whoever gets there first.
    /// `progress(done, total)` is called after each page.
    pub async fn backfill(
        &self,
        w: &Window,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<BackfillSummary, OpsError> {
        let total = self.store.count_window_tips(w).await?.max(0) as u64;
        let mut s = BackfillSummary::default();
        let mut after = None;
        progress(0, total);
        loop {
            let page = self.store.window_tips(w, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.created_at, last.id));
            s.tips += page.len() as u64;
            let mut ask = Vec::new();
            for t in page {
                if t.state == "SETTLED" {
                    s.already_settled += 1;
                } else if !t.has_invoice {
                    s.without_invoice += 1;
                } else {
                    ask.push(t);
                }
            }
            s.asked += ask.len() as u64;
            let views = self.hub_views(ask).await;
            for (t, v) in views {
                match v {
                    Ok(HubView::Paid) => match self.store.credit_tip(t.id, "backfill", None).await?
                    {
                        CreditOutcome::Credited { lag_secs } => {
                            fiber_link_metrics::global().tip_settled(&t.app_id, &t.asset, lag_secs);
                            info!(tip_id = %t.id, app_id = %t.app_id, asset = %t.asset, amount = %t.amount, "backfill credited a paid tip");
                            s.credited += 1;
                        }
                        CreditOutcome::AlreadySettled => s.already_settled += 1,
                    },
                    Ok(HubView::NotPaid(_)) => s.not_paid += 1,
                    Ok(HubView::Unknown) => s.unknown_at_hub += 1,
                    Err(e) => {
                        warn!(tip_id = %t.id, error = %e, "backfill could not ask the hub about a tip");
                        s.errors += 1;
                    }
                }
            }
            progress(s.tips, total.max(s.tips));
        }
        Ok(s)
    }
}
