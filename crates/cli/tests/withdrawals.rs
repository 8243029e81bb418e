//! Withdrawals over Fiber through the real API, Postgres and the hub simulator over HTTP: payouts
//! that complete, fail and release, resolve an ambiguous timeout through `get_payment`; policy and
//! balance under 50 concurrent requests; every bad input refused without writing anything.

mod common;

use common::*;
use fiber_link_client::SignedClient;
use fiber_link_core::{Amount, OnchainConfig};
use fiber_link_store::withdrawals::PolicyOverride;
use serde_json::{json, Value};
use std::time::Duration;

async fn external_invoice(s: &Stack, amount: Option<u128>, outcome: &str) -> (String, String) {
    expiring_invoice(s, amount, outcome, 3600).await
}

/// An invoice of another node that expires after `secs`, paid with `outcome`.
async fn expiring_invoice(
    s: &Stack,
    amount: Option<u128>,
    outcome: &str,
    secs: u64,
) -> (String, String) {
    let mut p = json!({"outcome": outcome, "expiry_secs": secs});
    if let Some(a) = amount {
        p["amount"] = json!(a.to_string());
    }
    let r = s.sim("sim_external_invoice", p).await;
    (
        r["invoice"].as_str().unwrap().to_string(),
        r["payment_hash"].as_str().unwrap().to_string(),
    )
}

fn to_invoice(invoice: &str) -> Value {
    json!({"kind": "fiber_invoice", "invoice": invoice})
}

async fn refusal(c: &SignedClient, method: &str, params: Value) -> (i64, String) {
    let a = c.call(method, params).await.unwrap();
    assert!(a.result().is_none(), "{method} should fail");
    (a.code().unwrap(), a.reason().unwrap().to_string())
}

/// A withdrawal of CKB to `invoice`, accepted: its id.
async fn request(c: &SignedClient, user: &str, amount: &str, invoice: &str, key: &str) -> String {
    let w = c
        .result(
            "withdrawal.request",
            json!({"user_id": user, "asset": "CKB", "amount": amount,
                   "destination": to_invoice(invoice), "idempotency_key": key}),
        )
        .await
        .unwrap();
    w["withdrawal_id"].as_str().unwrap().to_string()
}

async fn balance(c: &SignedClient, user: &str) -> Value {
    c.result("balance.get", json!({"user_id": user}))
        .await
        .unwrap()["balances"][0]
        .clone()
}

/// Every ledger transaction balances per asset, and the author's balance row equals its entries.
async fn books_balance(s: &Stack) {
    let unbalanced = s
        .ledger_count(
            "SELECT count(*) FROM (SELECT transaction_id, asset FROM ledger_entries
              GROUP BY 1, 2 HAVING sum(amount) <> 0) x",
        )
        .await;
    assert_eq!(unbalanced, 0);
    let drift = s
        .ledger_count(
            "SELECT count(*) FROM accounts a WHERE a.kind = 'author' AND a.balance <>
               COALESCE((SELECT sum(amount) FROM ledger_entries e WHERE e.account_id = a.id), 0)",
        )
        .await;
    assert_eq!(drift, 0);
}

