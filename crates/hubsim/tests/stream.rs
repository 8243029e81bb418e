//! The simulator's `subscribe_store_changes` against the real FNN v0.8.0 session
//! (tests/fixtures/fnn/pubsub-v0.8.0.json): the same subscription answer, the same notification
//! shape, the same events in the same order for an invoice paid, one cancelled and one left to
//! expire; the module off and a missing token refused as FNN refuses them.

use fiber_link_hubsim::{HubSim, SimOptions};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn recording() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/fnn/pubsub-v0.8.0.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

async fn start(opts: SimOptions) -> String {
    let sim = HubSim::new(opts).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(sim.serve(l, std::future::pending()));
    format!("127.0.0.1:{}", addr.port())
}

async fn rpc(addr: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    reqwest::Client::new()
        .post(format!("http://{addr}/"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn connect(addr: &str, token: Option<&str>) -> Ws {
    let mut req = format!("ws://{addr}/").into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

async fn subscribe(ws: &mut Ws) -> Value {
    let sub = json!({"jsonrpc": "2.0", "id": 1, "method": "subscribe_store_changes", "params": []});
    ws.send(Message::text(sub.to_string())).await.unwrap();
    next_json(ws).await
}

/// The events' (tag, status) as the recording has them for one payment hash.
fn recorded_events(rec: &Value, hash_prefix: &str) -> Vec<String> {
    rec["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["via"] == "ws" && e["message"]["method"] == "store_changes")
        .map(|e| e["message"]["params"]["result"].clone())
        .filter(|r| {
            r.as_object().unwrap().values().next().unwrap()["payment_hash"]
                .as_str()
                .unwrap()
                .starts_with(hash_prefix)
        })
        .map(|r| tag(&r))
        .collect()
}

fn tag(r: &Value) -> String {
    let (k, v) = r.as_object().unwrap().iter().next().unwrap();
    match v.get("invoice_status") {
        Some(s) => format!("{k}:{}", s.as_str().unwrap()),
        None => k.clone(),
    }
}

async fn events_for(ws: &mut Ws, sub: &Value, hash: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = next_json(ws).await;
        assert_eq!(m["method"], "store_changes");
        assert_eq!(&m["params"]["subscription"], sub);
        let r = &m["params"]["result"];
        let h = r.as_object().unwrap().values().next().unwrap()["payment_hash"].clone();
        if h == hash {
            out.push(tag(r));
        }
    }
    out
}

fn new_invoice_params(rec: &Value, description: &str, expiry: &str) -> Value {
    let mut p = rec["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["via"] == "http" && e["request"]["method"] == "new_invoice")
        .unwrap()["request"]["params"][0]
        .clone();
    let mut preimage = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut preimage);
    p["payment_preimage"] = json!(format!("0x{}", hex::encode(preimage)));
    p["description"] = json!(description);
    p["expiry"] = json!(expiry);
    json!([p])
}

#[tokio::test]
async fn the_stream_says_what_fnn_says() {
    let rec = recording();
    let addr = start(SimOptions {
        settle_delay: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let mut ws = connect(&addr, None).await;
    let answer = subscribe(&mut ws).await;
    let recorded_answer = &rec["exchanges"][1]["message"];
    assert_eq!(answer["id"], recorded_answer["id"]);
    assert!(answer["result"].is_u64(), "a number, as FNN's: {answer}");
    let sub = answer["result"].clone();

    // paid: Open, PutPreimage, then PutPreimage, Received, PutPreimage, Paid
    let r = rpc(
        &addr,
        "new_invoice",
        new_invoice_params(&rec, "pubsub paid", "0x258"),
    )
    .await;
    let paid = r["result"]["invoice"]["data"]["payment_hash"].clone();
    rpc(
        &addr,
        "sim_pay_invoice",
        json!([{"invoice": r["result"]["invoice_address"]}]),
    )
    .await;
    let want = recorded_events(&rec, "0x1aa484da");
    let got = events_for(&mut ws, &sub, paid.as_str().unwrap(), want.len()).await;
    assert_eq!(got, want);

    // cancelled: Open, PutPreimage, Cancelled
    let r = rpc(
        &addr,
        "new_invoice",
        new_invoice_params(&rec, "pubsub cancel", "0x258"),
    )
    .await;
    let cancelled = r["result"]["invoice"]["data"]["payment_hash"].clone();
    rpc(
        &addr,
        "cancel_invoice",
        json!([{"payment_hash": cancelled}]),
    )
    .await;
    let want = recorded_events(&rec, "0x09d7cf0d");
    let got = events_for(&mut ws, &sub, cancelled.as_str().unwrap(), want.len()).await;
    assert_eq!(got, want);

    // left to expire: Open, PutPreimage, and nothing when it expires
    let r = rpc(
        &addr,
        "new_invoice",
        new_invoice_params(&rec, "pubsub expire", "0x1"),
    )
    .await;
    let expiring = r["result"]["invoice"]["data"]["payment_hash"].clone();
    let want = recorded_events(&rec, "0x746b5f91");
    let got = events_for(&mut ws, &sub, expiring.as_str().unwrap(), want.len()).await;
    assert_eq!(got, want);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = rpc(&addr, "get_invoice", json!([{"payment_hash": expiring}])).await;
    assert_eq!(status["result"]["status"], "Expired");
    let quiet = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(quiet.is_err(), "nothing is emitted for Expired: {quiet:?}");

    // the notification has the recorded shape, key for key
    let recorded_note = &rec["exchanges"][3]["message"];
    let r = rpc(
        &addr,
        "new_invoice",
        new_invoice_params(&rec, "shape", "0x258"),
    )
    .await;
    assert!(r.get("result").is_some());
    let note = next_json(&mut ws).await;
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&note), keys(recorded_note));
    assert_eq!(keys(&note["params"]), keys(&recorded_note["params"]));
    assert_eq!(
        keys(&note["params"]["result"]["PutCkbInvoiceStatus"]),
        keys(&recorded_note["params"]["result"]["PutCkbInvoiceStatus"])
    );
}

#[tokio::test]
async fn the_module_off_a_missing_token_and_a_dropped_stream() {
    let addr = start(SimOptions {
        token: Some("secret".into()),
        ..Default::default()
    })
    .await;
    // without the token: Unauthorized, as FNN's auth middleware answers
    let mut ws = connect(&addr, None).await;
    let a = subscribe(&mut ws).await;
    assert_eq!(a["error"]["code"], -32999, "{a}");
    // with it: a subscription, which sim_drop_streams ends
    let mut ws = connect(&addr, Some("secret")).await;
    let a = subscribe(&mut ws).await;
    assert!(a["result"].is_u64(), "{a}");
    let d = rpc(&addr, "sim_drop_streams", json!([{}])).await;
    assert_eq!(d["result"]["dropped"], 1);
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the stream was closed");
    // the module off: the method does not exist
    rpc(&addr, "sim_set_stream", json!([{"enabled": false}])).await;
    let mut ws = connect(&addr, Some("secret")).await;
    let a = subscribe(&mut ws).await;
    assert_eq!(a["error"]["code"], -32601, "{a}");
    // the node down: no WebSocket either
    rpc(&addr, "sim_set_faults", json!([{"down": true}])).await;
    let mut req = format!("ws://{addr}/").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer secret".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}
