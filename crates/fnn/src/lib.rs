//! JSON-RPC client for the hub: one FNN node (v0.8 and later), spoken to exactly as FNN speaks.
//!
//! - `params` is a one-element array holding one object (`[]` for methods without params);
//! - integers are `0x` hex strings, fields are snake_case: the request and result types are FNN's
//!   own published ones (`fiber-json-types`), so unknown response fields are tolerated and
//!   optional ones may be absent;
//! - every call has a timeout; `Authorization: Bearer <biscuit>` is sent when a token is set;
//! - FNN's error shapes map to [`HubError`]: `-32999 Unauthorized`, `-32000` with a message
//!   (the message is the only thing that tells errors apart; helpers below read the ones we act on).

mod stream;

pub use stream::{
    parse_store_change, ws_url, StoreChange, StoreChanges, StreamItem, SubscribeError,
};

use fiber_link_core::{InvoiceStatus, Script};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use fiber_json_types::{
    CkbInvoiceStatus, Currency, GetInvoiceResult, GetPaymentCommandParams, GetPaymentCommandResult,
    Hash256, InvoiceParams, InvoiceResult, ListChannelsParams, ListChannelsResult,
    NewInvoiceParams, NodeInfoResult, ParseInvoiceParams, ParseInvoiceResult, PaymentStatus,
    SendPaymentCommandParams,
};

/// What went wrong talking to the hub.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HubError {
    /// The hub could not be reached or did not answer within the timeout. Retry later.
    #[error("hub unreachable: {0}")]
    Unreachable(String),
    /// FNN refused the credentials (-32999) for this method: the biscuit token is missing,
    /// wrong, or lacks the permission the method needs.
    #[error("hub refused {0}: Unauthorized (the hub token is missing, wrong, or lacks the permission {0} needs; see docs/operations.md)")]
    Unauthorized(String),
    /// FNN answered with a JSON-RPC error.
    #[error("hub error {code}: {message}")]
    Rpc { code: i64, message: String },
    /// The answer was not what FNN sends for this method.
    #[error("unexpected hub response: {0}")]
    BadResponse(String),
}

impl HubError {
    /// True for errors that say nothing about the invoice: try again later.
    pub fn is_transient(&self) -> bool {
        match self {
            HubError::Unreachable(_) | HubError::BadResponse(_) | HubError::Unauthorized(_) => true,
            HubError::Rpc { code, .. } => *code != -32000,
        }
    }

    /// The `kind` label of `fiber_link_hub_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            HubError::Unreachable(_) => "unreachable",
            HubError::Unauthorized(_) => "unauthorized",
            HubError::Rpc { .. } => "rpc",
            HubError::BadResponse(_) => "bad_response",
        }
    }

    /// The message of an application error (-32000), the part FNN explains itself in.
    pub fn message(&self) -> Option<&str> {
        match self {
            HubError::Rpc {
                code: -32000,
                message,
            } => Some(message),
            _ => None,
        }
    }

    /// `new_invoice` with a payment hash the hub already has.
    pub fn is_invoice_already_exists(&self) -> bool {
        self.message() == Some("invoice already exists")
    }

    /// `get_invoice`/`cancel_invoice` for a hash the hub does not know.
    pub fn is_invoice_not_found(&self) -> bool {
        self.message()
            .is_some_and(|m| m.eq_ignore_ascii_case("invoice not found"))
    }

    /// `cancel_invoice` refused because of the invoice's status ("invoice can not be canceled,
    /// current status: Paid"): returns that status.
    pub fn cancel_refused_status(&self) -> Option<InvoiceStatus> {
        let rest = self
            .message()?
            .strip_prefix("invoice can not be canceled, current status: ")?;
        status_from_str(rest.trim())
    }

    /// `get_payment` for a hash this node never sent ("Payment session not found").
    pub fn is_payment_not_found(&self) -> bool {
        self.message()
            .is_some_and(|m| m.contains("Payment session not found"))
    }
}

