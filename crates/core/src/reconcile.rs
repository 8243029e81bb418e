//! Reconciliation: the kinds of findings, what a withdrawal's ledger must hold in each state,
//! and the report. The checks themselves read the database and the outside world (worker crate).

use crate::WithdrawalState;
use serde::Serialize;

/// What reconciliation found wrong. The names are stable (scripts branch on them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A ledger transaction's entries do not sum to zero in an asset.
    UnbalancedTransaction,
    /// An author account's balance row differs from the sum of its entries.
    BalanceMismatch,
    /// A SETTLED tip without a settle transaction.
    SettledTipWithoutCredit,
    /// A SETTLED tip with more than one settle transaction.
    TipCreditCount,
    /// A tip that is not SETTLED but has a settle transaction.
    UnsettledTipWithCredit,
    /// A withdrawal whose reserve / complete / release transactions do not match its state.
    WithdrawalLedgerMismatch,
    /// A COMPLETED withdrawal the chain (transaction committed) or the hub (payment Success)
    /// does not confirm.
    CompletedWithdrawalWithoutEvidence,
    /// The hub says the invoice is Paid; the tip is not credited.
    PaidNotCredited,
    /// The tip is credited; the hub does not say its invoice is Paid.
    CreditedNotPaid,
    /// What the service owes in an asset (author balances and withdrawals not yet sent)
    /// exceeds what the hub's channels and the hot wallet hold.
    Insolvent,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::UnbalancedTransaction => "unbalanced_transaction",
            FindingKind::BalanceMismatch => "balance_mismatch",
            FindingKind::SettledTipWithoutCredit => "settled_tip_without_credit",
            FindingKind::TipCreditCount => "tip_credit_count",
            FindingKind::UnsettledTipWithCredit => "unsettled_tip_with_credit",
            FindingKind::WithdrawalLedgerMismatch => "withdrawal_ledger_mismatch",
            FindingKind::CompletedWithdrawalWithoutEvidence => {
                "completed_withdrawal_without_evidence"
            }
            FindingKind::PaidNotCredited => "paid_not_credited",
            FindingKind::CreditedNotPaid => "credited_not_paid",
            FindingKind::Insolvent => "insolvent",
        }
    }
}

/// One finding: its kind, the app (when it belongs to one), what it is about (a tip or
/// withdrawal id, a ledger transaction, an account, an asset) and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    pub subject: String,
    pub detail: String,
}

/// The tip-credit finding for a tip in `state` with `settles` settle transactions, if any.
pub fn tip_credit_finding(settled: bool, settles: i64) -> Option<FindingKind> {
    match (settled, settles) {
        (true, 0) => Some(FindingKind::SettledTipWithoutCredit),
        (true, 1) => None,
        (true, _) => Some(FindingKind::TipCreditCount),
        (false, 0) => None,
        (false, _) => Some(FindingKind::UnsettledTipWithCredit),
    }
}

/// How many reserve, complete and release transactions a withdrawal in `state` has: one
/// reservation always; one completion when COMPLETED; one release when FAILED or CANCELLED.
pub fn expected_withdrawal_ledger(state: WithdrawalState) -> (i64, i64, i64) {
    match state {
        WithdrawalState::Completed => (1, 1, 0),
        WithdrawalState::Failed | WithdrawalState::Cancelled => (1, 0, 1),
        _ => (1, 0, 0),
    }
}

/// Per asset: what the service owes against what it holds. Amounts in base units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Solvency {
    pub asset: String,
    /// Author balances.
    pub balances: String,
    /// Reserved for withdrawals not finished.
    pub in_flight: String,
    /// The part of `in_flight` not sent yet (awaiting approval or queued): still in custody.
    /// The rest (being sent, sent) may already have left the hub or the wallet while the
    /// withdrawal waits for its confirmation, so it is shown but not counted either way.
    pub in_flight_unsent: String,
    /// Local balances of the hub's ready channels in this asset.
    pub hub_channels: String,
    /// The hot wallet's confirmed balance (CKB with on-chain payouts on), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hot_wallet: Option<String>,
    /// What is owed: balances + the unsent part of in-flight.
    pub owed: String,
    /// What is held: hub channels + the hot wallet.
    pub held: String,
    /// held − owed; negative means insolvent.
    pub surplus: String,
}

