//! Withdrawals: states, fee handling and the per-app policy, as pure functions.
//!
//! States: `AWAITING_APPROVAL | QUEUED → SUBMITTING → SUBMITTED → COMPLETED`, or `FAILED` /
//! `CANCELLED`. Funds are reserved (moved out of the author's balance) when the request is accepted
//! and stay reserved until `COMPLETED` (paid out) or `FAILED` / `CANCELLED` (released).

use crate::money::Amount;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The smallest capacity of a cell locked by the default secp256k1 lock: 61 CKB.
pub const MIN_ONCHAIN_OUTPUT: Amount = Amount::from_base_units(61 * 100_000_000);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WithdrawalState {
    /// Over the approval threshold; waits for an operator.
    AwaitingApproval,
    /// Accepted; waits for the worker.
    Queued,
    /// The payout (signed transaction, or payment hash) is persisted and being sent.
    Submitting,
    /// Sent; waits for confirmations or the hub's final status.
    Submitted,
    /// Paid out. Final.
    Completed,
    /// Definitively failed; the reservation was released. Final.
    Failed,
    /// Cancelled before execution; the reservation was released. Final.
    Cancelled,
}

impl WithdrawalState {
    pub const ALL: [WithdrawalState; 7] = [
        WithdrawalState::AwaitingApproval,
        WithdrawalState::Queued,
        WithdrawalState::Submitting,
        WithdrawalState::Submitted,
        WithdrawalState::Completed,
        WithdrawalState::Failed,
        WithdrawalState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawalState::AwaitingApproval => "AWAITING_APPROVAL",
            WithdrawalState::Queued => "QUEUED",
            WithdrawalState::Submitting => "SUBMITTING",
            WithdrawalState::Submitted => "SUBMITTED",
            WithdrawalState::Completed => "COMPLETED",
            WithdrawalState::Failed => "FAILED",
            WithdrawalState::Cancelled => "CANCELLED",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            WithdrawalState::Completed | WithdrawalState::Failed | WithdrawalState::Cancelled
        )
    }

    /// Whether the withdrawal can still be cancelled: nothing has been sent yet, and nothing is
    /// about to be (the worker persists its intent in `SUBMITTING` before sending).
    pub fn is_cancellable(self) -> bool {
        matches!(
            self,
            WithdrawalState::AwaitingApproval | WithdrawalState::Queued
        )
    }
}

impl fmt::Display for WithdrawalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WithdrawalState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WithdrawalState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown withdrawal state {s:?}"))
    }
}

/// How a withdrawal leaves: an on-chain CKB transaction, or a payment of a Fiber invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rail {
    Onchain,
    Fiber,
}

impl Rail {
    pub fn as_str(self) -> &'static str {
        match self {
            Rail::Onchain => "onchain",
            Rail::Fiber => "fiber",
        }
    }

    pub fn parse(s: &str) -> Option<Rail> {
        match s {
            "onchain" => Some(Rail::Onchain),
            "fiber" => Some(Rail::Fiber),
            _ => None,
        }
    }
}

/// What the hub says of a Fiber payout's payment (`get_payment`, or that it has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HubPayment {
    /// No payment session for the payment hash: nothing was ever sent, or the hub lost it.
    NotFound,
    /// `Created` or `Inflight`: the payment may still succeed.
    InFlight,
    /// `Failed`. Not final at FNN: a later `send_payment` for the same hash is accepted and may
    /// succeed (a route appears, the payee comes back).
    Failed,
    Success,
}

/// The next step for a Fiber payout, by [`fiber_payout_step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FiberPayoutStep {
    /// The hub paid it: complete the withdrawal.
    Complete,
    /// A payment is under way: ask again later.
    Wait,
    /// Nothing is paid and the invoice can still be paid: send (again), later if it just failed.
    Send,
    /// Nothing is paid and nothing can be any more: release the funds.
    Release,
}

/// How long after an invoice's expiry it counts as unpayable, by default: the hub checks expiry
/// with its own clock, so ours must be past it by more than the two clocks can differ.
pub const INVOICE_EXPIRY_MARGIN_SECS: u64 = 60;