fn status_from_str(s: &str) -> Option<InvoiceStatus> {
    Some(match s {
        "Open" => InvoiceStatus::Open,
        "Received" => InvoiceStatus::Received,
        "Paid" => InvoiceStatus::Paid,
        "Expired" => InvoiceStatus::Expired,
        "Cancelled" => InvoiceStatus::Cancelled,
        _ => return None,
    })
}

/// FNN's invoice status as the domain's.
pub fn invoice_status(s: CkbInvoiceStatus) -> InvoiceStatus {
    match s {
        CkbInvoiceStatus::Open => InvoiceStatus::Open,
        CkbInvoiceStatus::Received => InvoiceStatus::Received,
        CkbInvoiceStatus::Paid => InvoiceStatus::Paid,
        CkbInvoiceStatus::Expired => InvoiceStatus::Expired,
        CkbInvoiceStatus::Cancelled => InvoiceStatus::Cancelled,
    }
}

/// The invoice currency for a configured network name (`Fibb`, `Fibt` or `Fibd`).
pub fn currency_from_str(s: &str) -> Option<Currency> {
    match s {
        "Fibb" => Some(Currency::Fibb),
        "Fibt" => Some(Currency::Fibt),
        "Fibd" => Some(Currency::Fibd),
        _ => None,
    }
}

/// A configured type script in the form FNN's params take.
pub fn script_json(s: &Script) -> Result<ckb_jsonrpc_types::Script, String> {
    serde_json::from_value(
        json!({"code_hash": s.code_hash, "hash_type": s.hash_type, "args": s.args}),
    )
    .map_err(|e| format!("invalid script: {e}"))
}

/// The bech32m data groups of an invoice signature (fiber-types' `SIGNATURE_U5_SIZE`).
const SIGNATURE_GROUPS: usize = 104;

/// Parses a signed Fiber invoice string, never panicking: fiber-types 0.10.0-rc1 slices
/// `data[1..len - 104]` of a signed invoice, which panics when the data part is no longer than a
/// signature (a checksummed `fibb1p…` string of exactly 104 groups does it). Such strings are
/// refused here, with the same bech32 decoder, before fiber-types sees them.
pub fn parse_invoice(s: &str) -> Result<fiber_types::CkbInvoice, String> {
    let (_, data, _) = bech32::decode(s).map_err(|e| e.to_string())?;
    if data.len() <= SIGNATURE_GROUPS {
        return Err("the data part is too short for a signed invoice".into());
    }
    s.parse::<fiber_types::CkbInvoice>()
        .map_err(|e| e.to_string())
}

/// Decodes a signed invoice string without checking its signature (fiber-types' parser checks
/// it with two or three elliptic-curve operations, and offers no other way): the signature is
/// dropped, the "signed" flag cleared, and the unsigned string parsed.
fn decode_signed_invoice(s: &str) -> Result<fiber_types::CkbInvoice, String> {
    use bech32::u5;
    let (hrp, mut data, variant) = bech32::decode(s).map_err(|e| e.to_string())?;
    if variant != bech32::Variant::Bech32m {
        return Err("not a bech32m string".into());
    }
    if data.len() <= SIGNATURE_GROUPS {
        return Err("the data part is too short for a signed invoice".into());
    }
    if data[0].to_u8() != 1 {
        return Err("the invoice is not signed".into());
    }
    if data.len() - SIGNATURE_GROUPS < SIGNATURE_GROUPS {
        // fiber-types reads no unsigned invoice shorter than a signature: read this (short,
        // rare) one whole, its signature checked
        return parse_invoice(s);
    }
    data.truncate(data.len() - SIGNATURE_GROUPS);
    data[0] = u5::try_from_u8(0).map_err(|e| e.to_string())?;
    let unsigned =
        bech32::encode(&hrp, data, bech32::Variant::Bech32m).map_err(|e| e.to_string())?;
    fiber_types::CkbInvoice::from_str_allowing_unsigned(&unsigned).map_err(|e| e.to_string())
}

