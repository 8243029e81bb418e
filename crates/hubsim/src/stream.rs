//! FNN's `pubsub` module: `subscribe_store_changes` over a WebSocket on the RPC port, as an FNN
//! v0.8.0 hub serves it (the recording in `tests/fixtures/fnn/pubsub-v0.8.0.json`): the
//! subscription id is a number; each `store_changes` notification carries one externally tagged
//! store change; `PutCkbInvoiceStatus` is emitted when an invoice is inserted (Open) and on every
//! status write (Received, Paid, Cancelled), never for Expired (never stored); `PutPreimage`
//! repeats. Nothing is kept for a subscriber that is not connected.
//!
//! Controls FNN does not have: `sim_set_stream {enabled?, delay_ms?, loss?}` (the module off, every
//! event delayed, a fraction of events lost per subscriber), `sim_drop_streams` (every open stream
//! closed, as when the node restarts), `sim_emit {event}` (a raw event to every subscriber, for
//! malformed and unknown ones) and `sim_stream_stats`.

use super::{HubSim, RpcError, RpcResult};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// How the module behaves (`sim_set_stream`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamCtl {
    /// The `pubsub` module is on (`subscribe_store_changes` exists).
    pub enabled: bool,
    /// Every event reaches subscribers this late.
    pub delay_ms: u64,
    /// Fraction (0–1) of events each subscriber never gets.
    pub loss: f64,
}

impl Default for StreamCtl {
    fn default() -> Self {
        StreamCtl {
            enabled: true,
            delay_ms: 0,
            loss: 0.0,
        }
    }
}

pub(crate) struct StreamHub {
    /// Each change serialized once, for every subscriber (the channel keeps its last 65,536).
    events: broadcast::Sender<(Instant, Arc<str>)>,
    drops: watch::Sender<u64>,
    ctl: Mutex<StreamCtl>,
    subscribers: AtomicU64,
    emitted: AtomicU64,
    sent: AtomicU64,
    lost: AtomicU64,
}

impl Default for StreamHub {
    fn default() -> Self {
        StreamHub {
            events: broadcast::channel(1 << 16).0,
            drops: watch::channel(0).0,
            ctl: Mutex::new(StreamCtl::default()),
            subscribers: AtomicU64::new(0),
            emitted: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }
}

fn hash_hex(h: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(h))
}

