//! An FNN-compatible hub simulator: an HTTP JSON-RPC server that answers the methods Fiber Link
//! uses the way an FNN v0.8 node does — same method names, `params` as a one-element array, `0x`
//! hex integers, status strings, error codes and messages — with real invoice strings signed by the
//! simulator's node key (they parse and verify with `fiber-types`).
//!
//! It depends on nothing of Fiber Link but `core`: it must behave like FNN, not like our client.
//! The request and result types are FNN's own published ones (`fiber-json-types`).
//!
//! A control surface that FNN does not have, as JSON-RPC methods prefixed `sim_`, lets `dev` and
//! the tests play the payer and the network: `sim_pay_invoice`, `sim_set_faults`, `sim_stats`,
//! `sim_set_permissions` (the token lacks the permission for some methods), `sim_records` (every
//! invoice and payment the node holds).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use fiber_json_types as j;
use fiber_types::{Attribute, CkbInvoice, CkbScript, Currency, HashAlgorithm, InvoiceData};
use rand::Rng;
use secp256k1::{PublicKey, SecretKey, SECP256K1};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Release-build bounds of `final_expiry_delta` (ms): 160 minutes to 14 days.
const MIN_FINAL_EXPIRY_DELTA: u64 = 9_600_000;
const MAX_FINAL_EXPIRY_DELTA: u64 = 1_209_600_000;
const MAX_DESCRIPTION_BYTES: usize = 639;

/// A UDT the simulated node whitelists (`node_info.udt_cfg_infos`).
#[derive(Clone, Debug)]
pub struct SimUdt {
    pub name: String,
    pub script: fiber_link_core::Script,
}

#[derive(Clone, Debug)]
pub struct SimOptions {
    /// `Fibt` or `Fibd`; the simulator refuses `Fibb` (mainnet).
    pub currency: String,
    /// The node identity key that signs invoices.
    pub node_key: [u8; 32],
    pub udts: Vec<SimUdt>,
    /// When set, every FNN method requires `Authorization: Bearer <token>` (as a biscuit-enabled
    /// node does); the `sim_` methods never do.
    pub token: Option<String>,
    /// Delay between the payer's TLC arriving (`Received`) and `Paid`, for `sim_pay_invoice`.
    pub settle_delay: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            currency: "Fibd".into(),
            node_key: [0x42; 32],
            udts: Vec::new(),
            token: None,
            settle_delay: Duration::from_millis(150),
        }
    }
}

/// Fault injection, set with `sim_set_faults`.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every FNN call.
    pub latency_ms: u64,
    /// Fraction (0–1) of FNN calls answered with a server error instead of their result.
    pub error_rate: f64,
    /// Every FNN call fails with HTTP 503, as if the node were down.
    pub down: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stored {
    Open,
    Received,
    Paid,
    Cancelled,
}

struct Invoice {
    invoice: CkbInvoice,
    address: String,
    stored: Stored,
    /// Known for normal invoices; `None` for hold invoices until `settle_invoice`.
    preimage: Option<[u8; 32]>,
    udt: Option<ckb_jsonrpc_types::Script>,
}

impl Invoice {
    fn expired(&self, now_ms: u128) -> bool {
        match self.invoice.expiry_time() {
            Some(e) => self.invoice.data.timestamp + e.as_millis() < now_ms,
            None => false,
        }
    }

    fn status(&self, now_ms: u128) -> j::CkbInvoiceStatus {
        match self.stored {
            Stored::Open if self.expired(now_ms) => j::CkbInvoiceStatus::Expired,
            Stored::Open => j::CkbInvoiceStatus::Open,
            Stored::Received => j::CkbInvoiceStatus::Received,
            Stored::Paid => j::CkbInvoiceStatus::Paid,
            Stored::Cancelled => j::CkbInvoiceStatus::Cancelled,
        }
    }

    fn result(&self, now_ms: u128) -> Value {
        json!({
            "invoice_address": self.address,
            "invoice": j::CkbInvoice::from(self.invoice.clone()),
            "status": self.status(now_ms),
        })
    }
}