/// Checks an invoice string the hub returned before anyone is shown it: it decodes, and it is for
/// this payment hash, amount and currency (a payer pays the string, not the JSON next to it).
///
/// Its signature is not verified: the string comes from the operator's own hub, and what the
/// money depends on is the hash, the amount and the network, which are checked. A string with a
/// bad signature would be refused by the payer's wallet; no payment could reach anyone else,
/// since only the hub knows the preimage. (Invoices that authors bring, which the hub pays, are
/// verified: [`payout_invoice`].)
pub fn check_invoice_address(
    address: &str,
    payment_hash: &Hash256,
    amount: u128,
    currency: Currency,
) -> Result<(), String> {
    let inv =
        decode_signed_invoice(address).map_err(|e| format!("the invoice does not parse: {e}"))?;
    let hash: [u8; 32] = (*inv.payment_hash()).into();
    if hash != payment_hash.0 {
        return Err("the invoice is for another payment hash".into());
    }
    if inv.amount() != Some(amount) {
        return Err(format!(
            "the invoice is for {:?} instead of {amount}",
            inv.amount()
        ));
    }
    if !same_currency(inv.currency, currency) {
        return Err("the invoice is for another network".into());
    }
    Ok(())
}

/// A Fiber invoice of another node that a withdrawal is to pay, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutInvoice {
    /// `0x` + 64 hex digits.
    pub payment_hash: String,
    /// In the asset's base units; `None` when the invoice leaves the amount to the payer.
    pub amount: Option<u128>,
    /// The UDT the invoice asks for; `None` for CKB.
    pub udt_type_script: Option<Script>,
    /// The payee's public key (hex, compressed).
    pub payee: Option<String>,
    /// When it expires, in Unix milliseconds (`None`: no expiry attribute).
    pub expires_at_ms: Option<u128>,
}

