//! On-chain withdrawals on a real CKB dev chain (`ckb`, run here with `ckb init --chain dev` and
//! blocks made on demand with the IntegrationTest module's `generate_block`), paid by a real
//! `fiber-link worker` process: the recipient receives exactly what the quote said, the payout
//! completes only after the configured confirmations, and a worker killed with SIGKILL right after
//! persisting the transaction, or right after broadcasting it, completes the payout exactly once
//! when it runs again. The recipient's cells are read from the chain, not from our tables.
//!
//! A second test rolls the chain back (the IntegrationTest module's `truncate`) and spends a
//! payout's input behind the worker's back: a payout is rebuilt only when an input is proven spent
//! by another transaction buried `confirmations` deep, never because the node does not know an
//! input, so the old and the new transaction can never both commit.
//!
//! The `ckb` binary comes from `scripts/ckb-node.sh` (installed once into a cache directory), or
//! from FIBER_LINK_CKB_BIN. Without it these tests print that they were skipped (and
//! `scripts/test.sh` leaves them out by their `dev_chain_` prefix and counts them as skipped).

mod common;

use common::*;
use fiber_link_chain::{ChainClient, HotWallet};
use fiber_link_client::SignedClient;
use fiber_link_core::crypto::MasterKey;
use fiber_link_core::OnchainConfig;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The dev chain's first genesis key (specs/dev.toml): 20 billion CKB in one cell.
const GENESIS_KEY: &str = "d00c06bfd800d27397002dca6fb0993d5ba6399b4238b2f29ee9deb97593d2bc";
/// The second genesis key's lock args: block rewards go there, not to the hot wallet.
const MINER_ARGS: &str = "0x470dcdc5e44064909650113a274b3b36aecb6dc7";
const CONFIRMATIONS: u64 = 3;
const CKB: u64 = 100_000_000;

fn ckb_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("FIBER_LINK_CKB_BIN") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok()?;
    let p = cache.join("fiber-link/ckb-0.210.0/bin/ckb");
    p.exists().then_some(p)
}

