//! The `sim_` control surface that FNN does not have: the payer, the other nodes, faults,
//! permissions and records.

use super::{now_ms, Faults, HubSim, Outcome, RpcError, RpcResult, Stored};
use fiber_json_types as j;
use fiber_types::{Attribute, CkbInvoice, CkbScript, Currency, HashAlgorithm, InvoiceData};
use rand::Rng;
use secp256k1::{PublicKey, SecretKey, SECP256K1};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

impl HubSim {
    // ----- control surface ------------------------------------------------------------------

    pub(super) fn control(&self, method: &str, params: &Value) -> RpcResult {
        let p = params
            .as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or(json!({}));
        if let Some(r) = self.stream_control(method, p.clone()) {
            return r;
        }
        match method {
            "sim_pay_invoice" => self.sim_pay_invoice(p),
            "sim_external_invoice" => self.sim_external_invoice(p),
            "sim_set_payment_outcome" => {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct P {
                    payment_hash: String,
                    outcome: Outcome,
                }
                let p: P = serde_json::from_value(p)
                    .map_err(|e| RpcError::invalid_params(e.to_string()))?;
                let hash = p
                    .payment_hash
                    .parse::<j::Hash256>()
                    .map_err(|e| RpcError::invalid_params(format!("payment_hash: {e}")))?
                    .0;
                self.state().outcomes.insert(hash, p.outcome);
                let in_flight = self.state().payments.get(&hash).is_some_and(|pay| {
                    matches!(
                        pay.result.status,
                        j::PaymentStatus::Created | j::PaymentStatus::Inflight
                    )
                });
                if in_flight {
                    self.finish_payment(hash);
                }
                Ok(json!({"payment_hash": p.payment_hash, "outcome": p.outcome}))
            }
            "sim_set_permissions" => {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct P {
                    #[serde(default)]
                    deny: Vec<String>,
                }
                let p: P = serde_json::from_value(p)
                    .map_err(|e| RpcError::invalid_params(e.to_string()))?;
                let mut st = self.state();
                st.denied = p.deny.into_iter().collect();
                Ok(json!({"deny": st.denied}))
            }
            "sim_set_faults" => {
                let f: Faults = serde_json::from_value(p)
                    .map_err(|e| RpcError::invalid_params(e.to_string()))?;
                if !(0.0..=1.0).contains(&f.error_rate) {
                    return Err(RpcError::invalid_params(
                        "error_rate must be between 0 and 1".into(),
                    ));
                }
                self.state().faults = f.clone();
                if f.down {
                    // a node that is down holds no WebSocket either
                    self.drop_streams();
                }
                Ok(serde_json::to_value(f).unwrap_or_default())
            }
            "sim_records" => {
                // everything the node knows, for a checker that compares it with the books:
                // each invoice with its stored status, each payment session with its outcome
                let st = self.state();
                let mut invoices: Vec<Value> = Vec::new();
                st.invoices.visit(now_ms(), |inv| {
                    invoices.push(json!({
                        "payment_hash": format!("0x{}", hex::encode(inv.payment_hash)),
                        "invoice_address": inv.address,
                        "status": inv.status,
                        "amount": inv.amount.map(|a| a.to_string()),
                    }))
                });
                let payments: Vec<Value> = st
                    .payments
                    .iter()
                    .map(|(h, p)| {
                        json!({
                            "payment_hash": format!("0x{}", hex::encode(h)),
                            "status": p.result.status,
                            "amount": p.amount.to_string(),
                            "fee": p.result.fee.to_string(),
                            "successes": st.paid_out.get(h).copied().unwrap_or(0),
                        })
                    })
                    .collect();
                Ok(json!({"invoices": invoices, "payments": payments, "calls": st.calls}))
            }
            "sim_stats" => {
                let st = self.state();
                let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
                st.invoices.visit(now_ms(), |inv| {
                    *by_status.entry(format!("{:?}", inv.status)).or_default() += 1;
                });
                Ok(json!({"calls": st.calls, "invoices": by_status, "payments": st.payments.len()}))
            }
            _ => Err(RpcError {
                code: -32601,
                message: "Method not found".into(),
                data: None,
            }),
        }
    }

