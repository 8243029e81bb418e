//! Replays the requests of the real FNN v0.8.0 recording (tests/fixtures/fnn/real-v0.8.0)
//! against the simulator over HTTP, as the payee node B: every answer must have the recorded
//! shape, every error the recorded code and message, and every invoice must go through the
//! recorded status sequence. The payer's `send_payment` calls on node A become `sim_pay_invoice`.

use fiber_link_hubsim::{HubSim, SimOptions, SimUdt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Exchange {
    name: String,
    method: String,
    node: String,
    request: Value,
    response: Value,
}

fn exchanges() -> Vec<Exchange> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/fnn/real-v0.8.0");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("vendored fixtures")
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".request.json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let stem = n.trim_end_matches(".request.json").to_string();
            let parts: Vec<&str> = stem[4..].split('.').collect();
            let read =
                |f: String| serde_json::from_slice(&std::fs::read(dir.join(f)).unwrap()).unwrap();
            Exchange {
                method: parts[0].to_string(),
                node: parts[1].to_string(),
                request: read(format!("{stem}.request.json")),
                response: read(format!("{stem}.response.json")),
                name: stem,
            }
        })
        .collect()
}

/// Same structure: the same object keys at every level, the same JSON types at the leaves
/// (arrays are compared by their first element; an empty array matches any array).
fn same_shape(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<&String> = x.keys().collect();
            let ky: Vec<&String> = y.keys().collect();
            let mut sx = kx.clone();
            let mut sy = ky.clone();
            sx.sort();
            sy.sort();
            if sx != sy {
                return Err(format!("{path}: keys {sx:?} vs {sy:?}"));
            }
            for k in kx {
                same_shape(&x[k], &y[k], &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) => match (x.first(), y.first()) {
            (Some(p), Some(q)) => same_shape(p, q, &format!("{path}[0]")),
            _ => Ok(()),
        },
        (Value::Null, _) | (_, Value::Null) => Ok(()),
        (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Number(_), Value::Number(_)) => Ok(()),
        _ => Err(format!("{path}: {a} vs {b}")),
    }
}

struct Sim {
    url: String,
    http: reqwest::Client,
}

impl Sim {
    async fn call(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        self.http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn rewrite(v: &Value, map: &HashMap<String, String>) -> Value {
    let mut s = v.to_string();
    for (from, to) in map {
        s = s.replace(from.as_str(), to.as_str());
    }
    serde_json::from_str(&s).unwrap()
}

#[tokio::test]
async fn replaying_real_fnn_traffic_gives_the_same_shapes_errors_and_statuses() {
    let sim = HubSim::new(SimOptions {
        udts: vec![SimUdt {
            name: "SIMPLE_UDT".into(),
            script: fiber_link_core::Script {
                code_hash: "0xe1e354d6d643ad42724d40967e334984534e0367405c5ae42a9d7d63d77df419"
                    .into(),
                hash_type: "data2".into(),
                args: "0x32e555f3ff8e135cece1351a6a2971518392c1e30375c1e006ad0ce8eac07947".into(),
            },
        }],
        ..Default::default()
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim.serve(listener, std::future::pending()));
    let sim = Sim {
        url,
        http: reqwest::Client::new(),
    };

    // recorded hash / invoice string -> the simulator's
    let mut map: HashMap<String, String> = HashMap::new();
    let mut checked = 0;
    let mut statuses: HashMap<String, Vec<String>> = HashMap::new();
    for ex in exchanges() {
        let params = rewrite(&ex.request["params"], &map);
        let recorded = &ex.response;
        match (ex.method.as_str(), ex.node.as_str()) {
            ("node_info", _)
            | ("list_channels", "nodeB")
            | ("parse_invoice", _)
            | ("settle_invoice", "nodeB") => {
                let got = sim.call(&ex.method, params).await;
                same_shape(&recorded["result"], &got["result"], &ex.name)
                    .unwrap_or_else(|e| panic!("{e}\n{got}"));
            }
            ("new_invoice", "nodeB") => {
                let got = sim.call("new_invoice", params).await;
                if let Some(err) = recorded.get("error") {
                    assert_eq!(got["error"]["code"], err["code"], "{}: {got}", ex.name);
                    assert_eq!(got["error"]["message"], err["message"], "{}", ex.name);
                    same_shape(&err["data"], &got["error"]["data"], &ex.name).unwrap();
                } else {
                    same_shape(&recorded["result"], &got["result"], &ex.name)
                        .unwrap_or_else(|e| panic!("{e}\n{got}"));
                    let rh = recorded["result"]["invoice"]["data"]["payment_hash"]
                        .as_str()
                        .unwrap();
                    let gh = got["result"]["invoice"]["data"]["payment_hash"]
                        .as_str()
                        .unwrap();
                    let n_attrs = |v: &Value| {
                        v["result"]["invoice"]["data"]["attrs"]
                            .as_array()
                            .unwrap()
                            .len()
                    };
                    assert_eq!(n_attrs(recorded), n_attrs(&got), "{}: same attrs", ex.name);
                    map.insert(rh.to_string(), gh.to_string());
                    map.insert(
                        recorded["result"]["invoice_address"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                        got["result"]["invoice_address"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    );
                }
            }
            ("get_invoice" | "cancel_invoice", "nodeB") => {
                if let Some(err) = recorded.get("error") {
                    let got = sim.call(&ex.method, params).await;
                    assert_eq!(got["error"]["code"], err["code"], "{}: {got}", ex.name);
                    assert_eq!(got["error"]["message"], err["message"], "{}", ex.name);
                    continue;
                }
                let want = recorded["result"]["status"].as_str().unwrap();
                let hash = params[0]["payment_hash"].as_str().unwrap().to_string();
                // the simulator's clock is not the recording's: poll (get_invoice) until the
                // invoice reaches the recorded status; cancel_invoice answers at once
                let start = Instant::now();
                let got = loop {
                    let got = sim.call(&ex.method, params.clone()).await;
                    if got["result"]["status"] == want || ex.method == "cancel_invoice" {
                        break got;
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(10),
                        "{}: never reached {want}: {got}",
                        ex.name
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                };
                assert_eq!(got["result"]["status"], want, "{}", ex.name);
                same_shape(&recorded["result"], &got["result"], &ex.name).unwrap();
                let seq = statuses.entry(hash).or_default();
                if seq.last().map(String::as_str) != Some(want) {
                    seq.push(want.to_string());
                }
            }
            ("send_payment", "nodeA") => {
                // the payer pays; FNN refuses the TLC of an expired or cancelled invoice
                let invoice = params[0]["invoice"].clone();
                let got = sim
                    .call("sim_pay_invoice", json!([{"invoice": invoice}]))
                    .await;
                let refused = recorded.get("error").is_some() || ex.name.contains("cancelled");
                assert_eq!(got.get("error").is_some(), refused, "{}: {got}", ex.name);
            }
            _ => continue,
        }
        checked += 1;
    }
    assert!(checked >= 45, "replayed {checked} exchanges");
    let seqs: Vec<Vec<String>> = statuses.into_values().collect();
    let has = |s: &[&str]| {
        seqs.iter()
            .any(|q| q.iter().map(String::as_str).collect::<Vec<_>>() == s)
    };
    assert!(has(&["Open", "Received", "Paid"]), "{seqs:?}");
    assert!(has(&["Cancelled"]), "{seqs:?}");
    assert!(has(&["Open", "Expired", "Cancelled"]), "{seqs:?}");
    assert!(has(&["Open", "Paid"]), "{seqs:?}");
}
