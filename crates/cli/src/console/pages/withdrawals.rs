//! Withdrawals: the approval queue, the filtered list, one withdrawal with its evidence, and the operator's actions on it.

use super::{age, event_row, time};
use crate::console::{
    page, redirect_with, refusal, unavailable, Console, Fields, Flash, Frame, Op,
};
use crate::ops::{self, Action};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use fiber_link_core::WithdrawalState;
use fiber_link_store::console::WithdrawalFilter;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

struct WRow {
    id: String,
    app: String,
    user: String,
    state: String,
    rail: String,
    amount: String,
    age: String,
    error: String,
}

fn wrow(c: &Console, w: &fiber_link_store::withdrawals::WithdrawalRow) -> WRow {
    WRow {
        id: w.id.to_string(),
        app: w.app_id.clone(),
        user: w.user.clone(),
        state: w.state.as_str().to_string(),
        rail: w.rail.as_str().to_string(),
        amount: ops::fmt(&c.cfg, &w.asset, w.amount),
        age: age(w.created_at),
        error: w.last_error.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "console/withdrawals.html")]
struct WithdrawalsPage {
    frame: Frame,
    queue: Vec<WRow>,
    rows: Vec<WRow>,
    states: Vec<&'static str>,
    state: String,
    app: String,
    user: String,
    age: String,
}

pub async fn withdrawals(
    State(c): State<Console>,
    mut op: Op,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(|s| s.trim().to_string()).unwrap_or_default();
    let (state, app, user, age_h) = (get("state"), get("app"), get("user"), get("age"));
    let mut flash = None;
    let states: Vec<WithdrawalState> = match state.as_str() {
        "" => WithdrawalState::ALL
            .into_iter()
            .filter(|s| !s.is_final())
            .collect(),
        "all" => Vec::new(),
        s => match s.to_uppercase().parse() {
            Ok(s) => vec![s],
            Err(e) => {
                flash = Some(e);
                Vec::new()
            }
        },
    };
    let older_than = match age_h.as_str() {
        "" => None,
        h => match h.parse::<f64>() {
            Ok(h) if (0.0..1e6).contains(&h) => Some(Duration::from_secs_f64(h * 3600.0)),
            _ => {
                flash = Some(format!("age {h:?}: a number of hours"));
                None
            }
        },
    };
    let filter = WithdrawalFilter {
        states,
        app_id: (!app.is_empty()).then(|| app.clone()),
        user: (!user.is_empty()).then(|| user.clone()),
        older_than,
        limit: 200,
    };
    let queue_filter = WithdrawalFilter {
        states: vec![WithdrawalState::AwaitingApproval],
        limit: 200,
        ..Default::default()
    };
    let (queue, rows) = match tokio::try_join!(
        c.store.filter_withdrawals(&queue_filter),
        c.store.filter_withdrawals(&filter)
    ) {
        Ok(x) => x,
        Err(e) => return unavailable(&e),
    };
    let mut frame = op.frame("Withdrawals", "withdrawals");
    if let Some(e) = flash {
        frame.flash = Flash::error(e);
    }
    let t = WithdrawalsPage {
        frame,
        queue: queue.iter().map(|w| wrow(&c, w)).collect(),
        rows: rows.iter().map(|w| wrow(&c, w)).collect(),
        states: WithdrawalState::ALL.iter().map(|s| s.as_str()).collect(),
        state,
        app,
        user,
        age: age_h,
    };
    page(&op, &t)
}

