//! The chaos run's traffic: tippers (through either API; payments on time, twice, late or never),
//! withdrawers (Fiber payouts that succeed, fail, hang or find no route; some over the approval
//! threshold, some cancelled), a resolver that ends hanging payments, and an operator who pauses
//! and resumes the app and approves withdrawals with the real CLI. Every decision comes from a
//! seeded generator.

use super::procs::Launcher;
use anyhow::{anyhow, Context, Result};
use fiber_link_client::{Answer, SignedClient};
use fiber_link_store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USERS: [&str; 6] = ["ann", "ben", "cat", "dan", "eve", "fay"];
/// The invoices' expiry (the chaos configuration's `invoice_expiry_secs`).
const TIP_EXPIRY: Duration = Duration::from_secs(15);

pub struct Traffic {
    clients: Vec<SignedClient>,
    hub: String,
    http: reqwest::Client,
    stopping: AtomicBool,
    counts: Mutex<BTreeMap<String, u64>>,
    /// Payments to end later: (payment hash, when, planned outcome).
    to_resolve: Mutex<Vec<(String, Instant, &'static str)>>,
    /// Withdrawals waiting for an operator.
    awaiting: Mutex<Vec<String>>,
    /// Payments of expired invoices, still to be made.
    late: Mutex<tokio::task::JoinSet<()>>,
    paused: AtomicBool,
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await
}

/// Waits until the APIs answer.
pub async fn wait_live(apis: &[String]) -> Result<()> {
    let http = reqwest::Client::new();
    let start = Instant::now();
    for base in apis {
        while http
            .get(format!("{base}/healthz/live"))
            .send()
            .await
            .is_err()
        {
            if start.elapsed() > Duration::from_secs(60) {
                return Err(anyhow!("{base} did not start within 60 s"));
            }
            sleep_ms(100).await;
        }
    }
    Ok(())
}

impl Traffic {
    pub fn new(apis: Vec<String>, hub: String, app_id: String, secret: String) -> Traffic {
        Traffic {
            clients: apis
                .iter()
                .map(|a| SignedClient::new(a, &app_id, &secret))
                .collect(),
            hub,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            stopping: AtomicBool::new(false),
            counts: Mutex::new(BTreeMap::new()),
            to_resolve: Mutex::new(Vec::new()),
            awaiting: Mutex::new(Vec::new()),
            late: Mutex::new(tokio::task::JoinSet::new()),
            paused: AtomicBool::new(false),
        }
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn count(&self, what: impl Into<String>) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(what.into())
            .or_default() += 1;
    }

    pub fn note_exit(&self, name: &str) {
        self.count(format!("unexpected exits ({name})"));
    }

    pub fn figures(&self) -> Vec<(String, u64)> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// A control call to the simulator (never faulted).
    pub async fn sim(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": [params]});
        let v: Value = self
            .http
            .post(&self.hub)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("{method} to the simulator"))?
            .json()
            .await?;
        match v.get("error") {
            Some(e) => Err(anyhow!("{method}: {e}")),
            None => Ok(v["result"].clone()),
        }
    }

    /// A signed call through a random API; a process that does not answer (killed, restarting)
    /// is tried again through either. `None` when neither answered for a while.
    async fn call(&self, rng: &mut StdRng, method: &str, params: Value) -> Option<Answer> {
        for _ in 0..40 {
            let c = &self.clients[rng.gen_range(0..self.clients.len())];
            match c.call(method, params.clone()).await {
                Ok(a) => {
                    if let Some(r) = a.reason() {
                        self.count(format!("{method} refused: {r}"));
                    }
                    return Some(a);
                }
                Err(_) => self.count("calls retried (API down)"),
            }
            sleep_ms(250).await;
        }
        self.count(format!("{method} given up (no API answered)"));
        None
    }

