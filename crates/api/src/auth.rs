//! Request authentication (DESIGN §7): `x-app-id`, `x-ts`, `x-nonce`, `x-signature` =
//! hex HMAC-SHA256(app secret, `<x-ts>.<x-nonce>.<raw body>`), ±300 s, each nonce once per app.

use crate::batch::Batcher;
use crate::AppState;
use axum::http::HeaderMap;
use fiber_link_core::crypto::verify_request;
use fiber_link_core::ApiError;
use fiber_link_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The authenticated caller: the signature is checked; the request's nonce is recorded by
/// [`record_nonce`] (or, for `tip.create`, in the tip's own statement) before anything is served.
#[derive(Clone, Debug)]
pub struct Caller {
    pub app_id: String,
    /// The request's nonce while it is not recorded yet.
    pub(crate) nonce: Option<String>,
}

/// How a request's nonce is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NonceUse {
    /// Before the request is served, and on disk before it is answered: every request that may
    /// change anything.
    Durable,
    /// Before the request is served, without waiting for the disk: requests that only read. A
    /// database crash in the fraction of a second before the write reaches the disk lets a
    /// replay of such a request through, which reads again what its first answer read.
    Lazy,
    /// In the statement that writes the tip (`tip.create`): one commit for both.
    WithTip,
}

/// Records the caller's nonce (once: a no-op when it is recorded already); `replayed_nonce`
/// when the app used it before.
pub(crate) async fn record_nonce(
    state: &AppState,
    caller: &mut Caller,
    lazy: bool,
) -> Result<(), ApiError> {
    let Some(nonce) = caller.nonce.take() else {
        return Ok(());
    };
    let book = if lazy {
        &state.lazy_nonces
    } else {
        &state.nonces
    };
    match book.consume(&caller.app_id, &nonce).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(nonce_replayed()),
        Err(e) => {
            tracing::error!(error = %e, "recording a nonce failed");
            Err(ApiError::internal())
        }
    }
}

/// `replayed_nonce`, counted in the metrics of refused requests.
pub(crate) fn nonce_replayed() -> ApiError {
    fiber_link_metrics::global().auth_rejected("replayed_nonce");
    ApiError::unauthorized(
        "replayed_nonce",
        "this x-nonce was already used by this app; use a fresh nonce for every request",
    )
}

struct Headers<'a> {
    app_id: &'a str,
    ts: &'a str,
    nonce: &'a str,
    signature: [u8; 32],
}

fn header<'a>(h: &'a HeaderMap, name: &'static str) -> Result<&'a str, ApiError> {
    let v = h.get(name).ok_or_else(|| {
        ApiError::unauthorized("missing_header", format!("header {name} is required"))
    })?;
    v.to_str().map_err(|_| {
        ApiError::unauthorized("malformed_header", format!("header {name} must be ASCII"))
    })
}

fn parse_headers(h: &HeaderMap) -> Result<Headers<'_>, ApiError> {
    let app_id = header(h, "x-app-id")?;
    let ts = header(h, "x-ts")?;
    let nonce = header(h, "x-nonce")?;
    let sig = header(h, "x-signature")?;
    let malformed = |name: &str, what: &str| {
        ApiError::unauthorized("malformed_header", format!("header {name} must be {what}"))
    };
    if !(app_id.len() == 28
        && app_id.starts_with("app_")
        && app_id[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    {
        return Err(malformed("x-app-id", "an app id (app_ and 24 hex digits)"));
    }
    if ts.is_empty() || ts.len() > 12 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("x-ts", "Unix time in whole seconds"));
    }
    if !(8..=128).contains(&nonce.len())
        || !nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(malformed(
            "x-nonce",
            "8-128 characters of A-Z, a-z, 0-9, - and _",
        ));
    }
    let signature: [u8; 32] = hex::decode(sig)
        .ok()
        .and_then(|b| b.try_into().ok())
        .filter(|_| sig.len() == 64)
        .ok_or_else(|| malformed("x-signature", "64 hex digits (HMAC-SHA256)"))?;
    Ok(Headers {
        app_id,
        ts,
        nonce,
        signature,
    })
}

/// Authenticates a request: headers, timestamp, signature. Its nonce is recorded afterwards
/// ([`record_nonce`]), so nobody without the secret can burn an app's nonces.
pub async fn authenticate(
    state: &AppState,
    h: &HeaderMap,
    body: &[u8],
) -> Result<Caller, ApiError> {
    check(state, h, body).await.map_err(|(e, why)| {
        if e.code == fiber_link_core::ErrorCode::Unauthorized {
            fiber_link_metrics::global().auth_rejected(why);
        }
        e
    })
}

fn bad_signature() -> ApiError {
    ApiError::unauthorized(
        "bad_signature",
        "x-signature does not match a live secret of this app (revoked and expired secrets are refused)",
    )
}

/// The refusal, and the reason the operator's metrics count it under: an app id that names no
/// app is answered like a bad signature (a caller learns nothing about which apps exist), and
/// counted as `unknown_app`.
async fn check(
    state: &AppState,
    h: &HeaderMap,
    body: &[u8],
) -> Result<Caller, (ApiError, &'static str)> {
    let r = check_known(state, h, body).await;
    r.map_err(|e| {
        let why = e.reason;
        (e, why)
    })?
    .ok_or((bad_signature(), "unknown_app"))
}

