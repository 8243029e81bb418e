//! The test stack: a fresh Postgres database, the hub simulator, the API and workers, each
//! talking over real HTTP on loopback ports; nothing is mocked.
//!
//! With `FIBER_LINK_TEST_HUB_URL` (a real FNN node: the operator's hub) and
//! `FIBER_LINK_TEST_PAYER_URL` (a second node with a channel to it) the stack uses that hub
//! instead of the simulator, and tips are paid with the payer node's `send_payment`; tokens in
//! `FIBER_LINK_TEST_HUB_TOKEN` / `FIBER_LINK_TEST_PAYER_TOKEN`, the chain's invoice currency in
//! `FIBER_LINK_TEST_CURRENCY` (default Fibd). Tests that need the simulator's controls (faults,
//! payment outcomes, the store-change stream's controls, other nodes' invoices, a UDT the node
//! may not whitelist) say they are skipped there ([`Stack::skip_on_real_hub`]).
#![allow(dead_code)]

use fiber_link_api::{ApiSettings, AppState, Rate};
use fiber_link_client::SignedClient;
use fiber_link_core::crypto::{generate_app_secret, MasterKey};
use fiber_link_core::{Amount, Asset, Assets, FeeMode, Policy, Schedule, Script, WithdrawalConfig};
use fiber_link_fnn::{HubClient, HubConfig};
use fiber_link_hubsim::{HubSim, SimOptions, SimUdt};
use fiber_link_store::Store;
use fiber_link_worker::{Watcher, WorkerSettings};
use rand::RngCore;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::watch;

/// A TCP port free at the moment of asking (for processes that bind it themselves).
/// A port free now, for a server a test starts in another process. Chosen below the kernel's
/// ephemeral range (32768 and up on Linux), where the outgoing connections of every test in the
/// run take their ports: a port from there can be taken by one of them before the server binds
/// it. Each process starts at its own random place and never hands a port out twice.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        rand::random::<u16>() % SPAN + 1,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = LOW + n % SPAN;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Postgres server the tests use: DATABASE_URL (scripts/test.sh points it at a private
/// cluster), else the conventional local one.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A new, empty, migrated database for one test.
pub async fn fresh_db() -> (Store, String) {
    let (store, url) = empty_db().await;
    store.migrate().await.expect("migrations");
    (store, url)
}

/// A new database for one test, without any migration applied.
pub async fn empty_db() -> (Store, String) {
    let admin = admin_url();
    let mut b = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut b);
    let name = format!("fl_test_{}", hex::encode(b));
    let admin_store = Store::connect(&admin, 1).await.unwrap_or_else(|e| {
        panic!("cannot reach Postgres at {admin}: {e}\nRun the tests with scripts/test.sh, which starts a private cluster, or set DATABASE_URL")
    });
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(admin_store.pool())
        .await
        .expect("create database");
    admin_store.pool().close().await;
    let url = match admin.rfind('/') {
        Some(i) if !admin[..i].ends_with('/') => {
            let (base, rest) = admin.split_at(i);
            let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
            format!("{base}/{name}{query}")
        }
        _ => format!("{}/{name}", admin.trim_end_matches('/')),
    };
    let store = Store::connect(&url, 20)
        .await
        .expect("connect to the test database");
    (store, url)
}

pub fn udt_script() -> Script {
    Script {
        code_hash: "0xe1e354d6d643ad42724d40967e334984534e0367405c5ae42a9d7d63d77df419".into(),
        hash_type: "data2".into(),
        args: "0x32e555f3ff8e135cece1351a6a2971518392c1e30375c1e006ad0ce8eac07947".into(),
    }
}

pub fn test_assets() -> Assets {
    Assets::new(vec![
        Asset::ckb(Amount::from_base_units(1_000 * 100_000_000)),
        Asset {
            symbol: "RUSD".into(),
            decimals: 6,
            udt_type_script: Some(udt_script()),
            max_tip: Amount::from_base_units(500_000_000),
        },
    ])
    .unwrap()
}

/// The real hub of `FIBER_LINK_TEST_HUB_URL`, if the environment names one.
pub struct RealHub {
    pub url: String,
    pub token: Option<String>,
    pub payer_url: String,
    pub payer_token: Option<String>,
    pub currency: String,
}