async fn hub_ckb_local_balance(s: &Stack) -> u128 {
    let ch: Value = s.hub.call("list_channels", Some(&json!({}))).await.unwrap();
    let c = ch["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["funding_udt_type_script"].is_null())
        .unwrap();
    u128::from_str_radix(
        c["local_balance"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap()
}

#[tokio::test]
async fn a_fiber_payout_completes_with_the_quoted_figures_and_is_sent_once() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("stats") {
        return;
    }
    s.start_worker().await;
    let c = s.client();
    s.fund(&c, "bob", "CKB", "100", 3).await;
    let hub_before = hub_ckb_local_balance(&s).await;
    let (invoice, hash) = external_invoice(&s, Some(50 * 100_000_000), "success").await;

    let q = c
        .result(
            "withdrawal.quote",
            json!({"user_id": "bob", "asset": "CKB", "destination": to_invoice(&invoice)}),
        )
        .await
        .unwrap();
    // 0.5 % of 50 CKB is the most the route may cost; the author pays it (deduct mode)
    assert_eq!(q["fee"], "0.25");
    assert_eq!(q["amount"], "50.25");
    assert_eq!(q["receive_amount"], "50");
    assert_eq!(q["available"], "300");
    assert_eq!(q["allowed"], true, "{q}");
    assert_eq!(q["destination_valid"], true);

    let w = c
        .result(
            "withdrawal.request",
            json!({"user_id": "bob", "asset": "CKB", "amount": "50.25",
                   "destination": to_invoice(&invoice), "idempotency_key": "w1"}),
        )
        .await
        .unwrap();
    assert_eq!(w["state"], "QUEUED");
    assert_eq!(w["payment_hash"], hash.as_str());
    let id = w["withdrawal_id"].as_str().unwrap().to_string();
    let b = balance(&c, "bob").await;
    assert_eq!(b["available"], "249.75");
    assert_eq!(b["reserved"], "50.25");

    s.start_payouts().await;
    let done = wait_withdrawal(&c, &id, "COMPLETED").await;
    // the simulated route charged 0.1 %: 0.05 CKB; the unused 0.2 went back to the author
    assert_eq!(done["actual_fee"], "0.05");
    let b = balance(&c, "bob").await;
    assert_eq!(b["available"], "249.95");
    assert_eq!(b["reserved"], "0");
    assert_eq!(
        hub_before - hub_ckb_local_balance(&s).await,
        50 * 100_000_000 + 5_000_000,
        "the hub's channel paid the invoice and the route fee"
    );
    let pays = s.sim("sim_stats", json!({})).await;
    assert_eq!(pays["payments"], 1, "one payment at the hub");
    let kinds = s
        .store
        .withdrawal_ledger(uuid::Uuid::parse_str(&id).unwrap())
        .await
        .unwrap();
    let kinds: Vec<&str> = kinds.iter().map(|k| k.0.as_str()).collect();
    assert_eq!(kinds, ["withdrawal_reserve", "withdrawal_complete"]);
    books_balance(&s).await;

    // the same key again: the same withdrawal, nothing new
    let again = c
        .result(
            "withdrawal.request",
            json!({"user_id": "bob", "asset": "CKB", "amount": "50.25",
                   "destination": to_invoice(&invoice), "idempotency_key": "w1"}),
        )
        .await
        .unwrap();
    assert_eq!(again["withdrawal_id"], id.as_str());
    let (code, reason) = refusal(
        &c,
        "withdrawal.request",
        json!({"user_id": "bob", "asset": "CKB", "amount": "60",
               "destination": to_invoice(&invoice), "idempotency_key": "w1"}),
    )
    .await;
    assert_eq!((code, reason.as_str()), (-32003, "idempotency_key_reused"));
    // a completed withdrawal cannot be cancelled
    let (code, reason) = refusal(&c, "withdrawal.cancel", json!({"withdrawal_id": id})).await;
    assert_eq!(
        (code, reason.as_str()),
        (-32009, "withdrawal_not_cancellable")
    );
}

/// How many `send_payment` calls the simulated hub has answered.
async fn sends(s: &Stack) -> u64 {
    s.sim("sim_stats", json!({})).await["calls"]["send_payment"]
        .as_u64()
        .unwrap_or(0)
}

/// FNN's `Failed` is not final: a later `send_payment` for the same hash is accepted. A failed
/// payment is sent again while its invoice can be paid, and the funds go back only once the
/// invoice expired (by the configured margin, 0.5 s in these tests) — the rule the operator's
/// `withdrawal fail` follows too.
#[tokio::test]
async fn a_failed_payment_is_retried_until_its_invoice_expires_then_released() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("external_invoice, stats") {
        return;
    }
    s.start_worker().await;
    s.start_payouts().await;
    let c = s.client();
    s.fund(&c, "bob", "CKB", "100", 1).await;
    let (invoice, hash) = expiring_invoice(&s, Some(10 * 100_000_000), "fail", 4).await;
    let before = sends(&s).await;
    let id = request(&c, "bob", "10.05", &invoice, "f1").await;
    // failed at the hub, yet reserved while the invoice can still be paid
    let start = std::time::Instant::now();
    while sends(&s).await < before + 2 {
        assert!(start.elapsed() < Duration::from_secs(4), "not sent again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let w = c
        .result("withdrawal.get", json!({"withdrawal_id": id}))
        .await
        .unwrap();
    assert_ne!(w["state"], "FAILED", "released while payable: {w}");
    assert_eq!(balance(&c, "bob").await["reserved"], "10.05");
    // the operator's fail follows the same rule
    let row = s
        .store
        .withdrawal_any_app(uuid::Uuid::parse_str(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let refused = s
        .payouts()
        .await
        .operator_fail(&row, "gave up")
        .await
        .unwrap();
    // (refused either because the invoice has not expired or because a resend is in flight)
    assert!(
        matches!(&refused, fiber_link_worker::payouts::FailOutcome::Refused(m)
            if m.contains("has not expired") || m.contains("it is not failed")),
        "{refused:?}"
    );
    let failed = wait_withdrawal(&c, &id, "FAILED").await;
    assert_eq!(failed["failure"]["reason"], "payment_failed");
    assert_eq!(failed["payment_hash"], hash.as_str());
    let b = balance(&c, "bob").await;
    assert_eq!(b["available"], "100");
    assert_eq!(b["reserved"], "0");
    let kinds = s
        .store
        .withdrawal_ledger(uuid::Uuid::parse_str(&id).unwrap())
        .await
        .unwrap();
    let kinds: Vec<&str> = kinds.iter().map(|k| k.0.as_str()).collect();
    assert_eq!(kinds, ["withdrawal_reserve", "withdrawal_release"]);
    books_balance(&s).await;

    // the hub's own invoice (a tip invoice pasted as a destination) can never be paid by the
    // hub: refused already by the quote and the request, before anything is reserved
    let own = c.result("tip.create", tip_params("5")).await.unwrap();
    let dest = to_invoice(own["invoice"].as_str().unwrap());
    let q = c
        .result(
            "withdrawal.quote",
            json!({"user_id": "bob", "asset": "CKB", "amount": "5.025", "destination": dest}),
        )
        .await
        .unwrap();
    assert_eq!(q["destination_valid"], false);
    assert_eq!(q["destination_error"]["reason"], "invoice_of_hub");
    let (code, reason) = refusal(
        &c,
        "withdrawal.request",
        json!({"user_id": "bob", "asset": "CKB", "amount": "5.025",
               "destination": dest, "idempotency_key": "f2"}),
    )
    .await;
    assert_eq!((code, reason.as_str()), (-32602, "invoice_of_hub"));
    assert_eq!(balance(&c, "bob").await["available"], "100");
    books_balance(&s).await;
}

/// As a real FNN v0.8.0 hub does (tests/fixtures/fnn/send-payment-failures-v0.8.0.json): a payee
/// the hub has no route to makes `send_payment` answer "Failed to build route" and store a
/// `Failed` session. The withdrawal keeps its funds reserved and is tried again; when a route
/// appears it is paid, once.
#[tokio::test]
async fn no_route_is_tried_again_and_paid_once_when_a_route_appears() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("set_payment_outcome, stats") {
        return;
    }
    s.start_worker().await;
    s.start_payouts().await;
    let c = s.client();
    s.fund(&c, "bob", "CKB", "100", 1).await;
    let (invoice, hash) = external_invoice(&s, Some(10 * 100_000_000), "noroute").await;
    let before = sends(&s).await;
    let id = request(&c, "bob", "10.05", &invoice, "n1").await;
    let start = std::time::Instant::now();
    while sends(&s).await < before + 3 {
        assert!(start.elapsed() < Duration::from_secs(10), "not tried again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = s
        .hub
        .get_payment(fiber_link_fnn::hash256(&hash).unwrap())
        .await
        .unwrap();
    assert_eq!(
        p.status,
        fiber_link_fnn::PaymentStatus::Failed,
        "FNN keeps a Failed session"
    );
    let w = c
        .result("withdrawal.get", json!({"withdrawal_id": id}))
        .await
        .unwrap();
    assert_eq!(w["state"], "SUBMITTING", "{w}");
    assert_eq!(balance(&c, "bob").await["reserved"], "10.05");
    s.sim(
        "sim_set_payment_outcome",
        json!({"payment_hash": hash, "outcome": "success"}),
    )
    .await;
    wait_withdrawal(&c, &id, "COMPLETED").await;
    let paid = s.sim("sim_stats", json!({})).await;
    assert_eq!(paid["payments"], 1, "one payment session for the hash");
    let b = balance(&c, "bob").await;
    // 10 CKB paid, 0.01 of route fee: the unused part of the 0.05 fee cap goes back
    assert_eq!(
        (b["reserved"].as_str(), b["available"].as_str()),
        (Some("0"), Some("89.99"))
    );
    books_balance(&s).await;
}

/// No route until the invoice expires: released with `payment_refused`, never paid.
#[tokio::test]
async fn no_route_until_expiry_releases_the_funds_as_refused() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("external_invoice") {
        return;
    }
    s.start_worker().await;
    s.start_payouts().await;
    let c = s.client();
    s.fund(&c, "bob", "CKB", "100", 1).await;
    let (invoice, hash) = expiring_invoice(&s, Some(10 * 100_000_000), "noroute", 3).await;
    let id = request(&c, "bob", "10.05", &invoice, "n2").await;
    let failed = wait_withdrawal(&c, &id, "FAILED").await;
    // the last answer: the hub refuses the expired invoice for good
    assert_eq!(failed["failure"]["reason"], "payment_refused");
    let why = failed["failure"]["message"].as_str().unwrap();
    assert!(
        why.contains("Failed to build route") || why.contains("invoice is expired"),
        "{failed}"
    );
    let p = s
        .hub
        .get_payment(fiber_link_fnn::hash256(&hash).unwrap())
        .await
        .unwrap();
    assert_ne!(p.status, fiber_link_fnn::PaymentStatus::Success);
    assert_eq!(balance(&c, "bob").await["available"], "100");
    books_balance(&s).await;
}

#[tokio::test]
async fn an_ambiguous_timeout_is_resolved_through_get_payment_and_never_paid_twice() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("set_faults") {
        return;
    }
    s.start_worker().await;
    let c = s.client();
    s.fund(&c, "bob", "CKB", "100", 1).await;
    let (invoice, hash) = external_invoice(&s, Some(20 * 100_000_000), "success").await;
    let id = request(&c, "bob", "20.1", &invoice, "t1").await;
    // every hub answer now takes longer than the client waits (2 s)
    s.sim("sim_set_faults", json!({"latency_ms": 2500})).await;
    s.start_payouts().await;
    let sub = wait_withdrawal(&c, &id, "SUBMITTING").await;
    assert_eq!(sub["payment_hash"], hash.as_str());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = c
        .result("withdrawal.get", json!({"withdrawal_id": id}))
        .await
        .unwrap();
    assert_eq!(still["state"], "SUBMITTING", "no answer, no conclusion");
    s.sim("sim_set_faults", json!({})).await;
    wait_withdrawal(&c, &id, "COMPLETED").await;
    let list = s
        .hub
        .call::<_, Value>("list_payments", Some(&json!({})))
        .await
        .unwrap();
    let same: Vec<&Value> = list["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["payment_hash"] == hash.as_str())
        .collect();
    assert_eq!(same.len(), 1, "one payment session for the invoice");
    let b = balance(&c, "bob").await;
    assert_eq!(b["available"], "79.98", "100 − 20 − the 0.02 route fee");
    books_balance(&s).await;
}

#[tokio::test]
async fn a_hanging_payment_stays_reserved_until_the_hub_decides() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("set_payment_outcome, external_invoice") {
        return;
    }
    s.start_worker().await;
    s.start_payouts().await;
    let c = s.client();
    s.fund(&c, "bob", "CKB", "100", 1).await;
    let (invoice, hash) = expiring_invoice(&s, Some(10 * 100_000_000), "hang", 4).await;
    let id = request(&c, "bob", "10.05", &invoice, "h1").await;
    wait_withdrawal(&c, &id, "SUBMITTED").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b = balance(&c, "bob").await;
    assert_eq!(b["reserved"], "10.05");
    let (code, _) = refusal(&c, "withdrawal.cancel", json!({"withdrawal_id": id})).await;
    assert_eq!(code, -32009, "a payment in flight cannot be cancelled");
    s.sim(
        "sim_set_payment_outcome",
        json!({"payment_hash": hash, "outcome": "fail"}),
    )
    .await;
    wait_withdrawal(&c, &id, "FAILED").await;
    assert_eq!(balance(&c, "bob").await["available"], "100");
}

/// 50 withdrawal requests of `amount` CKB by `user`, all at once, each to its own invoice:
/// how many were accepted, and the reasons of the refusals.
async fn fifty_at_once(
    s: &Stack,
    c: &SignedClient,
    user: &str,
    amount: &str,
) -> (usize, std::collections::BTreeMap<String, usize>) {
    let mut invoices = Vec::new();
    for _ in 0..50 {
        invoices.push(external_invoice(s, None, "success").await.0);
    }
    let mut set = tokio::task::JoinSet::new();
    for inv in &invoices {
        let c = c.clone();
        let p = json!({"user_id": user, "asset": "CKB", "amount": amount,
                       "destination": to_invoice(inv), "idempotency_key": fiber_link_client::fresh_nonce()});
        set.spawn(async move { c.call("withdrawal.request", p).await.unwrap() });
    }
    let mut ok = 0;
    let mut reasons = std::collections::BTreeMap::new();
    while let Some(r) = set.join_next().await {
        let a = r.unwrap();
        if a.result().is_some() {
            ok += 1;
        } else {
            *reasons.entry(a.reason().unwrap().to_string()).or_insert(0) += 1;
        }
    }
    (ok, reasons)
}

#[tokio::test]
async fn fifty_concurrent_requests_never_overdraw_or_exceed_a_cap() {
    let s = Stack::start().await;
    s.start_worker().await;
    let c = s.client();
    s.fund(&c, "bob", "CKB", "100", 1).await;
    // 50 requests of 10 CKB against 100 CKB: exactly 10 accepted
    let (ok, reasons) = fifty_at_once(&s, &c, "bob", "10").await;
    assert_eq!(ok, 10, "{reasons:?}");
    assert_eq!(reasons.get("insufficient_balance"), Some(&40));
    let b = balance(&c, "bob").await;
    assert_eq!(
        (b["available"].as_str(), b["reserved"].as_str()),
        (Some("0"), Some("100"))
    );

    // with a 30 CKB rolling cap per author, 50 concurrent requests of 5 CKB: exactly 6
    s.fund(&c, "carol", "CKB", "100", 1).await;
    s.store
        .set_policy_override(
            &s.app_id,
            "CKB",
            &PolicyOverride {
                author_daily_cap: Some(Amount::from_base_units(30 * 100_000_000)),
                ..Default::default()
            },
            "test",
        )
        .await
        .unwrap();
    let (ok, reasons) = fifty_at_once(&s, &c, "carol", "5").await;
    assert_eq!(ok, 6, "{reasons:?}");
    assert_eq!(reasons.get("author_daily_cap"), Some(&44));
    assert_eq!(balance(&c, "carol").await["available"], "70");
    let negative = s
        .ledger_count("SELECT count(*) FROM accounts WHERE kind = 'author' AND balance < 0")
        .await;
    assert_eq!(negative, 0);
    books_balance(&s).await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let mut withdrawals = test_withdrawals();
    withdrawals.onchain = Some(OnchainConfig {
        fee_rate: 1000,
        max_tx_bytes: 1000,
        confirmations: 1,
    });
    withdrawals.defaults[0].1.max_per_request = Some(Amount::from_base_units(150 * 100_000_000));
    let s = Stack::start_with(StackOptions {
        withdrawals,
        ..Default::default()
    })
    .await;
    if s.skip_on_real_hub("external_invoice, UDT (RUSD)") {
        return;
    }
    s.start_worker().await;
    let c = s.client();
    s.fund(&c, "bob", "CKB", "100", 2).await;
    let rows = |s: &Stack| {
        let s = s.store.clone();
        async move {
            let n: (i64, i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM withdrawals), (SELECT count(*) FROM ledger_transactions),
                        (SELECT count(*) FROM withdrawal_events)",
            )
            .fetch_one(s.pool())
            .await
            .unwrap();
            n
        }
    };
    let before = rows(&s).await;
    let addr = "ckt1qzda0cr08m85hc8jlnfp3zer7xulejywt49kt2rr0vthywaa50xwsqwgx292hnvmn68xf779vmzrshpmm6epn4c0cgwga";
    // the same lock as a mainnet address
    let mainnet = fiber_link_chain::HotWallet::from_hex(
        "d00c06bfd800d27397002dca6fb0993d5ba6399b4238b2f29ee9deb97593d2bc",
        true,
    )
    .unwrap()
    .address();
    assert!(mainnet.starts_with("ckb1"));
    let req = |asset: &str, amount: &str, dest: Value| {
        json!({"user_id": "bob", "asset": asset, "amount": amount, "destination": dest,
               "idempotency_key": fiber_link_client::fresh_nonce()})
    };
    let onchain = |a: &str| json!({"kind": "ckb_address", "address": a});
    let (ckb10, _) = external_invoice(&s, Some(10 * 100_000_000), "success").await;
    let other_net = s
        .sim(
            "sim_external_invoice",
            json!({"amount": "1000000000", "currency": "Fibt"}),
        )
        .await["invoice"]
        .as_str()
        .unwrap()
        .to_string();
    let rusd = s
        .sim(
            "sim_external_invoice",
            json!({"amount": "1000000", "asset": "RUSD"}),
        )
        .await["invoice"]
        .as_str()
        .unwrap()
        .to_string();
    let expiring = s
        .sim(
            "sim_external_invoice",
            json!({"amount": "1000000000", "expiry_secs": 1}),
        )
        .await["invoice"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut tampered = ckb10.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'q' { 'p' } else { 'q' });
    let endless = invoice_without_expiry(10 * 100_000_000);
    let cases: Vec<(Value, i64, &str)> = vec![
        (
            req("CKB", "100", onchain("ckt1qqqq")),
            -32602,
            "address_malformed",
        ),
        (
            req("CKB", "100", onchain(&mainnet)),
            -32602,
            "address_wrong_network",
        ),
        (
            req("CKB", "100", json!({"kind": "iban", "iban": "x"})),
            -32602,
            "destination_malformed",
        ),
        (
            req("CKB", "100", json!("ckt1...")),
            -32602,
            "destination_malformed",
        ),
        (
            req("CKB", "10", to_invoice(&other_net)),
            -32602,
            "invoice_wrong_network",
        ),
        (
            req("CKB", "10", to_invoice(&rusd)),
            -32602,
            "invoice_wrong_asset",
        ),
        (
            req("CKB", "10", to_invoice(&ckb10)),
            -32602,
            "invoice_amount_mismatch",
        ),
        (
            req("CKB", "10.05", to_invoice(&expiring)),
            -32602,
            "invoice_expired",
        ),
        (
            req("CKB", "10.05", to_invoice(&endless)),
            -32602,
            "invoice_without_expiry",
        ),
        (
            req("CKB", "10.05", to_invoice(&tampered)),
            -32602,
            "invoice_malformed",
        ),
        (
            req("CKB", "10.05", to_invoice("lnbc1xyz")),
            -32602,
            "invoice_malformed",
        ),
        (
            req("CKB", "60", onchain(addr)),
            -32010,
            "amount_below_minimum",
        ),
        (
            req("CKB", "151", onchain(addr)),
            -32010,
            "amount_above_maximum",
        ),
        (req("RUSD", "1", onchain(addr)), -32602, "rail_unsupported"),
        (req("DOGE", "1", onchain(addr)), -32602, "unknown_asset"),
        (
            req("CKB", "1.000000001", onchain(addr)),
            -32602,
            "amount_too_many_decimals",
        ),
        (req("CKB", "-5", onchain(addr)), -32602, "amount_malformed"),
        (
            json!({"user_id": "bob", "asset": "CKB", "amount": "100", "destination": onchain(addr)}),
            -32602,
            "idempotency_key_missing",
        ),
    ];
    let mut failures = Vec::new();
    for (p, code, reason) in &cases {
        let a = c.call("withdrawal.request", p.clone()).await.unwrap();
        let got = (a.code(), a.reason().map(str::to_string));
        if got != (Some(*code), Some(reason.to_string())) {
            failures.push(format!("{reason}: got {got:?} for {p}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // over the balance (200) but under the max
    s.store
        .set_policy_override(
            &s.app_id,
            "CKB",
            &PolicyOverride {
                max_per_request: Some(Amount::from_base_units(1000 * 100_000_000)),
                ..Default::default()
            },
            "test",
        )
        .await
        .unwrap();
    let (code, reason) = refusal(&c, "withdrawal.request", req("CKB", "201", onchain(addr))).await;
    assert_eq!((code, reason.as_str()), (-32010, "insufficient_balance"));
    assert_eq!(rows(&s).await, before, "nothing was written");

    // a valid on-chain request: 100 CKB, 0.00001 fee deducted
    let q = c
        .result("withdrawal.quote", json!({"user_id": "bob", "asset": "CKB", "amount": "100", "destination": onchain(addr)}))
        .await
        .unwrap();
    assert_eq!(
        (q["fee"].as_str(), q["receive_amount"].as_str()),
        (Some("0.00001"), Some("99.99999"))
    );
    assert_eq!(q["minimum"], "61.00001");
    let w = c
        .result("withdrawal.request", req("CKB", "100", onchain(addr)))
        .await
        .unwrap();
    // another app cannot see or cancel it
    let other = s.second_app().await;
    let id = w["withdrawal_id"].clone();
    let (code, reason) = refusal(&other, "withdrawal.get", json!({"withdrawal_id": id})).await;
    assert_eq!((code, reason.as_str()), (-32002, "withdrawal_not_found"));
    let (code, reason) = refusal(&other, "withdrawal.cancel", json!({"withdrawal_id": id})).await;
    assert_eq!((code, reason.as_str()), (-32002, "withdrawal_not_found"));
    // the author cancels it (no worker runs payouts): the funds come back
    let cancelled = c
        .result("withdrawal.cancel", json!({"withdrawal_id": id}))
        .await
        .unwrap();
    assert_eq!(cancelled["state"], "CANCELLED");
    assert_eq!(balance(&c, "bob").await["available"], "200");
    let again = c
        .result("withdrawal.cancel", json!({"withdrawal_id": id}))
        .await
        .unwrap();
    assert_eq!(
        again["state"], "CANCELLED",
        "cancelling twice changes nothing"
    );
    books_balance(&s).await;
}

#[tokio::test]
async fn with_the_operator_paying_fees_the_author_pays_exactly_the_invoice() {
    let mut withdrawals = test_withdrawals();
    withdrawals.fee_mode = fiber_link_core::FeeMode::Operator;
    let s = Stack::start_with(StackOptions {
        withdrawals,
        ..Default::default()
    })
    .await;
    s.start_worker().await;
    s.start_payouts().await;
    let c = s.client();
    s.fund(&c, "bob", "CKB", "100", 1).await;
    let (invoice, _) = external_invoice(&s, Some(40 * 100_000_000), "success").await;
    let q = c
        .result(
            "withdrawal.quote",
            json!({"user_id": "bob", "asset": "CKB", "destination": to_invoice(&invoice)}),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            q["amount"].as_str(),
            q["receive_amount"].as_str(),
            q["fee_mode"].as_str()
        ),
        (Some("40"), Some("40"), Some("operator"))
    );
    let id = request(&c, "bob", "40", &invoice, "op1").await;
    let done = wait_withdrawal(&c, &id, "COMPLETED").await;
    assert_eq!(done["actual_fee"], "0.04");
    assert_eq!(balance(&c, "bob").await["available"], "60");
    // the operator's account carries the route fee; the fees account counts it
    let fee_by_kind = |kind: &'static str| {
        let s = s.store.clone();
        async move {
            let v: String = sqlx::query_scalar(
                "SELECT COALESCE(sum(e.amount), 0)::text FROM ledger_entries e
                   JOIN accounts a ON a.id = e.account_id WHERE a.kind = $1",
            )
            .bind(kind)
            .fetch_one(s.pool())
            .await
            .unwrap();
            v
        }
    };
    assert_eq!(fee_by_kind("operator").await, "-4000000");
    assert_eq!(fee_by_kind("fees").await, "4000000");
    books_balance(&s).await;
}

/// A signed Fiber invoice of some other node, for `amount` shannons, that never expires.
fn invoice_without_expiry(amount: u128) -> String {
    use fiber_types::{Attribute, CkbInvoice, Currency, HashAlgorithm, InvoiceData};
    let key = secp256k1::SecretKey::from_slice(&[0x37; 32]).unwrap();
    let preimage: [u8; 32] = rand::random();
    let mut inv = CkbInvoice {
        currency: Currency::Fibd,
        amount: Some(amount),
        signature: None,
        data: InvoiceData {
            timestamp: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
            payment_hash: HashAlgorithm::CkbHash.hash(preimage).into(),
            attrs: vec![Attribute::PayeePublicKey(
                secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &key),
            )],
        },
    };
    inv.update_signature(|m| secp256k1::SECP256K1.sign_ecdsa_recoverable(m, &key))
        .unwrap();
    inv.to_string()
}