    /// `sim_pay_invoice {invoice | payment_hash, delay_ms?, after_expiry?}`: a payer pays the
    /// invoice. It turns `Received` after `delay_ms` (default 100, as on a real direct channel) and `Paid` shortly after (a hold
    /// invoice stays `Received` until `settle_invoice`). An expired or cancelled invoice is
    /// refused as FNN refuses the TLC, unless `after_expiry` is set: then the payment arrives
    /// anyway, as a payment racing the invoice's expiry or cancellation can at a real node.
    fn sim_pay_invoice(&self, p: Value) -> RpcResult {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct PayParams {
            invoice: Option<String>,
            payment_hash: Option<String>,
            /// How long the payer's TLC takes to arrive; FNN shows about 0.1 s on a direct channel.
            #[serde(default = "default_arrival_ms")]
            delay_ms: u64,
            #[serde(default)]
            after_expiry: bool,
        }
        let p: PayParams =
            serde_json::from_value(p).map_err(|e| RpcError::invalid_params(e.to_string()))?;
        let hash: [u8; 32] = match (&p.invoice, &p.payment_hash) {
            (Some(s), _) => {
                let inv: CkbInvoice = s.parse().map_err(|e: fiber_types::InvoiceError| {
                    RpcError::app(format!("invalid invoice: {e}"), Value::Null)
                })?;
                (*inv.payment_hash()).into()
            }
            (None, Some(h)) => {
                h.parse::<j::Hash256>()
                    .map_err(|e| RpcError::invalid_params(format!("payment_hash: {e}")))?
                    .0
            }
            (None, None) => {
                return Err(RpcError::invalid_params(
                    "invoice or payment_hash is required".into(),
                ))
            }
        };
        {
            let mut st = self.state();
            let inv = st
                .invoices
                .get(&hash)
                .ok_or_else(|| RpcError::app("invoice not found", Value::Null))?;
            let status = inv.status(now_ms());
            let payable = match status {
                j::CkbInvoiceStatus::Open => true,
                j::CkbInvoiceStatus::Expired | j::CkbInvoiceStatus::Cancelled => p.after_expiry,
                _ => false,
            };
            if !payable {
                return Err(RpcError::app(
                    format!("invoice is not payable, current status: {status:?}"),
                    Value::Null,
                ));
            }
        }
        let sim = self.clone();
        let settle_delay = self.0.opts.settle_delay;
        let delay = Duration::from_millis(p.delay_ms);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let hold = {
                let mut st = sim.state();
                let Some(inv) = st.invoices.set_stored(&hash, Stored::Received) else {
                    return;
                };
                // as FNN v0.8.0 writes them when the TLC arrives
                let preimage = inv.preimage;
                if let Some(pre) = &preimage {
                    sim.0.stream.preimage(&hash, pre);
                }
                sim.0.stream.invoice_status(&hash, "Received");
                if let Some(pre) = &preimage {
                    sim.0.stream.preimage(&hash, pre);
                }
                preimage.is_none()
            };
            if hold {
                return;
            }
            tokio::time::sleep(settle_delay).await;
            let mut st = sim.state();
            // As at FNN, applying the fulfill writes Paid whatever the status.
            if st.invoices.set_stored(&hash, Stored::Paid).is_some() {
                sim.0.stream.invoice_status(&hash, "Paid");
            }
        });
        Ok(json!({"payment_hash": format!("0x{}", hex::encode(hash)), "accepted": true}))
    }
}

impl HubSim {
    /// `sim_external_invoice {amount, asset?, currency?, expiry_secs?, outcome?}`: a valid,
    /// signed invoice of another node (a withdrawal's recipient) for a payout to pay. `amount` is
    /// in base units (a decimal string, or absent for an invoice without amount); `asset` is
    /// `CKB` or the name of a UDT the node whitelists; `outcome` (`success`, `fail`, `hang`) is
    /// how a payment to it will end.
    fn sim_external_invoice(&self, p: Value) -> RpcResult {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct P {
            amount: Option<String>,
            asset: Option<String>,
            currency: Option<String>,
            expiry_secs: Option<u64>,
            #[serde(default)]
            outcome: Outcome,
        }
        let p: P =
            serde_json::from_value(p).map_err(|e| RpcError::invalid_params(e.to_string()))?;
        let amount = p
            .amount
            .as_deref()
            .map(|a| a.parse::<u128>())
            .transpose()
            .map_err(|e| RpcError::invalid_params(format!("amount: {e}")))?;
        let currency = match p.currency.as_deref() {
            None => self.0.currency,
            Some("Fibb") => Currency::Fibb,
            Some("Fibt") => Currency::Fibt,
            Some("Fibd") => Currency::Fibd,
            Some(other) => {
                return Err(RpcError::invalid_params(format!(
                    "unknown currency {other:?}"
                )))
            }
        };
        let mut attrs = vec![Attribute::ExpiryTime(Duration::from_secs(
            p.expiry_secs.unwrap_or(3600),
        ))];
        match p.asset.as_deref() {
            None | Some("CKB") => {}
            Some(name) => {
                let udt = self
                    .0
                    .opts
                    .udts
                    .iter()
                    .find(|u| u.name == name)
                    .ok_or_else(|| RpcError::invalid_params(format!("unknown asset {name:?}")))?;
                let s: ckb_jsonrpc_types::Script = serde_json::from_value(json!({
                    "code_hash": udt.script.code_hash,
                    "hash_type": udt.script.hash_type,
                    "args": udt.script.args,
                }))
                .map_err(|e| RpcError::invalid_params(e.to_string()))?;
                attrs.push(Attribute::UdtScript(CkbScript(s.into())));
            }
        }
        let key = SecretKey::from_slice(&EXTERNAL_NODE_KEY)
            .map_err(|e| RpcError::app(e.to_string(), Value::Null))?;
        attrs.push(Attribute::PayeePublicKey(PublicKey::from_secret_key(
            SECP256K1, &key,
        )));
        let preimage: [u8; 32] = rand::thread_rng().gen();
        let hash = HashAlgorithm::CkbHash.hash(preimage);
        let mut invoice = CkbInvoice {
            currency,
            amount,
            signature: None,
            data: InvoiceData {
                timestamp: now_ms(),
                payment_hash: hash.into(),
                attrs,
            },
        };
        invoice
            .update_signature(|msg| SECP256K1.sign_ecdsa_recoverable(msg, &key))
            .map_err(|e| RpcError::app(e.to_string(), Value::Null))?;
        self.state().outcomes.insert(hash, p.outcome);
        Ok(json!({
            "invoice": invoice.to_string(),
            "payment_hash": format!("0x{}", hex::encode(hash)),
        }))
    }
}

/// The key of the "other node" whose invoices `sim_external_invoice` makes.
const EXTERNAL_NODE_KEY: [u8; 32] = [0x43; 32];

fn default_arrival_ms() -> u64 {
    100
}
