//! FNN's store-change stream: the `pubsub` module's `subscribe_store_changes` WebSocket
//! subscription on the node's RPC port (notification `store_changes`, permission `read("cch")`).
//!
//! It is a latency hint and nothing more: no backlog, nothing replayed after a disconnect, the
//! event shape is FNN-internal. A caller uses an event to ask `get_invoice` sooner; the answer to
//! that call is the truth.
//!
//! Events are externally tagged: `{"PutCkbInvoiceStatus":{"payment_hash":"0x…",
//! "invoice_status":"Paid"}}` (emitted on insert, Open, and on every status write: Received, Paid,
//! Cancelled; never Expired, which is never stored), `{"PutPreimage":{…}}` (repeats),
//! `{"PutPaymentSession":{…}}` and others.

use crate::{CkbInvoiceStatus, Hash256, HubClient};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The largest frame the client accepts (an event is a few hundred bytes; a payment session a
/// few kilobytes).
const MAX_MESSAGE: usize = 1 << 20;

/// One store change, as far as Fiber Link reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreChange {
    /// An invoice's status was written (`PutCkbInvoiceStatus`).
    InvoiceStatus {
        payment_hash: Hash256,
        status: CkbInvoiceStatus,
    },
    /// Any other change (`PutPreimage`, `PutPaymentSession`, …), by its tag.
    Other(String),
}

/// Why a subscription could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubscribeError {
    /// The hub answered, but has no `subscribe_store_changes` (its `pubsub` module is off).
    #[error("the hub does not offer subscribe_store_changes (its rpc.enabled_modules lacks pubsub): {0}")]
    NotOffered(String),
    /// The hub refused the token (it lacks `read("cch")`, or is missing or wrong).
    #[error("the hub refused subscribe_store_changes: Unauthorized (the token lacks read(\"cch\"), or is missing or wrong)")]
    Unauthorized,
    /// The hub could not be reached, or the WebSocket handshake failed.
    #[error("store-change stream unreachable: {0}")]
    Unreachable(String),
    /// The hub answered something that is not a subscription.
    #[error("store-change stream: unexpected answer: {0}")]
    BadResponse(String),
}

impl SubscribeError {
    /// Whether trying again soon may help (the module being off or the token lacking the
    /// permission only change when the operator changes the hub).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SubscribeError::Unreachable(_) | SubscribeError::BadResponse(_)
        )
    }
}

/// What reading the stream gave.
#[derive(Debug)]
pub enum StreamItem {
    /// A well-formed `store_changes` notification of this subscription.
    Change(StoreChange),
    /// A frame that is not one: logged and dropped by the caller, the stream goes on.
    Malformed(String),
}

/// An open subscription. Dropping it closes the connection.
pub struct StoreChanges {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    subscription: Value,
    /// How long the stream may stay silent before a ping is sent; twice this without any frame
    /// (a pong included) and the connection counts as dead.
    idle: Duration,
    awaiting_pong: bool,
}

/// The WebSocket address of a hub's RPC URL (`http://h:p/` → `ws://h:p/`).
pub fn ws_url(http_url: &str) -> Result<String, SubscribeError> {
    if let Some(rest) = http_url.strip_prefix("http://") {
        Ok(format!("ws://{rest}"))
    } else if http_url.starts_with("https://") {
        Err(SubscribeError::Unreachable(
            "a TLS hub URL (https) is not supported for the store-change stream; reach the hub over a private network or a local TLS terminator".into(),
        ))
    } else {
        Err(SubscribeError::Unreachable(format!(
            "unsupported hub URL scheme in {:?}",
            http_url.split("://").next().unwrap_or_default()
        )))
    }
}