pub fn real_hub() -> Option<RealHub> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let url = env("FIBER_LINK_TEST_HUB_URL")?;
    let payer_url = env("FIBER_LINK_TEST_PAYER_URL").unwrap_or_else(|| {
        panic!("FIBER_LINK_TEST_HUB_URL is set: FIBER_LINK_TEST_PAYER_URL must name a second FNN node with a channel to the hub (it pays the tips)")
    });
    Some(RealHub {
        url,
        token: env("FIBER_LINK_TEST_HUB_TOKEN"),
        payer_url,
        payer_token: env("FIBER_LINK_TEST_PAYER_TOKEN"),
        currency: env("FIBER_LINK_TEST_CURRENCY").unwrap_or_else(|| "Fibd".into()),
    })
}

/// A schedule fast enough for tests.
pub fn fast_schedule() -> Schedule {
    Schedule {
        fresh_interval: Duration::from_millis(100),
        fresh_window: Duration::from_secs(60),
        open_interval: Duration::from_millis(300),
        streamed_interval: Duration::from_secs(600),
        watched_interval: Duration::from_millis(50),
        expiry_grace: Duration::from_millis(200),
        late_initial: Duration::from_millis(200),
        late_max: Duration::from_millis(400),
        late_window: Duration::from_secs(120),
        error_base: Duration::from_millis(100),
        error_max: Duration::from_millis(400),
    }
}

pub struct StackOptions {
    pub invoice_expiry: Duration,
    pub hub_timeout: Duration,
    pub rate_per_app_method: Rate,
    pub rate_per_app_user: Rate,
    pub hub_token: Option<String>,
    pub client_hub_token: Option<String>,
    pub settle_delay: Duration,
    pub withdrawals: WithdrawalConfig,
    /// The master key (hex), for tests that start `fiber-link` processes on the same data.
    pub master_hex: Option<String>,
    /// Pay-page event streams per client address and in all.
    pub pay_streams: (usize, usize),
}

/// Withdrawals as most tests want them: Fiber payouts of both assets, fee deducted, no caps.
pub fn test_withdrawals() -> WithdrawalConfig {
    let open = |symbol: &str| {
        (
            symbol.to_string(),
            Policy {
                allowed: true,
                min: Amount::ZERO,
                max_per_request: None,
                author_daily_cap: None,
                app_daily_cap: None,
                cooldown_secs: 0,
                approval_threshold: None,
            },
        )
    };
    WithdrawalConfig {
        fee_mode: FeeMode::Deduct,
        onchain: None,
        fiber_fee_per_thousand: 5,
        defaults: vec![open("CKB"), open("RUSD")],
    }
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            invoice_expiry: Duration::from_secs(3600),
            hub_timeout: Duration::from_secs(2),
            rate_per_app_method: Rate {
                per_second: 100_000,
                burst: 100_000,
            },
            rate_per_app_user: Rate {
                per_second: 100_000,
                burst: 100_000,
            },
            hub_token: None,
            client_hub_token: None,
            settle_delay: Duration::from_millis(100),
            withdrawals: test_withdrawals(),
            master_hex: None,
            pay_streams: (8, 2000),
        }
    }
}

pub struct Stack {
    pub store: Store,
    pub db_url: String,
    pub master: MasterKey,
    pub api_url: String,
    pub hub_url: String,
    pub hub: HubClient,
    /// The simulator; `None` against a real hub.
    pub sim: Option<HubSim>,
    /// The node that pays tips against a real hub.
    payer: Option<HubClient>,
    pub currency: String,
    pub app_id: String,
    pub secret: String,
    pub settings: ApiSettings,
    shutdown: watch::Sender<bool>,
    http: reqwest::Client,
}