struct Payment {
    result: j::GetPaymentCommandResult,
    /// The invoice's asset (`None`: CKB) and amount, which left the hub's channels with the fee.
    udt: Option<ckb_jsonrpc_types::Script>,
    amount: u128,
}

/// How a payment to an invoice of another node ends (`sim_external_invoice`,
/// `sim_set_payment_outcome`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    #[default]
    Success,
    Fail,
    /// Stays `Inflight` until the outcome is changed.
    Hang,
    /// The hub finds no route to the payee: `send_payment` is refused with "Failed to build
    /// route" and a `Failed` session is stored, until the outcome is changed.
    #[serde(rename = "noroute")]
    NoRoute,
}

#[derive(Default)]
struct SimState {
    invoices: HashMap<[u8; 32], Invoice>,
    payments: BTreeMap<[u8; 32], Payment>,
    /// Planned outcomes of payments to other nodes' invoices, by payment hash.
    outcomes: HashMap<[u8; 32], Outcome>,
    faults: Faults,
    calls: BTreeMap<String, u64>,
    /// Methods the token lacks the permission for (`sim_set_permissions`); only with a token.
    denied: std::collections::BTreeSet<String>,
    /// How many payments of each hash succeeded (for `sim_records`).
    paid_out: HashMap<[u8; 32], u32>,
}

struct Inner {
    opts: SimOptions,
    currency: Currency,
    key: SecretKey,
    pubkey: PublicKey,
    state: Mutex<SimState>,
}

/// The simulator. Cheap to clone; all clones share one node.
#[derive(Clone)]
pub struct HubSim(Arc<Inner>);

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis()
}

/// An FNN error: code and message, and `data` (FNN echoes the parsed params).
struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    fn app(message: impl Into<String>, data: Value) -> Self {
        RpcError {
            code: -32000,
            message: message.into(),
            data: Some(data),
        }
    }
    fn invalid_params(detail: String) -> Self {
        RpcError {
            code: -32602,
            message: "Invalid params".into(),
            data: Some(Value::String(detail)),
        }
    }
    fn unauthorized() -> Self {
        RpcError {
            code: -32999,
            message: "Unauthorized".into(),
            data: None,
        }
    }
}

type RpcResult = Result<Value, RpcError>;

/// `params` as FNN takes them: a one-element array holding the object.
fn one_param<T: serde::de::DeserializeOwned + serde::Serialize>(
    params: &Value,
) -> Result<(T, Value), RpcError> {
    let arr = params
        .as_array()
        .filter(|a| a.len() == 1)
        .ok_or_else(|| RpcError::invalid_params("expected a one-element array of params".into()))?;
    let p: T = serde_json::from_value(arr[0].clone())
        .map_err(|e| RpcError::invalid_params(e.to_string()))?;
    // FNN's error data is the parsed params re-serialized: every optional field present as null.
    let echo = serde_json::to_value(&p).unwrap_or(Value::Null);
    Ok((p, echo))
}

fn hash_debug(h: &[u8; 32]) -> String {
    format!("Hash256(0x{})", hex::encode(h))
}

impl HubSim {
    pub fn new(opts: SimOptions) -> Result<HubSim, String> {
        let currency = match opts.currency.as_str() {
            "Fibd" => Currency::Fibd,
            "Fibt" => Currency::Fibt,
            "Fibb" => return Err("the hub simulator refuses the mainnet currency Fibb".into()),
            other => {
                return Err(format!(
                    "unknown currency {other:?} (expected Fibd or Fibt)"
                ))
            }
        };
        let key = SecretKey::from_slice(&opts.node_key).map_err(|e| format!("node key: {e}"))?;
        let pubkey = PublicKey::from_secret_key(SECP256K1, &key);
        Ok(HubSim(Arc::new(Inner {
            opts,
            currency,
            key,
            pubkey,
            state: Mutex::new(SimState::default()),
        })))
    }

