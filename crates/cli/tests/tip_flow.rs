//! The tip flow through real HTTP and real Postgres: a signed tip.create, the invoice, payment at
//! the simulator, settlement by the worker, the ledger; and every bad request refused, writing
//! nothing.

mod common;

use common::*;
use fiber_link_client::fresh_nonce;
use serde_json::{json, Value};
use std::time::Duration;

async fn tip_count(s: &Stack) -> i64 {
    s.ledger_count("SELECT count(*) FROM tip_intents").await
}

#[tokio::test]
async fn a_paid_tip_settles_once_and_credits_the_author() {
    let s = Stack::start().await;
    s.start_worker().await;
    let c = s.client();
    let t = c.result("tip.create", tip_params("1.5")).await.unwrap();
    assert_eq!(t["state"], "UNPAID");
    assert_eq!(t["amount"], "1.5");
    let invoice: fiber_types::CkbInvoice = t["invoice"]
        .as_str()
        .unwrap()
        .parse()
        .expect("a signed Fiber invoice");
    assert_eq!(invoice.amount(), Some(150_000_000), "1.5 CKB in shannons");
    assert_eq!(invoice.currency, fiber_types::Currency::Fibd);
    assert!(invoice.udt_type_script().is_none());
    let expiry = invoice.expiry_time().expect("explicit expiry").as_secs();
    assert!((3590..=3600).contains(&expiry), "expiry {expiry}");
    assert_eq!(
        format!("0x{}", hex::encode(invoice.payment_hash().as_ref())),
        t["payment_hash"].as_str().unwrap()
    );
    assert!(invoice.check_signature().is_ok());

    let before = c
        .result("balance.get", json!({"user_id": "bob"}))
        .await
        .unwrap();
    assert_eq!(
        before["balances"][0]["incoming"], "0",
        "an unpaid invoice is not income"
    );
    assert_eq!(before["balances"][0]["awaiting_payment"], "1.5");
    assert_eq!(before["balances"][0]["available"], "0");

    s.sim("sim_pay_invoice", json!({"invoice": t["invoice"]}))
        .await;
    let tip_id = t["tip_id"].as_str().unwrap();
    let done = s
        .wait_state(&c, tip_id, "SETTLED", Duration::from_secs(10))
        .await;
    assert!(done["settled_at"].is_string());

    let bal = c
        .result("balance.get", json!({"user_id": "bob"}))
        .await
        .unwrap();
    assert_eq!(bal["balances"][0]["asset"], "CKB");
    assert_eq!(bal["balances"][0]["available"], "1.5");
    assert_eq!(bal["balances"][0]["incoming"], "0");
    assert_eq!(bal["balances"][0]["awaiting_payment"], "0");
    // exactly one balanced ledger transaction, for the tip's amount
    let id = uuid::Uuid::parse_str(tip_id).unwrap();
    assert_eq!(s.store.tip_ledger_transactions(id).await.unwrap(), 1);
    let entries: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.kind, e.amount::text FROM ledger_entries e JOIN accounts a ON a.id = e.account_id ORDER BY a.kind",
    )
    .fetch_all(s.store.pool())
    .await
    .unwrap();
    assert_eq!(
        entries,
        vec![
            ("author".into(), "150000000".into()),
            ("hub".into(), "-150000000".into())
        ]
    );
    // the timeline shows the whole path
    let full = c
        .result("tip.get", json!({"tip_id": tip_id, "include_events": true}))
        .await
        .unwrap();
    let states: Vec<&str> = full["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to_state"].as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"UNPAID"));
    assert_eq!(states.last(), Some(&"SETTLED"));
    // the first two come from the tip row itself: created, then the invoice the API attached
    let first: Vec<(&str, &str)> = full["events"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|e| (e["detail"].as_str().unwrap(), e["source"].as_str().unwrap()))
        .collect();
    assert_eq!(first, [("created", "api"), ("invoice issued", "api")]);
    let at = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    assert_eq!(at(&full["events"][0]["at"]), at(&full["created_at"]));
    assert_eq!(at(&full["events"][1]["at"]), at(&full["invoice_at"]));
}

