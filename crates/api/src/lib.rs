//! The signed API a community's server calls: JSON-RPC 2.0 over `POST /rpc` (and the same
//! `tip.create` as REST at `POST /tips`), plus health endpoints.
//!
//! Every request is authenticated (see [`auth`]), scoped to the calling app, rate limited per
//! (app, method) and per (app, user), and answered with a stable error code and `data.reason`
//! when it cannot be served. `docs/api.md` is the reference.

pub mod auth;
mod batch;
mod common;
pub mod pay;
mod posts;
mod rpc;
mod tips;
mod withdrawals;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use fiber_link_core::crypto::{MasterKey, PreimageKey};
use fiber_link_core::{ApiError, Assets, ErrorCode, Schedule};
use fiber_link_fnn::HubClient;
use fiber_link_store::Store;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// A rate: `per_second` sustained, `burst` at once.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    fn quota(self) -> Quota {
        let per = NonZeroU32::new(self.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Quota::per_second(per).allow_burst(burst)
    }
}

/// Everything the API needs to know, validated.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub assets: Assets,
    /// The invoice currency of the hub's chain: `Fibb`, `Fibt` or `Fibd`.
    pub currency: String,
    pub invoice_expiry: Duration,
    pub schedule: Schedule,
    pub max_body_bytes: usize,
    pub timestamp_window: Duration,
    pub secret_cache_ttl: Duration,
    pub rate_per_app_method: Rate,
    pub rate_per_app_user: Rate,
    /// Where payers can reach this service (for `pay_url`); `None` leaves it out.
    pub public_url: Option<String>,
    pub withdrawals: fiber_link_core::WithdrawalConfig,
    /// Pay-page event streams open at once from one client address, and in all.
    pub pay_streams_per_client: usize,
    pub pay_streams_total: usize,
    /// Whether a loopback peer is a reverse proxy whose `X-Forwarded-For` names the client.
    pub trust_forwarded_for: bool,
}

