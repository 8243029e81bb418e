//! A client for the Fiber Link API that signs each request as docs/api.md describes:
//! `x-signature` = hex HMAC-SHA256(secret, `<x-ts>.<x-nonce>.<raw body>`), a fresh nonce each time.

use fiber_link_core::crypto::sign_request;
use rand::RngCore;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone)]
pub struct SignedClient {
    http: reqwest::Client,
    base: String,
    pub app_id: String,
    secret: String,
    next_id: Arc<AtomicU64>,
}

/// A raw answer: HTTP status and the JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The JSON-RPC result, or `None` when the answer is an error.
    pub fn result(&self) -> Option<&Value> {
        self.body.get("result")
    }

    /// `error.data.reason`, the stable reason of an error.
    pub fn reason(&self) -> Option<&str> {
        self.body
            .pointer("/error/data/reason")
            .and_then(Value::as_str)
    }

    pub fn code(&self) -> Option<i64> {
        self.body.pointer("/error/code").and_then(Value::as_i64)
    }
}

pub fn fresh_nonce() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl SignedClient {
    pub fn new(base: &str, app_id: &str, secret: &str) -> SignedClient {
        SignedClient {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .expect("HTTP client"),
            base: base.trim_end_matches('/').to_string(),
            app_id: app_id.to_string(),
            secret: secret.to_string(),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The same app's client for another API address (another instance of the service).
    pub fn with_base(&self, base: &str) -> SignedClient {
        SignedClient::new(base, &self.app_id, &self.secret)
    }

    /// The four auth headers for `body`, signed with `ts` and `nonce`.
    pub fn headers(&self, ts: i64, nonce: &str, body: &[u8]) -> Vec<(&'static str, String)> {
        vec![
            ("x-app-id", self.app_id.clone()),
            ("x-ts", ts.to_string()),
            ("x-nonce", nonce.to_string()),
            (
                "x-signature",
                sign_request(&self.secret, &ts.to_string(), nonce, body),
            ),
        ]
    }

    /// POSTs `body` to `path` with the given headers (no signing of its own): for tests that
    /// tamper with requests.
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.body(body).send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Ok(Answer { status, body })
    }

    /// Signs and sends `body` to `path` now, with a fresh nonce.
    pub async fn post_signed(&self, path: &str, body: Vec<u8>) -> Result<Answer, String> {
        let h = self.headers(chrono::Utc::now().timestamp(), &fresh_nonce(), &body);
        self.post_raw(path, &h, body).await
    }

    /// The JSON-RPC request body for `method`.
    pub fn request_body(&self, method: &str, params: Value) -> Vec<u8> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .expect("JSON")
    }

    /// Calls `method` and returns the whole answer.
    pub async fn call(&self, method: &str, params: Value) -> Result<Answer, String> {
        let body = self.request_body(method, params);
        self.post_signed("/rpc", body).await
    }

    /// Calls `method` and returns its result, or the error as a string.
    pub async fn result(&self, method: &str, params: Value) -> Result<Value, String> {
        let a = self.call(method, params).await?;
        a.result()
            .cloned()
            .ok_or_else(|| format!("{method}: {}", a.body))
    }
}