#[derive(Template)]
#[template(path = "console/withdrawal.html")]
struct WithdrawalPage {
    frame: Frame,
    id: String,
    state: String,
    facts: Vec<(&'static str, String)>,
    payment_hash: String,
    tx_hash: String,
    explorer: String,
    timeline: Vec<(String, String, String, String)>,
    admin: bool,
    can_approve: bool,
    is_final: bool,
}

/// "Fiber invoice fibd1…" / "CKB address ckt1…", or the stored JSON for anything else.
fn destination(d: &serde_json::Value) -> String {
    match (
        d["kind"].as_str(),
        d["invoice"].as_str(),
        d["address"].as_str(),
    ) {
        (Some("fiber_invoice"), Some(i), _) => format!("Fiber invoice {i}"),
        (Some("ckb_address"), _, Some(a)) => format!("CKB address {a}"),
        _ => d.to_string(),
    }
}

/// A block explorer's page for a transaction, for the networks that have a public one.
fn explorer(c: &Console, tx: &str) -> String {
    match c.cfg.api.currency.as_str() {
        "Fibb" => format!("https://explorer.nervos.org/transaction/{tx}"),
        "Fibt" => format!("https://pudge.explorer.nervos.org/transaction/{tx}"),
        _ => String::new(),
    }
}

pub async fn withdrawal(State(c): State<Console>, mut op: Op, Path(id): Path<String>) -> Response {
    let Ok(id) = Uuid::try_parse(&id) else {
        return refusal(&c, StatusCode::NOT_FOUND, "No such withdrawal.");
    };
    let (w, events) = match tokio::try_join!(
        c.store.withdrawal_any_app(id),
        c.store.withdrawal_events(id)
    ) {
        Ok((Some(w), e)) => (w, e),
        Ok((None, _)) => return refusal(&c, StatusCode::NOT_FOUND, "No such withdrawal."),
        Err(e) => return unavailable(&e),
    };
    let f = |a| ops::fmt(&c.cfg, &w.asset, a);
    let mut facts = vec![
        ("app", w.app_id.clone()),
        ("user", w.user.clone()),
        ("amount", f(w.amount)),
        ("fee", format!("{} ({})", f(w.fee), w.fee_mode.as_str())),
        ("recipient receives", f(w.receive)),
        ("rail", w.rail.as_str().to_string()),
        ("destination", destination(&w.destination)),
        ("created", time(w.created_at)),
        ("last progress", time(w.progressed_at)),
        ("attempts", w.attempts.to_string()),
    ];
    if let Some(b) = &w.approved_by {
        facts.push((
            "approved",
            format!("by {b} at {}", w.approved_at.map(time).unwrap_or_default()),
        ));
    }
    if let Some(n) = w.confirmations {
        facts.push(("confirmations", n.to_string()));
    }
    if let Some(e) = &w.last_error {
        facts.push(("last error", e.clone()));
    }
    if let Some(r) = &w.failure_reason {
        facts.push((
            "failure",
            format!("{r}: {}", w.failure_message.clone().unwrap_or_default()),
        ));
    }
    let tx_hash = w.tx_hash.clone().unwrap_or_default();
    let t = WithdrawalPage {
        frame: op.frame(format!("Withdrawal {id}"), "withdrawals"),
        id: id.to_string(),
        state: w.state.as_str().to_string(),
        facts,
        payment_hash: w.payment_hash.clone().unwrap_or_default(),
        explorer: if tx_hash.is_empty() {
            String::new()
        } else {
            explorer(&c, &tx_hash)
        },
        tx_hash,
        timeline: events
            .iter()
            .map(|e| {
                event_row(
                    e.at,
                    e.from_state.as_deref(),
                    &e.to_state,
                    &e.source,
                    e.detail.clone().unwrap_or_default(),
                )
            })
            .collect(),
        admin: op.is_admin(),
        can_approve: w.state == WithdrawalState::AwaitingApproval,
        is_final: w.state.is_final(),
    };
    page(&op, &t)
}

pub async fn withdrawal_action(
    State(c): State<Console>,
    op: Op,
    Path((id, action)): Path<(String, String)>,
    Fields(f): Fields,
) -> Response {
    if let Err(r) = op.check(&c, &f).and_then(|_| op.admin(&c)) {
        return r;
    }
    let Ok(uuid) = Uuid::try_parse(&id) else {
        return refusal(&c, StatusCode::NOT_FOUND, "No such withdrawal.");
    };
    let reason = f
        .get("reason")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let action = match action.as_str() {
        "approve" => Action::Approve,
        "cancel" => Action::Cancel(if reason.is_empty() {
            "cancelled by the operator".into()
        } else {
            reason
        }),
        "retry" => Action::Retry,
        "fail" => Action::Fail(reason),
        _ => return refusal(&c, StatusCode::NOT_FOUND, "No such action."),
    };
    let flash = match ops::withdrawal_action(&c.cfg, &c.store, uuid, action, &op.name).await {
        Ok(m) => Flash::ok(m),
        Err(e) => Flash::error(format!("{e:#}")),
    };
    redirect_with(&c, &format!("/withdrawals/{uuid}"), flash)
}