    pub async fn tipper(self: Arc<Self>, i: usize, seed: u64) -> Result<()> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut n = 0u64;
        while !self.stopping() {
            n += 1;
            let from = USERS[rng.gen_range(0..USERS.len())];
            let to = USERS[(USERS.iter().position(|u| *u == from).unwrap_or(0)
                + rng.gen_range(1..USERS.len()))
                % USERS.len()];
            let p = json!({"post_id": format!("p{}", rng.gen_range(0..40)), "from_user_id": from,
                           "to_user_id": to, "asset": "CKB",
                           "amount": rng.gen_range(1..=20).to_string(),
                           "idempotency_key": format!("t{i}-{n}")});
            let fate = rng.gen_range(0..100);
            let delay = rng.gen_range(1..300);
            let late_by = rng.gen_range(300..3000);
            let pause = rng.gen_range(30..300);
            let Some(a) = self.call(&mut rng, "tip.create", p).await else {
                continue;
            };
            if let Some(invoice) = a.result().and_then(|r| r["invoice"].as_str()) {
                self.count("tips created");
                let invoice = invoice.to_string();
                let pay = |after_expiry: bool| json!({"invoice": invoice, "delay_ms": delay, "after_expiry": after_expiry});
                match fate {
                    0..55 => {
                        self.pay(pay(false), "tips paid on time").await;
                    }
                    55..65 => {
                        self.pay(pay(false), "tips paid twice").await;
                        self.pay(pay(false), "second payments").await;
                    }
                    65..75 => {
                        let me = self.clone();
                        let p = pay(true);
                        self.late
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .spawn(async move {
                                tokio::time::sleep(TIP_EXPIRY + Duration::from_millis(late_by))
                                    .await;
                                me.pay(p, "tips paid after expiry").await;
                            });
                    }
                    _ => self.count("tips never paid"),
                }
            }
            sleep_ms(pause).await;
        }
        Ok(())
    }

    async fn pay(&self, p: Value, what: &str) {
        match self.sim("sim_pay_invoice", p).await {
            Ok(_) => self.count(what),
            Err(_) => self.count(format!("{what}: refused by the hub")),
        }
    }

    pub async fn withdrawer(self: Arc<Self>, i: usize, seed: u64) -> Result<()> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut n = 0u64;
        while !self.stopping() {
            n += 1;
            let user = USERS[rng.gen_range(0..USERS.len())];
            let big = rng.gen_bool(0.15);
            let pick = rng.gen_range(0..100);
            let expiry = rng.gen_range(8..25);
            let cancel = rng.gen_bool(0.1);
            let frac = rng.gen_range(0.05..0.5);
            let pause = rng.gen_range(200..700);
            let Some(b) = self
                .call(&mut rng, "balance.get", json!({"user_id": user}))
                .await
            else {
                continue;
            };
            let avail = b
                .result()
                .and_then(|r| r["balances"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .find(|x| x["asset"] == "CKB")
                .and_then(|x| x["available"].as_str())
                .and_then(|s| fiber_link_core::parse_decimal(s, 8).ok())
                .map_or(0, |a| (a.base_units() / 100_000_000) as u64);
            if avail < 2 {
                sleep_ms(pause).await;
                continue;
            }
            let amount = if big && avail > 31 {
                31 + ((avail - 31) as f64 * frac) as u64
            } else {
                1 + ((avail.min(20) - 1) as f64 * frac) as u64
            };
            let outcome = match pick {
                0..55 => "success",
                55..70 => "fail",
                70..85 => "hang",
                _ => "noroute",
            };
            let inv = self
                .sim(
                    "sim_external_invoice",
                    json!({"outcome": outcome, "expiry_secs": expiry}),
                )
                .await?;
            let req = json!({"user_id": user, "asset": "CKB", "amount": amount.to_string(),
                             "destination": {"kind": "fiber_invoice", "invoice": inv["invoice"]},
                             "idempotency_key": format!("w{i}-{n}")});
            let Some(a) = self.call(&mut rng, "withdrawal.request", req).await else {
                continue;
            };
            let Some(w) = a.result() else {
                sleep_ms(pause).await;
                continue;
            };
            let id = w["withdrawal_id"].as_str().unwrap_or_default().to_string();
            self.count(format!("withdrawals requested ({outcome})"));
            if matches!(outcome, "hang" | "noroute") {
                let hash = inv["payment_hash"].as_str().unwrap_or_default().to_string();
                let at = Instant::now() + Duration::from_millis(rng.gen_range(2000..10000));
                self.to_resolve
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((hash, at, outcome_name(outcome)));
            }
            if w["state"] == "AWAITING_APPROVAL" {
                self.count("withdrawals awaiting approval");
                self.awaiting
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(id.clone());
            } else if cancel {
                if let Some(c) = self
                    .call(&mut rng, "withdrawal.cancel", json!({"withdrawal_id": id}))
                    .await
                {
                    if c.result().is_some() {
                        self.count("withdrawals cancelled by their author");
                    }
                }
            }
            sleep_ms(pause).await;
        }
        Ok(())
    }

    /// Ends planned payments when due: a hanging one succeeds (70 %) or fails, an unroutable
    /// one finds a route (50 %) or stays unroutable until its invoice expires.
    pub async fn resolver(self: Arc<Self>, seed: u64) -> Result<()> {
        let mut rng = StdRng::seed_from_u64(seed);
        while !self.stopping() {
            let due: Vec<(String, &'static str)> = {
                let mut l = self.to_resolve.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let (due, rest): (Vec<_>, Vec<_>) = l.drain(..).partition(|x| x.1 <= now);
                *l = rest;
                due.into_iter().map(|(h, _, o)| (h, o)).collect()
            };
            for (hash, planned) in due {
                let end = match planned {
                    "hang" if rng.gen_bool(0.7) => "success",
                    "hang" => "fail",
                    _ if rng.gen_bool(0.5) => "success",
                    _ => continue,
                };
                self.sim(
                    "sim_set_payment_outcome",
                    json!({"payment_hash": hash, "outcome": end}),
                )
                .await?;
                self.count(format!("payments resolved ({planned} -> {end})"));
            }
            sleep_ms(300).await;
        }
        Ok(())
    }

    /// The operator: pauses the app at `pause_at` and resumes it a few seconds later (resume
    /// reconciles first and refuses while it finds something: tried again), and approves or
    /// cancels withdrawals waiting for approval.
    pub async fn operator(
        self: Arc<Self>,
        l: Arc<Launcher>,
        app: String,
        pause_at: Duration,
        seed: u64,
    ) -> Result<()> {
        let mut rng = StdRng::seed_from_u64(seed);
        let started = Instant::now();
        let mut paused_once = false;
        while !self.stopping() {
            if !paused_once && started.elapsed() >= pause_at {
                paused_once = true;
                let (code, out, err) = cli(
                    &l,
                    &[
                        "app",
                        "pause",
                        &app,
                        "--reason",
                        "chaos drill",
                        "--by",
                        "chaos",
                    ],
                )
                .await?;
                if code != 0 {
                    return Err(anyhow!("app pause: {out}{err}"));
                }
                self.paused.store(true, Ordering::SeqCst);
                self.count("pauses");
                sleep_ms(rng.gen_range(2000..5000)).await;
                self.resume(&l, &app, false).await?;
            }
            let next = self
                .awaiting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            if let Some(id) = next {
                if rng.gen_bool(0.7) {
                    self.approve(&l, &id).await?;
                } else if let Some(a) = self
                    .call(&mut rng, "withdrawal.cancel", json!({"withdrawal_id": id}))
                    .await
                {
                    if a.result().is_some() {
                        self.count("withdrawals cancelled instead of approved");
                    }
                }
            }
            sleep_ms(1000).await;
        }
        Ok(())
    }

    async fn approve(&self, l: &Launcher, id: &str) -> Result<()> {
        let (code, out, err) = cli(l, &["withdrawal", "approve", id, "--by", "chaos"]).await?;
        if code == 0 {
            self.count("withdrawals approved by the operator");
        } else {
            self.count(format!(
                "approvals refused ({})",
                err.lines().last().unwrap_or(out.trim())
            ));
        }
        Ok(())
    }

    /// `app resume`, tried again while reconcile finds something in flight; with `force` at
    /// the end, after the traffic stopped, if it still refuses (counted: it is a finding).
    async fn resume(&self, l: &Launcher, app: &str, force: bool) -> Result<()> {
        if !self.paused.load(Ordering::SeqCst) {
            return Ok(());
        }
        for _ in 0..15 {
            let (code, _, _) = cli(l, &["app", "resume", app, "--by", "chaos"]).await?;
            if code == 0 {
                self.paused.store(false, Ordering::SeqCst);
                self.count("resumes");
                return Ok(());
            }
            self.count("resumes refused (reconcile found something)");
            sleep_ms(1000).await;
        }
        if force {
            let (code, out, err) =
                cli(l, &["app", "resume", app, "--force", "--by", "chaos"]).await?;
            if code != 0 {
                return Err(anyhow!("app resume --force: {out}{err}"));
            }
            self.paused.store(false, Ordering::SeqCst);
            self.count("resumes forced");
        }
        Ok(())
    }

    /// After the traffic: every planned payment ends, late payments are made, the app is
    /// resumed, waiting withdrawals are approved.
    pub async fn finish(&self, l: &Launcher, app: &str) -> Result<()> {
        let left: Vec<_> =
            std::mem::take(&mut *self.to_resolve.lock().unwrap_or_else(|p| p.into_inner()));
        for (hash, _, planned) in left {
            if planned == "hang" {
                self.sim(
                    "sim_set_payment_outcome",
                    json!({"payment_hash": hash, "outcome": "success"}),
                )
                .await?;
                self.count("payments resolved (hang -> success)");
            }
        }
        let mut late = std::mem::take(&mut *self.late.lock().unwrap_or_else(|p| p.into_inner()));
        while late.join_next().await.is_some() {}
        self.resume(l, app, true).await?;
        let waiting: Vec<String> =
            std::mem::take(&mut *self.awaiting.lock().unwrap_or_else(|p| p.into_inner()));
        for id in waiting {
            self.approve(l, &id).await?;
        }
        Ok(())
    }

    /// Waits until every withdrawal and every tip is final and every invoice the hub saw paid
    /// is credited; false if that did not happen within `limit`.
    pub async fn drain(&self, store: &Store, limit: Duration) -> Result<bool> {
        let start = Instant::now();
        while start.elapsed() < limit {
            let paid: std::collections::HashSet<String> =
                self.sim("sim_records", json!({})).await?["invoices"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter(|i| i["status"] == "Paid")
                    .filter_map(|i| i["payment_hash"].as_str().map(str::to_string))
                    .collect();
            let tips = store.tip_facts().await?;
            let ws = store.withdrawal_facts().await?;
            let tips_done = tips.iter().all(|t| {
                matches!(t.state.as_str(), "SETTLED" | "EXPIRED" | "FAILED")
                    && (t.settles == 1) == paid.contains(&t.payment_hash)
            });
            let ws_done = ws
                .iter()
                .all(|w| matches!(w.state.as_str(), "COMPLETED" | "FAILED" | "CANCELLED"));
            if tips_done && ws_done {
                println!("chaos: drained in {:.1} s", start.elapsed().as_secs_f64());
                return Ok(true);
            }
            sleep_ms(500).await;
        }
        Ok(false)
    }
}

fn outcome_name(o: &str) -> &'static str {
    if o == "hang" {
        "hang"
    } else {
        "noroute"
    }
}

async fn cli(l: &Launcher, args: &[&str]) -> Result<(i32, String, String)> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let l = l.clone();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        l.operator(&a)
    })
    .await
    .map_err(|e| anyhow!("{e}"))?
}