impl StreamHub {
    fn ctl(&self) -> StreamCtl {
        self.ctl.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sends one store change to every subscriber (call while holding the node's state lock, so
    /// events go out in the order the writes happened).
    pub(crate) fn emit(&self, change: Value) {
        if self.subscribers.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.emitted.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .events
            .send((Instant::now(), change.to_string().into()));
    }

    pub(crate) fn invoice_status(&self, hash: &[u8; 32], status: &str) {
        self.emit(json!({"PutCkbInvoiceStatus": {"payment_hash": hash_hex(hash), "invoice_status": status}}));
    }

    pub(crate) fn preimage(&self, hash: &[u8; 32], preimage: &[u8; 32]) {
        self.emit(json!({"PutPreimage": {"payment_hash": hash_hex(hash), "payment_preimage": hash_hex(preimage)}}));
    }
}

impl HubSim {
    fn stream(&self) -> &StreamHub {
        &self.0.stream
    }

    pub(super) fn drop_streams(&self) {
        self.stream().drops.send_modify(|g| *g += 1);
    }

    pub(super) fn stream_control(&self, method: &str, p: Value) -> Option<RpcResult> {
        let s = self.stream();
        Some(match method {
            "sim_set_stream" => (|| {
                let mut ctl = s.ctl();
                if let Value::Object(m) = &p {
                    let mut merged = serde_json::to_value(&ctl).unwrap_or(json!({}));
                    for (k, v) in m {
                        merged[k] = v.clone();
                    }
                    ctl = serde_json::from_value(merged)
                        .map_err(|e| RpcError::invalid_params(e.to_string()))?;
                }
                if !(0.0..=1.0).contains(&ctl.loss) {
                    return Err(RpcError::invalid_params("loss must be within 0..=1".into()));
                }
                if !ctl.enabled {
                    // turning the module off ends the subscriptions, as a restart without it
                    // would
                    s.drops.send_modify(|g| *g += 1);
                }
                *s.ctl.lock().unwrap_or_else(|p| p.into_inner()) = ctl.clone();
                Ok(serde_json::to_value(ctl).unwrap_or(Value::Null))
            })(),
            "sim_drop_streams" => {
                s.drops.send_modify(|g| *g += 1);
                Ok(json!({"dropped": s.subscribers.load(Ordering::Relaxed)}))
            }
            "sim_emit" => match p.get("event") {
                Some(e) => {
                    s.emit(e.clone());
                    Ok(json!({"subscribers": s.subscribers.load(Ordering::Relaxed)}))
                }
                None => Err(RpcError::invalid_params("event is required".into())),
            },
            "sim_stream_stats" => Ok(json!({
                "subscribers": s.subscribers.load(Ordering::Relaxed),
                "emitted": s.emitted.load(Ordering::Relaxed),
                "sent": s.sent.load(Ordering::Relaxed),
                "lost": s.lost.load(Ordering::Relaxed),
                "ctl": s.ctl(),
            })),
            _ => return None,
        })
    }
}

/// `GET /` with a WebSocket upgrade: the RPC port's WebSocket side.
pub(crate) async fn upgrade(
    State(sim): State<HubSim>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if sim.state().faults.down {
        return (StatusCode::SERVICE_UNAVAILABLE, "hub down (simulated)").into_response();
    }
    let authorized = match &sim.0.opts.token {
        None => true,
        Some(token) => headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {token}")),
    };
    ws.max_message_size(1 << 20)
        .on_upgrade(move |socket| connection(sim, socket, authorized))
}

async fn connection(sim: HubSim, mut socket: WebSocket, authorized: bool) {
    let hub = sim.stream();
    let mut drops = hub.drops.subscribe();
    drops.mark_unchanged();
    let mut events = hub.events.subscribe();
    let mut subscription: Option<u64> = None;
    let answer =
        |id: Value, r: RpcResult| Message::Text(super::rpc_response(id, r).to_string().into());
    loop {
        tokio::select! {
            _ = drops.changed() => break,
            msg = socket.recv() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(req) = serde_json::from_str::<Value>(text.as_str()) else {
                    let e = RpcError { code: -32700, message: "Parse error".into(), data: None };
                    if socket.send(answer(Value::Null, Err(e))).await.is_err() { break; }
                    continue;
                };
                let id = req.get("id").cloned().unwrap_or(Value::Null);
                let method = req.get("method").and_then(Value::as_str).unwrap_or_default().to_string();
                let params = req.get("params").cloned().unwrap_or(Value::Null);
                *sim.state().calls.entry(method.clone()).or_default() += 1;
                let denied = sim.0.opts.token.is_some() && sim.state().denied.contains(&method);
                let r = if !authorized || denied {
                    Err(RpcError::unauthorized())
                } else {
                    match method.as_str() {
                        "subscribe_store_changes" if !hub.ctl().enabled => Err(RpcError {
                            code: -32601,
                            message: "Method not found".into(),
                            data: None,
                        }),
                        "subscribe_store_changes" => {
                            if subscription.is_none() {
                                hub.subscribers.fetch_add(1, Ordering::Relaxed);
                                // only what happens from now on
                                events = events.resubscribe();
                            }
                            let sub = rand::thread_rng().gen_range(1..(1u64 << 53));
                            subscription = Some(sub);
                            Ok(json!(sub))
                        }
                        "unsubscribe_store_changes" => {
                            let asked = params.as_array().and_then(|a| a.first()).and_then(Value::as_u64);
                            let ok = asked.is_some() && asked == subscription;
                            if ok {
                                subscription = None;
                                hub.subscribers.fetch_sub(1, Ordering::Relaxed);
                            }
                            Ok(json!(ok))
                        }
                        m if m.starts_with("sim_") => Err(RpcError::unauthorized()),
                        m => sim.dispatch(m, &params),
                    }
                };
                if socket.send(answer(id, r)).await.is_err() { break; }
            }
            ev = events.recv(), if subscription.is_some() => {
                let (at, change) = match ev {
                    Ok(e) => e,
                    // a subscriber too slow for the node is dropped, as jsonrpsee drops one whose
                    // buffer is full
                    Err(_) => break,
                };
                let ctl = hub.ctl();
                if ctl.loss > 0.0 && rand::thread_rng().gen_bool(ctl.loss) {
                    hub.lost.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if ctl.delay_ms > 0 {
                    tokio::time::sleep_until((at + Duration::from_millis(ctl.delay_ms)).into()).await;
                }
                let sub = subscription.unwrap_or_default();
                let note = format!(
                    r#"{{"jsonrpc":"2.0","method":"store_changes","params":{{"subscription":{sub},"result":{change}}}}}"#
                );
                if socket.send(Message::Text(note.into())).await.is_err() { break; }
                hub.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if subscription.is_some() {
        hub.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
    let _ = socket.send(Message::Close(None)).await;
}