/// The one rule for a Fiber payout that is not paid, shared by the worker and the operator's
/// `withdrawal fail`: the funds are released only when no payment is under way and the invoice
/// can never be paid any more — it expired (by more than the margin), or the hub refused it for
/// good (invalid for it, or its own invoice). A `Failed` payment of a payable invoice is sent
/// again: FNN takes a new `send_payment` for the same hash, so releasing the funds then would let
/// a later send (a retry, or a stale worker's) pay what the author already got back.
pub fn fiber_payout_step(payment: HubPayment, invoice_unpayable: bool) -> FiberPayoutStep {
    match payment {
        HubPayment::Success => FiberPayoutStep::Complete,
        HubPayment::InFlight => FiberPayoutStep::Wait,
        HubPayment::NotFound | HubPayment::Failed if invoice_unpayable => FiberPayoutStep::Release,
        HubPayment::NotFound | HubPayment::Failed => FiberPayoutStep::Send,
    }
}

/// Whether an invoice that expires at `expires_at_ms` (`None`: never) is past its expiry by more
/// than `margin_ms` at `now_ms`.
pub fn invoice_past_expiry(expires_at_ms: Option<u128>, now_ms: u128, margin_ms: u128) -> bool {
    expires_at_ms.is_some_and(|at| at.saturating_add(margin_ms) <= now_ms)
}

/// Who pays the network fee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeeMode {
    /// Taken from the payout: the recipient receives `amount − fee`.
    Deduct,
    /// Paid by the operator: the recipient receives `amount`.
    Operator,
}

impl FeeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FeeMode::Deduct => "deduct",
            FeeMode::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<FeeMode> {
        match s {
            "deduct" => Some(FeeMode::Deduct),
            "operator" => Some(FeeMode::Operator),
            _ => None,
        }
    }

    /// What the recipient receives of `amount` with `fee`; `None` when the fee eats it all.
    pub fn receive(self, amount: Amount, fee: Amount) -> Option<Amount> {
        let r = match self {
            FeeMode::Deduct => amount.checked_sub(fee)?,
            FeeMode::Operator => amount,
        };
        (!r.is_zero()).then_some(r)
    }

    /// The `amount` that makes the recipient receive exactly `receive`.
    pub fn amount_for(self, receive: Amount, fee: Amount) -> Option<Amount> {
        match self {
            FeeMode::Deduct => receive.checked_add(fee),
            FeeMode::Operator => Some(receive),
        }
    }
}

/// An app's withdrawal rules for one asset (amounts in base units).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Whether this asset may be withdrawn at all.
    pub allowed: bool,
    /// The smallest `amount` of one withdrawal.
    pub min: Amount,
    /// The largest `amount` of one withdrawal.
    pub max_per_request: Option<Amount>,
    /// What one author may withdraw in any 24 hours.
    pub author_daily_cap: Option<Amount>,
    /// What the whole app may withdraw in any 24 hours.
    pub app_daily_cap: Option<Amount>,
    /// Seconds an author waits between two withdrawals of the asset.
    pub cooldown_secs: u64,
    /// Withdrawals of more than this wait for an operator's approval.
    pub approval_threshold: Option<Amount>,
}

/// What the database says at the moment of the request (read under the request's locks).
#[derive(Clone, Copy, Debug, Default)]
pub struct Standing {
    /// The author's available balance in the asset.
    pub available: Amount,
    /// The author's withdrawals of the asset in the last 24 h (not failed or cancelled).
    pub author_24h: Amount,
    /// The app's withdrawals of the asset in the last 24 h (not failed or cancelled).
    pub app_24h: Amount,
    /// Seconds since the author's previous withdrawal of the asset (not failed or cancelled).
    pub secs_since_last: Option<u64>,
}

/// A stable reason a withdrawal is refused by policy, with a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            reason,
            message: message.into(),
        }
    }
}

/// The payout figures of a withdrawal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Figures {
    /// Leaves the author's balance (and is reserved until the end).
    pub amount: Amount,
    /// The network fee (exact on chain; the most the route may cost over Fiber).
    pub fee: Amount,
    /// What the recipient receives.
    pub receive: Amount,
}

/// The bounds of `amount` for this request, from the policy, the rail and the balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub min: Amount,
    /// `None` when nothing can be withdrawn (the minimum is above every other limit).
    pub max: Option<Amount>,
}