async fn bind() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(StackOptions::default()).await
    }

    pub async fn start_with(o: StackOptions) -> Stack {
        let (store, db_url) = fresh_db().await;
        let master = match &o.master_hex {
            Some(h) => MasterKey::from_hex(h).unwrap(),
            None => MasterKey::generate(),
        };
        let (shutdown, rx) = watch::channel(false);

        let real = real_hub();
        let (sim, hub_url, token, payer, currency) = match real {
            Some(r) => {
                let payer = HubClient::new(&HubConfig {
                    url: r.payer_url.clone(),
                    token: r.payer_token.clone(),
                    timeout: Duration::from_secs(10),
                })
                .unwrap();
                (None, r.url, r.token, Some(payer), r.currency)
            }
            None => {
                let sim = HubSim::new(SimOptions {
                    udts: vec![SimUdt {
                        name: "RUSD".into(),
                        script: udt_script(),
                    }],
                    token: o.hub_token.clone(),
                    settle_delay: o.settle_delay,
                    ..Default::default()
                })
                .unwrap();
                let (l, hub_url) = bind().await;
                let mut r = rx.clone();
                tokio::spawn(sim.clone().serve(l, async move {
                    let _ = r.wait_for(|v| *v).await;
                }));
                let token = o.client_hub_token.clone().or(o.hub_token.clone());
                (Some(sim), hub_url, token, None, "Fibd".to_string())
            }
        };
        let hub = HubClient::new(&HubConfig {
            url: hub_url.clone(),
            token,
            timeout: o.hub_timeout,
        })
        .unwrap();

        let (api_listener, api_url) = bind().await;
        let settings = ApiSettings {
            assets: test_assets(),
            currency: currency.clone(),
            invoice_expiry: o.invoice_expiry,
            schedule: fast_schedule(),
            secret_cache_ttl: Duration::ZERO,
            rate_per_app_method: o.rate_per_app_method,
            rate_per_app_user: o.rate_per_app_user,
            public_url: Some(api_url.clone()),
            withdrawals: o.withdrawals.clone(),
            pay_streams_per_client: o.pay_streams.0,
            pay_streams_total: o.pay_streams.1,
            ..ApiSettings::default()
        };
        let state = AppState::new(store.clone(), hub.clone(), settings.clone(), &master);
        let mut r = rx.clone();
        tokio::spawn(async move {
            let stop = async move {
                let _ = r.wait_for(|v| *v).await;
            };
            fiber_link_api::serve_api(api_listener, state, stop)
                .await
                .unwrap();
        });

        let (app_id, secret) = create_app(&store, &master, "Test forum").await;
        Stack {
            store,
            db_url,
            master,
            api_url,
            hub_url,
            hub,
            sim,
            payer,
            currency,
            app_id,
            secret,
            settings,
            shutdown,
            http: reqwest::Client::new(),
        }
    }

    /// A stack whose invoices expire after one second.
    pub async fn start_expiring() -> Stack {
        Self::start_with(StackOptions {
            invoice_expiry: Duration::from_secs(1),
            ..Default::default()
        })
        .await
    }

    pub fn client(&self) -> SignedClient {
        SignedClient::new(&self.api_url, &self.app_id, &self.secret)
    }

    pub async fn second_app(&self) -> SignedClient {
        let (id, secret) = create_app(&self.store, &self.master, "Other forum").await;
        SignedClient::new(&self.api_url, &id, &secret)
    }

    pub fn worker_settings(&self) -> WorkerSettings {
        let mut w = WorkerSettings::new(self.currency.clone(), test_assets());
        w.schedule = fast_schedule();
        w.idle_poll = Duration::from_millis(20);
        w.lease = Duration::from_secs(5);
        w.invoice_grace = Duration::from_millis(300);
        // The polling path; the store-change stream has its own tests (stream.rs).
        w.stream.enabled = false;
        w
    }

    /// [`Stack::worker_settings`] following the hub's store-change stream, with short timings.
    pub fn streaming_worker_settings(&self) -> WorkerSettings {
        let mut w = self.worker_settings();
        w.stream = fiber_link_worker::stream::StreamSettings {
            enabled: true,
            idle: Duration::from_secs(2),
            // longer than the API's 2 s between readings of it
            lease: Duration::from_secs(3),
            coalesce: Duration::from_millis(5),
            received_wait: Duration::from_millis(1000),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_millis(400),
            retry_unavailable: Duration::from_millis(500),
        };
        w
    }

    /// Starts a settlement watcher on its own connection pool; it stops with the stack.
    pub async fn start_worker(&self) {
        self.start_worker_with(self.worker_settings()).await
    }

    pub async fn start_worker_with(&self, s: WorkerSettings) {
        let store = Store::connect(&self.db_url, 8).await.unwrap();
        let w = Watcher::new(store, self.hub.clone(), s, self.master.preimage_key());
        tokio::spawn(w.run(self.shutdown.subscribe()));
    }

    /// A withdrawal executor (Fiber payouts only) on its own pool, with the tests' short timings.
    pub async fn payouts(&self) -> fiber_link_worker::payouts::Payouts {
        let store = Store::connect(&self.db_url, 4).await.unwrap();
        fiber_link_worker::payouts::Payouts::new(
            store,
            self.hub.clone(),
            None,
            fiber_link_worker::payouts::PayoutSettings {
                idle_poll: Duration::from_millis(20),
                poll: Duration::from_millis(50),
                lease: Duration::from_secs(5),
                max_backoff: Duration::from_millis(400),
                invoice_expiry_margin: Duration::from_millis(500),
                ..Default::default()
            },
        )
    }

    /// Starts a withdrawal executor; it stops with the stack.
    pub async fn start_payouts(&self) {
        let p = self.payouts().await;
        tokio::spawn(p.run(self.shutdown.subscribe()));
    }

    /// Pays `n` tips of `amount` CKB to `to` (through the simulator) and waits until they are
    /// credited by a worker the caller started.
    pub async fn fund(&self, c: &SignedClient, to: &str, asset: &str, amount: &str, n: usize) {
        for i in 0..n {
            let t = c
                .result(
                    "tip.create",
                    json!({"post_id": format!("fund{i}"), "from_user_id": "funder", "to_user_id": to, "asset": asset, "amount": amount}),
                )
                .await
                .unwrap();
            self.sim(
                "sim_pay_invoice",
                json!({"invoice": t["invoice"], "delay_ms": 1}),
            )
            .await;
            let id = t["tip_id"].as_str().unwrap().to_string();
            self.wait_state(c, &id, "SETTLED", Duration::from_secs(10))
                .await;
        }
    }

    /// Against a real hub (`FIBER_LINK_TEST_HUB_URL`): says that this test is skipped because it
    /// needs the simulator's `what`, and returns true (the test then returns).
    pub fn skip_on_real_hub(&self, what: &str) -> bool {
        if self.sim.is_some() {
            return false;
        }
        eprintln!("skipped against the real hub: this test needs the hub simulator's {what}");
        true
    }

    /// Calls a `sim_` control method over HTTP. Against a real hub only `sim_pay_invoice` is
    /// possible: the payer node pays the invoice with `send_payment`.
    pub async fn sim(&self, method: &str, params: Value) -> Value {
        if let Some(payer) = &self.payer {
            assert!(
                method == "sim_pay_invoice" && params.get("after_expiry").is_none(),
                "{method} {params} needs the hub simulator: the test must begin with skip_on_real_hub"
            );
            return payer
                .call::<Value, Value>("send_payment", Some(&json!({"invoice": params["invoice"]})))
                .await
                .expect("the payer node's send_payment");
        }
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": [params]});
        let v: Value = self
            .http
            .post(&self.hub_url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }

    /// Polls `tip.get` until the tip is in `state`, or panics after `timeout`.
    pub async fn wait_state(
        &self,
        c: &SignedClient,
        tip_id: &str,
        state: &str,
        timeout: Duration,
    ) -> Value {
        let start = std::time::Instant::now();
        loop {
            let t = c
                .result("tip.get", json!({"tip_id": tip_id}))
                .await
                .unwrap();
            if t["state"] == state {
                return t;
            }
            assert!(
                start.elapsed() < timeout,
                "tip {tip_id} did not reach {state} in {timeout:?}: {t}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn ledger_count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

pub async fn create_app(store: &Store, master: &MasterKey, name: &str) -> (String, String) {
    let mut b = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    let id = format!("app_{}", hex::encode(b));
    let secret = generate_app_secret();
    store
        .create_app(
            &id,
            name,
            master.secret_box().seal(&format!("{id}/1"), &secret),
            "test",
        )
        .await
        .unwrap();
    (id, secret)
}

/// A standard tip request.
pub fn tip_params(amount: &str) -> Value {
    json!({"post_id": "p1", "from_user_id": "alice", "to_user_id": "bob", "asset": "CKB", "amount": amount})
}

/// Polls `withdrawal.get` until the withdrawal is in `state`, or panics after 15 s.
pub async fn wait_withdrawal(c: &SignedClient, id: &str, state: &str) -> Value {
    let start = std::time::Instant::now();
    loop {
        let w = c
            .result("withdrawal.get", json!({"withdrawal_id": id}))
            .await
            .unwrap();
        if w["state"] == state {
            return w;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "withdrawal {id} did not reach {state}: {w}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