/// `Ok(None)`: the app id names no app.
async fn check_known(
    state: &AppState,
    h: &HeaderMap,
    body: &[u8],
) -> Result<Option<Caller>, ApiError> {
    let hd = parse_headers(h)?;
    let ts: i64 = hd
        .ts
        .parse()
        .map_err(|_| ApiError::unauthorized("malformed_header", "x-ts is not a number"))?;
    let now = chrono::Utc::now().timestamp();
    let window = state.settings.timestamp_window.as_secs() as i64;
    if ts < now - window {
        return Err(ApiError::unauthorized(
            "stale_timestamp",
            format!("x-ts is more than {window} s in the past; check the client's clock"),
        ));
    }
    if ts > now + window {
        return Err(ApiError::unauthorized(
            "future_timestamp",
            format!("x-ts is more than {window} s in the future; check the client's clock"),
        ));
    }
    let Some(secrets) = state.secrets.live(&state.store, hd.app_id).await? else {
        return Ok(None);
    };
    let now_utc = chrono::Utc::now();
    let matched = secrets
        .iter()
        .filter(|s| s.expires_at.is_none_or(|e| e > now_utc))
        // every live secret is tried, in constant time each
        .fold(false, |ok, s| {
            verify_request(&s.secret, hd.ts, hd.nonce, body, &hd.signature) | ok
        });
    if !matched {
        return Err(bad_signature());
    }
    Ok(Some(Caller {
        app_id: hd.app_id.to_string(),
        nonce: Some(hd.nonce.to_string()),
    }))
}

/// A secret in the clear, held only in this process' memory.
#[derive(Clone)]
pub struct LiveSecret {
    pub secret: String,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// When an app's secrets were read, and what they were (`None`: no such app).
type CachedSecrets = (Instant, Option<Arc<Vec<LiveSecret>>>);

/// How long an app id that names no app is remembered as such: requests that repeat it cost no
/// query meanwhile, and an app created since is known within this time.
const UNKNOWN_APP_TTL: Duration = Duration::from_secs(2);

/// App secrets, opened once and kept for `ttl` (0 = read the database on every request).
/// A rotation or revocation takes effect on every instance within `ttl`. App ids that name no
/// app are remembered for [`UNKNOWN_APP_TTL`] whatever `ttl` is.
pub struct SecretCache {
    ttl: Duration,
    seal: fiber_link_core::crypto::SecretBox,
    entries: Mutex<HashMap<String, CachedSecrets>>,
}

impl SecretCache {
    pub fn new(ttl: Duration, seal: fiber_link_core::crypto::SecretBox) -> SecretCache {
        SecretCache {
            ttl,
            seal,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The app's live secrets; `Ok(None)` when the app id names no app.
    async fn live(
        &self,
        store: &Store,
        app_id: &str,
    ) -> Result<Option<Arc<Vec<LiveSecret>>>, ApiError> {
        {
            let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, v)) = map.get(app_id) {
                let ttl = if v.is_some() {
                    self.ttl
                } else {
                    UNKNOWN_APP_TTL
                };
                if at.elapsed() < ttl {
                    return Ok(v.clone());
                }
            }
        }
        let rows = store.live_secrets(app_id).await.map_err(|e| {
            tracing::error!(error = %e, "reading app secrets failed");
            ApiError::internal()
        })?;
        let Some(rows) = rows else {
            self.remember(app_id, None);
            return Ok(None);
        };
        let mut live = Vec::new();
        for r in rows {
            match self
                .seal
                .open(&format!("{app_id}/{}", r.secret_id), &r.sealed)
            {
                Some(secret) => live.push(LiveSecret {
                    secret,
                    expires_at: r.expires_at,
                }),
                None => tracing::error!(
                    app_id,
                    secret_id = r.secret_id,
                    "an app secret does not open under this master key"
                ),
            }
        }
        let live = Arc::new(live);
        if !self.ttl.is_zero() {
            self.remember(app_id, Some(live.clone()));
        }
        Ok(Some(live))
    }

    fn remember(&self, app_id: &str, v: Option<Arc<Vec<LiveSecret>>>) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            // made of unknown ids sent by someone probing: forget them all (known apps are
            // read again on their next request)
            map.clear();
        }
        map.insert(app_id.to_string(), (Instant::now(), v));
    }
}

/// Records nonces in batches (see [`crate::batch`]): the unique key in Postgres decides, across
/// all instances, whether a nonce is new. `lazy`: the commits do not wait for the disk.
#[derive(Clone)]
pub struct NonceBook(Batcher<(String, String), bool>);

impl NonceBook {
    pub fn start(store: Store, lazy: bool) -> NonceBook {
        NonceBook(Batcher::start(
            512,
            1,
            move |pairs: Vec<(String, String)>| {
                let store = store.clone();
                async move {
                    store
                        .consume_nonces(&pairs, lazy)
                        .await
                        .map_err(|e| e.to_string())
                }
            },
        ))
    }

    /// True when the nonce is new for this app (and is now used).
    pub async fn consume(&self, app_id: &str, nonce: &str) -> Result<bool, String> {
        self.0.submit((app_id.to_string(), nonce.to_string())).await
    }
}