/// Parses an invoice a withdrawal would pay: it must parse, be signed with a valid signature,
/// be for `currency`, and not be expired at `now_ms`. Errors are `(reason, sentence)` as the API
/// reports them.
pub fn payout_invoice(
    s: &str,
    currency: Currency,
    now_ms: u128,
) -> Result<PayoutInvoice, (&'static str, String)> {
    let inv = parse_invoice(s.trim()).map_err(|e| {
        (
            "invoice_malformed",
            format!("not a signed Fiber invoice: {e}"),
        )
    })?;
    if !inv.is_signed() {
        return Err(("invoice_malformed", "the invoice is not signed".into()));
    }
    inv.check_signature().map_err(|e| {
        (
            "invoice_malformed",
            format!("the invoice's signature does not verify: {e}"),
        )
    })?;
    if !same_currency(inv.currency, currency) {
        return Err((
            "invoice_wrong_network",
            format!(
                "the invoice is for the {:?} network; this service pays {:?} invoices",
                inv.currency, currency
            ),
        ));
    }
    let expires_at_ms = inv
        .expiry_time()
        .map(|d| inv.data.timestamp.saturating_add(d.as_millis()));
    if expires_at_ms.is_some_and(|at| at <= now_ms) {
        return Err(("invoice_expired", "the invoice has expired".into()));
    }
    let udt_type_script = inv.udt_type_script().map(|p| {
        let j = ckb_jsonrpc_types::Script::from(p.clone());
        let hash_type = serde_json::to_value(j.hash_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Script {
            code_hash: format!("{:#x}", j.code_hash),
            hash_type,
            args: format!("0x{}", hex_encode(j.args.as_bytes())),
        }
    });
    let hash: [u8; 32] = (*inv.payment_hash()).into();
    Ok(PayoutInvoice {
        payment_hash: format!("0x{}", hex_encode(&hash)),
        amount: inv.amount(),
        udt_type_script,
        payee: inv
            .payee_pub_key()
            .copied()
            .or_else(|| inv.recover_payee_pub_key().ok())
            .map(|k| hex_encode(&k.serialize())),
        expires_at_ms,
    })
}

/// Whether an invoice string parses and has expired at `now_ms` (any network). An invoice that
/// does not parse, or has no expiry, is not "expired".
pub fn invoice_expired(s: &str, now_ms: u128) -> bool {
    invoice_expires_at_ms(s).is_some_and(|at| at <= now_ms)
}

/// When an invoice string expires, in Unix milliseconds: `None` when it does not parse or has
/// no expiry.
pub fn invoice_expires_at_ms(s: &str) -> Option<u128> {
    let inv = parse_invoice(s.trim()).ok()?;
    inv.expiry_time()
        .map(|d| inv.data.timestamp.saturating_add(d.as_millis()))
}

/// Whether a `send_payment` refusal means this hub can never pay the invoice, whenever asked:
/// the invoice is expired or invalid for it, or it is the hub's own invoice. Any other refusal
/// (no route, no liquidity, a busy node) may pass: the payment is tried again while the invoice
/// can be paid.
pub fn refusal_is_final(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("invoice is expired")
        || m.contains("failed to validate payment request")
        || m.contains("amount does not match")
        || m.contains("can not pay to self")
        || m.contains("allow_self_payment")
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `send_payment` params that pay `invoice`: `amount` (required by FNN for an invoice without
/// one, and equal to it otherwise), the routing fee capped at `max_fee_amount`.
pub fn pay_invoice_params(
    invoice: &str,
    amount: u128,
    max_fee_amount: u128,
) -> Result<SendPaymentCommandParams, String> {
    serde_json::from_value(json!({
        "invoice": invoice,
        "amount": format!("0x{amount:x}"),
        "max_fee_amount": format!("0x{max_fee_amount:x}"),
        // FNN caps the fee at the smaller of max_fee_amount and amount × max_fee_rate / 1000:
        // a rate of 1000 (100 %) leaves max_fee_amount as the cap.
        "max_fee_rate": "0x3e8",
    }))
    .map_err(|e| format!("send_payment params: {e}"))
}

/// Whether an invoice's currency (fiber-types) is the JSON-RPC `currency`.
fn same_currency(a: fiber_types::Currency, b: Currency) -> bool {
    matches!(
        (a, b),
        (fiber_types::Currency::Fibb, Currency::Fibb)
            | (fiber_types::Currency::Fibt, Currency::Fibt)
            | (fiber_types::Currency::Fibd, Currency::Fibd)
    )
}

/// Parses `0x`-prefixed 32-byte hex.
pub fn hash256(s: &str) -> Result<Hash256, String> {
    s.parse::<Hash256>()
        .map_err(|e| format!("invalid 32-byte hash {s:?}: {e}"))
}

/// Connection settings for the hub.
#[derive(Clone, Debug)]
pub struct HubConfig {
    pub url: String,
    /// FNN biscuit token; sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    pub timeout: Duration,
}

/// A client for one hub. Cheap to clone (shares the connection pool).
#[derive(Clone, Debug)]
pub struct HubClient {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    timeout: Duration,
    next_id: std::sync::Arc<AtomicU64>,
}

impl HubClient {
    pub fn new(cfg: &HubConfig) -> Result<HubClient, String> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HubClient {
            http,
            url: cfg.url.clone(),
            token: cfg.token.clone(),
            timeout: cfg.timeout,
            next_id: std::sync::Arc::new(AtomicU64::new(1)),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// One JSON-RPC call. `params: None` sends `[]`; otherwise `[params]` with null fields left
    /// out (FNN treats an absent optional field and null alike).
    pub async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: Option<&P>,
    ) -> Result<R, HubError> {
        let params = match params {
            None => json!([]),
            Some(p) => {
                let mut v = serde_json::to_value(p)
                    .map_err(|e| HubError::BadResponse(format!("cannot encode params: {e}")))?;
                if let Value::Object(m) = &mut v {
                    m.retain(|_, x| !x.is_null());
                }
                json!([v])
            }
        };
        self.timed(method, self.send(method, params)).await
    }

    /// Awaits one hub call, recording its duration and outcome in the process's metrics.
    async fn timed<R>(
        &self,
        method: &str,
        call: impl std::future::Future<Output = Result<R, HubError>>,
    ) -> Result<R, HubError> {
        let started = std::time::Instant::now();
        let r = call.await;
        fiber_link_metrics::global().hub_call(
            method,
            started.elapsed().as_secs_f64(),
            r.as_ref().err().map(HubError::kind),
        );
        r
    }

    async fn send<R: DeserializeOwned>(&self, method: &str, params: Value) -> Result<R, HubError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut req = self.http.post(&self.url).json(&body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| {
            HubError::Unreachable(if e.is_timeout() {
                format!("{method}: no answer within the timeout")
            } else {
                format!("{method}: {}", without_url(&e))
            })
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| {
            HubError::Unreachable(format!("{method}: reading the answer: {}", without_url(&e)))
        })?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| {
            if status.is_success() {
                HubError::BadResponse(format!("{method}: the answer is not JSON"))
            } else {
                HubError::Unreachable(format!("{method}: HTTP {status}"))
            }
        })?;
        decode_response(method, v)
    }

    pub async fn node_info(&self) -> Result<NodeInfoResult, HubError> {
        self.call::<Value, _>("node_info", None).await
    }

    pub async fn new_invoice(&self, p: &NewInvoiceParams) -> Result<InvoiceResult, HubError> {
        self.call("new_invoice", Some(p)).await
    }

    pub async fn get_invoice(&self, payment_hash: Hash256) -> Result<GetInvoiceResult, HubError> {
        self.call("get_invoice", Some(&InvoiceParams { payment_hash }))
            .await
    }

    pub async fn cancel_invoice(
        &self,
        payment_hash: Hash256,
    ) -> Result<GetInvoiceResult, HubError> {
        self.call("cancel_invoice", Some(&InvoiceParams { payment_hash }))
            .await
    }

    pub async fn parse_invoice(&self, invoice: &str) -> Result<ParseInvoiceResult, HubError> {
        self.call(
            "parse_invoice",
            Some(&ParseInvoiceParams {
                invoice: invoice.to_string(),
            }),
        )
        .await
    }

    pub async fn get_payment(
        &self,
        payment_hash: Hash256,
    ) -> Result<GetPaymentCommandResult, HubError> {
        self.call(
            "get_payment",
            Some(&GetPaymentCommandParams { payment_hash }),
        )
        .await
    }

    pub async fn send_payment(
        &self,
        p: &SendPaymentCommandParams,
    ) -> Result<GetPaymentCommandResult, HubError> {
        self.call("send_payment", Some(p)).await
    }

    pub async fn list_channels(
        &self,
        p: &ListChannelsParams,
    ) -> Result<ListChannelsResult, HubError> {
        self.call("list_channels", Some(p)).await
    }
}

/// reqwest's errors name the URL; a hub URL may carry credentials, so keep only the cause.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<hub>");
    }
    s
}