#[tokio::test]
async fn udt_tips_carry_the_asset_script_and_rest_works_too() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("UDT (RUSD)") {
        return;
    }
    let c = s.client();
    let body = serde_json::to_vec(&json!({"post_id": 7, "from_user_id": 1, "to_user_id": 2, "asset": "RUSD", "amount": "2.5"})).unwrap();
    let a = c.post_signed("/tips", body).await.unwrap();
    assert_eq!(a.status, 201, "{:?}", a.body);
    let invoice: fiber_types::CkbInvoice = a.body["invoice"].as_str().unwrap().parse().unwrap();
    assert_eq!(invoice.amount(), Some(2_500_000), "RUSD has 6 decimals");
    let script = invoice.udt_type_script().expect("UDT invoice");
    let want = udt_script();
    let js: ckb_jsonrpc_types::Script = script.clone().into();
    assert_eq!(
        serde_json::to_value(js).unwrap(),
        json!({"code_hash": want.code_hash, "hash_type": want.hash_type, "args": want.args})
    );
    // REST errors come with an HTTP status
    let bad = c
        .post_signed("/tips", serde_json::to_vec(&json!({"post_id": 7})).unwrap())
        .await
        .unwrap();
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["data"]["reason"], "invalid_params");
}

#[tokio::test]
async fn idempotency_key_returns_the_same_tip_and_refuses_other_params() {
    let s = Stack::start().await;
    let c = s.client();
    let mut p = tip_params("3");
    p["idempotency_key"] = json!("order-1");
    let a = c.result("tip.create", p.clone()).await.unwrap();
    let b = c.result("tip.create", p.clone()).await.unwrap();
    assert_eq!(a["tip_id"], b["tip_id"]);
    assert_eq!(a["invoice"], b["invoice"]);
    p["amount"] = json!("4");
    let e = c.call("tip.create", p).await.unwrap();
    assert_eq!(e.reason(), Some("idempotency_key_reused"));
    assert_eq!(e.code(), Some(-32003));
    assert_eq!(tip_count(&s).await, 1);
}