/// The amount bounds for a withdrawal on `rail` with `fee` under `policy` and `standing`.
pub fn bounds(
    policy: &Policy,
    rail: Rail,
    mode: FeeMode,
    fee: Amount,
    standing: &Standing,
) -> Bounds {
    let mut min = policy.min.max(Amount::from_base_units(1));
    // The recipient must receive something, and on chain at least one cell's worth.
    let least_receive = match rail {
        Rail::Onchain => MIN_ONCHAIN_OUTPUT,
        Rail::Fiber => Amount::from_base_units(1),
    };
    // (a fee so large that the least amount overflows: nothing can be withdrawn at that fee)
    min = min.max(
        mode.amount_for(least_receive, fee)
            .unwrap_or(Amount::from_base_units(u128::MAX)),
    );
    let mut max = standing.available;
    if let Some(m) = policy.max_per_request {
        max = max.min(m);
    }
    if let Some(cap) = policy.author_daily_cap {
        max = max.min(cap.checked_sub(standing.author_24h).unwrap_or(Amount::ZERO));
    }
    if let Some(cap) = policy.app_daily_cap {
        max = max.min(cap.checked_sub(standing.app_24h).unwrap_or(Amount::ZERO));
    }
    Bounds {
        min,
        max: (max >= min).then_some(max),
    }
}

/// Checks one withdrawal against the policy. `Ok(needs_approval)` when it may go ahead.
/// The order of the checks is the order of the reasons in the API reference.
pub fn check(
    policy: &Policy,
    rail: Rail,
    mode: FeeMode,
    figures: &Figures,
    standing: &Standing,
    fmt: impl Fn(Amount) -> String,
) -> Result<bool, Refusal> {
    let amount = figures.amount;
    if !policy.allowed {
        return Err(Refusal::new(
            "asset_not_allowed",
            "withdrawals of this asset are not allowed for this community",
        ));
    }
    let b = bounds(policy, rail, mode, figures.fee, standing);
    if amount < b.min {
        return Err(Refusal::new(
            "amount_below_minimum",
            format!("the smallest withdrawal is {}", fmt(b.min)),
        ));
    }
    if let Some(m) = policy.max_per_request {
        if amount > m {
            return Err(Refusal::new(
                "amount_above_maximum",
                format!("the largest withdrawal is {}", fmt(m)),
            ));
        }
    }
    if amount > standing.available {
        return Err(Refusal::new(
            "insufficient_balance",
            format!("only {} is available", fmt(standing.available)),
        ));
    }
    if let Some(cap) = policy.author_daily_cap {
        if standing
            .author_24h
            .checked_add(amount)
            .is_none_or(|t| t > cap)
        {
            let left = cap.checked_sub(standing.author_24h).unwrap_or(Amount::ZERO);
            return Err(Refusal::new(
                "author_daily_cap",
                format!(
                    "this would exceed the limit of {} per 24 hours ({} left)",
                    fmt(cap),
                    fmt(left)
                ),
            ));
        }
    }
    if let Some(cap) = policy.app_daily_cap {
        if standing.app_24h.checked_add(amount).is_none_or(|t| t > cap) {
            return Err(Refusal::new(
                "app_daily_cap",
                "this community has reached its withdrawal limit for the last 24 hours; try later",
            ));
        }
    }
    if let Some(since) = standing.secs_since_last {
        if since < policy.cooldown_secs {
            return Err(Refusal::new(
                "cooldown",
                format!(
                    "the previous withdrawal was {} seconds ago; wait {} more seconds",
                    since,
                    policy.cooldown_secs - since
                ),
            ));
        }
    }
    Ok(policy.approval_threshold.is_some_and(|t| amount > t))
}

/// On-chain CKB payouts from the hot wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnchainConfig {
    /// Shannons per 1000 bytes (CKB's minimum relay rate is 1000).
    pub fee_rate: u64,
    /// The largest payout transaction the wallet builds, in bytes; the fee is this size at
    /// `fee_rate`, so every payout pays exactly the quoted fee.
    pub max_tx_bytes: u64,
    /// Blocks on top of the payout's block before it is `COMPLETED` (1 = in a block).
    pub confirmations: u64,
}

impl OnchainConfig {
    /// The exact fee of every on-chain payout.
    pub fn fee(&self) -> Amount {
        fee_for_size(self.max_tx_bytes, self.fee_rate)
    }
}

/// How withdrawals work for this service (from configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawalConfig {
    pub fee_mode: FeeMode,
    /// `None`: on-chain payouts are off.
    pub onchain: Option<OnchainConfig>,
    /// Over Fiber, the most a route may cost, per thousand of what the recipient receives.
    pub fiber_fee_per_thousand: u64,
    /// The default policy of each asset (by symbol); an asset without one is not withdrawable.
    pub defaults: Vec<(String, Policy)>,
}