    /// The node's identity key, as `node_info.pubkey` shows it.
    pub fn pubkey_hex(&self) -> String {
        hex::encode(self.0.pubkey.serialize())
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/", post(handle))
            .with_state(self.clone())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dispatch(&self, method: &str, params: &Value) -> RpcResult {
        match method {
            "node_info" => Ok(self.node_info()),
            "new_invoice" => self.new_invoice(params),
            "get_invoice" => self.get_invoice(params),
            "cancel_invoice" => self.cancel_invoice(params),
            "settle_invoice" => self.settle_invoice(params),
            "parse_invoice" => self.parse_invoice(params),
            "send_payment" => self.send_payment(params),
            "get_payment" => self.get_payment(params),
            "list_payments" => self.list_payments(params),
            "list_channels" => Ok(self.list_channels()),
            // FNN's auth middleware answers any method it has no rule for with Unauthorized,
            // even with auth disabled.
            _ => Err(RpcError::unauthorized()),
        }
    }

    fn node_info(&self) -> Value {
        let udts: Vec<Value> = self
            .0
            .opts
            .udts
            .iter()
            .map(|u| {
                json!({
                    "name": u.name,
                    "script": {"code_hash": u.script.code_hash, "hash_type": u.script.hash_type, "args": u.script.args},
                    "auto_accept_amount": "0x3e8",
                    "cell_deps": [],
                })
            })
            .collect();
        json!({
            "version": "0.8.0",
            "commit_hash": "hubsim",
            "pubkey": self.pubkey_hex(),
            "features": ["GOSSIP_QUERIES_REQUIRED", "BASIC_MPP_REQUIRED", "TRAMPOLINE_ROUTING_REQUIRED"],
            "node_name": "fiber-link-hubsim",
            "addresses": [],
            "chain_hash": format!("0x{}", "00".repeat(32)),
            "open_channel_auto_accept_min_ckb_funding_amount": "0x2540be400",
            "auto_accept_channel_ckb_funding_amount": "0x24e160300",
            "default_funding_lock_script": {
                "code_hash": "0x9bd7e06f3ecf4be0f2fcd2188b23f1b9fcc88e5d4b65a8637b17723bbda3cce8",
                "hash_type": "type",
                "args": format!("0x{}", hex::encode(&ckb_hash::blake2b_256(self.0.pubkey.serialize())[..20])),
            },
            "tlc_expiry_delta": "0xdbba00",
            "tlc_min_value": "0x0",
            "tlc_fee_proportional_millionths": "0x3e8",
            "channel_count": format!("0x{:x}", 1 + self.0.opts.udts.len()),
            "pending_channel_count": "0x0",
            "peers_count": "0x1",
            "udt_cfg_infos": udts,
        })
    }

    fn new_invoice(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::NewInvoiceParams, Value) = one_param(params)?;
        let currency = match p.currency {
            j::Currency::Fibb => Currency::Fibb,
            j::Currency::Fibt => Currency::Fibt,
            j::Currency::Fibd => Currency::Fibd,
        };
        if currency != self.0.currency {
            return Err(RpcError::app(
                format!(
                    "Currency must be {:?} with the chain network",
                    self.0.currency
                ),
                echo,
            ));
        }
        if let Some(d) = &p.description {
            if d.len() > MAX_DESCRIPTION_BYTES {
                return Err(RpcError::app(
                    format!("Description with length of {} is too long, max length is {MAX_DESCRIPTION_BYTES}", d.len()),
                    echo,
                ));
            }
        }
        if p.payment_hash.is_some() && p.payment_preimage.is_some() {
            return Err(RpcError::app(
                "Both payment_hash and payment_preimage are set",
                echo,
            ));
        }
        let final_delta = p.final_expiry_delta.unwrap_or(MIN_FINAL_EXPIRY_DELTA);
        if !(MIN_FINAL_EXPIRY_DELTA..=MAX_FINAL_EXPIRY_DELTA).contains(&final_delta) {
            return Err(RpcError::app(
                format!(
                    "final_expiry_delta must be between {MIN_FINAL_EXPIRY_DELTA} and {MAX_FINAL_EXPIRY_DELTA}, got {final_delta}"
                ),
                echo,
            ));
        }
        if p.allow_mpp == Some(true) || p.allow_trampoline_routing == Some(true) {
            return Err(RpcError::app(
                "the hub simulator does not support MPP or trampoline invoices",
                echo,
            ));
        }
        let algo = match p.hash_algorithm {
            Some(j::HashAlgorithm::Sha256) => HashAlgorithm::Sha256,
            _ => HashAlgorithm::CkbHash,
        };
        let (preimage, hash) = match (p.payment_preimage, p.payment_hash) {
            (Some(pre), None) => (Some(pre.0), algo.hash(pre.0)),
            (None, Some(h)) => (None, h.0),
            _ => {
                let pre: [u8; 32] = rand::thread_rng().gen();
                (Some(pre), algo.hash(pre))
            }
        };
        let mut attrs = Vec::new();
        if let Some(d) = &p.description {
            attrs.push(Attribute::Description(d.clone()));
        }
        if let Some(e) = p.expiry {
            attrs.push(Attribute::ExpiryTime(Duration::from_secs(e)));
        }
        if let Some(f) = &p.fallback_address {
            attrs.push(Attribute::FallbackAddr(f.clone()));
        }
        attrs.push(Attribute::FinalHtlcMinimumExpiryDelta(final_delta));
        if let Some(s) = &p.udt_type_script {
            let packed: ckb_types::packed::Script = s.clone().into();
            attrs.push(Attribute::UdtScript(CkbScript(packed)));
        }
        if let Some(h) = p.hash_algorithm {
            let _ = h;
            attrs.push(Attribute::HashAlgorithm(algo));
        }
        attrs.push(Attribute::PayeePublicKey(self.0.pubkey));
        let mut invoice = CkbInvoice {
            currency,
            amount: Some(p.amount),
            signature: None,
            data: InvoiceData {
                timestamp: now_ms(),
                payment_hash: hash.into(),
                attrs,
            },
        };
        let key = self.0.key;
        invoice
            .update_signature(|msg| SECP256K1.sign_ecdsa_recoverable(msg, &key))
            .map_err(|e| RpcError::app(e.to_string(), echo.clone()))?;
        let address = invoice.to_string();
        let mut st = self.state();
        if st.invoices.contains_key(&hash) {
            return Err(RpcError::app("invoice already exists", echo));
        }
        let json_invoice = j::CkbInvoice::from(invoice.clone());
        st.invoices.insert(
            hash,
            Invoice {
                invoice,
                address: address.clone(),
                stored: Stored::Open,
                preimage,
                udt: p.udt_type_script,
            },
        );
        Ok(json!({"invoice_address": address, "invoice": json_invoice}))
    }

