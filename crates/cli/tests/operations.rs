//! The operator's tools against the real stack (Postgres, the hub simulator over HTTP, the API),
//! run as the real `fiber-link` binary: reconciliation finds each kind of corruption (one test
//! per kind) and is clean after a busy randomized run; backfill credits a missed payment once,
//! even twice at once; kill switches take effect on a running API; the audit trail.

mod common;

use common::*;
use fiber_link_client::SignedClient;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A configuration file with the test assets (CKB and RUSD), in a directory that lives as long
/// as the test.
struct Ops {
    dir: std::path::PathBuf,
    db_url: String,
    hub_url: String,
    master: String,
}

impl Ops {
    fn new(s: &Stack) -> Ops {
        let dir = std::env::temp_dir().join(format!("fl-ops-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let u = udt_script();
        std::fs::write(
            dir.join("fiber-link.toml"),
            format!(
                r#"currency = "Fibd"
[[assets]]
symbol = "CKB"
decimals = 8
max_tip = "1000"
[[assets]]
symbol = "RUSD"
decimals = 6
max_tip = "500"
udt_type_script = {{ code_hash = "{}", hash_type = "{}", args = "{}" }}
[withdrawals.policy.CKB]
"#,
                u.code_hash, u.hash_type, u.args
            ),
        )
        .unwrap();
        Ops {
            dir,
            db_url: s.db_url.clone(),
            hub_url: s.hub_url.clone(),
            master: s.master.to_hex(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fiber-link"));
        c.args(args)
            .env("FIBER_LINK_CONFIG", self.dir.join("fiber-link.toml"))
            .env("DATABASE_URL", &self.db_url)
            .env("FIBER_LINK_MASTER_KEY", &self.master)
            .env("FIBER_LINK_HUB_URL", &self.hub_url)
            .env("USER", "carol")
            .env_remove("FIBER_LINK_CKB_RPC_URL")
            .env_remove("FIBER_LINK_HUB_TOKEN");
        c
    }

    /// Runs the command (off the async runtime's threads); exit code, stdout, stderr.
    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut c = self.command(args);
        let out = tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// `fiber-link reconcile --format json`: exit code and the report.
    async fn reconcile(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["reconcile", "--format", "json"];
        args.extend_from_slice(extra);
        let (code, out, err) = self.run(&args).await;
        assert!(code == 0 || code == 2, "reconcile could not run: {err}");
        (code, serde_json::from_str(&out).expect(&out))
    }
}

impl Drop for Ops {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kinds(report: &Value) -> Vec<String> {
    let mut k: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    k.dedup();
    k
}

/// A stack with bob holding three settled 10 CKB tips, one completed Fiber withdrawal and an
/// unpaid tip; checked clean before the test corrupts it.
struct Books {
    s: Stack,
    c: SignedClient,
    ops: Ops,
    unpaid_tip: Uuid,
    settled_tip: Uuid,
    withdrawal: Uuid,
}

/// `None` against a real hub (the books include a withdrawal to another node's invoice, which
/// only the simulator can make).
async fn books() -> Option<Books> {
    let s = Stack::start().await;
    if s.skip_on_real_hub("external_invoice") {
        return None;
    }
    s.start_worker().await;
    s.start_payouts().await;
    let c = s.client();
    s.fund(&c, "bob", "CKB", "10", 3).await;
    let inv = s
        .sim(
            "sim_external_invoice",
            json!({"amount": "500000000", "outcome": "success"}),
        )
        .await;
    let w = c
        .result(
            "withdrawal.request",
            json!({"user_id": "bob", "asset": "CKB", "amount": "5.025",
                   "destination": {"kind": "fiber_invoice", "invoice": inv["invoice"]},
                   "idempotency_key": "w1"}),
        )
        .await
        .unwrap();
    let wid = w["withdrawal_id"].as_str().unwrap().to_string();
    wait_withdrawal(&c, &wid, "COMPLETED").await;
    let unpaid = c.result("tip.create", tip_params("2")).await.unwrap();
    let settled: Uuid = sqlx::query_scalar(
        "SELECT id FROM tip_intents WHERE state = 'SETTLED' ORDER BY created_at LIMIT 1",
    )
    .fetch_one(s.store.pool())
    .await
    .unwrap();
    let ops = Ops::new(&s);
    let (code, report) = ops.reconcile(&[]).await;
    assert_eq!(
        (code, report["clean"].clone()),
        (0, json!(true)),
        "{report}"
    );
    Some(Books {
        unpaid_tip: unpaid["tip_id"].as_str().unwrap().parse().unwrap(),
        settled_tip: settled,
        withdrawal: wid.parse().unwrap(),
        s,
        c,
        ops,
    })
}

/// What a hand-written ledger transaction names as its cause.
enum Cause {
    None,
    Tip(Uuid),
    Withdrawal(Uuid),
}

impl Books {
    async fn sql(&self, sql: &str) {
        sqlx::raw_sql(sql)
            .execute(self.s.store.pool())
            .await
            .unwrap();
    }

    async fn author_account(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT id FROM accounts WHERE kind = 'author' AND asset = 'CKB' LIMIT 1",
        )
        .fetch_one(self.s.store.pool())
        .await
        .unwrap()
    }

    async fn account(&self, kind: &str) -> i64 {
        sqlx::query_scalar("SELECT id FROM accounts WHERE kind = $1 AND asset = 'CKB'")
            .bind(kind)
            .fetch_one(self.s.store.pool())
            .await
            .unwrap()
    }

    /// A balanced ledger transaction written directly (as a buggy code path or a hand edit
    /// would): `amount` from `from` to `to`, with an optional tip or withdrawal as its cause.
    async fn post(&self, kind: &str, key: &str, (from, to, amount): (i64, i64, i64), cause: Cause) {
        let (tip, withdrawal) = match cause {
            Cause::None => (None, None),
            Cause::Tip(t) => (Some(t), None),
            Cause::Withdrawal(w) => (None, Some(w)),
        };
        let mut tx = self.s.store.pool().begin().await.unwrap();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO ledger_transactions (app_id, kind, idempotency_key, tip_id, withdrawal_id)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&self.s.app_id)
        .bind(kind)
        .bind(key)
        .bind(tip)
        .bind(withdrawal)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        for (account, amt) in [(from, -amount), (to, amount)] {
            sqlx::query(
                "INSERT INTO ledger_entries (transaction_id, account_id, app_id, asset, amount)
                 VALUES ($1, $2, $3, 'CKB', $4)",
            )
            .bind(id)
            .bind(account)
            .bind(&self.s.app_id)
            .bind(amt)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }

    /// Reconciles; asserts exit 2 and that `kind` is among the findings; returns the kinds.
    async fn expect(&self, kind: &str) -> Vec<String> {
        let (code, report) = self.ops.reconcile(&[]).await;
        let k = kinds(&report);
        assert_eq!(code, 2, "{report}");
        assert_eq!(report["clean"], false);
        assert!(k.iter().any(|x| x == kind), "expected {kind}: {report}");
        // the text report names it too
        let (code, text, _) = self.ops.run(&["reconcile"]).await;
        assert_eq!(code, 2);
        assert!(text.contains(kind), "{text}");
        k
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_finds_an_unbalanced_transaction() {
    let Some(b) = books().await else {
        return;
    };
    let hub = b.account("hub").await;
    // the ledger's own triggers refuse this; a restore or a hand edit with triggers off does not
    b.sql(&format!(
        "BEGIN; SET LOCAL session_replication_role = replica;
         INSERT INTO ledger_entries (transaction_id, account_id, app_id, asset, amount)
         SELECT min(id), {hub}, '{}', 'CKB', 7 FROM ledger_transactions;
         COMMIT;",
        b.s.app_id
    ))
    .await;
    let k = b.expect("unbalanced_transaction").await;
    assert_eq!(k, ["unbalanced_transaction"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_finds_a_balance_row_that_differs_from_its_entries() {
    let Some(b) = books().await else {
        return;
    };
    let acc = b.author_account().await;
    // the database refuses the edit from a client …
    let refused = sqlx::raw_sql(&format!(
        "UPDATE accounts SET balance = balance - 1 WHERE id = {acc}"
    ))
    .execute(b.s.store.pool())
    .await
    .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("balance changes only through ledger entries"),
        "{refused}"
    );
    // … so only a superuser with the triggers off can corrupt it; reconcile still finds it
    b.sql(&format!(
        "BEGIN; SET LOCAL session_replication_role = replica;
         UPDATE accounts SET balance = balance - 1 WHERE id = {acc}; COMMIT;"
    ))
    .await;
    let k = b.expect("balance_mismatch").await;
    assert_eq!(k, ["balance_mismatch"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_refuses_a_transaction_that_crosses_apps() {
    let Some(b) = books().await else {
        return;
    };
    let author = b.author_account().await;
    let other = "app_00000000000000000000b0b0";
    b.sql(&format!(
        "INSERT INTO apps (id, name) VALUES ('{other}', 'Other forum');
         INSERT INTO users (app_id, external_id) VALUES ('{other}', 'mallory');
         INSERT INTO accounts (app_id, kind, user_id, asset)
              SELECT '{other}', 'author', id, 'CKB' FROM users WHERE external_id = 'mallory';"
    ))
    .await;
    // balanced per asset, each entry on an account of its own app: only the app boundary is wrong
    let moved = sqlx::raw_sql(&format!(
        "BEGIN;
         INSERT INTO ledger_transactions (app_id, kind, idempotency_key)
              VALUES ('{app}', 'tip_settle', 'cross-app');
         INSERT INTO ledger_entries (transaction_id, account_id, app_id, asset, amount)
              SELECT currval('ledger_transactions_id_seq'), {author}, '{app}', 'CKB', -1;
         INSERT INTO ledger_entries (transaction_id, account_id, app_id, asset, amount)
              SELECT currval('ledger_transactions_id_seq'), a.id, '{other}', 'CKB', 1
                FROM accounts a WHERE a.app_id = '{other}';
         COMMIT;",
        app = b.s.app_id
    ))
    .execute(b.s.store.pool())
    .await
    .unwrap_err();
    assert!(
        moved
            .to_string()
            .contains("in a transaction of another app"),
        "{moved}"
    );
    let mallory: String = sqlx::query_scalar(&format!(
        "SELECT balance::text FROM accounts WHERE app_id = '{other}'"
    ))
    .fetch_one(b.s.store.pool())
    .await
    .unwrap();
    assert_eq!(mallory, "0", "nothing moved");
    // an account cannot be born with a balance, nor change hands
    for bad in [
        format!("INSERT INTO accounts (app_id, kind, user_id, asset, balance) SELECT '{other}', 'author', id, 'RUSD', 5 FROM users WHERE external_id = 'mallory'"),
        format!("UPDATE accounts SET app_id = '{other}' WHERE id = {author}"),
    ] {
        assert!(
            sqlx::raw_sql(&bad).execute(b.s.store.pool()).await.is_err(),
            "{bad}"
        );
    }
    let (code, report) = b.ops.reconcile(&[]).await;
    assert_eq!(code, 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_finds_a_settled_tip_without_its_credit() {
    let Some(b) = books().await else {
        return;
    };
    b.sql(&format!(
        "UPDATE tip_intents SET state = 'SETTLED', settled_at = now(), next_check_at = NULL
          WHERE id = '{}'",
        b.unpaid_tip
    ))
    .await;
    let k = b.expect("settled_tip_without_credit").await;
    // and the hub, asked, does not say it was paid
    assert_eq!(k, ["settled_tip_without_credit", "credited_not_paid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_finds_a_tip_credited_twice() {
    let Some(b) = books().await else {
        return;
    };
    let (hub, author) = (b.account("hub").await, b.author_account().await);
    let key = format!("tip:{}:settle-again", b.settled_tip);
    b.post(
        "tip_settle",
        &key,
        (hub, author, 1_000_000_000),
        Cause::Tip(b.settled_tip),
    )
    .await;
    let k = b.expect("tip_credit_count").await;
    // the second credit is money the hub never received
    assert_eq!(k, ["tip_credit_count", "insolvent"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_finds_a_credit_for_a_tip_that_is_not_settled() {
    let Some(b) = books().await else {
        return;
    };
    let (hub, author) = (b.account("hub").await, b.author_account().await);
    let key = format!("tip:{}:settle", b.unpaid_tip);
    b.post(
        "tip_settle",
        &key,
        (hub, author, 200_000_000),
        Cause::Tip(b.unpaid_tip),
    )
    .await;
    let k = b.expect("unsettled_tip_with_credit").await;
    assert_eq!(k, ["unsettled_tip_with_credit", "insolvent"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_finds_a_withdrawal_whose_ledger_does_not_match_its_state() {
    let Some(b) = books().await else {
        return;
    };
    let (flight, author) = (
        b.account("payouts_in_flight").await,
        b.author_account().await,
    );
    // a release after the completion: the author would get the payout back
    let key = format!("withdrawal:{}:release", b.withdrawal);
    b.post(
        "withdrawal_release",
        &key,
        (flight, author, 1),
        Cause::Withdrawal(b.withdrawal),
    )
    .await;
    let k = b.expect("withdrawal_ledger_mismatch").await;
    // the released shannon was never held: it is owed without cover
    assert_eq!(k, ["withdrawal_ledger_mismatch", "insolvent"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_finds_a_completed_withdrawal_the_hub_does_not_confirm() {
    let Some(b) = books().await else {
        return;
    };
    // a payout the hub failed, marked COMPLETED with its completion entries by a bad hand
    let inv =
        b.s.sim(
            "sim_external_invoice",
            // failed payments are retried until the invoice expires: a short one
            json!({"amount": "100000000", "outcome": "fail", "expiry_secs": 2}),
        )
        .await;
    let w =
        b.c.result(
            "withdrawal.request",
            json!({"user_id": "bob", "asset": "CKB", "amount": "1.005",
                   "destination": {"kind": "fiber_invoice", "invoice": inv["invoice"]},
                   "idempotency_key": "w2"}),
        )
        .await
        .unwrap();
    let id = w["withdrawal_id"].as_str().unwrap().to_string();
    wait_withdrawal(&b.c, &id, "FAILED").await;
    let (code, _) = b.ops.reconcile(&[]).await;
    assert_eq!(code, 0, "a failed and released withdrawal is in order");
    b.sql(&format!(
        "UPDATE withdrawals SET state = 'COMPLETED', completed_at = now() WHERE id = '{id}'"
    ))
    .await;
    let k = b.expect("completed_withdrawal_without_evidence").await;
    assert!(k.contains(&"withdrawal_ledger_mismatch".to_string()));
    let (_, report) = b.ops.reconcile(&[]).await;
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "completed_withdrawal_without_evidence")
        .unwrap()
        .clone();
    assert_eq!(f["subject"], format!("withdrawal {id}"));
    assert!(f["detail"].as_str().unwrap().contains("Failed"), "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_finds_a_credit_the_hub_did_not_receive() {
    let Some(b) = books().await else {
        return;
    };
    // the one credit path, called without the hub having been paid
    b.s.store
        .credit_tip(b.unpaid_tip, "test", None)
        .await
        .unwrap();
    let k = b.expect("credited_not_paid").await;
    assert_eq!(k, ["credited_not_paid", "insolvent"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_finds_owing_more_than_the_hub_holds() {
    let Some(b) = books().await else {
        return;
    };
    let (op, author) = (b.account("hub").await, b.author_account().await);
    // 10,000 CKB credited to bob that never arrived at the hub
    b.post(
        "adjustment",
        "manual:1",
        (op, author, 1_000_000_000_000),
        Cause::None,
    )
    .await;
    let k = b.expect("insolvent").await;
    assert_eq!(k, ["insolvent"]);
    let (_, report) = b.ops.reconcile(&[]).await;
    let ckb = report["solvency"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["asset"] == "CKB")
        .unwrap()
        .clone();
    // owed: 30 − 5.025 + 0.02 (the unused fee reserve back) + 10,000; held: 30 − 5 − 0.005
    // (the payout and its route fee)
    assert_eq!(ckb["balances"], "1002499500000", "{ckb}");
    assert_eq!(ckb["in_flight"], "0", "{ckb}");
    assert_eq!(ckb["hub_channels"], "2499500000", "{ckb}");
    assert_eq!(ckb["surplus"], "-1000000000000", "{ckb}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_credits_a_missed_payment_once_even_run_twice_at_once() {
    // no worker runs: the payment is "missed"
    let s = Stack::start().await;
    let c = s.client();
    let ops = Ops::new(&s);
    let t = c.result("tip.create", tip_params("3")).await.unwrap();
    let id = t["tip_id"].as_str().unwrap().to_string();
    s.sim(
        "sim_pay_invoice",
        json!({"invoice": t["invoice"], "delay_ms": 1}),
    )
    .await;
    // wait until the hub says Paid
    let hash = t["payment_hash"].as_str().unwrap().to_string();
    let start = Instant::now();
    loop {
        let inv: Value = s
            .hub
            .call("get_invoice", Some(&json!({"payment_hash": hash})))
            .await
            .unwrap();
        if inv["status"] == "Paid" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{inv}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // within the grace period the watcher is trusted to credit it; here none runs
    let (code, report) = ops.reconcile(&[]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["checked"]["paid_awaiting_credit"], 1);
    let (code, report) = ops.reconcile(&["--grace", "0s"]).await;
    assert_eq!(code, 2);
    assert_eq!(kinds(&report), ["paid_not_credited"], "{report}");

    let (a, b) = tokio::join!(
        ops.run(&["backfill", "--since", "1h", "--format", "json"]),
        ops.run(&["backfill", "--since", "1h", "--format", "json"])
    );
    assert_eq!(a.0, 0, "{}", a.2);
    assert_eq!(b.0, 0, "{}", b.2);
    let sa: Value = serde_json::from_str(&a.1).unwrap();
    let sb: Value = serde_json::from_str(&b.1).unwrap();
    assert_eq!(
        sa["credited"].as_u64().unwrap() + sb["credited"].as_u64().unwrap(),
        1,
        "{sa} {sb}"
    );
    let settles: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ledger_transactions WHERE tip_id = $1 AND kind = 'tip_settle'",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_one(s.store.pool())
    .await
    .unwrap();
    assert_eq!(settles, 1);
    let bal = c
        .result("balance.get", json!({"user_id": "bob"}))
        .await
        .unwrap();
    assert_eq!(bal["balances"][0]["available"], "3", "{bal}");
    // a third run finds nothing to do; the books are clean
    let (code, out, _) = ops.run(&["backfill", "--since", "1h"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("0 credited now"), "{out}");
    let (code, report) = ops.reconcile(&[]).await;
    assert_eq!(code, 0, "{report}");
    // the audit trail says who credited it
    let (code, out, _) = ops.run(&["audit", "--tip", &id, "--format", "json"]).await;
    assert_eq!(code, 0);
    let trail: Value = serde_json::from_str(&out).unwrap();
    let events: Vec<(&str, &str)> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(events[0], ("tip.created", "api"));
    assert!(
        events.contains(&("ledger.tip_settle", "ledger")),
        "{events:?}"
    );
    assert!(
        trail
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "tip.state"
                && e["actor"] == "backfill"
                && e["detail"]["to"] == "SETTLED"),
        "{trail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_is_clean_after_a_busy_randomized_run() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("external_invoice, UDT (RUSD)") {
        return;
    }
    s.start_worker().await;
    s.start_worker().await;
    s.start_payouts().await;
    s.start_payouts().await;
    let c = s.client();
    let ops = Ops::new(&s);
    let users = ["ann", "ben", "cat", "dan"];
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut open = Vec::new();
    // 60 tips between random users, in both assets; about two thirds paid
    for i in 0..60 {
        let from = users[rng.gen_range(0..4)];
        let mut to = users[rng.gen_range(0..4)];
        if to == from {
            to = "eve";
        }
        let (asset, amount) = if rng.gen_bool(0.7) {
            ("CKB", format!("{}", rng.gen_range(1..50)))
        } else {
            (
                "RUSD",
                format!("{}.{}", rng.gen_range(1..20), rng.gen_range(0..999_999)),
            )
        };
        let t = c
            .result(
                "tip.create",
                json!({"post_id": format!("p{i}"), "from_user_id": from, "to_user_id": to,
                       "asset": asset, "amount": amount}),
            )
            .await
            .unwrap();
        if rng.gen_bool(0.66) {
            s.sim(
                "sim_pay_invoice",
                json!({"invoice": t["invoice"], "delay_ms": rng.gen_range(1..200)}),
            )
            .await;
            open.push(t["tip_id"].as_str().unwrap().to_string());
        }
    }
    // while payments are still arriving and being credited, the books are in order
    let (code, report) = ops.reconcile(&[]).await;
    assert_eq!(code, 0, "mid-run: {report}");
    for id in &open {
        s.wait_state(&c, id, "SETTLED", Duration::from_secs(20))
            .await;
    }
    // withdrawals: some complete, some fail
    let mut ws = Vec::new();
    for (i, u) in users.iter().chain(["eve"].iter()).enumerate() {
        let b = c
            .result("balance.get", json!({"user_id": u}))
            .await
            .unwrap();
        let Some(ckb) = b["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["asset"] == "CKB")
            .map(|x| x["available"].as_str().unwrap().to_string())
        else {
            continue;
        };
        let avail: f64 = ckb.parse().unwrap();
        if avail < 3.0 {
            continue;
        }
        let outcome = ["success", "fail", "success"][i % 3];
        let inv = s
            .sim(
                "sim_external_invoice",
                json!({"amount": "100000000", "outcome": outcome, "expiry_secs": 3}),
            )
            .await;
        let w = c
            .result(
                "withdrawal.request",
                json!({"user_id": u, "asset": "CKB", "amount": "1.005",
                       "destination": {"kind": "fiber_invoice", "invoice": inv["invoice"]},
                       "idempotency_key": format!("w{i}")}),
            )
            .await
            .unwrap();
        ws.push((
            w["withdrawal_id"].as_str().unwrap().to_string(),
            if outcome == "success" {
                "COMPLETED"
            } else {
                "FAILED"
            },
        ));
    }
    assert!(ws.len() >= 2, "the run made withdrawals: {ws:?}");
    // … and while withdrawals are being paid
    let (code, report) = ops.reconcile(&[]).await;
    assert_eq!(code, 0, "mid-run: {report}");
    for (id, end) in &ws {
        wait_withdrawal(&c, id, end).await;
    }
    let (code, report) = ops.reconcile(&[]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["checked"]["tips"], 60);
    assert_eq!(report["checked"]["withdrawals"], ws.len());
    let completed = ws.iter().filter(|(_, end)| *end == "COMPLETED").count();
    assert_eq!(
        report["checked"]["withdrawals_verified_outside"], completed,
        "every completed payout asked at the hub"
    );
    // and per app and window
    let (code, _) = ops
        .reconcile(&["--app", &s.app_id, "--since", "1h", "--until", "2099-01-01"])
        .await;
    assert_eq!(code, 0);
    // an app that does not exist is an error, not a clean report
    let (code, _, err) = ops
        .run(&["reconcile", "--app", "app_000000000000000000000000"])
        .await;
    assert_eq!(code, 1);
    assert!(err.contains("no app"), "{err}");
    // a reconciliation that cannot reach the hub says so and exits 1, not 0 or 2
    let mut cmd = ops.command(&["reconcile"]);
    cmd.env("FIBER_LINK_HUB_URL", "http://127.0.0.1:9");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not run"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pausing_tips_and_withdrawals_takes_effect_on_the_running_api() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("external_invoice") {
        return;
    }
    s.start_worker().await;
    let c = s.client();
    let ops = Ops::new(&s);
    s.fund(&c, "bob", "CKB", "100", 1).await;
    assert!(c.result("tip.create", tip_params("1")).await.is_ok());

    // bad input: a clear error and nothing written
    let long = "x".repeat(501);
    let (code, _, err) = ops
        .run(&["app", "pause", &s.app_id, "--reason", &long])
        .await;
    assert_eq!(code, 1);
    assert!(err.contains("at most 500 characters"), "{err}");
    for args in [
        &["app", "pause", "app_000000000000000000000000"][..],
        &["app", "resume", "app_000000000000000000000000"][..],
    ] {
        let (code, _, err) = ops.run(args).await;
        assert_eq!(code, 1);
        assert!(err.contains("no app app_000000000000000000000000"), "{err}");
    }
    let (code, _, err) = ops.run(&["app", "pause"]).await;
    assert_eq!(code, 2, "clap usage error: {err}");
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM controls")
        .fetch_one(s.store.pool())
        .await
        .unwrap();
    assert_eq!(written, 0);
    let (code, out, err) = ops
        .run(&[
            "app",
            "pause",
            &s.app_id,
            "--tips",
            "--reason",
            "incident 42",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tips PAUSED"), "{out}");
    let paused_at = Instant::now();
    let refusal = loop {
        let a = c.call("tip.create", tip_params("1")).await.unwrap();
        if a.code().is_some() {
            break a;
        }
        assert!(
            paused_at.elapsed() < Duration::from_secs(5),
            "tip.create still accepted 5 s after the pause"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "pause effective after {} ms",
        paused_at.elapsed().as_millis()
    );
    assert_eq!(refusal.code(), Some(-32011), "{:?}", refusal.body);
    assert_eq!(refusal.reason(), Some("tips_paused"));
    let msg = refusal.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("incident 42"), "{msg}");
    // reads and withdrawals go on
    assert!(c
        .result("balance.get", json!({"user_id": "bob"}))
        .await
        .is_ok());
    // another app is not paused
    let other = s.second_app().await;
    assert!(other.result("tip.create", tip_params("1")).await.is_ok());

    // a global withdrawal pause refuses requests
    let (code, _, err) = ops
        .run(&["app", "pause", "--global", "--withdrawals"])
        .await;
    assert_eq!(code, 0, "{err}");
    let start = Instant::now();
    let mut n = 0;
    let refused = loop {
        n += 1;
        let inv = s
            .sim("sim_external_invoice", json!({"amount": "100000000"}))
            .await;
        let a = c
            .call(
                "withdrawal.request",
                json!({"user_id": "bob", "asset": "CKB", "amount": "1.005",
                       "destination": {"kind": "fiber_invoice", "invoice": inv["invoice"]},
                       "idempotency_key": format!("p{n}")}),
            )
            .await
            .unwrap();
        if a.code().is_some() {
            break a;
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        refused.reason(),
        Some("withdrawals_paused"),
        "{:?}",
        refused.body
    );

    let (code, out, _) = ops.run(&["app", "show", &s.app_id]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("tips PAUSED, withdrawals open (incident 42; by carol"),
        "{out}"
    );
    assert!(
        out.contains("global switches: tips open, withdrawals PAUSED"),
        "{out}"
    );

    // resuming reconciles first; the books are clean, so it resumes
    let (code, out, err) = ops.run(&["app", "resume", &s.app_id]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("is clean"), "{out}");
    let resumed_at = Instant::now();
    loop {
        let a = c.call("tip.create", tip_params("1")).await.unwrap();
        if a.code().is_none() {
            break;
        }
        assert!(resumed_at.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, _, _) = ops.run(&["app", "resume", "--global"]).await;
    assert_eq!(code, 0);

    // resume refuses while reconciliation finds something
    ops.run(&["app", "pause", &s.app_id]).await;
    sqlx::raw_sql(
        "BEGIN; SET LOCAL session_replication_role = replica;
         UPDATE accounts SET balance = balance + 1 WHERE kind = 'author'; COMMIT;",
    )
    .execute(s.store.pool())
    .await
    .unwrap();
    let (code, out, err) = ops.run(&["app", "resume", &s.app_id]).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("not resumed"), "{err}");
    let (_, out, _) = ops.run(&["app", "show", &s.app_id]).await;
    assert!(
        out.contains("switches: tips PAUSED, withdrawals PAUSED"),
        "{out}"
    );

    // every switch is in the audit trail with who did it
    let actions: Vec<(String, String)> = sqlx::query_as(
        "SELECT event, actor FROM audit_log WHERE event IN ('operator.pause', 'operator.resume') ORDER BY id",
    )
    .fetch_all(s.store.pool())
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            ("operator.pause", "operator:carol"),
            ("operator.pause", "operator:carol"),
            ("operator.resume", "operator:carol"),
            ("operator.resume", "operator:carol"),
            ("operator.pause", "operator:carol"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_trail_is_append_only_and_follows_a_withdrawal() {
    let Some(b) = books().await else {
        return;
    };
    let (code, out, _) = b
        .ops
        .run(&["audit", "--withdrawal", &b.withdrawal.to_string()])
        .await;
    assert_eq!(code, 0);
    for want in [
        "withdrawal.requested",
        "ledger.withdrawal_reserve",
        "SUBMITTING",
        "SUBMITTED",
        "COMPLETED",
        "ledger.withdrawal_complete",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    let (code, out, _) = b
        .ops
        .run(&[
            "audit",
            "--app",
            &b.s.app_id,
            "--user",
            "bob",
            "--format",
            "json",
        ])
        .await;
    assert_eq!(code, 0);
    let trail: Value = serde_json::from_str(&out).unwrap();
    // bob's three funded tips, their credits, and the withdrawal
    let credits = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "ledger.tip_settle")
        .count();
    assert_eq!(credits, 3);
    for sql in [
        "UPDATE audit_log SET actor = 'nobody'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let e = sqlx::query(sql)
            .execute(b.s.store.pool())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    let (code, _, err) = b
        .ops
        .run(&["audit", "--tip", &Uuid::new_v4().to_string()])
        .await;
    assert_eq!(code, 1);
    assert!(err.contains("nothing in the audit trail"), "{err}");
}

/// Checks the Prometheus/OpenMetrics text exposition line by line; returns the samples.
fn parse_exposition(text: &str) -> Vec<(String, f64)> {
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end");
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('#') {
            let kw = rest.split_whitespace().next().unwrap_or("");
            assert!(
                ["HELP", "TYPE", "UNIT", "EOF"].contains(&kw),
                "bad comment line {line:?}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels in {line:?}");
            for pair in series[name_end + 1..series.len() - 1].split("\",") {
                let (k, v) = pair.split_once("=\"").expect(line);
                assert!(!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                assert!(!v.trim_end_matches('"').contains('"'), "{line:?}");
            }
        }
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        samples.push((series.to_string(), v));
    }
    samples
}

fn sample(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(s, _)| s == series)
        .map_or(0.0, |x| x.1)
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

async fn wait_ready(base: &str) {
    let start = Instant::now();
    loop {
        if get(&format!("{base}/healthz/ready")).await.0 == 200 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{base} not ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `fiber-link serve` and `fiber-link worker` as processes with JSON logs at debug level: both
/// are healthy and ready, their `/metrics` parse and move as a tip is created and settled and a
/// withdrawal is paid, and nothing in the logs is a secret, a preimage or the hub token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_health_and_logs_of_the_real_processes() {
    let token = "hub-token-7f3a9c1e5d";
    let master_hex = fiber_link_core::crypto::MasterKey::generate().to_hex();
    let s = Stack::start_with(StackOptions {
        hub_token: Some(token.into()),
        master_hex: Some(master_hex.clone()),
        ..Default::default()
    })
    .await;
    if s.skip_on_real_hub("external_invoice, set_faults, set_permissions, token checks") {
        return;
    }
    let ops = Ops::new(&s);
    let (api_port, ops_port, worker_port) = (free_port(), free_port(), free_port());
    let logs = ops.dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let spawn = |what: &str| {
        let mut c = ops.command(&["--log-format", "json", what]);
        c.env("FIBER_LINK_HUB_TOKEN", token)
            .env("FIBER_LINK_LISTEN", format!("127.0.0.1:{api_port}"))
            .env("FIBER_LINK_OPS_LISTEN", format!("127.0.0.1:{ops_port}"))
            .env(
                "FIBER_LINK_PUBLIC_URL",
                format!("http://127.0.0.1:{api_port}"),
            )
            .env(
                "FIBER_LINK_WORKER_LISTEN",
                format!("127.0.0.1:{worker_port}"),
            )
            .env(
                "RUST_LOG",
                "debug,sqlx=warn,hyper=info,hyper_util=info,reqwest=info,h2=info",
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(logs.join(format!("{what}.log"))).unwrap());
        c.spawn().unwrap()
    };
    let mut serve = spawn("serve");
    let mut worker = spawn("worker");
    let api = format!("http://127.0.0.1:{api_port}");
    let wrk = format!("http://127.0.0.1:{worker_port}");
    let ops_url = format!("http://127.0.0.1:{ops_port}");
    wait_ready(&ops_url).await;
    wait_ready(&wrk).await;
    for base in [&api, &ops_url, &wrk] {
        let (code, body) = get(&format!("{base}/healthz/live")).await;
        assert_eq!((code, body.contains("live")), (200, true));
    }
    // the public listener serves neither the metrics nor the readiness check (each costs the
    // service database reads or a hub call): only the operator's port does
    for path in ["/metrics", "/healthz/ready"] {
        assert_eq!(get(&format!("{api}{path}")).await.0, 404, "{path}");
    }

    let c = SignedClient::new(&api, &s.app_id, &s.secret);
    let created = format!(
        "fiber_link_tips_created_total{{app=\"{}\",asset=\"CKB\"}}",
        s.app_id
    );
    let settled = format!(
        "fiber_link_tips_settled_total{{app=\"{}\",asset=\"CKB\"}}",
        s.app_id
    );
    let before = parse_exposition(&get(&format!("{ops_url}/metrics")).await.1);
    assert_eq!(sample(&before, &created), 0.0);

    let t = c.result("tip.create", tip_params("3")).await.unwrap();
    let tip_id = t["tip_id"].as_str().unwrap().to_string();
    let m = parse_exposition(&get(&format!("{ops_url}/metrics")).await.1);
    assert_eq!(sample(&m, &created), 1.0);
    assert_eq!(sample(&m, "fiber_link_open_invoices"), 1.0);
    assert!(
        sample(
            &m,
            "fiber_link_hub_request_duration_seconds_count{method=\"new_invoice\"}"
        ) >= 1.0
    );

    s.sim(
        "sim_pay_invoice",
        json!({"invoice": t["invoice"], "delay_ms": 1}),
    )
    .await;
    s.wait_state(&c, &tip_id, "SETTLED", Duration::from_secs(15))
        .await;
    let w = parse_exposition(&get(&format!("{wrk}/metrics")).await.1);
    assert_eq!(sample(&w, &settled), 1.0);
    assert_eq!(sample(&w, "fiber_link_settlement_lag_seconds_count"), 1.0);
    assert!(
        sample(
            &w,
            "fiber_link_hub_request_duration_seconds_count{method=\"get_invoice\"}"
        ) >= 1.0
    );
    assert_eq!(sample(&w, "fiber_link_tips{state=\"SETTLED\"}"), 1.0);
    assert_eq!(sample(&w, "fiber_link_open_invoices"), 0.0);
    // the worker follows the hub's store changes: the payment was announced
    assert_eq!(sample(&w, "fiber_link_hub_stream_state"), 2.0);
    assert!(
        sample(
            &w,
            "fiber_link_hub_stream_events_total{kind=\"invoice_status\"}"
        ) >= 2.0
    );
    assert!(sample(&w, "fiber_link_hub_stream_tips_due_total{cause=\"event\"}") >= 1.0);

    // a withdrawal paid by the worker process
    let inv = s
        .sim("sim_external_invoice", json!({"amount": "100000000"}))
        .await;
    let wd = c
        .result(
            "withdrawal.request",
            json!({"user_id": "bob", "asset": "CKB", "amount": "1.005",
                   "destination": {"kind": "fiber_invoice", "invoice": inv["invoice"]},
                   "idempotency_key": "m1"}),
        )
        .await
        .unwrap();
    let wid = wd["withdrawal_id"].as_str().unwrap().to_string();
    wait_withdrawal(&c, &wid, "COMPLETED").await;
    let w = parse_exposition(&get(&format!("{wrk}/metrics")).await.1);
    assert_eq!(
        sample(&w, "fiber_link_withdrawals{state=\"COMPLETED\"}"),
        1.0
    );
    assert!(
        sample(
            &w,
            "fiber_link_hub_request_duration_seconds_count{method=\"send_payment\"}"
        ) >= 1.0
    );

    // refused requests are counted by reason
    let bad = SignedClient::new(&api, &s.app_id, "fls_not-the-secret");
    assert_eq!(
        bad.call("health.ping", json!({})).await.unwrap().reason(),
        Some("bad_signature")
    );
    let m = parse_exposition(&get(&format!("{ops_url}/metrics")).await.1);
    assert_eq!(
        sample(
            &m,
            "fiber_link_auth_rejections_total{reason=\"bad_signature\"}"
        ),
        1.0
    );

    // an app id that names no app is refused like a bad signature, and counted apart
    let stranger = SignedClient::new(&api, "app_0000000000000000000000aa", "fls_whatever");
    assert_eq!(
        stranger
            .call("health.ping", json!({}))
            .await
            .unwrap()
            .reason(),
        Some("bad_signature")
    );
    let m = parse_exposition(&get(&format!("{ops_url}/metrics")).await.1);
    assert_eq!(
        sample(
            &m,
            "fiber_link_auth_rejections_total{reason=\"unknown_app\"}"
        ),
        1.0
    );

    // readiness follows the hub, and the permissions each process needs
    s.sim("sim_set_permissions", json!({"deny": ["send_payment"]}))
        .await;
    let (code, body) = get(&format!("{wrk}/healthz/ready")).await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("send_payment refused: the token lacks write(\\\"payments\\\")"),
        "{body}"
    );
    let (code, body) = get(&format!("{ops_url}/healthz/ready")).await;
    assert_eq!(code, 200, "the API does not send payments: {body}");
    s.sim("sim_set_permissions", json!({})).await;
    s.sim("sim_set_faults", json!({"down": true})).await;
    for base in [&wrk, &ops_url] {
        let (code, body) = get(&format!("{base}/healthz/ready")).await;
        assert_eq!(code, 503, "{body}");
    }
    s.sim("sim_set_faults", json!({})).await;

    for p in [&serve, &worker] {
        Command::new("kill")
            .args(["-TERM", &p.id().to_string()])
            .status()
            .unwrap();
    }
    assert!(serve.wait().unwrap().success());
    assert!(worker.wait().unwrap().success());

    let preimage = hex::encode(
        fiber_link_core::crypto::MasterKey::from_hex(&master_hex)
            .unwrap()
            .preimage_key()
            .preimage_for(Uuid::parse_str(&tip_id).unwrap().as_bytes()),
    );
    let mut seen_tip = false;
    let mut seen_withdrawal = false;
    let mut lines = 0;
    for what in ["serve", "worker"] {
        let text = std::fs::read_to_string(logs.join(format!("{what}.log"))).unwrap();
        for secret in [
            master_hex.as_str(),
            s.secret.as_str(),
            token,
            preimage.as_str(),
        ] {
            assert!(
                !text
                    .to_ascii_lowercase()
                    .contains(&secret.to_ascii_lowercase()),
                "a secret is in the {what} log"
            );
        }
        for line in text.lines() {
            lines += 1;
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|_| panic!("not a JSON log line in {what}: {line}"));
            seen_tip |= v["fields"]["tip_id"] == tip_id.as_str();
            seen_withdrawal |= v["fields"]["withdrawal_id"] == wid.as_str();
        }
    }
    assert!(lines > 10, "the processes logged ({lines} lines)");
    assert!(seen_tip, "no log line carries tip_id as a field");
    assert!(
        seen_withdrawal,
        "no log line carries withdrawal_id as a field"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn config_check_and_the_cron_summary() {
    let token = "hub-token-b71c0d";
    let s = Stack::start_with(StackOptions {
        hub_token: Some(token.into()),
        ..Default::default()
    })
    .await;
    if s.skip_on_real_hub("set_permissions, stats, UDT (RUSD), token checks") {
        return;
    }
    s.start_worker().await;
    let ops = Ops::new(&s);
    let run = |extra: &[(&str, &str)], args: &[&str]| {
        let mut c = ops.command(args);
        c.env("FIBER_LINK_HUB_TOKEN", token);
        for (k, v) in extra {
            c.env(k, v);
        }
        async move {
            let out = tokio::task::spawn_blocking(move || c.output().unwrap())
                .await
                .unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).to_string(),
            )
        }
    };
    let (code, out) = run(&[], &["config", "check"]).await;
    assert_eq!(code, 0, "{out}");
    for want in [
        "ok    master key: present",
        "ok    database: reachable and migrated",
        "ok    currency: Fibd matches the hub's chain",
        "ok    asset RUSD: in the hub's udt_cfg_infos as RUSD",
        "ok    on-chain payouts: off",
        "\"hub_token\": \"<from FIBER_LINK_HUB_TOKEN>\"",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    assert!(
        !out.contains(token) && !out.contains(&s.master.to_hex()),
        "{out}"
    );
    let (code, out) = run(&[("FIBER_LINK_CURRENCY", "Fibt")], &["config", "check"]).await;
    assert_eq!(code, 2);
    assert!(
        out.contains("FAIL  currency: configured Fibt but the hub's chain"),
        "{out}"
    );
    let (code, out) = run(&[("FIBER_LINK_HUB_TOKEN", "wrong")], &["config", "check"]).await;
    assert_eq!(code, 2);
    assert!(
        out.contains("FAIL  hub:") && out.contains("Unauthorized"),
        "{out}"
    );
    // every permission the processes need is probed by a harmless call, each reported
    let (_, out) = run(&[], &["config", "check"]).await;
    for want in [
        "ok    hub permission write(\"payments\"): send_payment allowed",
        "ok    hub permission read(\"channels\"): list_channels allowed",
        "ok    hub permission write(\"invoices\"): cancel_invoice allowed",
        "ok    hub store-change stream: subscribe_store_changes offered",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    // a hub without the pubsub module: a warning, not a failure (polling still works)
    s.sim("sim_set_stream", json!({"enabled": false})).await;
    let (code, out) = run(&[], &["config", "check"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "warn  hub store-change stream: the hub does not offer subscribe_store_changes"
        ),
        "{out}"
    );
    s.sim("sim_set_stream", json!({"enabled": true})).await;
    // a token that lacks one permission: config check and ops summary say which, and the
    // probes changed nothing at the hub
    let payments_before = s.sim("sim_stats", json!({})).await["payments"].clone();
    s.sim("sim_set_permissions", json!({"deny": ["send_payment"]}))
        .await;
    let (code, out) = run(&[], &["config", "check"]).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("FAIL  hub permission write(\"payments\"): send_payment refused: the token lacks write(\"payments\") (needed by worker)"),
        "{out}"
    );
    let (code, out) = run(&[], &["ops", "summary"]).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("the hub refuses send_payment: the token lacks write(\"payments\")"),
        "{out}"
    );
    s.sim("sim_set_permissions", json!({})).await;
    assert_eq!(
        s.sim("sim_stats", json!({})).await["payments"],
        payments_before
    );

    let c = s.client();
    s.fund(&c, "bob", "CKB", "5", 1).await;
    let (code, out) = run(&[], &["ops", "summary"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK"), "{out}");
    let (code, out) = run(&[], &["ops", "summary", "--format", "json"]).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["reconcile"]["clean"], true);

    // a corrupted balance and a pause show up; exit 2 for cron
    sqlx::raw_sql(
        "BEGIN; SET LOCAL session_replication_role = replica;
         UPDATE accounts SET balance = balance - 1 WHERE kind = 'author'; COMMIT;",
    )
    .execute(s.store.pool())
    .await
    .unwrap();
    run(&[], &["app", "pause", &s.app_id, "--tips"]).await;
    let (code, out) = run(&[], &["ops", "summary"]).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.starts_with("ALERT"), "{out}");
    assert!(
        out.contains("reconciliation found 1: balance_mismatch 1"),
        "{out}"
    );
    assert!(
        out.contains(&format!("paused: {}: tips", s.app_id)),
        "{out}"
    );
}

/// The runbook's rule: after an incident, backfill and reconcile before tips are accepted again.
/// `app resume` refuses while a paid tip is not credited, and resumes once backfill credited it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tips_reopen_only_after_backfill_makes_the_books_clean() {
    // the worker is down during the incident
    let s = Stack::start().await;
    let c = s.client();
    let ops = Ops::new(&s);
    let t = c.result("tip.create", tip_params("4")).await.unwrap();
    let (code, _, err) = ops
        .run(&[
            "app",
            "pause",
            &s.app_id,
            "--tips",
            "--reason",
            "worker down",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    // a payer pays the invoice issued before the pause: the hub takes it
    s.sim(
        "sim_pay_invoice",
        json!({"invoice": t["invoice"], "delay_ms": 1}),
    )
    .await;
    let hash = t["payment_hash"].as_str().unwrap().to_string();
    let start = Instant::now();
    loop {
        let inv: Value = s
            .hub
            .call("get_invoice", Some(&json!({"payment_hash": hash})))
            .await
            .unwrap();
        if inv["status"] == "Paid" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, out, err) = ops.run(&["app", "resume", &s.app_id, "--tips"]).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("paid_not_credited"), "{out}");
    assert!(err.contains("fiber-link backfill"), "{err}");
    let (_, out, _) = ops.run(&["app", "show", &s.app_id]).await;
    assert!(out.contains("switches: tips PAUSED"), "{out}");

    let (code, out, _) = ops.run(&["backfill", "--since", "1h"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("1 credited now"), "{out}");
    let (code, out, err) = ops.run(&["app", "resume", &s.app_id, "--tips"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let start = Instant::now();
    loop {
        if c.result("tip.create", tip_params("1")).await.is_ok() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "tips did not reopen"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bal = c
        .result("balance.get", json!({"user_id": "bob"}))
        .await
        .unwrap();
    assert_eq!(bal["balances"][0]["available"], "4", "{bal}");
}

/// A withdrawals pause holds every send the hub does not already have: here a payment whose
/// first send failed (the hub erred) is not sent again while paused, and is sent once resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_executor_sends_nothing_new_while_withdrawals_are_paused() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("external_invoice, set_faults") {
        return;
    }
    s.start_worker().await;
    let c = s.client();
    let ops = Ops::new(&s);
    s.fund(&c, "bob", "CKB", "10", 1).await;
    let inv = s
        .sim(
            "sim_external_invoice",
            json!({"amount": "100000000", "outcome": "success"}),
        )
        .await;
    let hash = inv["payment_hash"].as_str().unwrap().to_string();
    // every hub call fails: the first send does not reach it
    s.sim("sim_set_faults", json!({"error_rate": 1.0})).await;
    s.start_payouts().await;
    let w = c
        .result(
            "withdrawal.request",
            json!({"user_id": "bob", "asset": "CKB", "amount": "1.005",
                   "destination": {"kind": "fiber_invoice", "invoice": inv["invoice"]},
                   "idempotency_key": "x1"}),
        )
        .await
        .unwrap();
    let id = w["withdrawal_id"].as_str().unwrap().to_string();
    wait_withdrawal(&c, &id, "SUBMITTING").await;
    let (code, _, err) = ops
        .run(&[
            "app",
            "pause",
            &s.app_id,
            "--withdrawals",
            "--reason",
            "leak",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    // the pause is in force on every instance within 2 s; then the hub recovers
    tokio::time::sleep(Duration::from_millis(2500)).await;
    s.sim("sim_set_faults", json!({})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let payments = |s: &Stack| {
        let hub = s.hub.clone();
        let hash = hash.clone();
        async move {
            let list: Value = hub.call("list_payments", Some(&json!({}))).await.unwrap();
            list["payments"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["payment_hash"] == hash.as_str())
                .count()
        }
    };
    assert_eq!(payments(&s).await, 0, "nothing sent while paused");
    let still = c
        .result("withdrawal.get", json!({"withdrawal_id": id}))
        .await
        .unwrap();
    assert_eq!(still["state"], "SUBMITTING", "{still}");
    // the retried request with the same key is answered with the withdrawal, not refused
    let again = c
        .result(
            "withdrawal.request",
            json!({"user_id": "bob", "asset": "CKB", "amount": "1.005",
                   "destination": {"kind": "fiber_invoice", "invoice": inv["invoice"]},
                   "idempotency_key": "x1"}),
        )
        .await
        .unwrap();
    assert_eq!(again["withdrawal_id"], id.as_str());

    let (code, out, err) = ops
        .run(&["app", "resume", &s.app_id, "--withdrawals"])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    wait_withdrawal(&c, &id, "COMPLETED").await;
    assert_eq!(payments(&s).await, 1, "sent once after the resume");
}

/// The API process is killed after the hub issued a tip's invoice and before the invoice was
/// written to the tip: the tip, stored before the hub was asked, gets its invoice back from the
/// hub by its payment hash, and a payment to it is credited once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_api_killed_between_the_hub_and_the_invoice_write_loses_nothing() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("answer delays") {
        return;
    }
    let ops = Ops::new(&s);
    let (api_port, ops_port) = (free_port(), free_port());
    let mut serve = ops
        .command(&["serve"])
        .env("FIBER_LINK_LISTEN", format!("127.0.0.1:{api_port}"))
        .env("FIBER_LINK_OPS_LISTEN", format!("127.0.0.1:{ops_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let api = format!("http://127.0.0.1:{api_port}");
    let start = Instant::now();
    while get(&format!("{api}/healthz/live")).await.0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // the hub carries out new_invoice at once but answers 5 s later
    s.sim("sim_set_faults", json!({"answer_delay_ms": 5000}))
        .await;
    let c = SignedClient::new(&api, &s.app_id, &s.secret);
    let call = tokio::spawn(async move { c.call("tip.create", tip_params("0.5")).await });
    let start = Instant::now();
    let invoice = loop {
        let r = s.sim("sim_records", json!({})).await;
        if let Some(i) = r["invoices"].as_array().and_then(|a| a.first()) {
            break i.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no invoice at the hub"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert!(
        call.await.unwrap().is_err(),
        "the caller never got an answer"
    );
    s.sim("sim_set_faults", json!({})).await;
    let (id, attached): (Uuid, Option<String>) = sqlx::query_as(
        "SELECT t.id, i.invoice FROM tip_intents t LEFT JOIN tip_invoices i ON i.tip_id = t.id",
    )
    .fetch_one(s.store.pool())
    .await
    .unwrap();
    assert_eq!(attached, None, "killed before the invoice was written");
    // the watcher reads the invoice back from the hub
    s.start_worker().await;
    let start = Instant::now();
    let tip = loop {
        let t = s.store.tip_any_app(id).await.unwrap().unwrap();
        if t.invoice.is_some() {
            break t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the invoice was not recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(tip.payment_hash, invoice["payment_hash"].as_str().unwrap());
    assert_eq!(tip.invoice.as_deref(), invoice["invoice_address"].as_str());
    s.sim(
        "sim_pay_invoice",
        json!({"invoice": tip.invoice, "delay_ms": 1}),
    )
    .await;
    let c = s.client();
    s.wait_state(&c, &id.to_string(), "SETTLED", Duration::from_secs(10))
        .await;
    let credits: i64 = s
        .ledger_count("SELECT count(*) FROM ledger_transactions WHERE kind = 'tip_settle'")
        .await;
    assert_eq!(credits, 1);
}
