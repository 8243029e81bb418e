//! The settlement watcher against the simulator: expiry and late payments, hub faults and
//! outages, several workers at once, and tips whose invoice was never issued.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

async fn settle_count(s: &Stack) -> i64 {
    s.ledger_count("SELECT count(*) FROM ledger_transactions WHERE kind = 'tip_settle'")
        .await
}

#[tokio::test]
async fn an_unpaid_tip_expires_and_a_late_payment_is_still_credited_once() {
    let s = Stack::start_expiring().await;
    if s.skip_on_real_hub("late payments (after_expiry)") {
        return;
    }
    s.start_worker().await;
    let c = s.client();
    let t = c.result("tip.create", tip_params("5")).await.unwrap();
    let id = t["tip_id"].as_str().unwrap();
    let expired = s
        .wait_state(&c, id, "EXPIRED", Duration::from_secs(10))
        .await;
    assert!(expired["ended_at"].is_string());
    // cancelled at the hub
    let hash = fiber_link_fnn::hash256(t["payment_hash"].as_str().unwrap()).unwrap();
    let at_hub = s.hub.get_invoice(hash).await.unwrap();
    assert_eq!(at_hub.status, fiber_link_fnn::CkbInvoiceStatus::Cancelled);
    let bal = c
        .result("balance.get", json!({"user_id": "bob"}))
        .await
        .unwrap();
    assert_eq!(bal["balances"][0]["incoming"], "0");

    // the payment arrives anyway
    s.sim(
        "sim_pay_invoice",
        json!({"invoice": t["invoice"], "after_expiry": true}),
    )
    .await;
    s.wait_state(&c, id, "SETTLED", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(settle_count(&s).await, 1);
    let bal = c
        .result("balance.get", json!({"user_id": "bob"}))
        .await
        .unwrap();
    assert_eq!(bal["balances"][0]["available"], "5");
    let full = c
        .result("tip.get", json!({"tip_id": id, "include_events": true}))
        .await
        .unwrap();
    let path: Vec<String> = full["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}>{}",
                e["from_state"].as_str().unwrap_or("-"),
                e["to_state"].as_str().unwrap()
            )
        })
        .collect();
    assert!(path.contains(&"UNPAID>EXPIRED".to_string()), "{path:?}");
    assert!(path.contains(&"EXPIRED>SETTLED".to_string()), "{path:?}");
}

#[tokio::test]
async fn a_received_payment_shows_pending_then_settles() {
    // the payment stays Received for 1.5 s before it is Paid
    let s = Stack::start_with(StackOptions {
        settle_delay: Duration::from_millis(1500),
        ..Default::default()
    })
    .await;
    if s.skip_on_real_hub("settle delay") {
        return;
    }
    s.start_worker().await;
    let c = s.client();
    let t = c.result("tip.create", tip_params("1")).await.unwrap();
    let id = t["tip_id"].as_str().unwrap();
    s.sim("sim_pay_invoice", json!({"invoice": t["invoice"]}))
        .await;
    let pending = s
        .wait_state(&c, id, "PENDING", Duration::from_secs(5))
        .await;
    assert!(pending["pending_at"].is_string());
    let bal = c
        .result("balance.get", json!({"user_id": "bob"}))
        .await
        .unwrap();
    assert_eq!(
        bal["balances"][0]["incoming"], "1",
        "a pending tip is incoming"
    );
    s.wait_state(&c, id, "SETTLED", Duration::from_secs(10))
        .await;
    let full = c
        .result("tip.get", json!({"tip_id": id, "include_events": true}))
        .await
        .unwrap();
    let to: Vec<&str> = full["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to_state"].as_str().unwrap())
        .collect();
    assert_eq!(to[to.len() - 2..], ["PENDING", "SETTLED"], "{to:?}");
}

