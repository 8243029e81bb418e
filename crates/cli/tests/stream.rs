//! Settlement from the hub's store-change stream (the simulator's `subscribe_store_changes`):
//! a payment is credited without waiting for a poll; a stream that drops, loses, delays,
//! duplicates or garbles events loses nothing and credits nothing twice; a hub without the
//! module is polled as before.

mod common;

use common::*;
use fiber_link_client::SignedClient;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Everything this test binary logs, for the tests that look for a log line.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn,fiber_link_worker=info")
            .with_writer(move || Writer(w.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged(needle: &str) -> bool {
    String::from_utf8_lossy(&logs().lock().unwrap()).contains(needle)
}

/// A schedule whose polls could not find a payment within the tests' waits.
fn slow_polls(s: &Stack) -> fiber_link_worker::WorkerSettings {
    let mut w = s.streaming_worker_settings();
    w.schedule.fresh_interval = Duration::from_secs(60);
    w.schedule.open_interval = Duration::from_secs(60);
    w.schedule.watched_interval = Duration::from_secs(60);
    w
}

async fn stack() -> Stack {
    logs();
    Stack::start().await
}

/// A stack with one worker that follows the stream (its polls a minute apart), once the API has
/// seen the worker's lease; `None` against a real hub (the test needs the simulator's `needs`).
async fn streaming(needs: &str) -> Option<(Stack, SignedClient)> {
    streaming_with(needs, StackOptions::default()).await
}

/// [`streaming`] with invoices that expire after `expiry`.
async fn streaming_expiring(needs: &str, expiry: Duration) -> Option<(Stack, SignedClient)> {
    let o = StackOptions {
        invoice_expiry: expiry,
        ..Default::default()
    };
    streaming_with(needs, o).await
}

async fn streaming_with(needs: &str, o: StackOptions) -> Option<(Stack, SignedClient)> {
    logs();
    let s = Stack::start_with(o).await;
    if s.skip_on_real_hub(needs) {
        return None;
    }
    let c = s.client();
    s.start_worker_with(slow_polls(&s)).await;
    wait_followed(&s).await;
    // the API reads the lease every 2 s
    tokio::time::sleep(Duration::from_millis(2100)).await;
    Some((s, c))
}

async fn wait_followed(s: &Stack) {
    let start = Instant::now();
    while s.store.stream_followed_until().await.unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no worker follows the stream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create(c: &SignedClient, post: &str) -> Value {
    let mut p = tip_params("0.1");
    p["post_id"] = json!(post);
    c.result("tip.create", p).await.unwrap()
}

fn id(t: &Value) -> &str {
    t["tip_id"].as_str().unwrap()
}

async fn next_check(s: &Stack, t: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    let uuid = uuid::Uuid::parse_str(id(t)).unwrap();
    s.store
        .tip(&s.app_id, uuid)
        .await
        .unwrap()
        .unwrap()
        .next_check_at
}

/// Pays every tip through the simulator, then waits until each is SETTLED.
async fn pay_and_wait(s: &Stack, c: &SignedClient, tips: &[Value], timeout: Duration) {
    for t in tips {
        s.sim(
            "sim_pay_invoice",
            json!({"invoice": t["invoice"], "delay_ms": 1}),
        )
        .await;
    }
    for t in tips {
        s.wait_state(c, id(t), "SETTLED", timeout).await;
    }
}

async fn settle_count(s: &Stack) -> i64 {
    s.ledger_count("SELECT count(*) FROM ledger_transactions WHERE kind = 'tip_settle'")
        .await
}

async fn hub_calls(s: &Stack, method: &str) -> u64 {
    s.sim("sim_stats", json!({})).await["calls"][method]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_payment_is_credited_from_the_stream_without_waiting_for_a_poll() {
    let Some((s, c)) = streaming("stats, store-change stream controls").await else {
        return;
    };
    let mut tips = Vec::new();
    for i in 0..5 {
        tips.push(create(&c, &format!("p{i}")).await);
    }
    for t in &tips {
        let next = next_check(&s, t).await.unwrap();
        assert!(
            next > chrono::Utc::now() + chrono::Duration::seconds(500),
            "a new tip is scheduled on the stream's slow schedule: {next}"
        );
    }
    let before = hub_calls(&s, "get_invoice").await;
    for t in &tips {
        let started = Instant::now();
        s.sim(
            "sim_pay_invoice",
            json!({"invoice": t["invoice"], "delay_ms": 1}),
        )
        .await;
        s.wait_state(&c, id(t), "SETTLED", Duration::from_secs(5))
            .await;
        let took = started.elapsed();
        // the polls are 60 s and 600 s apart: only the stream can explain this
        assert!(took < Duration::from_secs(5), "settled in {took:?}");
    }
    // Received and Paid are announced; each may cost a get_invoice, nothing else polls
    let calls = hub_calls(&s, "get_invoice").await - before;
    assert!(
        calls <= 2 * tips.len() as u64,
        "{calls} get_invoice calls for {} paid tips",
        tips.len()
    );
    assert_eq!(settle_count(&s).await, 5);
}

#[tokio::test]
async fn a_stream_that_lost_events_is_swept_when_it_comes_back() {
    let Some((s, c)) = streaming("drop_streams, set_stream, store-change stream controls").await
    else {
        return;
    };
    let a = create(&c, "a").await;
    let b = create(&c, "b").await;
    // the connection looks alive but announces nothing (a half-dead connection)
    s.sim("sim_set_stream", json!({"loss": 1.0})).await;
    s.sim(
        "sim_pay_invoice",
        json!({"invoice": a["invoice"], "delay_ms": 1}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let t = c
        .result("tip.get", json!({"tip_id": id(&a)}))
        .await
        .unwrap();
    assert_ne!(
        t["state"], "SETTLED",
        "nothing announced the payment and no poll is due"
    );
    // the stream drops and comes back: what was missed is found by the sweep
    s.sim("sim_set_stream", json!({"loss": 0.0})).await;
    s.sim("sim_drop_streams", json!({})).await;
    s.wait_state(&c, id(&a), "SETTLED", Duration::from_secs(5))
        .await;
    let b_now = c
        .result("tip.get", json!({"tip_id": id(&b)}))
        .await
        .unwrap();
    assert_eq!(b_now["state"], "UNPAID", "the unpaid tip stays unpaid");
    // and the new subscription carries the next payment
    wait_followed(&s).await;
    s.sim(
        "sim_pay_invoice",
        json!({"invoice": b["invoice"], "delay_ms": 1}),
    )
    .await;
    s.wait_state(&c, id(&b), "SETTLED", Duration::from_secs(5))
        .await;
    assert_eq!(settle_count(&s).await, 2);
    assert!(logged("the hub's store-change stream ended"));
}

#[tokio::test]
async fn while_nobody_follows_the_stream_open_tips_are_polled_again() {
    let s = stack().await;
    if s.skip_on_real_hub("set_stream, store-change stream controls") {
        return;
    }
    let c = s.client();
    let mut w = s.streaming_worker_settings();
    w.schedule.fresh_interval = Duration::from_millis(100);
    s.start_worker_with(w).await;
    wait_followed(&s).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let tips = [create(&c, "a").await, create(&c, "b").await];
    assert!(
        next_check(&s, &tips[0]).await.unwrap()
            > chrono::Utc::now() + chrono::Duration::seconds(500)
    );
    // the node restarts without its pubsub module: the lease runs out
    s.sim("sim_set_stream", json!({"enabled": false})).await;
    let start = Instant::now();
    while s.store.stream_followed_until().await.unwrap().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the lease ran out"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // pulled back onto the polling schedule
    let start = Instant::now();
    loop {
        let next = next_check(&s, &tips[0]).await.unwrap();
        if next < chrono::Utc::now() + chrono::Duration::seconds(5) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "open tips were not pulled in: {next}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // paid while nobody listens: found by polling
    pay_and_wait(&s, &c, &tips, Duration::from_secs(5)).await;
    // a new tip meanwhile is scheduled for polling by the API
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = create(&c, "late").await;
    assert!(
        next_check(&s, &late).await.unwrap() < chrono::Utc::now() + chrono::Duration::seconds(5)
    );
    // the module comes back: followed again
    s.sim("sim_set_stream", json!({"enabled": true})).await;
    wait_followed(&s).await;
    assert_eq!(settle_count(&s).await, 2);
}

#[tokio::test]
async fn duplicated_delayed_and_unknown_events_change_nothing() {
    let Some((s, c)) = streaming("emit, set_stream, store-change stream controls").await else {
        return;
    };
    let paid = create(&c, "paid").await;
    let open = create(&c, "open").await;
    s.sim(
        "sim_pay_invoice",
        json!({"invoice": paid["invoice"], "delay_ms": 1}),
    )
    .await;
    s.wait_state(&c, id(&paid), "SETTLED", Duration::from_secs(5))
        .await;
    let paid_hash = c
        .result("tip.get", json!({"tip_id": id(&paid)}))
        .await
        .unwrap()["payment_hash"]
        .clone();
    let open_hash = c
        .result("tip.get", json!({"tip_id": id(&open)}))
        .await
        .unwrap()["payment_hash"]
        .clone();
    let events_before: i64 = s.ledger_count("SELECT count(*) FROM tip_events").await;
    // the Paid event again and again, Paid for an invoice that is open, and hashes of no tip
    for _ in 0..20 {
        s.sim("sim_emit", json!({"event": {"PutCkbInvoiceStatus": {"payment_hash": paid_hash, "invoice_status": "Paid"}}})).await;
    }
    s.sim("sim_emit", json!({"event": {"PutCkbInvoiceStatus": {"payment_hash": open_hash, "invoice_status": "Paid"}}})).await;
    for i in 0..20 {
        let h = format!("0x{:064x}", 0xdead_0000u64 + i);
        s.sim("sim_emit", json!({"event": {"PutCkbInvoiceStatus": {"payment_hash": h, "invoice_status": "Paid"}}})).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        settle_count(&s).await,
        1,
        "one credit, however often it is announced"
    );
    let open_now = c
        .result("tip.get", json!({"tip_id": id(&open)}))
        .await
        .unwrap();
    assert_eq!(
        open_now["state"], "UNPAID",
        "an event is a hint: the hub still says Open"
    );
    let events_after: i64 = s.ledger_count("SELECT count(*) FROM tip_events").await;
    assert_eq!(events_before, events_after, "no tip changed");
    // delayed events: still credited, once
    s.sim("sim_set_stream", json!({"delay_ms": 700})).await;
    let started = Instant::now();
    s.sim(
        "sim_pay_invoice",
        json!({"invoice": open["invoice"], "delay_ms": 1}),
    )
    .await;
    s.wait_state(&c, id(&open), "SETTLED", Duration::from_secs(5))
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "it waited for the delayed event"
    );
    assert_eq!(settle_count(&s).await, 2);
    let per_tip: i64 = s
        .ledger_count("SELECT COALESCE(max(n), 0) FROM (SELECT count(*) AS n FROM ledger_transactions GROUP BY tip_id) x")
        .await;
    assert_eq!(per_tip, 1);
}

#[tokio::test]
async fn a_malformed_event_is_dropped_with_a_log_line_and_the_stream_goes_on() {
    let Some((s, c)) = streaming("emit, stream_stats, store-change stream controls").await else {
        return;
    };
    for bad in [
        json!({"PutCkbInvoiceStatus": {"payment_hash": "0xnothex", "invoice_status": "Paid"}}),
        json!({"PutCkbInvoiceStatus": {"payment_hash": format!("0x{}", "ab".repeat(32)), "invoice_status": "Spent"}}),
        json!(["not", "an", "event"]),
    ] {
        s.sim("sim_emit", json!({ "event": bad })).await;
    }
    let start = Instant::now();
    while !logged("a malformed store-change event was dropped") {
        assert!(start.elapsed() < Duration::from_secs(5), "no log line");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = create(&c, "after").await;
    s.sim(
        "sim_pay_invoice",
        json!({"invoice": t["invoice"], "delay_ms": 1}),
    )
    .await;
    s.wait_state(&c, id(&t), "SETTLED", Duration::from_secs(5))
        .await;
    let stats = s.sim("sim_stream_stats", json!({})).await;
    assert_eq!(stats["subscribers"], 1, "the same subscription: {stats}");
}

#[tokio::test]
async fn a_hub_without_the_module_is_polled() {
    let s = stack().await;
    if s.skip_on_real_hub("set_stream, store-change stream controls") {
        return;
    }
    let c = s.client();
    s.sim("sim_set_stream", json!({"enabled": false})).await;
    let mut w = s.streaming_worker_settings();
    w.schedule.fresh_interval = Duration::from_millis(100);
    s.start_worker_with(w).await;
    let start = Instant::now();
    while !logged("the hub offers no store-change stream") {
        assert!(start.elapsed() < Duration::from_secs(5), "no log line");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s.store.stream_followed_until().await.unwrap().is_none());
    let t = create(&c, "p").await;
    assert!(
        next_check(&s, &t).await.unwrap() < chrono::Utc::now() + chrono::Duration::seconds(5),
        "polled as before"
    );
    s.sim(
        "sim_pay_invoice",
        json!({"invoice": t["invoice"], "delay_ms": 1}),
    )
    .await;
    s.wait_state(&c, id(&t), "SETTLED", Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn several_followers_credit_each_payment_once() {
    let s = stack().await;
    if s.skip_on_real_hub("store-change stream controls") {
        return;
    }
    let c = s.client();
    let mut w = slow_polls(&s);
    w.batch = 3;
    s.start_worker_with(w.clone()).await;
    s.start_worker_with(w.clone()).await;
    s.start_worker_with(w).await;
    wait_followed(&s).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let followers: i64 = s
        .ledger_count("SELECT count(*) FROM stream_followers")
        .await;
    assert_eq!(followers, 3);
    let mut tips = Vec::new();
    for i in 0..30 {
        tips.push(create(&c, &format!("p{i}")).await);
    }
    pay_and_wait(&s, &c, &tips, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(settle_count(&s).await, 30);
    let per_tip: i64 = s
        .ledger_count("SELECT COALESCE(max(n), 0) FROM (SELECT count(*) AS n FROM ledger_transactions GROUP BY tip_id) x")
        .await;
    assert_eq!(per_tip, 1);
}

#[tokio::test]
async fn an_invoice_cancelled_at_the_hub_ends_its_tip_at_once() {
    let Some((s, c)) = streaming("store-change stream controls").await else {
        return;
    };
    let t = create(&c, "cancelled").await;
    let hash = fiber_link_fnn::hash256(t["payment_hash"].as_str().unwrap()).unwrap();
    // someone cancels it at the hub (the operator with fnn-cli): only the stream can tell
    let r = s.hub.cancel_invoice(hash).await.unwrap();
    assert_eq!(format!("{:?}", r.status), "Cancelled");
    s.wait_state(&c, id(&t), "FAILED", Duration::from_secs(5))
        .await;
    assert_eq!(settle_count(&s).await, 0);
}

/// A slow `new_invoice` gives the hub's invoice a later expiry than the tip's own (the hub
/// counts from when it issued it). The check just after the tip's expiry finds it still Open:
/// no event will announce its expiry, so the tip ends then (cancel_invoice), not at the next
/// safety-net poll ten minutes later; three hub calls in all.
#[tokio::test]
async fn a_tip_whose_hub_invoice_outlives_it_ends_at_its_own_expiry() {
    let Some((s, c)) = streaming_expiring("faults, stats", Duration::from_secs(2)).await else {
        return;
    };
    s.sim("sim_set_faults", json!({"latency_ms": 1500})).await;
    let t = create(&c, "slow-hub").await;
    s.sim("sim_set_faults", json!({})).await;
    let created = Instant::now();
    let calls = |m| hub_calls(&s, m);
    let (gets, cancels) = (calls("get_invoice").await, calls("cancel_invoice").await);
    s.wait_state(&c, id(&t), "EXPIRED", Duration::from_secs(6))
        .await;
    assert!(created.elapsed() < Duration::from_secs(6));
    assert_eq!(
        calls("get_invoice").await - gets,
        1,
        "the one check after expiry"
    );
    assert_eq!(calls("cancel_invoice").await - cancels, 1);
    let hash = fiber_link_fnn::hash256(t["payment_hash"].as_str().unwrap()).unwrap();
    let at_hub = s.hub.get_invoice(hash).await.unwrap();
    assert_eq!(format!("{:?}", at_hub.status), "Cancelled");
}

/// A payment that races an invoice's expiry reaches it after the tip ended, while the stream
/// has a gap: the sweep when it comes back checks the tips that ended just before or during
/// the gap, and the payment is credited (it is the payer's money), once.
#[tokio::test]
async fn a_late_payment_unheard_in_a_gap_is_found_by_the_sweep() {
    let Some((s, c)) = streaming_expiring(
        "drop_streams, set_stream, after_expiry payments",
        Duration::from_secs(1),
    )
    .await
    else {
        return;
    };
    let t = create(&c, "late").await;
    s.wait_state(&c, id(&t), "EXPIRED", Duration::from_secs(5))
        .await;
    // the connection looks alive but announces nothing, and the payment lands
    s.sim("sim_set_stream", json!({"loss": 1.0})).await;
    s.sim(
        "sim_pay_invoice",
        json!({"invoice": t["invoice"], "delay_ms": 1, "after_expiry": true}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let now = c
        .result("tip.get", json!({"tip_id": id(&t)}))
        .await
        .unwrap();
    assert_eq!(now["state"], "EXPIRED", "nothing announced the payment");
    s.sim("sim_set_stream", json!({"loss": 0.0})).await;
    s.sim("sim_drop_streams", json!({})).await;
    s.wait_state(&c, id(&t), "SETTLED", Duration::from_secs(5))
        .await;
    assert_eq!(settle_count(&s).await, 1);
}

/// An announcement that arrives while its tip is being checked is not overwritten by the
/// check's own result: the tip stays due and is looked at again.
#[tokio::test]
async fn an_announcement_during_a_check_keeps_the_tip_due() {
    let s = stack().await;
    if s.skip_on_real_hub("store-change stream controls") {
        return;
    }
    let c = s.client();
    let t = create(&c, "race").await;
    let hash = t["payment_hash"].as_str().unwrap().to_string();
    let uuid = uuid::Uuid::parse_str(id(&t)).unwrap();
    let far = chrono::Utc::now() + chrono::Duration::seconds(600);
    for transition in [false, true] {
        // due, then claimed by a worker (its lease pushes the next check out)
        s.store
            .tips_due_now(std::slice::from_ref(&hash), Duration::ZERO, false)
            .await
            .unwrap();
        let claimed = s
            .store
            .claim_due_tips(10, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert!(next_check(&s, &t).await.unwrap() > chrono::Utc::now());
        // the hub announces a change while the check runs
        assert_eq!(
            s.store
                .tips_due_now(std::slice::from_ref(&hash), Duration::ZERO, false)
                .await
                .unwrap(),
            1
        );
        // the check ends with what it saw before the change
        if transition {
            let tr = fiber_link_store::tips::Transition {
                from: &[fiber_link_core::TipState::Unpaid],
                to: fiber_link_core::TipState::Pending,
                source: "worker",
                hub_status: Some("Received"),
                detail: None,
                next_check_at: Some(far),
            };
            assert!(s.store.transition_tip(uuid, &tr).await.unwrap());
        } else {
            s.store
                .reschedule_tip(uuid, Some(far), Some("Open"), false)
                .await
                .unwrap();
        }
        let next = next_check(&s, &t).await.unwrap();
        assert!(
            next <= chrono::Utc::now(),
            "still due after the check (transition: {transition}): {next}"
        );
    }
    // without an announcement the check's schedule holds
    let claimed = s
        .store
        .claim_due_tips(10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    s.store
        .reschedule_tip(uuid, Some(far), Some("Received"), false)
        .await
        .unwrap();
    assert!(
        next_check(&s, &t).await.unwrap() > chrono::Utc::now() + chrono::Duration::seconds(500)
    );
}

/// Received is announced, Paid comes much later: the tip shows PENDING a moment after the
/// announcement (one check), and SETTLED when Paid is announced.
#[tokio::test]
async fn a_received_announcement_shows_pending_then_paid_settles() {
    logs();
    let s = Stack::start_with(StackOptions {
        settle_delay: Duration::from_secs(4),
        ..Default::default()
    })
    .await;
    if s.skip_on_real_hub("settle delay") {
        return;
    }
    let c = s.client();
    s.start_worker_with(slow_polls(&s)).await;
    wait_followed(&s).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let t = create(&c, "slow").await;
    let before = hub_calls(&s, "get_invoice").await;
    let started = Instant::now();
    s.sim(
        "sim_pay_invoice",
        json!({"invoice": t["invoice"], "delay_ms": 1}),
    )
    .await;
    s.wait_state(&c, id(&t), "PENDING", Duration::from_secs(3))
        .await;
    assert!(started.elapsed() < Duration::from_secs(3));
    s.wait_state(&c, id(&t), "SETTLED", Duration::from_secs(8))
        .await;
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "settled when Paid came"
    );
    assert_eq!(
        hub_calls(&s, "get_invoice").await - before,
        2,
        "one check per announcement"
    );
}
