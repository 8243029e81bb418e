//! What an answer means: counts by target, status and reason; the violations (5xx, internal
//! errors, a refused signature that got through, one app reading another's data, markup shown
//! unescaped, a withdrawal accepted without a balance, no answer); and what accepted requests
//! created, to compare with the database at the end.

use crate::gen::{Auth, Plan, World, MARKUP};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

/// The answer to one request.
pub struct Outcome {
    pub status: Option<u16>,
    pub body: Vec<u8>,
    /// A transport failure (no HTTP answer, or the body could not be read).
    pub error: Option<(&'static str, String)>,
}

#[derive(Default)]
pub struct Stats {
    pub sent: u64,
    pub answered: u64,
    /// target → status (or transport error) → count
    pub by_target: BTreeMap<String, BTreeMap<String, u64>>,
    pub by_status: BTreeMap<String, u64>,
    /// `<status> <code> <reason>` → count
    pub by_reason: BTreeMap<String, u64>,
    pub by_class: BTreeMap<String, u64>,
    pub by_header_class: BTreeMap<String, u64>,
    /// Requests signed so that authentication must refuse them, and how they were answered.
    pub auth_broken: BTreeMap<String, u64>,
    /// Requests that passed authentication (each wrote exactly one nonce).
    pub passed_auth: u64,
    pub violations: BTreeMap<String, u64>,
    /// Transport errors of requests whose head the service refuses (over 100 header lines):
    /// it answers 431 and closes while the body is still being sent.
    pub excused: BTreeMap<String, u64>,
    /// Statuses outside the route's documented set (framework answers such as 405 or 431).
    pub undocumented: BTreeMap<String, u64>,
    pub accepted_tips: HashSet<String>,
    pub accepted_users: HashSet<(usize, String)>,
    pub accepted_withdrawals: HashSet<String>,
    /// Tips an answer named before the run had seen them created: (tip, caller, method).
    pub unverified: Vec<(String, usize, String)>,
}

impl Stats {
    pub fn merge(&mut self, o: Stats) {
        fn add(a: &mut BTreeMap<String, u64>, b: BTreeMap<String, u64>) {
            for (k, v) in b {
                *a.entry(k).or_default() += v;
            }
        }
        self.sent += o.sent;
        self.answered += o.answered;
        for (t, m) in o.by_target {
            add(self.by_target.entry(t).or_default(), m);
        }
        add(&mut self.by_status, o.by_status);
        add(&mut self.by_reason, o.by_reason);
        add(&mut self.by_class, o.by_class);
        add(&mut self.by_header_class, o.by_header_class);
        add(&mut self.auth_broken, o.auth_broken);
        self.passed_auth += o.passed_auth;
        add(&mut self.violations, o.violations);
        add(&mut self.undocumented, o.undocumented);
        add(&mut self.excused, o.excused);
        self.accepted_tips.extend(o.accepted_tips);
        self.accepted_users.extend(o.accepted_users);
        self.accepted_withdrawals.extend(o.accepted_withdrawals);
        self.unverified.extend(o.unverified);
    }

    /// The tips answers named before their creation was seen: each must be the caller's.
    pub fn verify_late(&mut self, sink: &Sink) {
        for (id, caller, method) in std::mem::take(&mut self.unverified) {
            let problem = match sink.owner(&id) {
                Some(o) if o == caller => continue,
                Some(o) => (
                    "one app read another app's data",
                    format!("{method} showed tip {id} of app {o} to app {caller}"),
                ),
                None => (
                    "an answer names a tip no accepted request created",
                    format!("{method}: {id}"),
                ),
            };
            *self.violations.entry(problem.0.to_string()).or_default() += 1;
            let mut r = sink.records.lock().unwrap_or_else(|p| p.into_inner());
            if r.len() < 500 {
                r.push(json!({"kind": problem.0, "detail": problem.1}));
            }
        }
    }

    pub fn violation_count(&self) -> u64 {
        self.violations.values().sum()
    }
}

/// Details of the first violations, for the report and `violations.jsonl`.
#[derive(Default)]
pub struct Sink {
    pub records: Mutex<Vec<Value>>,
    /// tip id → the app that owns it (every tip the run has seen created)
    pub owners: Mutex<HashMap<String, usize>>,
}

impl Sink {
    fn record(&self, kind: &str, plan: &Plan, out: &Outcome, detail: &str) {
        let mut r = self.records.lock().unwrap_or_else(|p| p.into_inner());
        // every kind gets its first examples kept, whatever the others did
        let same = r.iter().filter(|v| v["kind"] == kind).count();
        if same >= 20 || r.len() >= 500 {
            return;
        }
        r.push(describe(kind, plan, out, detail));
    }

    pub fn owner(&self, tip: &str) -> Option<usize> {
        self.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tip)
            .copied()
    }

    pub fn own(&self, tip: &str, app: usize) -> Option<usize> {
        self.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tip.to_string(), app)
    }
}

fn lossy(b: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(max)]).to_string();
    if b.len() > max {
        format!("{s}…[{} bytes in all]", b.len())
    } else {
        s
    }
}