impl Solvency {
    /// `balances` and `in_flight` are signed: a corrupt ledger can hold a negative sum, and the
    /// report must still show it. Owed = balances + the unsent part of in-flight.
    pub fn new(
        asset: &str,
        balances: i128,
        (in_flight, unsent): (i128, i128),
        hub_channels: u128,
        hot_wallet: Option<u128>,
    ) -> Solvency {
        let owed = balances.saturating_add(unsent);
        let held = i128::try_from(hub_channels.saturating_add(hot_wallet.unwrap_or(0)))
            .unwrap_or(i128::MAX);
        Solvency {
            asset: asset.to_string(),
            balances: balances.to_string(),
            in_flight: in_flight.to_string(),
            in_flight_unsent: unsent.to_string(),
            hub_channels: hub_channels.to_string(),
            hot_wallet: hot_wallet.map(|h| h.to_string()),
            owed: owed.to_string(),
            held: held.to_string(),
            surplus: held.saturating_sub(owed).to_string(),
        }
    }

    pub fn is_insolvent(&self) -> bool {
        self.surplus.starts_with('-')
    }
}

/// What a reconciliation looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Checked {
    pub tips: u64,
    pub tips_asked_at_hub: u64,
    /// Tips the hub reports Paid that the watcher is due to credit within the grace period.
    pub paid_awaiting_credit: u64,
    pub withdrawals: u64,
    /// COMPLETED withdrawals asked about at the hub or the chain (on-chain ones only when a CKB
    /// node is configured).
    pub withdrawals_verified_outside: u64,
}

/// The report of `fiber-link reconcile`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub clean: bool,
    pub checked: Checked,
    pub solvency: Vec<Solvency>,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Sorts the findings (by kind, then subject) and sets `clean`.
    pub fn finish(mut self) -> Report {
        self.findings
            .sort_by(|a, b| (a.kind, &a.subject).cmp(&(b.kind, &b.subject)));
        self.clean = self.findings.is_empty();
        self
    }

    /// How many findings of each kind, in kind order.
    pub fn counts(&self) -> Vec<(FindingKind, usize)> {
        let mut out: Vec<(FindingKind, usize)> = Vec::new();
        for f in &self.findings {
            match out.iter_mut().find(|(k, _)| *k == f.kind) {
                Some((_, n)) => *n += 1,
                None => out.push((f.kind, 1)),
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tip_credit_rules() {
        assert_eq!(tip_credit_finding(true, 1), None);
        assert_eq!(tip_credit_finding(false, 0), None);
        assert_eq!(
            tip_credit_finding(true, 0),
            Some(FindingKind::SettledTipWithoutCredit)
        );
        assert_eq!(
            tip_credit_finding(true, 2),
            Some(FindingKind::TipCreditCount)
        );
        assert_eq!(
            tip_credit_finding(false, 1),
            Some(FindingKind::UnsettledTipWithCredit)
        );
    }

    #[test]
    fn withdrawal_ledger_rules() {
        assert_eq!(
            expected_withdrawal_ledger(WithdrawalState::Submitted),
            (1, 0, 0)
        );
        assert_eq!(
            expected_withdrawal_ledger(WithdrawalState::Completed),
            (1, 1, 0)
        );
        assert_eq!(
            expected_withdrawal_ledger(WithdrawalState::Cancelled),
            (1, 0, 1)
        );
    }

    #[test]
    fn solvency_surplus_and_deficit() {
        let ok = Solvency::new("CKB", 100, (50, 50), 120, Some(40));
        assert_eq!(ok.surplus, "10");
        assert!(!ok.is_insolvent());
        let bad = Solvency::new("CKB", 100, (50, 50), 120, None);
        assert_eq!(bad.surplus, "-30");
        assert!(bad.is_insolvent());
        // a payout that may have left already is not counted as owed
        let sending = Solvency::new("CKB", 100, (50, 0), 120, None);
        assert_eq!(sending.surplus, "20");
    }
}