/// Reads one `store_changes` event (the notification's `params.result`).
pub fn parse_store_change(v: &Value) -> Result<StoreChange, String> {
    let obj = v
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or_else(|| "an event must be an object with one tag".to_string())?;
    let (tag, body) = obj.iter().next().expect("one entry");
    if tag != "PutCkbInvoiceStatus" {
        return Ok(StoreChange::Other(tag.clone()));
    }
    let hash = body
        .get("payment_hash")
        .and_then(Value::as_str)
        .ok_or("PutCkbInvoiceStatus without a payment_hash")?;
    let payment_hash = crate::hash256(hash)?;
    let status: CkbInvoiceStatus = serde_json::from_value(
        body.get("invoice_status")
            .cloned()
            .ok_or("PutCkbInvoiceStatus without an invoice_status")?,
    )
    .map_err(|e| format!("PutCkbInvoiceStatus: invoice_status: {e}"))?;
    Ok(StoreChange::InvoiceStatus {
        payment_hash,
        status,
    })
}

impl HubClient {
    /// Opens the hub's store-change stream: a WebSocket to the RPC URL (with the token as
    /// `Authorization: Bearer` on the upgrade request, which FNN's own client does not send),
    /// then `subscribe_store_changes`. Waits at most the client's timeout.
    pub async fn subscribe_store_changes(
        &self,
        idle: Duration,
    ) -> Result<StoreChanges, SubscribeError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.subscribe(idle)).await {
            Ok(r) => r,
            Err(_) => Err(SubscribeError::Unreachable(
                "subscribe_store_changes: no answer within the timeout".into(),
            )),
        }
    }

    async fn subscribe(&self, idle: Duration) -> Result<StoreChanges, SubscribeError> {
        let url = ws_url(&self.url)?;
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| SubscribeError::Unreachable(format!("the hub URL: {e}")))?;
        if let Some(t) = &self.token {
            let v = format!("Bearer {t}").parse().map_err(|_| {
                SubscribeError::Unreachable("the hub token is not a valid header value".into())
            })?;
            req.headers_mut().insert("authorization", v);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
            .await
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(r) => {
                    SubscribeError::Unreachable(format!("HTTP {} on the upgrade", r.status()))
                }
                e => SubscribeError::Unreachable(e.to_string()),
            })?;
        let id = 1;
        let sub =
            json!({"jsonrpc": "2.0", "id": id, "method": "subscribe_store_changes", "params": []});
        ws.send(Message::text(sub.to_string()))
            .await
            .map_err(|e| SubscribeError::Unreachable(e.to_string()))?;
        // The answer to the subscription comes first; a notification cannot precede it.
        loop {
            let frame = match ws.next().await {
                Some(Ok(f)) => f,
                Some(Err(e)) => return Err(SubscribeError::Unreachable(e.to_string())),
                None => {
                    return Err(SubscribeError::Unreachable(
                        "the hub closed the stream before answering".into(),
                    ))
                }
            };
            let text = match frame {
                Message::Text(t) => t,
                Message::Close(_) => {
                    return Err(SubscribeError::Unreachable(
                        "the hub closed the stream before answering".into(),
                    ))
                }
                _ => continue,
            };
            let v: Value = serde_json::from_str(text.as_str())
                .map_err(|_| SubscribeError::BadResponse("not JSON".into()))?;
            if v.get("id") != Some(&json!(id)) {
                continue;
            }
            if let Some(err) = v.get("error") {
                let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
                let message = err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                return Err(match code {
                    -32999 => SubscribeError::Unauthorized,
                    -32601 => SubscribeError::NotOffered(format!("{code} {message}")),
                    _ => SubscribeError::BadResponse(format!("{code} {message}")),
                });
            }
            let subscription = match v.get("result") {
                Some(s @ (Value::Number(_) | Value::String(_))) => s.clone(),
                other => {
                    return Err(SubscribeError::BadResponse(format!(
                        "subscription id {other:?}"
                    )))
                }
            };
            return Ok(StoreChanges {
                ws,
                subscription,
                idle,
                awaiting_pong: false,
            });
        }
    }
}

impl StoreChanges {
    /// The hub's id for this subscription.
    pub fn id(&self) -> &Value {
        &self.subscription
    }