    fn get_invoice(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::InvoiceParams, Value) = one_param(params)?;
        let st = self.state();
        match st.invoices.get(&p.payment_hash.0) {
            Some(inv) => Ok(inv.result(now_ms())),
            None => Err(RpcError::app("invoice not found", echo)),
        }
    }

    fn cancel_invoice(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::InvoiceParams, Value) = one_param(params)?;
        let mut st = self.state();
        let inv = st
            .invoices
            .get_mut(&p.payment_hash.0)
            .ok_or_else(|| RpcError::app("invoice not found", echo.clone()))?;
        match inv.status(now_ms()) {
            j::CkbInvoiceStatus::Open
            | j::CkbInvoiceStatus::Expired
            | j::CkbInvoiceStatus::Received => {
                inv.stored = Stored::Cancelled;
                Ok(inv.result(now_ms()))
            }
            s => Err(RpcError::app(
                format!("invoice can not be canceled, current status: {s:?}"),
                echo,
            )),
        }
    }

    fn settle_invoice(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::SettleInvoiceParams, Value) = one_param(params)?;
        let mut st = self.state();
        let inv = st
            .invoices
            .get_mut(&p.payment_hash.0)
            .ok_or_else(|| RpcError::app("Invoice not found", echo.clone()))?;
        let algo = inv.invoice.hash_algorithm().copied().unwrap_or_default();
        if algo.hash(p.payment_preimage.0) != p.payment_hash.0 {
            return Err(RpcError::app("Hash mismatch", echo));
        }
        match inv.status(now_ms()) {
            j::CkbInvoiceStatus::Open => Err(RpcError::app("Invoice is still open", echo)),
            j::CkbInvoiceStatus::Expired => Err(RpcError::app("Invoice is already expired", echo)),
            j::CkbInvoiceStatus::Cancelled => {
                Err(RpcError::app("Invoice is already cancelled", echo))
            }
            j::CkbInvoiceStatus::Paid => Err(RpcError::app("Invoice is already paid", echo)),
            j::CkbInvoiceStatus::Received => {
                // As at FNN, the invoice stays Received while the fulfill is committed.
                inv.preimage = Some(p.payment_preimage.0);
                let (sim, hash, delay) = (self.clone(), p.payment_hash.0, self.0.opts.settle_delay);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Some(inv) = sim.state().invoices.get_mut(&hash) {
                        inv.stored = Stored::Paid;
                    }
                });
                Ok(json!({}))
            }
        }
    }

    fn parse_invoice(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::ParseInvoiceParams, Value) = one_param(params)?;
        let inv: CkbInvoice = p
            .invoice
            .parse()
            .map_err(|e: fiber_types::InvoiceError| RpcError::app(e.to_string(), echo))?;
        Ok(json!({"invoice": j::CkbInvoice::from(inv)}))
    }

    /// Pays an invoice of another node (a payout). The simulated network delivers it after a
    /// short while: `Created`, then `Inflight`, then `Success`.
    fn send_payment(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::SendPaymentCommandParams, Value) = one_param(params)?;
        let Some(s) = &p.invoice else {
            return Err(RpcError::app(
                "the hub simulator pays invoices only (no keysend or bare payment_hash)",
                echo,
            ));
        };
        let inv: CkbInvoice = s.parse().map_err(|e: fiber_types::InvoiceError| {
            RpcError::app(
                format!("InvalidParameter: Failed to validate payment request: \"{e}\""),
                echo.clone(),
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
    fn route_failed(&self, hash: [u8; 32], message: &str, echo: Value) -> RpcError {
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
        let key = |s: Option<&ckb_jsonrpc_types::Script>| {
            s.map(|s| serde_json::to_string(s).unwrap_or_default())
        };
        let want = key(udt);
        let inbound: u128 = st
            .invoices
            .values()
            .filter(|i| i.stored == Stored::Paid && key(i.udt.as_ref()) == want)
            .map(|i| i.invoice.amount().unwrap_or(0))
            .sum();
        let outbound: u128 = st
            .payments
            .values()
            .filter(|p| p.result.status != j::PaymentStatus::Failed && key(p.udt.as_ref()) == want)
            .map(|p| p.amount + p.result.fee)
            .sum();
        inbound.saturating_sub(outbound)
    }

    /// Ends an in-flight payment as its planned outcome says (a hanging one stays in flight).
    fn finish_payment(&self, hash: [u8; 32]) {
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

    fn get_payment(&self, params: &Value) -> RpcResult {
        let (p, echo): (j::GetPaymentCommandParams, Value) = one_param(params)?;
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

    fn list_payments(&self, params: &Value) -> RpcResult {
        let (p, _): (j::ListPaymentsParams, Value) = one_param(params)?;
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
    fn list_channels(&self) -> Value {
        let st = self.state();
        let mut local: BTreeMap<Option<String>, u128> = BTreeMap::new();
        for inv in st.invoices.values() {
            if inv.stored == Stored::Paid {
                let key = inv
                    .udt
                    .as_ref()
                    .map(|s| serde_json::to_string(s).unwrap_or_default());
                *local.entry(key).or_default() += inv.invoice.amount().unwrap_or(0);
            }
        }
        // As FNN reports it: a payment under way is an offered TLC, still inside local_balance;
        // a successful one has left it.
        let mut offered: BTreeMap<Option<String>, u128> = BTreeMap::new();
        for pay in st.payments.values() {
            let key = pay
                .udt
                .as_ref()
                .map(|s| serde_json::to_string(s).unwrap_or_default());
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

    // ----- control surface ------------------------------------------------------------------

    fn control(&self, method: &str, params: &Value) -> RpcResult {
        let p = params
            .as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or(json!({}));
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
                Ok(serde_json::to_value(f).unwrap_or_default())
            }
            "sim_records" => {
                // everything the node knows, for a checker that compares it with the books:
                // each invoice with its stored status, each payment session with its outcome
                let st = self.state();
                let now = now_ms();
                let invoices: Vec<Value> = st
                    .invoices
                    .iter()
                    .map(|(h, inv)| {
                        json!({
                            "payment_hash": format!("0x{}", hex::encode(h)),
                            "status": inv.status(now),
                            "amount": inv.invoice.amount().map(|a| a.to_string()),
                        })
                    })
                    .collect();
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
                for inv in st.invoices.values() {
                    *by_status
                        .entry(format!("{:?}", inv.status(now_ms())))
                        .or_default() += 1;
                }
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
            let st = self.state();
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
                let Some(inv) = st.invoices.get_mut(&hash) else {
                    return;
                };
                inv.stored = Stored::Received;
                inv.preimage.is_none()
            };
            if hold {
                return;
            }
            tokio::time::sleep(settle_delay).await;
            let mut st = sim.state();
            if let Some(inv) = st.invoices.get_mut(&hash) {
                // As at FNN, applying the fulfill writes Paid whatever the status.
                inv.stored = Stored::Paid;
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

fn rpc_response(id: Value, r: RpcResult) -> Value {
    match r {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => {
            let mut err = json!({"code": e.code, "message": e.message});
            if let Some(d) = e.data {
                err["data"] = d;
            }
            json!({"jsonrpc": "2.0", "id": id, "error": err})
        }
    }
}

async fn handle(State(sim): State<HubSim>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        let e = RpcError {
            code: -32700,
            message: "Parse error".into(),
            data: None,
        };
        return axum::Json(rpc_response(Value::Null, Err(e))).into_response();
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = req
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        let e = RpcError {
            code: -32600,
            message: "Invalid request".into(),
            data: None,
        };
        return axum::Json(rpc_response(id, Err(e))).into_response();
    };
    let params = req.get("params").cloned().unwrap_or(Value::Null);
    if method.starts_with("sim_") {
        let r = sim.control(&method, &params);
        return axum::Json(rpc_response(id, r)).into_response();
    }
    let faults = {
        let mut st = sim.state();
        *st.calls.entry(method.clone()).or_default() += 1;
        st.faults.clone()
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.down {
        return (StatusCode::SERVICE_UNAVAILABLE, "hub down (simulated)").into_response();
    }
    if faults.error_rate > 0.0 && rand::thread_rng().gen_bool(faults.error_rate) {
        return (StatusCode::BAD_GATEWAY, "simulated hub fault").into_response();
    }
    if let Some(token) = &sim.0.opts.token {
        let expected = format!("Bearer {token}");
        let ok = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected);
        // a token without the permission this method needs (as a biscuit without the right is
        // refused by FNN's middleware, before the params are read)
        let denied = sim.state().denied.contains(&method);
        if !ok || denied {
            return axum::Json(rpc_response(id, Err(RpcError::unauthorized()))).into_response();
        }
    }
    let r = sim.dispatch(&method, &params);
    axum::Json(rpc_response(id, r)).into_response()
}

impl HubSim {
    /// Serves the simulator on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}