#[tokio::test]
async fn hub_outage_and_errors_never_fail_a_tip_and_paid_tips_are_credited_after() {
    let s = Stack::start_with(StackOptions {
        invoice_expiry: Duration::from_secs(3600),
        ..Default::default()
    })
    .await;
    if s.skip_on_real_hub("set_faults") {
        return;
    }
    let c = s.client();
    let mut tips = Vec::new();
    for i in 0..12 {
        let mut p = tip_params("1");
        p["post_id"] = json!(format!("post-{i}"));
        tips.push(c.result("tip.create", p).await.unwrap());
    }
    s.start_worker().await;
    s.start_worker().await;
    // half the hub's answers fail while the payments come in
    s.sim("sim_set_faults", json!({"error_rate": 0.5})).await;
    for t in &tips[..6] {
        s.sim("sim_pay_invoice", json!({"invoice": t["invoice"]}))
            .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // then the hub is down altogether
    s.sim("sim_set_faults", json!({"down": true})).await;
    for t in &tips[6..9] {
        s.sim("sim_pay_invoice", json!({"invoice": t["invoice"]}))
            .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let states: Vec<String> = sqlx::query_scalar("SELECT DISTINCT state FROM tip_intents")
        .fetch_all(s.store.pool())
        .await
        .unwrap();
    assert!(
        !states.iter().any(|s| s == "FAILED" || s == "EXPIRED"),
        "no tip fails for the hub: {states:?}"
    );
    let failures: i64 = s
        .ledger_count("SELECT COALESCE(max(check_failures), 0)::bigint FROM tip_intents")
        .await;
    assert!(failures > 0, "the outage was seen");
    // back up
    s.sim("sim_set_faults", json!({})).await;
    for t in &tips[..9] {
        s.wait_state(
            &c,
            t["tip_id"].as_str().unwrap(),
            "SETTLED",
            Duration::from_secs(15),
        )
        .await;
    }
    for t in &tips[9..] {
        let got = c
            .result("tip.get", json!({"tip_id": t["tip_id"]}))
            .await
            .unwrap();
        assert_eq!(got["state"], "UNPAID");
    }
    assert_eq!(settle_count(&s).await, 9);
    let bal = c
        .result("balance.get", json!({"user_id": "bob"}))
        .await
        .unwrap();
    assert_eq!(bal["balances"][0]["available"], "9");
}

#[tokio::test]
async fn tip_create_during_an_outage_says_retry_and_the_retry_succeeds() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("set_faults") {
        return;
    }
    let c = s.client();
    s.sim("sim_set_faults", json!({"down": true})).await;
    let mut p = tip_params("1");
    p["idempotency_key"] = json!("k-outage");
    let a = c.call("tip.create", p.clone()).await.unwrap();
    assert_eq!(a.reason(), Some("hub_unavailable"));
    assert_eq!(a.code(), Some(-32005));
    s.sim("sim_set_faults", json!({})).await;
    let t = c.result("tip.create", p).await.unwrap();
    assert!(t["invoice"].is_string());
    assert_eq!(s.ledger_count("SELECT count(*) FROM tip_intents").await, 1);
}

#[tokio::test]
async fn the_worker_completes_a_tip_whose_invoice_was_never_returned() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("set_faults") {
        return;
    }
    let c = s.client();
    s.sim("sim_set_faults", json!({"down": true})).await;
    let a = c.call("tip.create", tip_params("2")).await.unwrap();
    assert_eq!(a.reason(), Some("hub_unavailable"));
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tip_intents")
        .fetch_one(s.store.pool())
        .await
        .unwrap();
    s.sim("sim_set_faults", json!({})).await;
    s.start_worker().await;
    // the worker issues the invoice (same derived preimage) and the tip can be paid
    let start = std::time::Instant::now();
    let invoice = loop {
        let t = c
            .result("tip.get", json!({"tip_id": id.to_string()}))
            .await
            .unwrap();
        if let Some(inv) = t["invoice"].as_str() {
            break inv.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no invoice issued: {t}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    s.sim("sim_pay_invoice", json!({"invoice": invoice})).await;
    s.wait_state(&c, &id.to_string(), "SETTLED", Duration::from_secs(10))
        .await;
    assert_eq!(settle_count(&s).await, 1);
}

#[tokio::test]
async fn a_tip_without_invoice_that_expired_fails_without_money_moving() {
    let s = Stack::start_expiring().await;
    if s.skip_on_real_hub("set_faults") {
        return;
    }
    let c = s.client();
    s.sim("sim_set_faults", json!({"down": true})).await;
    let a = c.call("tip.create", tip_params("2")).await.unwrap();
    assert_eq!(a.reason(), Some("hub_unavailable"));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    s.sim("sim_set_faults", json!({})).await;
    s.start_worker().await;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tip_intents")
        .fetch_one(s.store.pool())
        .await
        .unwrap();
    s.wait_state(&c, &id.to_string(), "FAILED", Duration::from_secs(10))
        .await;
    assert_eq!(settle_count(&s).await, 0);
}

#[tokio::test]
async fn two_workers_and_many_status_requests_never_credit_twice() {
    let s = Stack::start().await;
    let c = s.client();
    let mut tips = Vec::new();
    for i in 0..40 {
        let mut p = tip_params("0.1");
        p["post_id"] = json!(format!("p{i}"));
        p["to_user_id"] = json!(format!("author-{}", i % 4));
        tips.push(c.result("tip.create", p).await.unwrap());
    }
    let mut a = s.worker_settings();
    a.batch = 7;
    s.start_worker_with(a.clone()).await;
    s.start_worker_with(a).await;
    for t in &tips {
        s.sim("sim_pay_invoice", json!({"invoice": t["invoice"]}))
            .await;
    }
    // status requests hammering the same tips meanwhile (each brings its next check forward),
    // and the credit path called directly as a reconciliation sweep would
    let mut readers = Vec::new();
    for r in 0..4 {
        let c = s.client();
        let ids: Vec<String> = tips
            .iter()
            .map(|t| t["tip_id"].as_str().unwrap().to_string())
            .collect();
        readers.push(tokio::spawn(async move {
            for round in 0..10 {
                for id in ids.iter().skip((r + round) % 3) {
                    let _ = c.result("tip.get", json!({"tip_id": id})).await;
                }
            }
        }));
    }
    for t in &tips {
        s.wait_state(
            &c,
            t["tip_id"].as_str().unwrap(),
            "SETTLED",
            Duration::from_secs(20),
        )
        .await;
    }
    for t in &tips {
        let id = uuid::Uuid::parse_str(t["tip_id"].as_str().unwrap()).unwrap();
        let again = s.store.credit_tip(id, "test", None).await.unwrap();
        assert_eq!(again, fiber_link_store::tips::CreditOutcome::AlreadySettled);
    }
    for r in readers {
        r.await.unwrap();
    }
    assert_eq!(settle_count(&s).await, 40, "one settle transaction per tip");
    let per_tip: i64 =
        s.ledger_count("SELECT COALESCE(max(n), 0) FROM (SELECT count(*) AS n FROM ledger_transactions GROUP BY tip_id) x").await;
    assert_eq!(per_tip, 1);
    let total: String =
        sqlx::query_scalar("SELECT sum(balance)::text FROM accounts WHERE kind = 'author'")
            .fetch_one(s.store.pool())
            .await
            .unwrap();
    assert_eq!(
        total,
        (40u64 * 10_000_000).to_string(),
        "authors hold exactly what was paid"
    );
    let unbalanced: i64 = s
        .ledger_count("SELECT count(*) FROM (SELECT transaction_id FROM ledger_entries GROUP BY transaction_id, asset HAVING sum(amount) <> 0) x")
        .await;
    assert_eq!(unbalanced, 0);
    let drift: i64 = s
        .ledger_count(
            "SELECT count(*) FROM accounts a WHERE a.kind = 'author'
               AND a.balance <> (SELECT COALESCE(sum(amount), 0) FROM ledger_entries e WHERE e.account_id = a.id)",
        )
        .await;
    assert_eq!(
        drift, 0,
        "every author balance equals the sum of its entries"
    );
}

#[tokio::test]
async fn the_ledger_refuses_edits_unbalanced_transactions_and_overdrafts() {
    let s = Stack::start().await;
    s.start_worker().await;
    let c = s.client();
    let t = c.result("tip.create", tip_params("1")).await.unwrap();
    s.sim("sim_pay_invoice", json!({"invoice": t["invoice"]}))
        .await;
    s.wait_state(
        &c,
        t["tip_id"].as_str().unwrap(),
        "SETTLED",
        Duration::from_secs(10),
    )
    .await;
    let pool = s.store.pool();
    let e = sqlx::query("UPDATE ledger_entries SET amount = amount * 2")
        .execute(pool)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let e = sqlx::query("DELETE FROM ledger_transactions")
        .execute(pool)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    // an unbalanced transaction is refused at commit
    let mut tx = pool.begin().await.unwrap();
    let (acct, app): (i64, String) =
        sqlx::query_as("SELECT id, app_id FROM accounts WHERE kind = 'author'")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    let txid: i64 = sqlx::query_scalar(
        "INSERT INTO ledger_transactions (app_id, kind, idempotency_key) VALUES ($1, 'test', 'test:1') RETURNING id",
    )
    .bind(&app)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query("INSERT INTO ledger_entries (transaction_id, account_id, app_id, asset, amount) VALUES ($1, $2, $3, 'CKB', 5)")
        .bind(txid)
        .bind(acct)
        .bind(&app)
        .execute(&mut *tx)
        .await
        .unwrap();
    let e = tx.commit().await.unwrap_err();
    assert!(e.to_string().contains("does not balance"), "{e}");
    // an author can never go below zero
    let e = sqlx::query(
        "WITH t AS (INSERT INTO ledger_transactions (app_id, kind, idempotency_key) VALUES ($2, 'test', 'test:2') RETURNING id)
         INSERT INTO ledger_entries (transaction_id, account_id, app_id, asset, amount) SELECT id, $1, $2, 'CKB', -200000000 FROM t",
    )
    .bind(acct)
    .bind(&app)
    .execute(pool)
    .await
    .unwrap_err();
    assert!(e.to_string().contains("check constraint"), "{e}");
    assert_eq!(settle_count(&s).await, 1);
}

#[tokio::test]
async fn a_cancel_whose_outcome_was_not_recorded_still_ends_expired() {
    // The worker cancelled the expired invoice at the hub and died before recording it: the
    // next check finds the invoice Cancelled after the tip's expiry and records EXPIRED.
    let s = Stack::start_expiring().await;
    let c = s.client();
    let t = c.result("tip.create", tip_params("1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let hash = fiber_link_fnn::hash256(t["payment_hash"].as_str().unwrap()).unwrap();
    s.hub.cancel_invoice(hash).await.unwrap();
    s.start_worker().await;
    let done = s
        .wait_state(
            &c,
            t["tip_id"].as_str().unwrap(),
            "EXPIRED",
            Duration::from_secs(10),
        )
        .await;
    assert!(done["ended_at"].is_string());
    // and a tip the hub cancelled before its expiry is FAILED
    let s2 = Stack::start().await;
    s2.start_worker().await;
    let c2 = s2.client();
    let t2 = c2.result("tip.create", tip_params("1")).await.unwrap();
    let hash = fiber_link_fnn::hash256(t2["payment_hash"].as_str().unwrap()).unwrap();
    s2.hub.cancel_invoice(hash).await.unwrap();
    s2.wait_state(
        &c2,
        t2["tip_id"].as_str().unwrap(),
        "FAILED",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(settle_count(&s).await + settle_count(&s2).await, 0);
}
