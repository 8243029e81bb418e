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
//! invoice and payment the node holds), and the store-change stream's controls (see [`stream`]).
//!
//! The `pubsub` module's `subscribe_store_changes` is served on the same port over WebSocket.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use book::{Book, Invoice, InvoiceFields, Stored};
use fiber_json_types as j;
use fiber_types::{CkbInvoice, Currency};
use rand::Rng;
use secp256k1::{PublicKey, SecretKey, SECP256K1};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod book;
mod control;
mod invoices;
mod payments;
mod stream;

pub use stream::StreamCtl;

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
    /// Added after an FNN call is carried out, before it is answered: the node did the work, the
    /// answer is late (a caller that dies meanwhile never learns of it).
    pub answer_delay_ms: u64,
}

impl Invoice {
    /// The signed invoice, as parsing its string gives it.
    fn parsed(&self, sim: &Inner) -> CkbInvoice {
        let mut inv = self.fields.invoice(sim.currency, sim.pubkey);
        inv.signature = self.signature.clone();
        inv
    }

    fn result(&self, sim: &Inner, now_ms: u128) -> Value {
        json!({
            "invoice_address": self.address,
            "invoice": j::CkbInvoice::from(self.parsed(sim)),
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
    invoices: Book,
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
    stream: stream::StreamHub,
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
    fn app(message: impl Into<String>, data: impl ErrorData) -> Self {
        RpcError {
            code: -32000,
            message: message.into(),
            data: Some(data.into_data()),
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

/// The `data` of an application error.
trait ErrorData {
    fn into_data(self) -> Value;
}

impl ErrorData for Value {
    fn into_data(self) -> Value {
        self
    }
}

/// A method's params as FNN echoes them in an error's `data`: the parsed params re-serialized,
/// every optional field present as null. Built only when an error is answered.
struct Echo<'a, T>(&'a Value, std::marker::PhantomData<fn() -> T>);

impl<T> Clone for Echo<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Echo<'_, T> {}

impl<T: serde::de::DeserializeOwned + serde::Serialize> ErrorData for Echo<'_, T> {
    fn into_data(self) -> Value {
        T::deserialize(self.0)
            .ok()
            .and_then(|p| serde_json::to_value(&p).ok())
            .unwrap_or(Value::Null)
    }
}

/// `params` as FNN takes them: a one-element array holding the object.
fn one_param<T: serde::de::DeserializeOwned + serde::Serialize>(
    params: &Value,
) -> Result<(T, Echo<'_, T>), RpcError> {
    let arr = params
        .as_array()
        .filter(|a| a.len() == 1)
        .ok_or_else(|| RpcError::invalid_params("expected a one-element array of params".into()))?;
    let p = T::deserialize(&arr[0]).map_err(|e| RpcError::invalid_params(e.to_string()))?;
    Ok((p, Echo(&arr[0], std::marker::PhantomData)))
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
            stream: stream::StreamHub::default(),
        })))
    }

    /// The node's identity key, as `node_info.pubkey` shows it.
    pub fn pubkey_hex(&self) -> String {
        hex::encode(self.0.pubkey.serialize())
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/", post(handle).get(stream::upgrade))
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
    if faults.answer_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.answer_delay_ms)).await;
    }
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