    /// The next item, or `Err` when the stream has ended (closed, broken, or silent for twice
    /// the idle time with a ping unanswered): the caller reconnects.
    pub async fn next(&mut self) -> Result<StreamItem, String> {
        loop {
            let frame = match tokio::time::timeout(self.idle, self.ws.next()).await {
                Err(_) if self.awaiting_pong => {
                    return Err("the hub did not answer a ping; the stream counts as dead".into())
                }
                Err(_) => {
                    self.awaiting_pong = true;
                    self.ws
                        .send(Message::Ping(Default::default()))
                        .await
                        .map_err(|e| format!("sending a ping: {e}"))?;
                    continue;
                }
                Ok(None) => return Err("the hub closed the stream".into()),
                Ok(Some(Err(e))) => return Err(format!("the stream broke: {e}")),
                Ok(Some(Ok(f))) => f,
            };
            self.awaiting_pong = false;
            let text = match frame {
                Message::Text(t) => t,
                Message::Close(c) => {
                    return Err(format!(
                        "the hub closed the stream{}",
                        c.map(|c| format!(" ({})", c.code)).unwrap_or_default()
                    ))
                }
                Message::Binary(_) => {
                    return Ok(StreamItem::Malformed("a binary frame".into()));
                }
                _ => continue,
            };
            return Ok(self.read(text.as_str()));
        }
    }

    fn read(&self, text: &str) -> StreamItem {
        let bad = |why: &str| StreamItem::Malformed(why.to_string());
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return bad("not JSON");
        };
        if v.get("method").and_then(Value::as_str) != Some("store_changes") {
            return bad("not a store_changes notification");
        }
        let Some(params) = v.get("params") else {
            return bad("a notification without params");
        };
        if params.get("subscription") != Some(&self.subscription) {
            return bad("a notification of another subscription");
        }
        match params.get("result").map(parse_store_change) {
            Some(Ok(c)) => StreamItem::Change(c),
            Some(Err(e)) => StreamItem::Malformed(e),
            None => bad("a notification without result"),
        }
    }

    /// Ends the subscription politely (`unsubscribe_store_changes`), then closes.
    pub async fn close(mut self) {
        let unsub = json!({"jsonrpc": "2.0", "id": 2, "method": "unsubscribe_store_changes", "params": [self.subscription]});
        let _ = self.ws.send(Message::text(unsub.to_string())).await;
        let _ = self.ws.close(None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fnn_events() {
        let h = "0x1aa484da003c1bc57eebc8942711d5b84b484c993b03f57dfb120eb80e678acb";
        let paid = json!({"PutCkbInvoiceStatus": {"payment_hash": h, "invoice_status": "Paid"}});
        assert_eq!(
            parse_store_change(&paid).unwrap(),
            StoreChange::InvoiceStatus {
                payment_hash: crate::hash256(h).unwrap(),
                status: CkbInvoiceStatus::Paid
            }
        );
        let pre = json!({"PutPreimage": {"payment_hash": h, "payment_preimage": h}});
        assert_eq!(
            parse_store_change(&pre).unwrap(),
            StoreChange::Other("PutPreimage".into())
        );
        for bad in [
            json!({"PutCkbInvoiceStatus": {"payment_hash": "0x12", "invoice_status": "Paid"}}),
            json!({"PutCkbInvoiceStatus": {"payment_hash": h, "invoice_status": "Spent"}}),
            json!({"PutCkbInvoiceStatus": {"payment_hash": h}}),
            json!({"a": 1, "b": 2}),
            json!("PutCkbInvoiceStatus"),
        ] {
            assert!(parse_store_change(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ws_url_follows_the_rpc_url() {
        assert_eq!(
            ws_url("http://127.0.0.1:8227/").unwrap(),
            "ws://127.0.0.1:8227/"
        );
        assert!(ws_url("https://hub.example/").is_err());
    }
}
