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