impl ApiSettings {
    /// Whether the service runs on CKB mainnet (invoice currency `Fibb`).
    pub fn mainnet(&self) -> bool {
        self.currency == "Fibb"
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            assets: Assets::new(vec![fiber_link_core::Asset::ckb(
                fiber_link_core::Amount::from_base_units(1_000_000 * 100_000_000),
            )])
            .expect("the default asset list is valid"),
            currency: "Fibd".into(),
            invoice_expiry: Duration::from_secs(3600),
            schedule: Schedule::default(),
            max_body_bytes: 64 * 1024,
            timestamp_window: Duration::from_secs(300),
            secret_cache_ttl: Duration::from_secs(2),
            rate_per_app_method: Rate {
                per_second: 200,
                burst: 400,
            },
            rate_per_app_user: Rate {
                per_second: 5,
                burst: 20,
            },
            public_url: None,
            withdrawals: fiber_link_core::WithdrawalConfig::default(),
            pay_streams_per_client: 8,
            pay_streams_total: 2000,
            trust_forwarded_for: false,
        }
    }
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub hub: HubClient,
    pub settings: ApiSettings,
    pub preimages: PreimageKey,
    pub secrets: auth::SecretCache,
    pub nonces: auth::NonceBook,
    /// Nonces of requests that only read, recorded without waiting for the disk.
    pub lazy_nonces: auth::NonceBook,
    /// New tips written in batches, each with its request's nonce (one statement and one
    /// commit for many `tip.create`s).
    pub(crate) tip_writer: batch::Batcher<
        fiber_link_store::tips::NewTip,
        Result<fiber_link_store::tips::CreateOutcome, String>,
    >,
    /// Invoices written to their tips in batches (one commit for many `tip.create`s).
    pub invoices:
        batch::Batcher<(uuid::Uuid, String, String), Option<chrono::DateTime<chrono::Utc>>>,
    /// Ids of tips whose state or invoice changed (from Postgres notifications).
    pub tip_changes: tokio::sync::broadcast::Sender<uuid::Uuid>,
    /// Turns true when the server shuts down: long-lived responses (the pay page's event
    /// streams) end, so a graceful shutdown does not wait for browsers to leave.
    closing: tokio::sync::watch::Sender<bool>,
    /// The kill switches, re-read every couple of seconds.
    pub pauses: fiber_link_store::ops::PauseCache,
    per_method: DefaultKeyedRateLimiter<(String, &'static str)>,
    per_user: DefaultKeyedRateLimiter<(String, String)>,
    /// The hub's node id (`node_info.pubkey`), read once: a withdrawal may not pay the hub's
    /// own invoice.
    hub_node_id: tokio::sync::OnceCell<String>,
    /// The pay page's open event streams, counted per client address and in all.
    pub(crate) pay_streams: Arc<pay::StreamSlots>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Must be called inside a tokio runtime (starts the nonce writer).
    pub fn new(
        store: Store,
        hub: HubClient,
        settings: ApiSettings,
        master: &MasterKey,
    ) -> AppState {
        let per_method = RateLimiter::keyed(settings.rate_per_app_method.quota());
        let per_user = RateLimiter::keyed(settings.rate_per_app_user.quota());
        let (tip_changes, _) = tokio::sync::broadcast::channel(1024);
        let forward = (store.clone(), tip_changes.clone());
        tokio::spawn(async move { forward.0.forward_tip_changes(forward.1).await });
        let invoice_store = store.clone();
        let invoices =
            batch::Batcher::start(256, 1, move |b: Vec<(uuid::Uuid, String, String)>| {
                let store = invoice_store.clone();
                async move {
                    store
                        .attach_invoices(&b, "api")
                        .await
                        .map_err(|e| e.to_string())
                }
            });
        let tip_store = store.clone();
        let tip_writer =
            batch::Batcher::start(64, 1, move |b: Vec<fiber_link_store::tips::NewTip>| {
                let store = tip_store.clone();
                async move {
                    let out = store.create_tips(&b).await.map_err(|e| e.to_string())?;
                    Ok(out
                        .into_iter()
                        .map(|o| o.map_err(|e| e.to_string()))
                        .collect())
                }
            });
        let pay_streams = Arc::new(pay::StreamSlots::new(
            settings.pay_streams_per_client,
            settings.pay_streams_total,
        ));
        AppState(Arc::new(Inner {
            closing: tokio::sync::watch::channel(false).0,
            tip_changes,
            invoices,
            tip_writer,
            nonces: auth::NonceBook::start(store.clone(), false),
            lazy_nonces: auth::NonceBook::start(store.clone(), true),
            secrets: auth::SecretCache::new(settings.secret_cache_ttl, master.secret_box()),
            preimages: master.preimage_key(),
            pauses: fiber_link_store::ops::PauseCache::new(store.clone()),
            store,
            hub,
            settings,
            per_method,
            per_user,
            hub_node_id: tokio::sync::OnceCell::new(),
            pay_streams,
        }))
    }

    /// The hub's node id (hex, compressed), asked once; `None` while the hub does not answer
    /// within a second (the worker then meets the hub's own refusal, which is final), so a hub
    /// outage delays a quote or a request by a second at most.
    pub(crate) async fn hub_node_id(&self) -> Option<&str> {
        if let Some(id) = self.hub_node_id.get() {
            return Some(id);
        }
        let ask = self.hub_node_id.get_or_try_init(|| async {
            self.hub
                .node_info()
                .await
                .map(|i| i.pubkey.to_string().trim_start_matches("0x").to_lowercase())
        });
        tokio::time::timeout(Duration::from_secs(1), ask)
            .await
            .ok()?
            .ok()
            .map(String::as_str)
    }

    /// Per (app, method), then per (app, user) when the method names a user.
    fn check_rate(
        &self,
        app_id: &str,
        method: &'static str,
        user: Option<&str>,
    ) -> Result<(), ApiError> {
        if self
            .per_method
            .check_key(&(app_id.to_string(), method))
            .is_err()
        {
            fiber_link_metrics::global().rate_limited("app_method");
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "rate_limited",
                format!("too many {method} requests from this app; slow down and retry"),
            ));
        }
        if let Some(u) = user {
            if self
                .per_user
                .check_key(&(app_id.to_string(), u.to_string()))
                .is_err()
            {
                fiber_link_metrics::global().rate_limited("app_user");
                return Err(ApiError::new(
                    ErrorCode::RateLimited,
                    "rate_limited_user",
                    "too many requests for this user; slow down and retry",
                ));
            }
        }
        Ok(())
    }

    /// Refuses when the operator paused `what` for this app or globally.
    pub(crate) async fn check_paused(
        &self,
        app_id: &str,
        what: fiber_link_store::ops::Paused,
    ) -> Result<(), ApiError> {
        use fiber_link_store::ops::Paused;
        let Some(p) = self.pauses.get().await.check(app_id, what) else {
            return Ok(());
        };
        let (reason, what) = match what {
            Paused::Tips => ("tips_paused", "new tips"),
            Paused::Withdrawals => ("withdrawals_paused", "withdrawals"),
        };
        let scope = if p.global {
            "on this service"
        } else {
            "for this community"
        };
        let why = p.reason.map(|r| format!(" ({r})")).unwrap_or_default();
        Err(ApiError::new(
            ErrorCode::Paused,
            reason,
            format!("the operator has paused {what} {scope}{why}; try again later"),
        ))
    }

    /// Ends the long-lived responses (see `closing`).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    pub(crate) fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// An amount of `asset` as the API shows it: a decimal string in asset units.
    pub fn format_amount(&self, asset: &str, amount: fiber_link_core::Amount) -> String {
        let decimals = self
            .settings
            .assets
            .get(asset)
            .map(|a| a.decimals)
            .unwrap_or(0);
        fiber_link_core::format_decimal(amount, decimals)
    }

    /// Drops rate-limit state of keys not seen lately (called periodically).
    pub fn prune_rate_limits(&self) {
        self.per_method.retain_recent();
        self.per_user.retain_recent();
    }
}