/// Reads a JSON-RPC response body: the result as `R`, or the error mapped to [`HubError`].
/// A hub method a Fiber Link process calls, and the FNN permission (biscuit rule) it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    pub method: &'static str,
    pub permission: &'static str,
}

const fn needs(method: &'static str, permission: &'static str) -> Needs {
    Needs { method, permission }
}

/// What the API process (`serve`) calls at the hub.
pub const API_NEEDS: &[Needs] = &[
    needs("node_info", "read(\"node\")"),
    needs("new_invoice", "write(\"invoices\")"),
    needs("get_invoice", "read(\"invoices\")"),
];

/// What the worker calls: the watcher (and its `new_invoice` for tips left without one), the
/// withdrawal executor, and `list_channels` for reconcile and `ops summary`.
pub const WORKER_NEEDS: &[Needs] = &[
    needs("node_info", "read(\"node\")"),
    needs("new_invoice", "write(\"invoices\")"),
    needs("get_invoice", "read(\"invoices\")"),
    needs("cancel_invoice", "write(\"invoices\")"),
    needs("get_payment", "read(\"payments\")"),
    needs("send_payment", "write(\"payments\")"),
    needs("list_channels", "read(\"channels\")"),
];

/// What one probe found.
#[derive(Clone, Debug)]
pub struct Probe {
    pub needs: Needs,
    /// `Ok` when the hub let the call through (whatever it answered); the error otherwise.
    pub result: Result<(), HubError>,
}