#[tokio::test]
async fn a_timed_out_create_is_recovered_by_the_retry() {
    // The hub answers slower than the API waits: the first request times out after the hub
    // created the invoice; the retry with the same key gets "invoice already exists" and reads
    // the invoice back.
    let s = Stack::start_with(StackOptions {
        hub_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    if s.skip_on_real_hub("set_faults, stats") {
        return;
    }
    let c = s.client();
    let mut p = tip_params("1");
    p["idempotency_key"] = json!("retry-1");
    s.sim("sim_set_faults", json!({"latency_ms": 600})).await;
    let first = c.call("tip.create", p.clone()).await.unwrap();
    assert_eq!(first.reason(), Some("hub_unavailable"), "{:?}", first.body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.sim("sim_set_faults", json!({})).await;
    let second = c.result("tip.create", p).await.unwrap();
    let inv: fiber_types::CkbInvoice = second["invoice"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        format!("0x{}", hex::encode(inv.payment_hash().as_ref())),
        second["payment_hash"].as_str().unwrap()
    );
    let stats = s.sim("sim_stats", json!({})).await;
    assert_eq!(
        stats["invoices"]["Open"], 1,
        "one invoice at the hub: {stats}"
    );
    assert_eq!(tip_count(&s).await, 1);
}

fn bad_params() -> Vec<(&'static str, Value, &'static str)> {
    let with = |k: &str, v: Value| {
        let mut p = tip_params("1");
        p[k] = v;
        p
    };
    vec![
        ("zero", with("amount", json!("0")), "amount_not_positive"),
        ("negative", with("amount", json!("-1")), "amount_malformed"),
        ("exponent", with("amount", json!("1e3")), "amount_malformed"),
        (
            "too precise",
            with("amount", json!("0.000000001")),
            "amount_too_many_decimals",
        ),
        ("number", with("amount", json!(1.5)), "amount_not_string"),
        (
            "over max",
            with("amount", json!("1000.00000001")),
            "amount_too_large",
        ),
        (
            "unknown asset",
            with("asset", json!("DOGE")),
            "unknown_asset",
        ),
        (
            "long message",
            with("message", json!("x".repeat(281))),
            "message_too_long",
        ),
        ("self tip", with("to_user_id", json!("alice")), "self_tip"),
        ("empty post", with("post_id", json!("")), "empty_id"),
        ("empty user", with("from_user_id", json!("")), "empty_id"),
        (
            "unknown field",
            with("tip_to", json!("x")),
            "invalid_params",
        ),
        ("missing field", json!({"post_id": "p"}), "invalid_params"),
        ("params array", json!(["p1"]), "params_not_object"),
    ]
}

#[tokio::test]
async fn bad_params_get_a_clear_error_and_write_nothing() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("stats") {
        return;
    }
    let c = s.client();
    for (what, p, reason) in bad_params() {
        let a = c.call("tip.create", p).await.unwrap();
        assert_eq!(a.reason(), Some(reason), "{what}: {:?}", a.body);
        assert_eq!(a.code(), Some(-32602), "{what}");
        assert!(
            a.body["error"]["message"].as_str().unwrap().len() > 10,
            "{what}: a sentence"
        );
    }
    assert_eq!(tip_count(&s).await, 0);
    assert_eq!(s.ledger_count("SELECT count(*) FROM users").await, 0);
    let stats = s.sim("sim_stats", json!({})).await;
    assert!(
        stats["calls"].get("new_invoice").is_none(),
        "no hub call for a bad request"
    );
}

/// `tip.create` records its nonce in the statement that writes the tip, many requests to a
/// statement; reads record theirs without waiting for the disk; everything else durably. Each
/// way, a replay is refused as one, also when the copies arrive at once and share a batch.
#[tokio::test]
async fn every_replay_is_refused_whatever_the_method_and_however_fast() {
    let s = Stack::start().await;
    let c = s.client();
    let now = chrono::Utc::now().timestamp();
    // n copies of one request, sent at once
    let post_all = |h: Vec<(&'static str, String)>, body: Vec<u8>, n: usize| {
        let sends: Vec<_> = (0..n)
            .map(|_| {
                let (c, h, body) = (c.clone(), h.clone(), body.clone());
                tokio::spawn(async move { c.post_raw("/rpc", &h, body).await.unwrap() })
            })
            .collect();
        async move {
            let mut answers = Vec::new();
            for s in sends {
                answers.push(s.await.unwrap());
            }
            answers
        }
    };

    // eight copies of one signed tip.create at once: one tip, seven refusals
    let body = c.request_body("tip.create", tip_params("2"));
    let answers = post_all(c.headers(now, &fresh_nonce(), &body), body, 8).await;
    let created: Vec<_> = answers.iter().filter(|a| a.result().is_some()).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|a| a.result().is_none())
            .all(|a| a.status == 401 && a.reason() == Some("replayed_nonce")),
        "{answers:?}"
    );
    assert_eq!(tip_count(&s).await, 1);

    // eight requests with one idempotency key at once (fresh nonces): one tip, eight answers
    let mut p = tip_params("3");
    p["idempotency_key"] = json!("burst-1");
    let sends: Vec<_> = (0..8)
        .map(|_| {
            let (c, p) = (c.clone(), p.clone());
            tokio::spawn(async move { c.result("tip.create", p).await.unwrap() })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for s in sends {
        ids.insert(s.await.unwrap()["tip_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(tip_count(&s).await, 2);

    // a refused tip.create, replayed: the second answer is the replay's
    let mut bad = tip_params("2");
    bad["amount"] = json!("-1");
    let body = c.request_body("tip.create", bad);
    let h = c.headers(now, &fresh_nonce(), &body);
    let first = c.post_raw("/rpc", &h, body.clone()).await.unwrap();
    assert_eq!(first.code(), Some(-32602), "{:?}", first.body);
    let again = c.post_raw("/rpc", &h, body).await.unwrap();
    assert_eq!(again.reason(), Some("replayed_nonce"), "{:?}", again.body);

    // the same over REST
    let body = serde_json::to_vec(&tip_params("4")).unwrap();
    let h = c.headers(now, &fresh_nonce(), &body);
    let first = c.post_raw("/tips", &h, body.clone()).await.unwrap();
    assert_eq!(first.status, 201, "{:?}", first.body);
    let again = c.post_raw("/tips", &h, body).await.unwrap();
    assert_eq!(again.status, 401, "{:?}", again.body);
    assert_eq!(
        again.body["error"]["data"]["reason"].as_str(),
        Some("replayed_nonce")
    );
    assert_eq!(tip_count(&s).await, 3);

    // a read (its nonce is written without waiting for the disk), an unknown method and a
    // malformed body (theirs durably): each replay refused, even four at once
    let tip_id = ids.into_iter().next().unwrap();
    for body in [
        c.request_body("tip.get", json!({"tip_id": tip_id})),
        c.request_body("tip.delete", json!({})),
        b"{not json".to_vec(),
    ] {
        let answers = post_all(c.headers(now, &fresh_nonce(), &body), body.clone(), 4).await;
        let replays = answers
            .iter()
            .filter(|a| a.reason() == Some("replayed_nonce"))
            .count();
        assert_eq!(replays, 3, "{answers:?}");
    }
    assert_eq!(tip_count(&s).await, 3);
}

/// What a case is, its headers, its body, and the reason it must be refused with.
type AuthCase<'a> = (&'a str, Vec<(&'static str, String)>, Vec<u8>, &'a str);

#[tokio::test]
async fn malformed_requests_and_bad_auth_are_refused() {
    let s = Stack::start().await;
    let c = s.client();
    let good = c.request_body("tip.create", tip_params("1"));
    let now = chrono::Utc::now().timestamp();

    // envelope
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("malformed JSON", b"{not json".to_vec(), "parse_error"),
        (
            "wrong jsonrpc",
            br#"{"jsonrpc":"1.0","id":1,"method":"health.ping"}"#.to_vec(),
            "invalid_request",
        ),
        (
            "no id",
            br#"{"jsonrpc":"2.0","method":"health.ping"}"#.to_vec(),
            "invalid_request",
        ),
        (
            "batch",
            br#"[{"jsonrpc":"2.0","id":1,"method":"health.ping"}]"#.to_vec(),
            "invalid_request",
        ),
        (
            "unknown method",
            br#"{"jsonrpc":"2.0","id":1,"method":"tip.delete","params":{}}"#.to_vec(),
            "method_not_found",
        ),
    ];
    for (what, body, reason) in cases {
        let a = c.post_signed("/rpc", body).await.unwrap();
        assert_eq!(a.reason(), Some(reason), "{what}: {:?}", a.body);
    }

    // headers and signature
    let signed = |ts: i64, nonce: &str, body: &[u8]| c.headers(ts, nonce, body);
    let mut cases: Vec<AuthCase> = Vec::new();
    cases.push(("no headers", vec![], good.clone(), "missing_header"));
    let mut h = signed(now, &fresh_nonce(), &good);
    h.retain(|(k, _)| *k != "x-nonce");
    cases.push(("missing nonce", h, good.clone(), "missing_header"));
    let mut h = signed(now, &fresh_nonce(), &good);
    h[3].1 = "zz".into();
    cases.push(("malformed signature", h, good.clone(), "malformed_header"));
    let mut h = signed(now, &fresh_nonce(), &good);
    h[1].1 = "12a".into();
    cases.push(("malformed ts", h, good.clone(), "malformed_header"));
    let mut h = signed(now, "short", &good);
    h[2].1 = "short".into();
    cases.push(("short nonce", h, good.clone(), "malformed_header"));
    cases.push((
        "stale",
        signed(now - 301, &fresh_nonce(), &good),
        good.clone(),
        "stale_timestamp",
    ));
    cases.push((
        "future",
        signed(now + 301, &fresh_nonce(), &good),
        good.clone(),
        "future_timestamp",
    ));
    let mut h = signed(now, &fresh_nonce(), &good);
    let mut sig = h[3].1.clone().into_bytes();
    sig[0] = if sig[0] == b'a' { b'b' } else { b'a' };
    h[3].1 = String::from_utf8(sig).unwrap();
    cases.push(("wrong signature", h, good.clone(), "bad_signature"));
    let tampered = c.request_body("tip.create", tip_params("100"));
    cases.push((
        "tampered body",
        signed(now, &fresh_nonce(), &good),
        tampered,
        "bad_signature",
    ));
    let mut h = signed(now, &fresh_nonce(), &good);
    h[0].1 = "app_000000000000000000000000".into();
    // an app id that names no app is answered exactly like a wrong signature: a caller learns
    // nothing about which apps exist
    cases.push(("unknown app", h, good.clone(), "bad_signature"));
    let mut errors = std::collections::HashMap::new();
    for (what, h, body, reason) in cases {
        let a = c.post_raw("/rpc", &h, body).await.unwrap();
        assert_eq!(a.status, 401, "{what}: {:?}", a.body);
        assert_eq!(a.reason(), Some(reason), "{what}: {:?}", a.body);
        errors.insert(what, a.body["error"].clone());
    }
    assert_eq!(errors["unknown app"], errors["wrong signature"]);

    // a replayed request
    let h = signed(now, &fresh_nonce(), &good);
    let first = c.post_raw("/rpc", &h, good.clone()).await.unwrap();
    assert!(first.result().is_some(), "{:?}", first.body);
    let again = c.post_raw("/rpc", &h, good.clone()).await.unwrap();
    assert_eq!(again.reason(), Some("replayed_nonce"));

    // over 64 KiB
    let mut big = tip_params("1");
    big["message"] = json!("x".repeat(70 * 1024));
    let body = c.request_body("tip.create", big);
    let a = c.post_signed("/rpc", body).await.unwrap();
    assert_eq!(a.status, 413);
    assert_eq!(a.reason(), Some("body_too_large"));

    assert_eq!(
        tip_count(&s).await,
        1,
        "only the one good request wrote a tip"
    );
}

#[tokio::test]
async fn secrets_rotate_with_an_overlap_and_revoke() {
    let s = Stack::start().await;
    let old = s.client();
    let seal = s.master.secret_box();
    let new_secret = fiber_link_core::crypto::generate_app_secret();
    s.store
        .rotate_secret(
            &s.app_id,
            Duration::from_secs(2),
            |sid| seal.seal(&format!("{}/{sid}", s.app_id), &new_secret),
            "test",
        )
        .await
        .unwrap();
    let new = fiber_link_client::SignedClient::new(&s.api_url, &s.app_id, &new_secret);
    assert!(
        old.result("health.ping", json!({})).await.is_ok(),
        "old secret works during the overlap"
    );
    assert!(
        new.result("health.ping", json!({})).await.is_ok(),
        "new secret works"
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        old.call("health.ping", json!({})).await.unwrap().reason(),
        Some("bad_signature"),
        "old secret ended"
    );
    assert!(new.result("health.ping", json!({})).await.is_ok());

    // rotate again and revoke the previous one at once
    let third = fiber_link_core::crypto::generate_app_secret();
    s.store
        .rotate_secret(
            &s.app_id,
            Duration::from_secs(3600),
            |sid| seal.seal(&format!("{}/{sid}", s.app_id), &third),
            "test",
        )
        .await
        .unwrap();
    assert!(new.result("health.ping", json!({})).await.is_ok());
    s.store
        .revoke_secrets(&s.app_id, fiber_link_store::apps::Revoke::Previous, "test")
        .await
        .unwrap();
    assert_eq!(
        new.call("health.ping", json!({})).await.unwrap().reason(),
        Some("bad_signature"),
        "revoked"
    );
    let third_c = fiber_link_client::SignedClient::new(&s.api_url, &s.app_id, &third);
    assert!(third_c.result("health.ping", json!({})).await.is_ok());
}

#[tokio::test]
async fn apps_cannot_see_each_other() {
    let s = Stack::start().await;
    s.start_worker().await;
    let a = s.client();
    let b = s.second_app().await;
    let t = a.result("tip.create", tip_params("2")).await.unwrap();
    s.sim("sim_pay_invoice", json!({"invoice": t["invoice"]}))
        .await;
    s.wait_state(
        &a,
        t["tip_id"].as_str().unwrap(),
        "SETTLED",
        Duration::from_secs(10),
    )
    .await;
    let e = b
        .call("tip.get", json!({"tip_id": t["tip_id"]}))
        .await
        .unwrap();
    assert_eq!(e.reason(), Some("tip_not_found"));
    let bal = b
        .result("balance.get", json!({"user_id": "bob"}))
        .await
        .unwrap();
    assert_eq!(
        bal["balances"][0]["available"], "0",
        "app B's bob is another person"
    );
    let bal = a
        .result("balance.get", json!({"user_id": "bob"}))
        .await
        .unwrap();
    assert_eq!(bal["balances"][0]["available"], "2");
}

#[tokio::test]
async fn rate_limits_have_their_own_error() {
    let s = Stack::start_with(StackOptions {
        rate_per_app_user: fiber_link_api::Rate {
            per_second: 1,
            burst: 2,
        },
        ..Default::default()
    })
    .await;
    let c = s.client();
    let mut reasons = Vec::new();
    for _ in 0..4 {
        let a = c.call("tip.create", tip_params("1")).await.unwrap();
        reasons.push(a.reason().map(str::to_string));
    }
    assert_eq!(reasons[0], None);
    assert_eq!(reasons[1], None);
    assert_eq!(reasons[3].as_deref(), Some("rate_limited_user"));
    let a = c.call("tip.create", tip_params("1")).await.unwrap();
    assert_eq!(a.status, 429);
    assert_eq!(a.code(), Some(-32029));
    // another user of the same app is not limited
    let mut p = tip_params("1");
    p["from_user_id"] = json!("carol");
    assert!(c.result("tip.create", p).await.is_ok());
}

#[tokio::test]
async fn the_hub_token_is_sent_as_a_bearer_header() {
    let s = Stack::start_with(StackOptions {
        hub_token: Some("biscuit-123".into()),
        ..Default::default()
    })
    .await;
    if s.skip_on_real_hub("token checks") {
        return;
    }
    let t = s
        .client()
        .result("tip.create", tip_params("1"))
        .await
        .unwrap();
    assert!(t["invoice"].is_string());
    let wrong = Stack::start_with(StackOptions {
        hub_token: Some("biscuit-123".into()),
        client_hub_token: Some("other".into()),
        ..Default::default()
    })
    .await;
    let a = wrong
        .client()
        .call("tip.create", tip_params("1"))
        .await
        .unwrap();
    // the hub answered and refused: the caller is told so, with the method, not "did not answer"
    assert_eq!(a.reason(), Some("hub_refused"), "{:?}", a.body);
    assert_eq!(a.code(), Some(-32005));
    let msg = a.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("new_invoice") && msg.contains("refused"),
        "{msg}"
    );
    let e = wrong.hub.node_info().await.unwrap_err();
    assert!(
        matches!(&e, fiber_link_fnn::HubError::Unauthorized(m) if m == "node_info"),
        "{e}"
    );
    assert!(e.to_string().contains("node_info"), "{e}");
}

/// A tip's invoice is stored once: a second attach (a concurrent request, the watcher) leaves
/// the first, and the table refuses any change or removal, so the invoice a payer was shown is
/// the one the tip settles against.
#[tokio::test]
async fn a_tips_invoice_is_stored_once_and_never_changed() {
    let s = Stack::start().await;
    let c = s.client();
    let t = c.result("tip.create", tip_params("2")).await.unwrap();
    let id: uuid::Uuid = t["tip_id"].as_str().unwrap().parse().unwrap();
    let shown = t["invoice"].as_str().unwrap().to_string();
    let again = s
        .store
        .attach_invoice(&s.app_id, id, "fibd1another", "worker")
        .await
        .unwrap();
    assert_eq!(again, None, "a tip with an invoice keeps it");
    let pool = s.store.pool();
    for sql in [
        "UPDATE tip_invoices SET invoice = 'fibd1another'",
        "DELETE FROM tip_invoices",
        "TRUNCATE tip_invoices",
    ] {
        let e = sqlx::query(sql).execute(pool).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    let got = c
        .result("tip.get", json!({"tip_id": id.to_string()}))
        .await
        .unwrap();
    assert_eq!(got["invoice"], shown.as_str());
    assert!(got["invoice_at"].is_string(), "{got}");
}

/// Upgrading a database from before the invoices had their own table moves every tip's invoice,
/// with when and by whom it was attached; a tip without one stays without.
#[tokio::test]
async fn upgrading_moves_each_tips_invoice_to_its_own_table() {
    let (store, _) = empty_db().await;
    store.migrate_to(11).await.unwrap();
    let pool = store.pool();
    let app = "app_0123456789abcdef01234567";
    sqlx::query("INSERT INTO apps (id, name) VALUES ($1, 'Old forum')")
        .bind(app)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO users (id, app_id, external_id) VALUES (1, $1, 'reader'), (2, $1, 'author')",
    )
    .bind(app)
    .execute(pool)
    .await
    .unwrap();
    // (id, invoice, invoice_at, invoice_source): attached by the API, by the watcher, before
    // migration 7 (no source), and not at all
    let tips = [
        (
            "0190a000-0000-7000-8000-000000000001",
            Some("fibd1api"),
            Some("2026-11-01T10:00:00Z"),
            Some("api"),
        ),
        (
            "0190a000-0000-7000-8000-000000000002",
            Some("fibd1watcher"),
            Some("2026-11-01T11:00:00Z"),
            Some("worker"),
        ),
        (
            "0190a000-0000-7000-8000-000000000003",
            Some("fibd1old"),
            Some("2026-10-01T09:00:00Z"),
            None,
        ),
        ("0190a000-0000-7000-8000-000000000004", None, None, None),
    ];
    for (n, (id, invoice, at, source)) in tips.iter().enumerate() {
        sqlx::query(
            "INSERT INTO tip_intents (id, app_id, post_id, from_user_id, to_user_id, asset, amount,
                    request_fingerprint, payment_hash, state, expires_at, invoice, invoice_at,
                    invoice_source)
             VALUES ($1::uuid, $2, 'post-1', 1, 2, 'CKB', 100, 'f', $3, 'UNPAID',
                     now() + interval '1 hour', $4, $5::timestamptz, $6)",
        )
        .bind(id)
        .bind(app)
        .bind(format!("0x{:064x}", n + 1))
        .bind(invoice)
        .bind(at)
        .bind(source)
        .execute(pool)
        .await
        .unwrap();
    }
    store.migrate().await.unwrap();
    assert!(store.is_migrated().await.unwrap());
    for (id, invoice, at, source) in tips {
        let id: uuid::Uuid = id.parse().unwrap();
        let tip = store.tip(app, id).await.unwrap().expect("the tip");
        assert_eq!(tip.invoice.as_deref(), invoice, "{id}");
        let at = at.map(|a| a.parse::<chrono::DateTime<chrono::Utc>>().unwrap());
        assert_eq!(tip.invoice_at, at, "{id}");
        let issued: Vec<_> = store
            .tip_events(app, id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.detail.as_deref() == Some("invoice issued"))
            .collect();
        match source {
            Some(src) => {
                assert_eq!(issued.len(), 1, "{id}");
                assert_eq!(issued[0].source, src);
                assert_eq!(Some(issued[0].at), at);
            }
            // before migration 7 the event was a tip_events row of its own (none here)
            None => assert!(issued.is_empty(), "{id}"),
        }
    }
}
