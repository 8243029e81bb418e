//! The hosted pay page and its live state stream, over real HTTP.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_pay_page_shows_the_tip_escapes_text_and_knows_unknown_ids() {
    let s = Stack::start().await;
    let c = s.client();
    let mut p = tip_params("2.5");
    p["message"] = json!("<script>alert('x')</script> & <b>thanks</b>");
    p["to_user_id"] = json!("<img src=x onerror=alert(1)>");
    let t = c.result("tip.create", p).await.unwrap();
    let pay_url = t["pay_url"].as_str().expect("tip.create returns pay_url");
    assert_eq!(
        pay_url,
        format!("{}/pay/{}", s.api_url, t["tip_id"].as_str().unwrap())
    );
    let (status, html) = get(pay_url).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"<span class="amount">2.5</span> CKB"#),
        "{html}"
    );
    assert!(
        html.contains(t["invoice"].as_str().unwrap()),
        "invoice as text"
    );
    assert!(html.contains("<svg"), "QR code");
    assert!(html.contains("Awaiting payment"));
    assert!(
        html.contains(
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;thanks&lt;/b&gt;"
        ),
        "message as text"
    );
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!html.contains("<script>alert"), "no injected markup");
    assert!(!html.contains("<img src=x"), "no injected markup");

    let (status, _) = get(&format!("{}/pay/{}", s.api_url, uuid::Uuid::new_v4())).await;
    assert_eq!(status, 404);
    let (status, _) = get(&format!("{}/pay/not-a-tip", s.api_url)).await;
    assert_eq!(status, 404);
    let (status, _) = get(&format!(
        "{}/pay/{}/events",
        s.api_url,
        uuid::Uuid::new_v4()
    ))
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_expired_tip_shows_expired() {
    let s = Stack::start_expiring().await;
    s.start_worker().await;
    let c = s.client();
    let t = c.result("tip.create", tip_params("1")).await.unwrap();
    s.wait_state(
        &c,
        t["tip_id"].as_str().unwrap(),
        "EXPIRED",
        Duration::from_secs(10),
    )
    .await;
    let (_, html) = get(t["pay_url"].as_str().unwrap()).await;
    assert!(html.contains(r#"class="state state-expired""#), "{html}");
    assert!(html.contains(">Expired<"));
}

#[tokio::test]
async fn the_event_stream_pushes_each_state_as_the_worker_sees_it() {
    let s = Stack::start_with(StackOptions {
        settle_delay: Duration::from_millis(800),
        ..Default::default()
    })
    .await;
    if s.skip_on_real_hub("settle delay") {
        return;
    }
    s.start_worker().await;
    let c = s.client();
    let t = c.result("tip.create", tip_params("1")).await.unwrap();
    let url = format!("{}/events", t["pay_url"].as_str().unwrap());
    let mut resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let first = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    seen.push_str(&String::from_utf8_lossy(&first));
    assert!(seen.contains(r#""state":"UNPAID""#), "{seen}");
    s.sim("sim_pay_invoice", json!({"invoice": t["invoice"]}))
        .await;
    // the stream ends after SETTLED
    while let Ok(Ok(Some(chunk))) =
        tokio::time::timeout(Duration::from_secs(10), resp.chunk()).await
    {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let states: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| {
            if d.contains("\"SETTLED\"") {
                "SETTLED"
            } else if d.contains("\"PENDING\"") {
                "PENDING"
            } else {
                "UNPAID"
            }
        })
        .collect();
    assert_eq!(states, ["UNPAID", "PENDING", "SETTLED"], "{seen}");
}

/// Opens the pay page's event stream from `from` (a loopback address of this machine).
async fn open_stream(url: &str, from: [u8; 4]) -> reqwest::Response {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(from))
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stream_ends_at_expiry_and_a_final_tip_gets_none() {
    let s = Stack::start_expiring().await;
    s.start_worker().await;
    let c = s.client();
    let t = c.result("tip.create", tip_params("1")).await.unwrap();
    let url = format!("{}/events", t["pay_url"].as_str().unwrap());
    let mut resp = open_stream(&url, [127, 0, 0, 1]).await;
    assert_eq!(resp.status(), 200);
    let mut seen = String::new();
    // the stream ends by itself once the tip is EXPIRED (a final state), not only SETTLED
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(chunk)) = resp.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream of an expired tip went on: {seen}"
    );
    assert!(seen.contains(r#""state":"EXPIRED""#), "{seen}");
    // a browser reconnecting to a final tip is told, with 204, not to come back
    let again = open_stream(&url, [127, 0, 0, 1]).await;
    assert_eq!(again.status(), 204);
}

#[tokio::test]
async fn event_streams_are_capped_per_client_and_in_all() {
    let s = Stack::start_with(StackOptions {
        pay_streams: (2, 3),
        ..Default::default()
    })
    .await;
    let c = s.client();
    let t = c.result("tip.create", tip_params("1")).await.unwrap();
    let url = format!("{}/events", t["pay_url"].as_str().unwrap());
    let a1 = open_stream(&url, [127, 0, 0, 1]).await;
    let a2 = open_stream(&url, [127, 0, 0, 1]).await;
    let a3 = open_stream(&url, [127, 0, 0, 1]).await;
    assert_eq!((a1.status().as_u16(), a2.status().as_u16()), (200, 200));
    assert_eq!(a3.status(), 429, "a third stream from one client");
    assert_eq!(a3.headers()["retry-after"], "30");
    let b1 = open_stream(&url, [127, 0, 0, 2]).await;
    assert_eq!(b1.status(), 200, "another client still gets one");
    let b2 = open_stream(&url, [127, 0, 0, 3]).await;
    assert_eq!(b2.status(), 429, "over the total");
    // the page itself is not limited
    let (status, _) = get(t["pay_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    drop((a1, a2, b1));
}