impl HubClient {
    /// Asks the hub, with a harmless call per method, whether this client's token may call each
    /// of `needs`: calls that cannot change anything (an unknown payment hash, params FNN refuses
    /// after its permission check) or that only read. FNN's authorization runs before a
    /// method's params are read, so any answer but Unauthorized means the permission is there.
    pub async fn probe(&self, needs: &[Needs]) -> Vec<Probe> {
        let zero = json!({"payment_hash": format!("0x{}", "00".repeat(32))});
        let mut out = Vec::with_capacity(needs.len());
        for n in needs {
            let params = match n.method {
                "node_info" => json!([]),
                "get_invoice" | "cancel_invoice" | "get_payment" => json!([zero]),
                "list_channels" => json!([{}]),
                // no amount / no target: refused as invalid params, after the permission check
                _ => json!([{}]),
            };
            let result = match self.call_raw(n.method, params).await {
                Err(e @ (HubError::Unauthorized(_) | HubError::Unreachable(_))) => Err(e),
                _ => Ok(()),
            };
            out.push(Probe { needs: *n, result });
        }
        out
    }

    /// A call with `params` as given (for probes).
    async fn call_raw(&self, method: &str, params: Value) -> Result<(), HubError> {
        self.timed(method, self.send::<Value>(method, params))
            .await
            .map(|_| ())
    }
}

pub fn decode_response<R: DeserializeOwned>(method: &str, v: Value) -> Result<R, HubError> {
    if let Some(err) = v.get("error") {
        let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if code == -32999 {
            return Err(HubError::Unauthorized(method.to_string()));
        }
        return Err(HubError::Rpc { code, message });
    }
    let Some(result) = v.get("result") else {
        return Err(HubError::BadResponse(format!(
            "{method}: neither result nor error"
        )));
    };
    R::deserialize(result).map_err(|e| HubError::BadResponse(format!("{method}: {e}")))
}

/// CKB genesis block hashes (FNN's `node_info.chain_hash`) of the public chains.
const MAINNET_GENESIS: &str = "0x92b197aa1fba0f63633922c61c92375c9c074a93e85963554f5499fe1450d0e5";
const TESTNET_GENESIS: &str = "0x10639e0895502b5688a6be8cf69460d76541bfa4821629d86d62ba0aae3f9606";

/// The invoice currency of the chain a hub runs on, from its `chain_hash`: `Fibb` (mainnet),
/// `Fibt` (testnet), `Fibd` (any other chain: a dev chain).
pub fn currency_of_chain(chain_hash: &str) -> &'static str {
    match chain_hash.to_ascii_lowercase().as_str() {
        MAINNET_GENESIS => "Fibb",
        TESTNET_GENESIS => "Fibt",
        _ => "Fibd",
    }
}

/// Whether the hub's UDT whitelist entry `info` covers the type script `s` (code hash and hash
/// type equal; `args` equal, or matching FNN's pattern `<prefix>.*`).
pub fn udt_covers(info: &fiber_json_types::UdtArgInfo, s: &Script) -> bool {
    let code_hash = format!("{:#x}", info.script.code_hash);
    let hash_type = serde_json::to_value(info.script.hash_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let args = info.script.args.to_ascii_lowercase();
    let want = s.args.to_ascii_lowercase();
    let args_ok = match args.strip_suffix(".*") {
        Some(prefix) => want.starts_with(prefix),
        None => args == want,
    };
    code_hash.eq_ignore_ascii_case(&s.code_hash) && hash_type == s.hash_type && args_ok
}