/// The exact request and its answer, as JSON (the body whole, and in hex when not UTF-8).
pub fn describe(kind: &str, plan: &Plan, out: &Outcome, detail: &str) -> Value {
    let headers: Vec<Value> = plan
        .headers
        .iter()
        .map(|(k, v)| json!([k, lossy(v, 300)]))
        .collect();
    let body_utf8 = std::str::from_utf8(&plan.body).is_ok();
    json!({
        "kind": kind,
        "detail": detail,
        "request_no": plan.index,
        "target": plan.target,
        "http": format!("{} {}", plan.method, plan.path),
        "headers": headers,
        "body_len": plan.body.len(),
        "body": lossy(&plan.body, 4000),
        "body_hex": if body_utf8 || plan.body.len() > 4000 { Value::Null } else { json!(hex::encode(&plan.body)) },
        "mutations": plan.mutations,
        "status": out.status,
        "transport_error": out.error.as_ref().map(|(k, e)| format!("{k}: {e}")),
        "response": lossy(&out.body, 2000),
    })
}

/// The statuses docs/api.md (and the routes in crates/api/src/lib.rs) give each target.
fn documented(target: &str, status: u16) -> bool {
    if target.starts_with("POST /rpc") {
        matches!(status, 200 | 401 | 413 | 429)
    } else if target == "POST /tips" {
        // ErrorCode::http_status: 400, 401, 404, 409, 413, 422, 429, and 503 only while paused
        matches!(status, 201 | 400 | 401 | 404 | 409 | 413 | 422 | 429)
    } else if target == "GET /pay/{id}" {
        matches!(status, 200 | 404)
    } else if target == "GET /pay/{id}/events" {
        matches!(status, 200 | 204 | 404 | 429)
    } else if target == "GET /healthz/live" {
        status == 200
    } else {
        // stray routes: not found, or not allowed; HEAD /healthz/live is served
        matches!(status, 404 | 405) || (target == "stray HEAD /healthz/live" && status == 200)
    }
}

fn tip_ids(result: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    let mut push = |v: &Value| {
        if let Some(s) = v.get("tip_id").and_then(Value::as_str) {
            ids.push(s.to_string());
        }
    };
    push(result);
    for list in ["tips", "latest_received", "latest_sent"] {
        if let Some(a) = result.get(list).and_then(Value::as_array) {
            a.iter().for_each(&mut push);
        }
    }
    ids
}

/// A community id as the service stores it: a string as it is, a non-negative integer in decimal.
fn external_id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_i64().filter(|i| *i >= 0).map(|i| i as u64))
            .map(|n| n.to_string()),
        _ => None,
    }
}

