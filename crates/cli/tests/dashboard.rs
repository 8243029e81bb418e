//! The author's views through the real API: dashboard.summary, tip.list with keyset pagination
//! that stays stable while tips arrive, and the settled-tips feed in settlement order.

mod common;

use common::*;
use fiber_link_client::SignedClient;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

async fn tip(c: &SignedClient, post: &str, from: &str, to: &str, amount: &str) -> Value {
    c.result(
        "tip.create",
        json!({"post_id": post, "from_user_id": from, "to_user_id": to, "asset": "CKB", "amount": amount}),
    )
    .await
    .unwrap()
}

async fn pay(s: &Stack, c: &SignedClient, t: &Value) {
    s.sim(
        "sim_pay_invoice",
        json!({"invoice": t["invoice"], "delay_ms": 1}),
    )
    .await;
    s.wait_state(
        c,
        t["tip_id"].as_str().unwrap(),
        "SETTLED",
        Duration::from_secs(10),
    )
    .await;
}

fn ids(page: &Value) -> Vec<String> {
    page["tips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tip_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn tip_list_pages_are_stable_while_tips_arrive() {
    let s = Stack::start().await;
    let c = s.client();
    let mut made = Vec::new();
    for i in 0..25 {
        made.push(tip(&c, &format!("p{i}"), "alice", "bob", "1").await["tip_id"].clone());
    }
    tip(&c, "x", "bob", "alice", "2").await;
    let first = c
        .result(
            "tip.list",
            json!({"user_id": "bob", "direction": "received", "limit": 10}),
        )
        .await
        .unwrap();
    assert_eq!(ids(&first).len(), 10);
    // newest first
    assert_eq!(first["tips"][0]["tip_id"], made[24]);
    // five new tips arrive between the pages: the next pages go on where the first ended
    for i in 0..5 {
        tip(&c, &format!("n{i}"), "carol", "bob", "1").await;
    }
    let mut seen: Vec<String> = ids(&first);
    let mut cursor = first["next_cursor"].clone();
    while !cursor.is_null() {
        let page = c
            .result(
                "tip.list",
                json!({"user_id": "bob", "direction": "received", "limit": 10, "cursor": cursor}),
            )
            .await
            .unwrap();
        seen.extend(ids(&page));
        cursor = page["next_cursor"].clone();
    }
    let expected: Vec<String> = made
        .iter()
        .rev()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        seen, expected,
        "every tip once, in order, none of the new ones"
    );
    let sent = c
        .result("tip.list", json!({"user_id": "bob", "direction": "sent"}))
        .await
        .unwrap();
    assert_eq!(ids(&sent).len(), 1);
    assert_eq!(sent["tips"][0]["to_user_id"], "alice");
    assert!(sent["next_cursor"].is_null());

    for (p, reason) in [
        (
            json!({"user_id": "bob", "direction": "up"}),
            "direction_invalid",
        ),
        (
            json!({"user_id": "bob", "direction": "sent", "limit": 0}),
            "limit_out_of_range",
        ),
        (
            json!({"user_id": "bob", "direction": "sent", "limit": 101}),
            "limit_out_of_range",
        ),
        (
            json!({"user_id": "bob", "direction": "sent", "cursor": "zzz"}),
            "cursor_malformed",
        ),
        (
            json!({"user_id": "bob", "direction": "sent", "state": "PAID"}),
            "state_invalid",
        ),
    ] {
        let a = c.call("tip.list", p.clone()).await.unwrap();
        assert_eq!(a.reason(), Some(reason), "{p}");
    }
    // another app sees none of it
    let other = s.second_app().await;
    let none = other
        .result(
            "tip.list",
            json!({"user_id": "bob", "direction": "received"}),
        )
        .await
        .unwrap();
    assert!(ids(&none).is_empty());
}