/// Serves `router` on `listener` until `shutdown` resolves. Responses go out without waiting
/// for Nagle's algorithm (TCP_NODELAY): a small JSON answer is one segment, sent at once.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serves the API until `shutdown` resolves; then ends the event streams and drains the rest.
pub async fn serve_api(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = state.clone();
    let shutdown = async move {
        shutdown.await;
        closing.close();
    };
    serve(listener, router(state), shutdown).await
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    let prune = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            prune.prune_rate_limits();
        }
    });
    Router::new()
        .route("/rpc", post(rpc::rpc_handler))
        .route("/tips", post(rpc::rest_create_tip))
        .route("/pay/{tip_id}", get(pay::pay_page))
        .route("/pay/{tip_id}/events", get(pay::pay_events))
        .route("/healthz/live", get(live))
        .with_state(state)
}

async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "live"}))
}

/// The operator's HTTP surface of a process (the API's `[api] ops_listen`, the worker's
/// `[worker] listen`): `/metrics`, `/healthz/live`, `/healthz/ready`. Never on the public
/// listener: `/metrics` counts rows and `/healthz/ready` calls the hub, work that nobody on the
/// internet may make the service do at will.
pub fn ops_router(store: Store, hub: HubClient, needs: &'static [fiber_link_fnn::Needs]) -> Router {
    let pauses = fiber_link_store::ops::PauseCache::new(store.clone());
    let metrics_store = store.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let (store, pauses) = (metrics_store.clone(), pauses.clone());
                async move { metrics_response(&store, &pauses).await }
            }),
        )
        .route("/healthz/live", get(live))
        .route(
            "/healthz/ready",
            get(move || {
                let (store, hub) = (store.clone(), hub.clone());
                async move { readiness(&store, &hub, needs).await }
            }),
        )
}

/// The Prometheus exposition of this process, with the database gauges refreshed (shared with
/// the worker's `/metrics`). When the database cannot be read, the counters are still served and
/// the gauges keep their last values.
pub async fn metrics_response(
    store: &Store,
    pauses: &fiber_link_store::ops::PauseCache,
) -> axum::response::Response {
    let m = fiber_link_metrics::global();
    match store.state_counts().await {
        Ok((tips, withdrawals, open, oldest)) => m.set_db(&fiber_link_metrics::DbSnapshot {
            tips_by_state: tips,
            withdrawals_by_state: withdrawals,
            open_invoices: open,
            oldest_unfinished_withdrawal_secs: oldest,
            paused: pauses.get().await.on(),
        }),
        Err(e) => tracing::warn!(error = %e, "reading the database gauges for /metrics failed"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            fiber_link_metrics::CONTENT_TYPE,
        )],
        m.encode(),
    )
        .into_response()
}

/// `/healthz/ready` of a process with a database and a hub (the API and the worker): the
/// database is reachable and migrated, and the hub lets this process make every call it `needs`
/// (a token missing one permission is not ready, and the answer names the method and the
/// permission).
pub async fn readiness(
    store: &Store,
    hub: &HubClient,
    needs: &[fiber_link_fnn::Needs],
) -> axum::response::Response {
    let db = match store.is_migrated().await {
        Ok(true) => "ok".to_string(),
        Ok(false) => "not migrated: run fiber-link migrate".to_string(),
        Err(e) => format!("unreachable: {e}"),
    };
    let hub = match tokio::time::timeout(Duration::from_secs(3), hub.probe(needs)).await {
        Ok(probes) => {
            let failed: Vec<String> = probes
                .iter()
                .filter_map(|p| {
                    p.result.as_ref().err().map(|e| match e {
                        fiber_link_fnn::HubError::Unauthorized(m) => {
                            format!("{m} refused: the token lacks {}", p.needs.permission)
                        }
                        e => e.to_string(),
                    })
                })
                .collect();
            if failed.is_empty() {
                "ok".to_string()
            } else {
                failed.join("; ")
            }
        }
        Err(_) => "no answer within 3 s".to_string(),
    };
    let ok = db == "ok" && hub == "ok";
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(
            serde_json::json!({"status": if ok {"ready"} else {"not ready"}, "database": db, "hub": hub}),
        ),
    )
        .into_response()
}
