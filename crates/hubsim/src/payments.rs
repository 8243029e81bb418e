//! The FNN payment methods: `send_payment`, `get_payment`, `list_payments`, and `list_channels`
//! with the liquidity the payments draw on.

use super::{
    hash_debug, now_ms, one_param, Echo, ErrorData, HubSim, Outcome, Payment, RpcError, RpcResult,
    SimState,
};
use crate::book::asset_key;
use fiber_json_types as j;
use fiber_types::CkbInvoice;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

impl HubSim {
    /// Pays an invoice of another node (a payout). The simulated network delivers it after a
    /// short while: `Created`, then `Inflight`, then `Success`.
    pub(super) fn send_payment(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::SendPaymentCommandParams, Echo<_>) = one_param(params)?;
        let Some(s) = &p.invoice else {
            return Err(RpcError::app(
                "the hub simulator pays invoices only (no keysend or bare payment_hash)",
                echo,
            ));
        };
        let inv: CkbInvoice = s.parse().map_err(|e: fiber_types::InvoiceError| {
            RpcError::app(
                format!("InvalidParameter: Failed to validate payment request: \"{e}\""),
                echo,
            )
        })?;
        if inv.is_expired() {
            return Err(RpcError::app(
                "InvalidParameter: Failed to validate payment request: \"invoice is expired\"",
                echo,
            ));
        }
        if let (Some(a), Some(b)) = (p.amount, inv.amount()) {
            if a != b {
                return Err(RpcError::app(
                    "InvalidParameter: Failed to validate payment request: \"amount does not match the invoice\"",
                    echo,
                ));
            }
        }
        let hash: [u8; 32] = (*inv.payment_hash()).into();
        if inv.payee_pub_key() == Some(&self.0.pubkey) {
            return Err(self.route_failed(
                hash,
                "Send payment error: Failed to build route, Feature not enabled: allow_self_payment is not enabled, can not pay to self",
                echo,
            ));
        }
        let amount = p.amount.or(inv.amount()).unwrap_or(0);
        if amount == 0 {
            return Err(RpcError::app(
                "InvalidParameter: amount must be greater than 0",
                echo,
            ));
        }
        let udt: Option<ckb_jsonrpc_types::Script> = inv
            .udt_type_script()
            .map(|s| ckb_jsonrpc_types::Script::from(s.clone()));
        // One forwarding hop at 1000 ppm (at least 1 unit), as FNN's default fee rate; capped by
        // min(max_fee_amount, ceil(amount × max_fee_rate / 1000)) as FNN caps it.
        let fee = amount.div_ceil(1000).max(1);
        let rate_cap = (amount * u128::from(p.max_fee_rate.unwrap_or(5))).div_ceil(1000);
        let cap = p.max_fee_amount.map_or(rate_cap, |m| m.min(rate_cap));
        let dry_run = p.dry_run.unwrap_or(false);
        let now = now_ms();
        let mut st = self.state();
        if let Some(existing) = st.payments.get(&hash) {
            if existing.result.status != j::PaymentStatus::Failed {
                return Err(RpcError::app(
                    format!(
                        "InvalidParameter: Payment session already exists: {} with payment session status: {:?}",
                        hash_debug(&hash),
                        existing.result.status
                    ),
                    echo,
                ));
            }
        }
        let liquidity = self.outbound(&st, udt.as_ref());
        let no_route = st.outcomes.get(&hash) == Some(&Outcome::NoRoute);
        if no_route || fee > cap || amount.saturating_add(fee) > liquidity {
            drop(st);
            return Err(self.route_failed(
                hash,
                "Send payment error: Failed to build route, PathFind error: no path found",
                echo,
            ));
        }
        let result = j::GetPaymentCommandResult {
            payment_hash: j::Hash256(hash),
            status: j::PaymentStatus::Created,
            created_at: now as u64,
            last_updated_at: now as u64,
            failed_error: None,
            fee,
            custom_records: None,
            payment_preimage: None,
        };
        if dry_run {
            return Ok(serde_json::to_value(result).unwrap_or_default());
        }
        st.payments.insert(
            hash,
            Payment {
                result: result.clone(),
                udt,
                amount,
            },
        );
        drop(st);
        let sim = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sim.set_payment_status(hash, j::PaymentStatus::Inflight, None);
            tokio::time::sleep(Duration::from_millis(150)).await;
            sim.finish_payment(hash);
        });
        Ok(serde_json::to_value(result).unwrap_or_default())
    }

    /// A send that found no route. As FNN v0.8.0 does, it answers -32000 and also stores a
    /// payment session with status `Failed` (a new session for the same hash replaces it, so a
    /// later `send_payment` is accepted).
    fn route_failed(&self, hash: [u8; 32], message: &str, echo: impl ErrorData) -> RpcError {
        let now = now_ms() as u64;
        let mut st = self.state();
        let may_replace = st
            .payments
            .get(&hash)
            .is_none_or(|p| p.result.status == j::PaymentStatus::Failed);
        if may_replace {
            st.payments.insert(
                hash,
                Payment {
                    result: j::GetPaymentCommandResult {
                        payment_hash: j::Hash256(hash),
                        status: j::PaymentStatus::Failed,
                        created_at: now,
                        last_updated_at: now + 1,
                        failed_error: Some(message.to_string()),
                        fee: 0,
                        custom_records: None,
                        payment_preimage: None,
                    },
                    udt: None,
                    amount: 0,
                },
            );
        }
        RpcError::app(message, echo)
    }

    /// What the hub can still send in an asset: what paid invoices brought in, less what
    /// payments (not failed) took out with their fees.
    fn outbound(&self, st: &SimState, udt: Option<&ckb_jsonrpc_types::Script>) -> u128 {
        let want = asset_key(udt);
        let inbound = st.invoices.paid().get(&want).copied().unwrap_or(0);
        let outbound: u128 = st
            .payments
            .values()
            .filter(|p| {
                p.result.status != j::PaymentStatus::Failed && asset_key(p.udt.as_ref()) == want
            })
            .map(|p| p.amount + p.result.fee)
            .sum();
        inbound.saturating_sub(outbound)
    }

    /// Ends an in-flight payment as its planned outcome says (a hanging one stays in flight).
    pub(super) fn finish_payment(&self, hash: [u8; 32]) {
        let outcome = self
            .state()
            .outcomes
            .get(&hash)
            .copied()
            .unwrap_or_default();
        match outcome {
            Outcome::Success => self.set_payment_status(hash, j::PaymentStatus::Success, None),
            Outcome::Fail => self.set_payment_status(
                hash,
                j::PaymentStatus::Failed,
                Some("IncorrectOrUnknownPaymentDetails".into()),
            ),
            // a route existed when it was sent
            Outcome::Hang | Outcome::NoRoute => {}
        }
    }

    fn set_payment_status(
        &self,
        hash: [u8; 32],
        status: j::PaymentStatus,
        failed_error: Option<String>,
    ) {
        let mut st = self.state();
        if let Some(p) = st.payments.get_mut(&hash) {
            if matches!(
                p.result.status,
                j::PaymentStatus::Success | j::PaymentStatus::Failed
            ) {
                return;
            }
            p.result.status = status;
            p.result.last_updated_at = now_ms() as u64;
            p.result.failed_error = failed_error;
            if status == j::PaymentStatus::Success {
                // money left the hub: counted per hash, whatever later sessions do
                *st.paid_out.entry(hash).or_default() += 1;
            }
        }
    }

    pub(super) fn get_payment(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::GetPaymentCommandParams, Echo<_>) = one_param(params)?;
        let st = self.state();
        match st.payments.get(&p.payment_hash.0) {
            Some(pay) => Ok(serde_json::to_value(&pay.result).unwrap_or_default()),
            None => Err(RpcError::app(
                format!(
                    "InvalidParameter: Payment session not found: {}",
                    hash_debug(&p.payment_hash.0)
                ),
                echo,
            )),
        }
    }

    pub(super) fn list_payments(&self, params: &Value) -> RpcResult {
        let (p, _): (j::ListPaymentsParams, Echo<_>) = one_param(params)?;
        let st = self.state();
        let limit = p.limit.unwrap_or(15) as usize;
        let after = p.after.map(|h| h.0);
        let page: Vec<&Payment> = st
            .payments
            .iter()
            .filter(|(h, _)| after.is_none_or(|a| **h > a))
            .filter(|(_, pay)| p.status.is_none_or(|s| pay.result.status == s))
            .map(|(_, pay)| pay)
            .take(limit)
            .collect();
        let last = page.last().map(|p| p.result.payment_hash.to_string());
        let payments: Vec<Value> = page
            .iter()
            .map(|p| serde_json::to_value(&p.result).unwrap_or_default())
            .collect();
        Ok(json!({"payments": payments, "last_cursor": last}))
    }

    /// One channel per asset from a simulated payer; the hub's local balance is what paid
    /// invoices brought in.
    pub(super) fn list_channels(&self) -> Value {
        let st = self.state();
        let mut local: BTreeMap<Option<String>, u128> = st.invoices.paid().clone();
        // As FNN reports it: a payment under way is an offered TLC, still inside local_balance;
        // a successful one has left it.
        let mut offered: BTreeMap<Option<String>, u128> = BTreeMap::new();
        for pay in st.payments.values() {
            let key = asset_key(pay.udt.as_ref());
            match pay.result.status {
                j::PaymentStatus::Failed => {}
                j::PaymentStatus::Success => {
                    let e = local.entry(key).or_default();
                    *e = e.saturating_sub(pay.amount + pay.result.fee);
                }
                _ => *offered.entry(key).or_default() += pay.amount + pay.result.fee,
            }
        }
        let mut scripts: Vec<Option<Value>> = vec![None];
        for u in &self.0.opts.udts {
            scripts.push(Some(json!({"code_hash": u.script.code_hash, "hash_type": u.script.hash_type, "args": u.script.args})));
        }
        let channels: Vec<Value> = scripts
            .into_iter()
            .enumerate()
            .map(|(i, script)| {
                let key = script.as_ref().map(|s| {
                    let parsed: ckb_jsonrpc_types::Script =
                        serde_json::from_value(s.clone()).unwrap_or_default();
                    serde_json::to_string(&parsed).unwrap_or_default()
                });
                let mine = local.get(&key).copied().unwrap_or(0);
                let in_flight = offered.get(&key).copied().unwrap_or(0);
                let capacity: u128 = 1_000_000 * 100_000_000;
                json!({
                    "channel_id": format!("0x{:064x}", i + 1),
                    "is_public": true,
                    "is_acceptor": true,
                    "is_one_way": false,
                    "channel_outpoint": format!("0x{:064x}00000000", i + 1),
                    "pubkey": "02a64b8993f33b2ebd37a4de1c9441f491291a4e779da8e519bcfb7c1f3f56c9c0",
                    "funding_udt_type_script": script,
                    "state": {"state_name": "ChannelReady"},
                    "local_balance": format!("0x{mine:x}"),
                    "offered_tlc_balance": format!("0x{in_flight:x}"),
                    "remote_balance": format!("0x{:x}", capacity.saturating_sub(mine)),
                    "received_tlc_balance": "0x0",
                    "pending_tlcs": [],
                    "latest_commitment_transaction_hash": format!("0x{:064x}", 0xc0 + i),
                    "created_at": "0x1a216e4e98c",
                    "enabled": true,
                    "tlc_expiry_delta": "0xdbba00",
                    "tlc_fee_proportional_millionths": "0x3e8",
                    "shutdown_transaction_hash": null,
                    "failure_detail": null,
                })
            })
            .collect();
        json!({"channels": channels})
    }
}