#[tokio::test]
async fn the_dashboard_shows_balances_counts_and_latest_items() {
    let s = Stack::start().await;
    if s.skip_on_real_hub("external_invoice") {
        return;
    }
    s.start_worker().await;
    let c = s.client();
    let paid = tip(&c, "p1", "alice", "bob", "100").await;
    pay(&s, &c, &paid).await;
    tip(&c, "p2", "alice", "bob", "3").await; // unpaid: awaiting payment, not income
    tip(&c, "p3", "bob", "alice", "1").await;
    let (invoice, _) = {
        let r = s
            .sim("sim_external_invoice", json!({"amount": "1000000000"}))
            .await;
        (r["invoice"].as_str().unwrap().to_string(), ())
    };
    c.result(
        "withdrawal.request",
        json!({"user_id": "bob", "asset": "CKB", "amount": "10.05",
               "destination": {"kind": "fiber_invoice", "invoice": invoice}, "idempotency_key": "k"}),
    )
    .await
    .unwrap();
    let d = c
        .result("dashboard.summary", json!({"user_id": "bob"}))
        .await
        .unwrap();
    let ckb = &d["balances"][0];
    assert_eq!(ckb["asset"], "CKB");
    assert_eq!(ckb["available"], "89.95");
    assert_eq!(ckb["incoming"], "0", "an unpaid invoice is not income");
    assert_eq!(ckb["awaiting_payment"], "3");
    assert_eq!(ckb["reserved"], "10.05");
    assert_eq!(d["counts"]["tips_received"], 2);
    assert_eq!(d["counts"]["tips_received_settled"], 1);
    assert_eq!(d["counts"]["tips_sent"], 1);
    assert_eq!(d["counts"]["withdrawals"], 1);
    assert_eq!(d["latest_received"].as_array().unwrap().len(), 2);
    assert_eq!(d["latest_sent"][0]["to_user_id"], "alice");
    assert_eq!(d["latest_withdrawals"][0]["state"], "QUEUED");
    let nobody = c
        .result("dashboard.summary", json!({"user_id": "nobody"}))
        .await
        .unwrap();
    assert_eq!(nobody["counts"]["tips_received"], 0);
    assert_eq!(nobody["balances"][0]["available"], "0");
}

#[tokio::test]
async fn the_settled_feed_gives_each_settlement_once_in_order() {
    let s = Stack::start().await;
    s.start_worker().await;
    let c = s.client();
    let mut settled = Vec::new();
    for i in 0..7 {
        let t = tip(
            &c,
            &format!("p{i}"),
            "alice",
            &format!("author{}", i % 3),
            "1",
        )
        .await;
        pay(&s, &c, &t).await;
        settled.push(t["tip_id"].as_str().unwrap().to_string());
    }
    tip(&c, "unpaid", "alice", "bob", "1").await;
    // The feed hands out a settlement once every transaction that started before it has ended
    // (on the whole Postgres server): poll, as a notifier does, until all seven are through.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let start = std::time::Instant::now();
    while seen.len() < settled.len() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "feed stalled at {seen:?}"
        );
        let mut p = json!({"limit": 3});
        if !after.is_null() {
            p["after"] = after.clone();
        }
        let page = c.result("tip.settled_feed", p).await.unwrap();
        let got = ids(&page);
        if got.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        after = page["next_cursor"].clone();
        assert!(after.is_string());
        seen.extend(got);
    }
    assert_eq!(seen, settled, "settlement order, each once, no unpaid tip");
    // a later settlement continues from the kept cursor
    let t = tip(&c, "late", "alice", "bob", "1").await;
    pay(&s, &c, &t).await;
    let start = std::time::Instant::now();
    let page = loop {
        let page = c
            .result("tip.settled_feed", json!({"after": after}))
            .await
            .unwrap();
        if !ids(&page).is_empty() || start.elapsed() > Duration::from_secs(20) {
            break page;
        }
        assert_eq!(page["next_cursor"], after, "an empty page keeps the cursor");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ids(&page), [t["tip_id"].as_str().unwrap().to_string()]);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());
    let a = c
        .call("tip.settled_feed", json!({"after": "nope"}))
        .await
        .unwrap();
    assert_eq!(a.reason(), Some("cursor_malformed"));
}