impl Default for WithdrawalConfig {
    fn default() -> Self {
        WithdrawalConfig {
            fee_mode: FeeMode::Deduct,
            onchain: None,
            fiber_fee_per_thousand: 5,
            defaults: Vec::new(),
        }
    }
}

impl WithdrawalConfig {
    /// The default policy for `asset` (not allowed when none is configured).
    pub fn default_policy(&self, asset: &str) -> Policy {
        self.defaults
            .iter()
            .find(|(a, _)| a == asset)
            .map(|(_, p)| p.clone())
            .unwrap_or(Policy {
                allowed: false,
                min: Amount::ZERO,
                max_per_request: None,
                author_daily_cap: None,
                app_daily_cap: None,
                cooldown_secs: 0,
                approval_threshold: None,
            })
    }

    /// The most a Fiber route may cost for a payment of `receive`.
    pub fn fiber_fee(&self, receive: Amount) -> Amount {
        let f = receive
            .base_units()
            .saturating_mul(u128::from(self.fiber_fee_per_thousand))
            .div_ceil(1000);
        Amount::from_base_units(f)
    }
}

/// The on-chain fee of a transaction of `size` bytes at `rate` shannons per 1000 bytes, rounded
/// up (CKB's own rule for the minimum fee).
pub fn fee_for_size(size: u64, rate_per_kb: u64) -> Amount {
    Amount::from_base_units(u128::from(size * rate_per_kb).div_ceil(1000))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_fiber_payout_is_released_only_when_nothing_can_pay_it() {
        use super::{fiber_payout_step as step, FiberPayoutStep as S, HubPayment as P};
        for unpayable in [false, true] {
            assert_eq!(step(P::Success, unpayable), S::Complete);
            assert_eq!(step(P::InFlight, unpayable), S::Wait);
        }
        // a failed payment of an invoice that can still be paid is sent again, never released
        assert_eq!(step(P::Failed, false), S::Send);
        assert_eq!(step(P::NotFound, false), S::Send);
        assert_eq!(step(P::Failed, true), S::Release);
        assert_eq!(step(P::NotFound, true), S::Release);
    }

    #[test]
    fn a_fee_that_overflows_the_least_amount_allows_nothing() {
        use super::*;
        let policy = Policy {
            allowed: true,
            min: Amount::ZERO,
            max_per_request: None,
            author_daily_cap: None,
            app_daily_cap: None,
            cooldown_secs: 0,
            approval_threshold: None,
        };
        let standing = Standing {
            available: Amount::from_base_units(u128::MAX),
            ..Default::default()
        };
        let fee = Amount::from_base_units(u128::MAX);
        let b = bounds(&policy, Rail::Onchain, FeeMode::Deduct, fee, &standing);
        assert_eq!(b.min, Amount::from_base_units(u128::MAX));
        assert_eq!(b.max, Some(Amount::from_base_units(u128::MAX)));
    }

    #[test]
    fn expiry_counts_only_past_the_margin() {
        use super::invoice_past_expiry as past;
        assert!(
            !past(None, u128::MAX, 0),
            "an invoice without expiry never expires"
        );
        assert!(!past(Some(1_000), 1_000, 60_000));
        assert!(!past(Some(1_000), 60_999, 60_000));
        assert!(past(Some(1_000), 61_000, 60_000));
        assert!(past(Some(1_000), 1_000, 0));
    }

    use super::*;

    const CKB: u128 = 100_000_000;

    fn a(ckb: u128) -> Amount {
        Amount::from_base_units(ckb * CKB)
    }

    fn policy() -> Policy {
        Policy {
            allowed: true,
            min: a(1),
            max_per_request: Some(a(1000)),
            author_daily_cap: Some(a(1500)),
            app_daily_cap: Some(a(10_000)),
            cooldown_secs: 60,
            approval_threshold: Some(a(500)),
        }
    }

    fn standing() -> Standing {
        Standing {
            available: a(2000),
            ..Standing::default()
        }
    }

    fn run(amount: Amount, rail: Rail, st: &Standing) -> Result<bool, &'static str> {
        let fee = Amount::from_base_units(1000);
        let f = Figures {
            amount,
            fee,
            receive: FeeMode::Deduct.receive(amount, fee).unwrap_or(Amount::ZERO),
        };
        check(&policy(), rail, FeeMode::Deduct, &f, st, |x| {
            crate::format_decimal(x, 8)
        })
        .map_err(|r| r.reason)
    }

    #[test]
    fn onchain_needs_a_whole_cell_after_the_fee() {
        // 61 CKB deducting a fee leaves less than a cell: refused; 61 CKB + fee is the minimum.
        assert_eq!(
            run(a(61), Rail::Onchain, &standing()),
            Err("amount_below_minimum")
        );
        let least = Amount::from_base_units(61 * CKB + 1000);
        assert_eq!(run(least, Rail::Onchain, &standing()), Ok(false));
        assert_eq!(run(a(2), Rail::Fiber, &standing()), Ok(false));
        let b = bounds(
            &policy(),
            Rail::Onchain,
            FeeMode::Operator,
            Amount::from_base_units(1000),
            &standing(),
        );
        assert_eq!(b.min, a(61), "the operator pays the fee: 61 CKB is enough");
        assert_eq!(b.max, Some(a(1000)));
    }

    #[test]
    fn each_rule_has_its_reason() {
        let st = standing();
        assert_eq!(run(a(1001), Rail::Fiber, &st), Err("amount_above_maximum"));
        let poor = Standing {
            available: a(10),
            ..st
        };
        assert_eq!(run(a(11), Rail::Fiber, &poor), Err("insufficient_balance"));
        assert_eq!(run(a(10), Rail::Fiber, &poor), Ok(false));
        let busy = Standing {
            author_24h: a(1000),
            ..st
        };
        assert_eq!(run(a(501), Rail::Fiber, &busy), Err("author_daily_cap"));
        assert_eq!(run(a(500), Rail::Fiber, &busy), Ok(false));
        let app = Standing {
            app_24h: a(9_999),
            ..st
        };
        assert_eq!(run(a(2), Rail::Fiber, &app), Err("app_daily_cap"));
        let recent = Standing {
            secs_since_last: Some(59),
            ..st
        };
        assert_eq!(run(a(2), Rail::Fiber, &recent), Err("cooldown"));
        let later = Standing {
            secs_since_last: Some(60),
            ..st
        };
        assert_eq!(run(a(2), Rail::Fiber, &later), Ok(false));
        assert_eq!(
            run(a(501), Rail::Fiber, &st),
            Ok(true),
            "over the threshold"
        );
        assert_eq!(run(a(500), Rail::Fiber, &st), Ok(false));
        let mut off = policy();
        off.allowed = false;
        let f = Figures {
            amount: a(2),
            fee: Amount::ZERO,
            receive: a(2),
        };
        let r = check(&off, Rail::Fiber, FeeMode::Operator, &f, &st, |x| {
            x.to_string()
        });
        assert_eq!(r.unwrap_err().reason, "asset_not_allowed");
    }

    #[test]
    fn bounds_follow_balance_and_caps() {
        let st = Standing {
            available: a(700),
            author_24h: a(1000),
            ..Standing::default()
        };
        let b = bounds(&policy(), Rail::Fiber, FeeMode::Operator, Amount::ZERO, &st);
        assert_eq!(b.max, Some(a(500)), "the author cap leaves 500");
        let empty = Standing::default();
        let b = bounds(
            &policy(),
            Rail::Fiber,
            FeeMode::Operator,
            Amount::ZERO,
            &empty,
        );
        assert_eq!(b.max, None);
    }

    #[test]
    fn fee_modes_and_fees() {
        let fee = Amount::from_base_units(500);
        assert_eq!(
            FeeMode::Deduct.receive(Amount::from_base_units(10_000), fee),
            Some(Amount::from_base_units(9_500))
        );
        assert_eq!(FeeMode::Deduct.receive(fee, fee), None);
        assert_eq!(
            FeeMode::Operator.receive(Amount::from_base_units(10_000), fee),
            Some(Amount::from_base_units(10_000))
        );
        assert_eq!(
            FeeMode::Deduct.amount_for(Amount::from_base_units(9_500), fee),
            Some(Amount::from_base_units(10_000))
        );
        assert_eq!(fee_for_size(500, 1000), Amount::from_base_units(500));
        assert_eq!(fee_for_size(501, 1001), Amount::from_base_units(502));
        for s in WithdrawalState::ALL {
            assert_eq!(s.as_str().parse::<WithdrawalState>(), Ok(s));
        }
        assert!(WithdrawalState::Queued.is_cancellable());
        assert!(!WithdrawalState::Submitting.is_cancellable());
    }
}