struct DevChain {
    dir: PathBuf,
    node: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for DevChain {
    fn drop(&mut self) {
        let _ = self.node.kill();
        let _ = self.node.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl DevChain {
    async fn start(bin: &PathBuf) -> DevChain {
        let dir = std::env::temp_dir().join(format!("fl-ckb-{}", fiber_link_client::fresh_nonce()));
        std::fs::create_dir_all(&dir).unwrap();
        let (rpc, p2p) = (free_port(), free_port());
        let out = Command::new(bin)
            .args(["init", "--chain", "dev", "--force", "--ba-arg", MINER_ARGS])
            .args([
                "--rpc-port",
                &rpc.to_string(),
                "--p2p-port",
                &p2p.to_string(),
            ])
            .arg("-C")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ckb init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let toml_path = dir.join("ckb.toml");
        let text = std::fs::read_to_string(&toml_path).unwrap();
        // generate_block needs the IntegrationTest module, get_cells the Indexer module; the node
        // listens on loopback only
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("modules = [") && !l.contains("\"Indexer\"") {
                    l.replacen(
                        "modules = [",
                        "modules = [\"IntegrationTest\", \"Indexer\", ",
                        1,
                    )
                } else {
                    l.replace("/ip4/0.0.0.0/tcp/", "/ip4/127.0.0.1/tcp/")
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            text.contains("\"IntegrationTest\""),
            "could not enable the IntegrationTest module in ckb.toml"
        );
        std::fs::write(&toml_path, text).unwrap();
        let log = std::fs::File::create(dir.join("node.log")).unwrap();
        let node = Command::new(bin)
            .arg("run")
            .arg("-C")
            .arg(&dir)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let c = DevChain {
            dir,
            node,
            url: format!("http://127.0.0.1:{rpc}"),
            http: reqwest::Client::new(),
        };
        let start = Instant::now();
        while c.rpc("get_tip_block_number", json!([])).await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the ckb node did not start; see its node.log"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        c
    }

    async fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let v: Value = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match v.get("error") {
            Some(e) => Err(e.to_string()),
            None => Ok(v["result"].clone()),
        }
    }

    async fn tip(&self) -> u64 {
        let t = self.rpc("get_tip_block_number", json!([])).await.unwrap();
        u64::from_str_radix(t.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }

    /// One block, then wait until the indexer has it.
    async fn mine(&self) {
        self.rpc("generate_block", json!([])).await.unwrap();
        let tip = self.tip().await;
        let start = Instant::now();
        loop {
            let it = self.rpc("get_indexer_tip", json!([])).await.unwrap();
            let n = it["block_number"]
                .as_str()
                .map(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap());
            if n.is_some_and(|n| n >= tip) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the indexer did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn tx_status(&self, hash: &str) -> (String, Option<u64>) {
        let r = self
            .rpc("get_transaction", json!([hash, "0x1"]))
            .await
            .unwrap();
        let st = &r["tx_status"];
        (
            st["status"].as_str().unwrap().to_string(),
            st["block_number"]
                .as_str()
                .map(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()),
        )
    }

    /// Mines until `hash` is committed (at most 20 blocks).
    async fn commit(&self, hash: &str) -> u64 {
        for _ in 0..20 {
            if let (s, Some(b)) = self.tx_status(hash).await {
                if s == "committed" {
                    return b;
                }
            }
            self.mine().await;
        }
        panic!("{hash} was not committed in 20 blocks");
    }

    /// The plain cells of an address, read from the chain's indexer: capacities.
    async fn cells_of(&self, address: &str) -> Vec<u64> {
        let lock = fiber_link_chain::address_lock(address).unwrap();
        let r = self
            .rpc(
                "get_cells",
                json!([{"script": lock, "script_type": "lock", "script_search_mode": "exact"}, "asc", "0x64"]),
            )
            .await
            .unwrap();
        r["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                u64::from_str_radix(
                    o["output"]["capacity"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("0x"),
                    16,
                )
                .unwrap()
            })
            .collect()
    }
}

/// A `fiber-link worker` process with on-chain payouts, paused at `pause` if given.
struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

impl WorkerProcess {
    fn start(s: &Stack, chain: &DevChain, wallet_key: &str, pause: Option<&str>) -> WorkerProcess {
        let log = chain
            .dir
            .join(format!("worker-{}.log", fiber_link_client::fresh_nonce()));
        let f = std::fs::File::create(&log).unwrap();
        // a short claim: a restarted worker picks the killed one's withdrawal up within seconds
        let config = chain.dir.join("worker.toml");
        // (the claim must outlast three RPC timeouts, so the timeouts are short too)
        std::fs::write(
            &config,
            format!(
                "[hub]\nurl = \"{}\"\ntimeout_ms = 1000\n[withdrawals]\nlease_secs = 3\n\
                 [withdrawals.onchain]\nckb_rpc_url = \"{}\"\ntimeout_ms = 1000\n",
                s.hub_url, chain.url
            ),
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fiber-link"));
        cmd.arg("worker")
            .arg("--config")
            .arg(&config)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &s.db_url)
            .env("FIBER_LINK_HUB_URL", &s.hub_url)
            .env("FIBER_LINK_WORKER_LISTEN", "127.0.0.1:0")
            .env("FIBER_LINK_MASTER_KEY", s.master.to_hex())
            .env("FIBER_LINK_CKB_RPC_URL", &chain.url)
            .env("FIBER_LINK_CONFIRMATIONS", CONFIRMATIONS.to_string())
            .env("FIBER_LINK_HOT_WALLET_KEY", wallet_key)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(f.try_clone().unwrap()))
            .stderr(Stdio::from(f));
        if let Some(p) = pause {
            cmd.env("FIBER_LINK_PAUSE_AT", p);
        }
        WorkerProcess {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    fn log_has(&self, needle: &str) -> bool {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .contains(needle)
    }

    /// SIGKILL: no clean-up of any kind runs.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A dev chain with one block and a client of it; `None` (saying so loudly) without the binary.
async fn dev_chain() -> Option<(DevChain, ChainClient)> {
    let Some(bin) = ckb_bin() else {
        eprintln!("\n!!! SKIPPED: on-chain withdrawal tests need the ckb node: run scripts/ckb-node.sh (or set FIBER_LINK_CKB_BIN) !!!\n");
        return None;
    };
    let chain = DevChain::start(&bin).await;
    let client = ChainClient::new(&chain.url, Duration::from_secs(10)).unwrap();
    chain.mine().await;
    Some((chain, client))
}

/// A stack that pays withdrawals on chain after `CONFIRMATIONS` blocks, with a watcher, and bob
/// credited 1000 CKB.
async fn onchain_stack() -> (Stack, SignedClient) {
    let mut withdrawals = test_withdrawals();
    withdrawals.onchain = Some(OnchainConfig {
        fee_rate: 1000,
        max_tx_bytes: 1000,
        confirmations: CONFIRMATIONS,
    });
    let s = Stack::start_with(StackOptions {
        withdrawals,
        master_hex: Some(MasterKey::generate().to_hex()),
        ..Default::default()
    })
    .await;
    s.start_worker().await;
    let c = s.client();
    s.fund(&c, "bob", "CKB", "1000", 1).await;
    (s, c)
}

async fn withdrawal(c: &SignedClient, id: &str) -> Value {
    c.result("withdrawal.get", json!({"withdrawal_id": id}))
        .await
        .unwrap()
}

async fn wait_for(c: &SignedClient, id: &str, pred: impl Fn(&Value) -> bool, what: &str) -> Value {
    let start = Instant::now();
    loop {
        let w = withdrawal(c, id).await;
        if pred(&w) {
            return w;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "withdrawal {id}: {what} did not happen: {w}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn request(c: &SignedClient, to: &str, amount: &str, key: &str) -> String {
    let w = c
        .result(
            "withdrawal.request",
            json!({"user_id": "bob", "asset": "CKB", "amount": amount,
                   "destination": {"kind": "ckb_address", "address": to}, "idempotency_key": key}),
        )
        .await
        .unwrap();
    assert_eq!(w["state"], "QUEUED", "{w}");
    w["withdrawal_id"].as_str().unwrap().to_string()
}

fn fresh_address() -> String {
    let key: [u8; 32] = rand::random();
    HotWallet::from_hex(&hex::encode(key), false)
        .unwrap()
        .address()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_chain_onchain_payouts() {
    let Some((chain, client)) = dev_chain().await else {
        return;
    };

    // the hot wallet: a fresh key, funded from the genesis cells with three cells of 1000 CKB
    let wallet_key = hex::encode(rand::random::<[u8; 32]>());
    let wallet = HotWallet::from_hex(&wallet_key, false).unwrap();
    let genesis = HotWallet::from_hex(GENESIS_KEY, false).unwrap();
    for _ in 0..3 {
        let tx = genesis
            .build_payout(
                &client,
                &wallet.address(),
                1000 * CKB,
                1000,
                1000,
                &Default::default(),
                0,
            )
            .await
            .unwrap();
        client.send(&tx.tx).await.unwrap();
        chain.commit(&tx.hash).await;
    }
    chain.mine().await;
    assert_eq!(wallet.balance(&client).await.unwrap(), 3000 * CKB);

    let (s, c) = onchain_stack().await;

    // 1. the quote, the ledger and the chain agree to the shannon; COMPLETED only after 3 blocks
    let to = fresh_address();
    let q = c
        .result(
            "withdrawal.quote",
            json!({"user_id": "bob", "asset": "CKB", "amount": "200",
                   "destination": {"kind": "ckb_address", "address": to}}),
        )
        .await
        .unwrap();
    assert_eq!(
        (q["fee"].as_str(), q["receive_amount"].as_str()),
        (Some("0.00001"), Some("199.99999"))
    );
    let id = request(&c, &to, "200", "a1").await;
    let worker = WorkerProcess::start(&s, &chain, &wallet_key, None);
    let w = wait_for(&c, &id, |w| w["state"] == "SUBMITTED", "SUBMITTED").await;
    let hash = w["tx_hash"].as_str().unwrap().to_string();
    let block = chain.commit(&hash).await;
    loop {
        let tip = chain.tip().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let w = withdrawal(&c, &id).await;
        let confs = tip + 1 - block;
        if confs >= CONFIRMATIONS {
            let w = wait_for(&c, &id, |w| w["state"] == "COMPLETED", "COMPLETED").await;
            assert!(w["confirmations"].as_i64().unwrap() >= CONFIRMATIONS as i64);
            break;
        }
        assert_eq!(
            w["state"], "SUBMITTED",
            "not complete with {confs} confirmation(s)"
        );
        chain.mine().await;
    }
    assert_eq!(
        chain.cells_of(&to).await,
        [200 * CKB - 1000],
        "the recipient got exactly the quote"
    );
    assert_eq!(
        wallet.balance(&client).await.unwrap(),
        2800 * CKB,
        "the wallet paid 199.99999 + exactly 0.00001 of fee"
    );
    let b = c
        .result("balance.get", json!({"user_id": "bob"}))
        .await
        .unwrap();
    assert_eq!(
        (
            b["balances"][0]["available"].as_str(),
            b["balances"][0]["reserved"].as_str()
        ),
        (Some("800"), Some("0"))
    );
    worker.kill();

    // 2. killed right after persisting the signed transaction (nothing sent yet)
    let to2 = fresh_address();
    let id2 = request(&c, &to2, "100", "a2").await;
    let worker = WorkerProcess::start(&s, &chain, &wallet_key, Some("after_persist"));
    let w = wait_for(
        &c,
        &id2,
        |w| w["state"] == "SUBMITTING" && w["tx_hash"].is_string(),
        "intent persisted",
    )
    .await;
    let start = Instant::now();
    while !worker.log_has("pause point reached") {
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.kill();
    let hash2 = w["tx_hash"].as_str().unwrap().to_string();
    assert_eq!(
        chain.tx_status(&hash2).await.0,
        "unknown",
        "never sent before the kill"
    );
    let worker = WorkerProcess::start(&s, &chain, &wallet_key, None);
    wait_for(
        &c,
        &id2,
        |w| w["state"] == "SUBMITTED",
        "SUBMITTED after restart",
    )
    .await;
    chain.commit(&hash2).await;
    for _ in 0..CONFIRMATIONS {
        chain.mine().await;
    }
    let w = wait_for(&c, &id2, |w| w["state"] == "COMPLETED", "COMPLETED").await;
    assert_eq!(
        w["tx_hash"],
        hash2.as_str(),
        "the persisted transaction was the one sent"
    );
    worker.kill();

    // 3. killed right after broadcasting
    let to3 = fresh_address();
    let id3 = request(&c, &to3, "150", "a3").await;
    let worker = WorkerProcess::start(&s, &chain, &wallet_key, Some("after_send"));
    let start = Instant::now();
    while !worker.log_has("pause point reached") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the worker did not reach after_send"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.kill();
    let w = withdrawal(&c, &id3).await;
    assert_eq!(
        w["state"], "SUBMITTING",
        "the kill came before the state was recorded"
    );
    let hash3 = w["tx_hash"].as_str().unwrap().to_string();
    assert_eq!(
        chain.tx_status(&hash3).await.0,
        "pending",
        "broadcast before the kill"
    );
    let worker = WorkerProcess::start(&s, &chain, &wallet_key, None);
    chain.commit(&hash3).await;
    for _ in 0..CONFIRMATIONS {
        chain.mine().await;
    }
    let w = wait_for(&c, &id3, |w| w["state"] == "COMPLETED", "COMPLETED").await;
    assert_eq!(w["tx_hash"], hash3.as_str());
    worker.kill();

    // exactly once each, on the chain
    assert_eq!(chain.cells_of(&to2).await, [100 * CKB - 1000]);
    assert_eq!(chain.cells_of(&to3).await, [150 * CKB - 1000]);
    assert_eq!(wallet.balance(&client).await.unwrap(), 2550 * CKB);
    let b = c
        .result("balance.get", json!({"user_id": "bob"}))
        .await
        .unwrap();
    assert_eq!(b["balances"][0]["available"], "550");

    // Reconciliation asks the chain about each completed payout and counts the hot wallet.
    let out = Command::new(env!("CARGO_BIN_EXE_fiber-link"))
        .args(["reconcile", "--format", "json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &s.db_url)
        .env("FIBER_LINK_HUB_URL", &s.hub_url)
        .env("FIBER_LINK_MASTER_KEY", s.master.to_hex())
        .env("FIBER_LINK_CKB_RPC_URL", &chain.url)
        .env("FIBER_LINK_HOT_WALLET_KEY", &wallet_key)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "reconcile: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["checked"]["withdrawals_verified_outside"], 3);
    let ckb = &report["solvency"][0];
    assert_eq!(ckb["asset"], "CKB");
    assert_eq!(ckb["hot_wallet"], (2550 * CKB).to_string(), "{ckb}");
    assert_eq!(ckb["balances"], (550 * CKB).to_string(), "{ckb}");

    // The hot wallet's key is never in a worker's log.
    let mut logs = 0;
    for e in std::fs::read_dir(&chain.dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("worker-")
        {
            logs += 1;
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(
                !text.contains(&wallet_key),
                "the hot wallet key is in {p:?}"
            );
            assert!(
                !text.contains(&s.master.to_hex()),
                "the master key is in {p:?}"
            );
        }
    }
    assert!(logs >= 4, "{logs} worker logs");
}

impl DevChain {
    /// Funds `to` from the genesis cells with one cell of `ckb` CKB, buried `CONFIRMATIONS` deep.
    async fn fund(&self, client: &ChainClient, to: &str, ckb: u64) {
        let genesis = HotWallet::from_hex(GENESIS_KEY, false).unwrap();
        let tx = genesis
            .build_payout(client, to, ckb * CKB, 1000, 1000, &Default::default(), 0)
            .await
            .unwrap();
        client.send(&tx.tx).await.unwrap();
        self.commit(&tx.hash).await;
        for _ in 0..CONFIRMATIONS {
            self.mine().await;
        }
    }

    /// Rolls the chain back to block `n` (the IntegrationTest module's `truncate`: the blocks
    /// after it and the transaction pool are gone, as after a reorganisation that drops them),
    /// then makes new blocks on top until the indexer has followed (it notices the fork only once
    /// the new chain passes its own tip).
    async fn truncate_to(&self, n: u64) {
        let hash = self
            .rpc("get_block_hash", json!([format!("{n:#x}")]))
            .await
            .unwrap();
        self.rpc("truncate", json!([hash])).await.unwrap();
        // the node gives the dropped blocks' transactions back to its pool and then clears the
        // pool; a block made in between could commit one of them again
        tokio::time::sleep(Duration::from_secs(1)).await;
        let start = Instant::now();
        loop {
            self.rpc("generate_block", json!([])).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            let tip = self.rpc("get_tip_header", json!([])).await.unwrap();
            let it = self.rpc("get_indexer_tip", json!([])).await.unwrap();
            if it["block_hash"] == tip["hash"] {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the indexer did not follow the rollback to {n}: {it} vs {tip}"
            );
        }
    }
}

/// The stored transaction of a withdrawal, its hash and how many were built for it.
async fn stored_tx(s: &Stack, id: &str) -> (ckb_jsonrpc_types::Transaction, String, i32) {
    let row: (String, String, i32) = sqlx::query_as(
        "SELECT signed_tx::text, tx_hash, tx_builds FROM withdrawals WHERE id = $1::uuid",
    )
    .bind(id)
    .fetch_one(s.store.pool())
    .await
    .unwrap();
    (serde_json::from_str(&row.0).unwrap(), row.1, row.2)
}

/// Starts a worker paused right after it persisted the payout's transaction, waits for that,
/// and kills it: the withdrawal is left in SUBMITTING with a transaction nobody sent.
async fn persist_only(s: &Stack, chain: &DevChain, key: &str, c: &SignedClient, id: &str) {
    let worker = WorkerProcess::start(s, chain, key, Some("after_persist"));
    wait_for(
        c,
        id,
        |w| w["state"] == "SUBMITTING" && w["tx_hash"].is_string(),
        "intent persisted",
    )
    .await;
    let start = Instant::now();
    while !worker.log_has("pause point reached") {
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.kill();
}

/// `fiber-link withdrawal fail ID` as the operator runs it: whether it succeeded, and what it said.
fn operator_fail(s: &Stack, chain: &DevChain, key: &str, id: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fiber-link"))
        .args(["withdrawal", "fail", id, "--reason", "looks stuck"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &s.db_url)
        .env("FIBER_LINK_HUB_URL", &s.hub_url)
        .env("FIBER_LINK_MASTER_KEY", s.master.to_hex())
        .env("FIBER_LINK_CKB_RPC_URL", &chain.url)
        .env("FIBER_LINK_CONFIRMATIONS", CONFIRMATIONS.to_string())
        .env("FIBER_LINK_HOT_WALLET_KEY", key)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Watches a withdrawal for `secs` seconds: it must keep its one stored transaction.
async fn keeps_its_transaction(s: &Stack, c: &SignedClient, id: &str, hash: &str, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        let w = withdrawal(c, id).await;
        assert_eq!(w["state"], "SUBMITTING", "{w}");
        let (_, h, builds) = stored_tx(s, id).await;
        assert_eq!(
            (h.as_str(), builds),
            (hash, 1),
            "no new transaction may be built"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_chain_a_payout_is_rebuilt_only_when_an_input_is_proven_spent_deep() {
    let Some((chain, client)) = dev_chain().await else {
        return;
    };
    let key = hex::encode(rand::random::<[u8; 32]>());
    let wallet = HotWallet::from_hex(&key, false).unwrap();
    // one cell: every payout spends the change of the one before
    chain.fund(&client, &wallet.address(), 1000).await;

    let (s, c) = onchain_stack().await;

    // 1. P1 is paid and completes; its change C1 is the wallet's only cell
    let to1 = fresh_address();
    let p1 = request(&c, &to1, "100", "r1").await;
    let worker = WorkerProcess::start(&s, &chain, &key, None);
    let w = wait_for(&c, &p1, |w| w["state"] == "SUBMITTED", "SUBMITTED").await;
    let t1 = w["tx_hash"].as_str().unwrap().to_string();
    let b1 = chain.commit(&t1).await;
    for _ in 0..CONFIRMATIONS {
        chain.mine().await;
    }
    wait_for(&c, &p1, |w| w["state"] == "COMPLETED", "COMPLETED").await;
    worker.kill();
    let (t1_tx, _, _) = stored_tx(&s, &p1).await;

    // 2. P2's transaction T2 spends C1; persisted, not sent
    let to2 = fresh_address();
    let p2 = request(&c, &to2, "100", "r2").await;
    persist_only(&s, &chain, &key, &c, &p2).await;
    let (t2_tx, t2, _) = stored_tx(&s, &p2).await;
    assert_eq!(
        format!("{:#x}", t2_tx.inputs[0].previous_output.tx_hash),
        t1,
        "T2 spends P1's change"
    );

    // 3. The node loses the block that made C1 (a rollback past it; a lagging or resyncing
    //    node looks the same): C1 is "not live", yet nothing spent it. T2 must not be replaced:
    //    when the block comes back, T2 can commit.
    chain.truncate_to(b1 - 1).await;
    assert_eq!(chain.tx_status(&t1).await.0, "unknown");
    // nor may the operator fail it: its funds would go back while T2 can still commit
    let (failed, said) = operator_fail(&s, &chain, &key, &p2);
    assert!(
        !failed && said.contains("could still be sent and commit"),
        "{said}"
    );
    let worker = WorkerProcess::start(&s, &chain, &key, None);
    keeps_its_transaction(&s, &c, &p2, &t2, 6).await;
    // the block's transaction comes back (rebroadcast, as any node may do): C1 exists again
    client.send(&t1_tx).await.unwrap();
    chain.commit(&t1).await;
    let w = wait_for(&c, &p2, |w| w["state"] == "SUBMITTED", "T2 sent again").await;
    assert_eq!(w["tx_hash"], t2.as_str());
    chain.commit(&t2).await;
    for _ in 0..CONFIRMATIONS {
        chain.mine().await;
    }
    let w = wait_for(&c, &p2, |w| w["state"] == "COMPLETED", "COMPLETED").await;
    assert_eq!(
        w["tx_hash"],
        t2.as_str(),
        "the one transaction built for P2"
    );
    assert_eq!(chain.cells_of(&to2).await, [100 * CKB - 1000], "paid once");
    worker.kill();

    // 4. P3's transaction T3 is persisted, not sent; then its input is spent by another
    //    transaction (the operator's, with the wallet key). Until that one is CONFIRMATIONS
    //    deep a reorganisation could undo it: T3 is neither replaced nor failed.
    chain.fund(&client, &wallet.address(), 500).await;
    let to3 = fresh_address();
    let p3 = request(&c, &to3, "70", "r3").await;
    persist_only(&s, &chain, &key, &c, &p3).await;
    let (t3_tx, t3, _) = stored_tx(&s, &p3).await;
    let x = fiber_link_chain::out_point_key(&t3_tx.inputs[0].previous_output.clone().into());
    let others: std::collections::HashSet<String> = client
        .plain_cells(wallet.lock(), 100)
        .await
        .unwrap()
        .iter()
        .map(|cell| fiber_link_chain::out_point_key(&cell.out_point))
        .filter(|k| *k != x)
        .collect();
    let spend = wallet
        .build_payout(&client, &fresh_address(), 100 * CKB, 1000, 1000, &others, 0)
        .await
        .unwrap();
    assert_eq!(
        spend.inputs,
        std::slice::from_ref(&x),
        "the operator spends T3's input"
    );
    client.send(&spend.tx).await.unwrap();
    chain.commit(&spend.hash).await;
    let worker = WorkerProcess::start(&s, &chain, &key, None);
    keeps_its_transaction(&s, &c, &p3, &t3, 4).await;
    let (failed, said) = operator_fail(&s, &chain, &key, &p3);
    assert!(
        !failed && said.contains("not yet 3 blocks deep"),
        "the operator may not fail it either: {said}"
    );
    // buried deep enough: now T3 can never commit, and P3 is paid by a new transaction
    for _ in 1..CONFIRMATIONS {
        chain.mine().await;
    }
    let w = wait_for(
        &c,
        &p3,
        |w| w["state"] == "SUBMITTED" && w["tx_hash"] != t3.as_str(),
        "rebuilt",
    )
    .await;
    let t3b = w["tx_hash"].as_str().unwrap().to_string();
    assert_eq!(stored_tx(&s, &p3).await.2, 2, "built twice");
    chain.commit(&t3b).await;
    for _ in 0..CONFIRMATIONS {
        chain.mine().await;
    }
    wait_for(&c, &p3, |w| w["state"] == "COMPLETED", "COMPLETED").await;
    assert_eq!(chain.cells_of(&to3).await, [70 * CKB - 1000], "paid once");
    assert_eq!(chain.tx_status(&t3).await.0, "unknown");
    worker.kill();
}