/// `post.totals` sums, per post asked about, exactly the settled tips: after a burst of
/// concurrent payments on a few posts the totals equal what tip.get says was settled; unpaid
/// tips, other posts and other apps count for nothing; bad requests are refused.
#[tokio::test]
async fn post_totals_are_the_settled_tips_of_each_post() {
    let s = Stack::start().await;
    s.start_worker().await;
    let c = s.client();

    // 24 tips over 4 posts; 18 of them paid at once, 6 left unpaid
    let mut made = Vec::new();
    for i in 0..24u32 {
        let amount = format!("{}.{}", 1 + i % 3, i % 10);
        let t = tip(&c, &format!("post-{}", i % 4), "alice", "bob", &amount).await;
        made.push(t);
    }
    let paid: Vec<&Value> = made
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 != 3 || *i < 8)
        .map(|(_, t)| t)
        .collect();
    let unpaid_post3 = made
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 == 3 && *i >= 8)
        .count();
    assert!(unpaid_post3 > 0);
    // the burst: every invoice paid at once, then each waited for
    for t in &paid {
        s.sim(
            "sim_pay_invoice",
            json!({"invoice": t["invoice"], "delay_ms": 1}),
        )
        .await;
    }
    for t in &paid {
        s.wait_state(
            &c,
            t["tip_id"].as_str().unwrap(),
            "SETTLED",
            Duration::from_secs(15),
        )
        .await;
    }

    // what was settled, per post, from tip.get (amounts in shannons)
    let mut expected: std::collections::BTreeMap<String, (u128, u64)> = Default::default();
    for t in &paid {
        let g = c
            .result("tip.get", json!({"tip_id": t["tip_id"]}))
            .await
            .unwrap();
        assert_eq!(g["state"], "SETTLED");
        let e = expected
            .entry(g["post_id"].as_str().unwrap().to_string())
            .or_default();
        e.0 += shannons(g["amount"].as_str().unwrap());
        e.1 += 1;
    }
    // another app's tip on a post of the same name is not this app's
    let other = s.second_app().await;
    let o = tip(&other, "post-0", "x", "y", "5").await;
    pay(&s, &other, &o).await;

    let r = c
        .result(
            "post.totals",
            json!({"post_ids": ["post-0", "post-1", "post-2", "post-3", "post-9", "post-0", 7]}),
        )
        .await
        .unwrap();
    let totals = r["totals"].as_array().unwrap();
    let asked: Vec<&str> = totals
        .iter()
        .map(|t| t["post_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        asked,
        ["post-0", "post-1", "post-2", "post-3", "post-9", "7"],
        "each post once, in the order asked"
    );
    for t in totals {
        let post = t["post_id"].as_str().unwrap();
        let assets = t["assets"].as_array().unwrap();
        match expected.get(post) {
            None => assert!(assets.is_empty(), "{post} has no settled tip: {t}"),
            Some((amount, n)) => {
                assert_eq!(assets.len(), 1, "{t}");
                assert_eq!(assets[0]["asset"], "CKB");
                assert_eq!(
                    shannons(assets[0]["amount"].as_str().unwrap()),
                    *amount,
                    "{post}"
                );
                assert_eq!(assets[0]["tips"], *n, "{post}");
            }
        }
    }

    // refusals
    let too_many: Vec<String> = (0..201).map(|i| format!("p{i}")).collect();
    let e = c
        .call("post.totals", json!({"post_ids": too_many}))
        .await
        .unwrap();
    assert_eq!(
        e.body["error"]["data"]["reason"], "too_many_posts",
        "{}",
        e.body
    );
    let e = c
        .call("post.totals", json!({"post_ids": [""]}))
        .await
        .unwrap();
    assert_eq!(e.body["error"]["data"]["reason"], "empty_id", "{}", e.body);
    let e = c.call("post.totals", json!({})).await.unwrap();
    assert!(
        e.body["error"].is_object(),
        "post_ids is required: {}",
        e.body
    );
}

/// "1.5" CKB in shannons.
fn shannons(s: &str) -> u128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<8}");
    int.parse::<u128>().unwrap() * 100_000_000 + frac.parse::<u128>().unwrap()
}