pub fn evaluate(plan: &Plan, out: &Outcome, world: &World, st: &mut Stats, sink: &Sink) {
    st.sent += 1;
    *st.by_class.entry(plan.class.to_string()).or_default() += 1;
    *st.by_header_class
        .entry(plan.header_class.to_string())
        .or_default() += 1;
    let violation = |st: &mut Stats, kind: &str, detail: &str| {
        *st.violations.entry(kind.to_string()).or_default() += 1;
        sink.record(kind, plan, out, detail);
    };
    let status_key = match (out.status, &out.error) {
        (Some(s), None) => s.to_string(),
        (Some(s), Some((k, _))) => format!("{s}+{k}"),
        (None, Some((k, _))) => format!("error:{k}"),
        (None, None) => "error:none".into(),
    };
    *st.by_target
        .entry(plan.target.clone())
        .or_default()
        .entry(status_key.clone())
        .or_default() += 1;
    *st.by_status.entry(status_key).or_default() += 1;
    if let Some((kind, e)) = &out.error {
        if *kind == "unsendable" {
            // the HTTP client refused to build it: never reached the service
            return;
        }
        // hyper reads at most 100 header lines: with more (ours plus the client's host,
        // accept, content-type and content-length), the service answers 431 at once and closes
        // the connection, which a client still sending the body sees as a broken pipe
        let over_head_limit = plan.headers.len() + 4 > 100;
        if *kind == "timeout" {
            violation(st, "no answer in time (timeout)", e);
        } else if over_head_limit {
            *st.excused
                .entry(format!("{kind}: {}", plan.target))
                .or_default() += 1;
        } else {
            violation(st, "no HTTP answer (transport error)", e);
        }
        if out.status.is_none() {
            return;
        }
    }
    let Some(status) = out.status else { return };
    st.answered += 1;
    if !documented(&plan.target, status) {
        *st.undocumented
            .entry(format!("{} {status}", plan.target))
            .or_default() += 1;
    }
    if status >= 500 {
        violation(
            st,
            "5xx answer",
            &format!("status {status} on {}", plan.target),
        );
    }
    let json: Option<Value> = if out.body.is_empty() {
        None
    } else {
        serde_json::from_slice(&out.body).ok()
    };
    let code = json
        .as_ref()
        .and_then(|j| j.pointer("/error/code"))
        .and_then(Value::as_i64);
    let reason = json
        .as_ref()
        .and_then(|j| j.pointer("/error/data/reason"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let signed = plan.target.starts_with("POST /rpc") || plan.target == "POST /tips";
    let result: Option<&Value> = match (&json, plan.target.as_str()) {
        (Some(j), "POST /tips") if status == 201 => Some(j),
        (Some(j), t) if t.starts_with("POST /rpc") => j.get("result"),
        _ => None,
    };
    let reason_key = match (code, &result) {
        (Some(c), _) => format!("{status} {c} {reason}"),
        (None, Some(_)) => format!("{status} result"),
        (None, None) if json.is_some() => format!("{status} json"),
        (None, None) if out.body.starts_with(b"<!doctype html>") => format!("{status} html"),
        (None, None) if out.body.is_empty() => format!("{status} empty"),
        (None, None) => format!("{status} text"),
    };
    *st.by_reason
        .entry(format!("{:<24} {reason_key}", short_target(&plan.target)))
        .or_default() += 1;
    if !signed {
        if status == 200 && plan.target == "GET /pay/{id}" {
            for m in MARKUP {
                if out.body.windows(m.len()).any(|w| w == m.as_bytes()) {
                    violation(st, "unescaped markup on the pay page", m);
                }
            }
        }
        if status == 200
            && matches!(
                plan.target.as_str(),
                "stray GET /metrics" | "stray GET /healthz/ready"
            )
        {
            violation(
                st,
                "operator route served on the public listener",
                &plan.target,
            );
        }
        return;
    }
    match code {
        Some(-32603) => violation(st, "internal error (-32603) on bad input", reason),
        Some(-32005) => violation(st, "hub unavailable (-32005) while the hub is up", reason),
        _ => {}
    }
    let passed = match code {
        Some(c) => c != -32001 && c != -32004,
        None => (200..300).contains(&status),
    };
    if passed {
        st.passed_auth += 1;
    }
    let caller = match plan.auth {
        Auth::Broken(why) => {
            *st.auth_broken
                .entry(format!(
                    "{why}: {}",
                    if passed {
                        "PASSED".to_string()
                    } else {
                        format!("refused {status} {reason}")
                    }
                ))
                .or_default() += 1;
            if passed {
                violation(st, "a request that must fail authentication passed it", why);
            }
            return;
        }
        Auth::Valid(a) | Auth::Ambiguous(a) => a,
        Auth::Public => return,
    };
    if passed {
        if let Some((app, n)) = &plan.nonce {
            world.learn_nonce(*app, n);
        }
    }
    let Some(result) = result else { return };
    // what was asked: the method and params of the body as sent
    let sent: Option<Value> = serde_json::from_slice(&plan.body).ok();
    let (method, params) = if plan.target == "POST /tips" {
        ("tip.create".to_string(), sent)
    } else {
        let m = sent
            .as_ref()
            .and_then(|s| s.get("method"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        (
            m,
            sent.and_then(|mut s| s.get_mut("params").map(Value::take)),
        )
    };
    if let Some(c) = result.get("next_cursor").and_then(Value::as_str) {
        world.learn_cursor(c);
    }
    match method.as_str() {
        "tip.create" => {
            let Some(id) = result.get("tip_id").and_then(Value::as_str) else {
                violation(st, "tip.create result without a tip_id", "");
                return;
            };
            if let Some(prev) = sink.own(id, caller) {
                if prev != caller {
                    violation(
                        st,
                        "one app read another app's data",
                        &format!("tip.create returned tip {id} of app {prev}"),
                    );
                }
            }
            st.accepted_tips.insert(id.to_string());
            let p = params.unwrap_or(Value::Null);
            for f in ["from_user_id", "to_user_id"] {
                match external_id(p.get(f)) {
                    Some(u) => {
                        st.accepted_users.insert((caller, u));
                    }
                    None => violation(
                        st,
                        "tip.create accepted a request it should refuse",
                        &format!("{f} is {:?}", p.get(f)),
                    ),
                }
            }
            world.learn_tip(id, caller, result.get("invoice").and_then(Value::as_str));
        }
        "withdrawal.request" | "withdrawal.cancel" | "withdrawal.get" => {
            if let Some(id) = result.get("withdrawal_id").and_then(Value::as_str) {
                st.accepted_withdrawals.insert(id.to_string());
            }
            violation(
                st,
                "a withdrawal answered with a result though no author has a balance",
                &method,
            );
        }
        _ => {
            for id in tip_ids(result) {
                match sink.owner(&id) {
                    Some(o) if o != caller => violation(
                        st,
                        "one app read another app's data",
                        &format!("{method} showed tip {id} of app {o} to app {caller}"),
                    ),
                    Some(_) => {}
                    // created by a request whose answer is still being read: checked at the end
                    None => st.unverified.push((id, caller, method.clone())),
                }
            }
        }
    }
}

fn short_target(t: &str) -> &str {
    t.strip_prefix("POST /rpc ").unwrap_or(t)
}
