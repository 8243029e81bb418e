//! The console's pages and the actions behind their forms. Every action calls the same function
//! as its CLI command.

use super::{charts, page, redirect_with, refusal, unavailable, Console, Fields, Flash, Frame, Op};
use crate::operator::{self, Resumed};
use crate::ops::{self, Action, PolicyEdit};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use fiber_link_core::{TipState, WithdrawalState};
use fiber_link_store::apps::Revoke;
use fiber_link_store::console::{TipQuery, WithdrawalFilter};
use fiber_link_store::ops::{AuditFilter, Pauses, Window, GLOBAL};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn age(t: DateTime<Utc>) -> String {
    let s = (Utc::now() - t).num_seconds().max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86400),
    }
}

// ---------------------------------------------------------------- overview

struct Health {
    what: &'static str,
    status: String,
    ok: bool,
}

struct SolvencyRow {
    asset: String,
    owed: String,
    held: String,
    owed_text: String,
    held_text: String,
    surplus_text: String,
    insolvent: bool,
}

struct BacklogItem {
    key: &'static str,
    label: &'static str,
    value: i64,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    frame: Frame,
    health: Vec<Health>,
    reconcile_result: String,
    reconcile_detail: String,
    reconcile_clean: bool,
    solvency_at: String,
    solvency: Vec<SolvencyRow>,
    solvency_chart: String,
    backlog: Vec<BacklogItem>,
    oldest: String,
    pauses: Vec<String>,
    admin: bool,
    daily_chart: String,
    daily: Vec<(String, String, i64, i64, String)>,
}

async fn health(c: &Console) -> Vec<Health> {
    let mut out = Vec::new();
    let h = |what, r: Result<String, String>| match r {
        Ok(s) => Health {
            what,
            status: format!("ok — {s}"),
            ok: true,
        },
        Err(e) => Health {
            what,
            status: format!("down — {e}"),
            ok: false,
        },
    };
    out.push(h(
        "database",
        c.store
            .ping()
            .await
            .map(|_| "answering".to_string())
            .map_err(|e| e.to_string()),
    ));
    out.push(h(
        "hub",
        c.hub
            .node_info()
            .await
            .map(|n| format!("node {}", n.node_name.unwrap_or_default()))
            .map_err(|e| e.to_string()),
    ));
    match &c.cfg.onchain {
        None => out.push(Health {
            what: "chain",
            status: "not configured (no on-chain payouts)".into(),
            ok: true,
        }),
        Some(rt) => {
            let r = match fiber_link_chain::ChainClient::new(&rt.rpc_url, rt.timeout) {
                Ok(chain) => chain
                    .tip_block_number()
                    .await
                    .map(|n| format!("tip block {n}"))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            out.push(h("chain", r));
        }
    }
    out
}

pub async fn overview(State(c): State<Console>, mut op: Op) -> Response {
    let (backlog, controls, runs, daily) = match tokio::try_join!(
        c.store.backlog(),
        c.store.controls(),
        c.store.reconcile_runs(30),
        c.store.daily_tips(30),
    ) {
        Ok(x) => x,
        Err(e) => return unavailable(&e),
    };
    let health = health(&c).await;
    let last = runs.last();
    let (reconcile_result, reconcile_detail, reconcile_clean) = match last {
        None => ("never run".to_string(), String::new(), false),
        Some(r) => (
            match (&r.error, r.findings) {
                (Some(_), _) => "could not run".to_string(),
                (None, Some(0)) => "clean".to_string(),
                (None, Some(n)) => format!("{n} finding(s)"),
                (None, None) => "unknown".to_string(),
            },
            format!(
                "{} by {} ({}){}",
                time(r.at),
                r.actor,
                r.scope,
                r.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
            r.clean == Some(true),
        ),
    };
    let with_solvency = runs
        .iter()
        .rev()
        .find(|r| r.solvency.as_array().is_some_and(|a| !a.is_empty()));
    let mut solvency = Vec::new();
    if let Some(r) = with_solvency {
        for s in r.solvency.as_array().into_iter().flatten() {
            let asset = s["asset"].as_str().unwrap_or_default().to_string();
            let owed = s["owed"].as_str().unwrap_or_default().to_string();
            let held = s["held"].as_str().unwrap_or_default().to_string();
            let (o, h) = (
                owed.parse::<i128>().unwrap_or(0),
                held.parse::<i128>().unwrap_or(0),
            );
            let text = |v: i128| charts::units(&c, &asset, v);
            solvency.push(SolvencyRow {
                owed_text: text(o),
                held_text: text(h),
                surplus_text: text(h - o),
                insolvent: h < o,
                asset,
                owed,
                held,
            });
        }
    }
    if with_solvency.is_none() {
        // no reconciliation yet: one empty row per asset
        for a in c.cfg.api.assets.iter() {
            solvency.push(SolvencyRow {
                asset: a.symbol.clone(),
                owed: String::new(),
                held: String::new(),
                owed_text: "—".into(),
                held_text: "—".into(),
                surplus_text: "—".into(),
                insolvent: false,
            });
        }
    }
    let backlog_items = vec![
        BacklogItem {
            key: "open_tips",
            label: "open tips",
            value: backlog.open_tips,
        },
        BacklogItem {
            key: "tips_due",
            label: "tip checks due",
            value: backlog.tips_due,
        },
        BacklogItem {
            key: "withdrawals_awaiting_approval",
            label: "withdrawals awaiting approval",
            value: backlog.withdrawals_awaiting_approval,
        },
        BacklogItem {
            key: "withdrawals_queued",
            label: "withdrawals queued",
            value: backlog.withdrawals_queued,
        },
    ];
    let oldest = format!(
        "oldest open tip {:.0} s; most overdue check {:.0} s late; oldest unfinished withdrawal {:.0} s",
        backlog.oldest_open_secs, backlog.oldest_due_secs, backlog.oldest_unfinished_withdrawal_secs
    );
    let pauses = Pauses::new(controls)
        .on()
        .into_iter()
        .map(|(scope, what)| format!("{scope}: {what} paused"))
        .collect();
    let daily_rows = daily
        .iter()
        .map(|d| {
            (
                d.day.to_string(),
                d.asset.clone(),
                d.created,
                d.settled,
                charts::units(&c, &d.asset, d.volume.parse().unwrap_or(0)),
            )
        })
        .collect();
    let t = OverviewPage {
        frame: op.frame("Overview", "overview"),
        health,
        reconcile_result,
        reconcile_detail,
        reconcile_clean,
        solvency_at: with_solvency
            .map(|r| format!("as of the reconciliation of {}", time(r.at)))
            .unwrap_or_else(|| "no reconciliation yet: run one".into()),
        solvency,
        solvency_chart: charts::solvency(&c, &runs),
        backlog: backlog_items,
        oldest,
        pauses,
        admin: op.is_admin(),
        daily_chart: charts::daily(&daily, 30),
        daily: daily_rows,
    };
    page(&op, &t)
}

pub async fn reconcile(State(c): State<Console>, op: Op, Fields(f): Fields) -> Response {
    if let Err(r) = op.check(&c, &f) {
        return r;
    }
    let w = Window::default();
    let flash = match operator::run_reconcile(
        &c.cfg,
        &c.store,
        &w,
        Duration::from_secs(60),
        &format!("operator:{}", op.name),
    )
    .await
    {
        Ok(r) if r.clean => Flash::ok("Reconciliation: clean."),
        Ok(r) => Flash::error(format!(
            "Reconciliation found {} finding(s): {}",
            r.findings.len(),
            r.findings
                .iter()
                .take(5)
                .map(|f| format!("[{}] {}: {}", f.kind.as_str(), f.subject, f.detail))
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Err(e) => Flash::error(format!("{e:#}")),
    };
    redirect_with(&c, "/", flash)
}

// ---------------------------------------------------------------- withdrawals

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
        ("destination", w.destination.to_string()),
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
                (
                    time(e.at),
                    format!(
                        "{} → {}",
                        e.from_state.as_deref().unwrap_or("-"),
                        e.to_state
                    ),
                    e.source.clone(),
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

// ---------------------------------------------------------------- apps

#[derive(Template)]
#[template(path = "console/apps.html")]
struct AppsPage {
    frame: Frame,
    apps: Vec<(String, String, String, i64, String)>,
    admin: bool,
}

fn switches_of(scope: &str, controls: &[fiber_link_store::ops::Control]) -> String {
    controls
        .iter()
        .find(|c| c.scope == scope)
        .map(operator::switches)
        .unwrap_or_else(|| "tips open, withdrawals open".into())
}

pub async fn apps(State(c): State<Console>, mut op: Op) -> Response {
    let (apps, controls) = match tokio::try_join!(c.store.list_apps(), c.store.controls()) {
        Ok(x) => x,
        Err(e) => return unavailable(&e),
    };
    let t = AppsPage {
        frame: op.frame("Apps", "apps"),
        apps: apps
            .iter()
            .map(|a| {
                (
                    a.id.clone(),
                    a.name.clone(),
                    time(a.created_at),
                    a.live_secrets,
                    switches_of(&a.id, &controls),
                )
            })
            .collect(),
        admin: op.is_admin(),
    };
    page(&op, &t)
}

#[derive(Template)]
#[template(path = "console/secret.html")]
struct SecretPage {
    frame: Frame,
    app_id: String,
    secret: String,
    note: String,
}

pub async fn create_app(State(c): State<Console>, mut op: Op, Fields(f): Fields) -> Response {
    if let Err(r) = op.check(&c, &f).and_then(|_| op.admin(&c)) {
        return r;
    }
    let name = f.get("name").cloned().unwrap_or_default();
    match crate::apps::create(&c.cfg, &c.store, &name, &op.name).await {
        Ok((id, secret)) => {
            let t = SecretPage {
                frame: op.frame("App created", "apps"),
                app_id: id,
                secret,
                note: format!("App {:?} created.", name.trim()),
            };
            page(&op, &t)
        }
        Err(e) => redirect_with(&c, "/apps", Flash::error(format!("{e:#}"))),
    }
}

struct PolicyView {
    asset: String,
    effective: Vec<(&'static str, String)>,
    allowed: String,
    fields: Vec<(&'static str, &'static str, String)>,
}

#[derive(Template)]
#[template(path = "console/app.html")]
struct AppPage {
    frame: Frame,
    id: String,
    name: String,
    created: String,
    live_secrets: i64,
    switches: String,
    global_switches: String,
    policies: Vec<PolicyView>,
    admin: bool,
}

pub async fn app(State(c): State<Console>, mut op: Op, Path(id): Path<String>) -> Response {
    let (apps, controls) = match tokio::try_join!(c.store.list_apps(), c.store.controls()) {
        Ok(x) => x,
        Err(e) => return unavailable(&e),
    };
    let Some(a) = apps.into_iter().find(|a| a.id == id) else {
        return refusal(&c, StatusCode::NOT_FOUND, "No such app.");
    };
    let policies = match ops::policies(&c.cfg, &c.store, &id).await {
        Ok(p) => p,
        Err(e) => return unavailable(&e),
    };
    let policies = policies
        .into_iter()
        .map(|(eff, ov)| {
            let asset = eff["asset"].as_str().unwrap_or_default().to_string();
            let show = |v: &serde_json::Value| match v {
                serde_json::Value::Null => "none".to_string(),
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            let keys = [
                ("allowed", "allowed"),
                ("min", "minimum"),
                ("max_per_request", "max per request"),
                ("author_daily_cap", "author daily cap"),
                ("app_daily_cap", "app daily cap"),
                ("cooldown_secs", "cooldown (s)"),
                ("approval_threshold", "approval above"),
            ];
            let decimals = c
                .cfg
                .api
                .assets
                .get(&asset)
                .map(|a| a.decimals)
                .unwrap_or(0);
            let amt = |x: Option<fiber_link_core::Amount>| {
                x.map(|x| fiber_link_core::format_decimal(x, decimals))
                    .unwrap_or_default()
            };
            PolicyView {
                effective: keys.iter().map(|(k, l)| (*l, show(&eff[*k]))).collect(),
                allowed: match ov.allowed {
                    None => "default",
                    Some(true) => "true",
                    Some(false) => "false",
                }
                .into(),
                fields: vec![
                    ("min", "minimum", amt(ov.min)),
                    (
                        "max_per_request",
                        "max per request",
                        amt(ov.max_per_request),
                    ),
                    (
                        "author_daily_cap",
                        "author daily cap",
                        amt(ov.author_daily_cap),
                    ),
                    ("app_daily_cap", "app daily cap", amt(ov.app_daily_cap)),
                    (
                        "cooldown_secs",
                        "cooldown (s)",
                        ov.cooldown_secs.map(|s| s.to_string()).unwrap_or_default(),
                    ),
                    (
                        "approval_threshold",
                        "approval above",
                        amt(ov.approval_threshold),
                    ),
                ],
                asset,
            }
        })
        .collect();
    let t = AppPage {
        frame: op.frame(format!("App {}", a.name), "apps"),
        switches: switches_of(&a.id, &controls),
        global_switches: switches_of(GLOBAL, &controls),
        id: a.id,
        name: a.name,
        created: time(a.created_at),
        live_secrets: a.live_secrets,
        policies,
        admin: op.is_admin(),
    };
    page(&op, &t)
}

pub async fn app_action(
    State(c): State<Console>,
    mut op: Op,
    Path((id, action)): Path<(String, String)>,
    Fields(f): Fields,
) -> Response {
    if let Err(r) = op.check(&c, &f).and_then(|_| op.admin(&c)) {
        return r;
    }
    // the global switches are on the overview
    let back = if id == GLOBAL {
        "/".to_string()
    } else {
        format!("/apps/{id}")
    };
    let checked = |k: &str| f.get(k).is_some_and(|v| v == "on" || v == "true");
    let which = match (checked("tips"), checked("withdrawals")) {
        (false, false) => (true, true),
        x => x,
    };
    let field = |k: &str| f.get(k).map(|s| s.trim().to_string());
    let flash = match action.as_str() {
        "pause" => {
            let reason = field("reason").filter(|r| !r.is_empty());
            match operator::switch(&c.store, &id, which, true, reason.as_deref(), &op.name).await {
                Ok(ctl) => Flash::ok(format!(
                    "{} (in force on every API and worker within {} s)",
                    operator::switches(&ctl),
                    fiber_link_store::ops::PAUSE_REFRESH.as_secs()
                )),
                Err(e) => Flash::error(format!("{e:#}")),
            }
        }
        "resume" => {
            match operator::resume_switches(&c.cfg, &c.store, &id, which, checked("force"), &op.name)
                .await
            {
                Ok(Resumed::Done(ctl, rep)) => Flash::ok(format!(
                    "{}{}",
                    operator::switches(&ctl),
                    if rep.is_some() {
                        " (after a clean reconciliation)"
                    } else {
                        " (forced, without reconciling)"
                    }
                )),
                Ok(Resumed::Refused(rep)) => Flash::error(format!(
                    "Not resumed: reconciliation found {} finding(s). Run a backfill, investigate with the audit trail, or resume with force.",
                    rep.findings.len()
                )),
                Err(e) => Flash::error(format!("{e:#}")),
            }
        }
        "rotate" => {
            let overlap = field("overlap_hours")
                .and_then(|h| h.parse::<u64>().ok())
                .unwrap_or(24);
            return match crate::apps::rotate(
                &c.cfg,
                &c.store,
                &id,
                Duration::from_secs(overlap * 3600),
                &op.name,
            )
            .await
            {
                Ok((_, secret, old_end)) => {
                    let t = SecretPage {
                        frame: op.frame("New secret", "apps"),
                        app_id: id,
                        secret,
                        note: match old_end {
                            Some(t) => {
                                format!("The previous secret stays valid until {}.", time(t))
                            }
                            None => "There was no current secret to keep.".into(),
                        },
                    };
                    page(&op, &t)
                }
                Err(e) => redirect_with(&c, &back, Flash::error(format!("{e:#}"))),
            };
        }
        "revoke" => {
            let which = if field("which").as_deref() == Some("all") {
                Revoke::All
            } else {
                Revoke::Previous
            };
            match crate::apps::revoke(&c.store, &id, which, &op.name).await {
                Ok(n) => Flash::ok(format!("{n} secret(s) revoked")),
                Err(e) => Flash::error(format!("{e:#}")),
            }
        }
        "policy" => {
            let asset = field("asset").unwrap_or_default();
            let edit = PolicyEdit {
                allowed: field("allowed"),
                min: field("min"),
                max_per_request: field("max_per_request"),
                author_daily_cap: field("author_daily_cap"),
                app_daily_cap: field("app_daily_cap"),
                cooldown_secs: field("cooldown_secs"),
                approval_threshold: field("approval_threshold"),
            };
            match ops::set_policy(&c.cfg, &c.store, &id, &asset, &edit, &op.name).await {
                Ok(()) => Flash::ok(format!("Policy for {asset} updated.")),
                Err(e) => Flash::error(format!("{e:#}")),
            }
        }
        _ => return refusal(&c, StatusCode::NOT_FOUND, "No such action."),
    };
    redirect_with(&c, &back, flash)
}

// ---------------------------------------------------------------- tips

struct TRow {
    id: String,
    app: String,
    post: String,
    from: String,
    to: String,
    amount: String,
    state: String,
    created: String,
}

#[derive(Template)]
#[template(path = "console/tips.html")]
struct TipsPage {
    frame: Frame,
    q: String,
    rows: Vec<TRow>,
    searched: bool,
}

/// `q`: a tip id, a payment hash, or `app=ID user=U` / `app=ID post=P`.
fn parse_tip_query(q: &str) -> Result<TipQuery, String> {
    let q = q.trim();
    if let Ok(id) = Uuid::try_parse(q) {
        return Ok(TipQuery::Id(id));
    }
    let lower = q.to_lowercase();
    if lower.len() == 66
        && lower.starts_with("0x")
        && lower[2..].bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Ok(TipQuery::PaymentHash(lower));
    }
    let mut kv: HashMap<&str, &str> = HashMap::new();
    for part in q.split_whitespace() {
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!("{part:?}: expected a tip id, a payment hash (0x…), or app=ID user=U / app=ID post=P"));
        };
        kv.insert(k, v);
    }
    let Some(app) = kv.get("app") else {
        return Err("name the app: app=ID user=U or app=ID post=P".into());
    };
    match (kv.get("user"), kv.get("post")) {
        (Some(u), None) => Ok(TipQuery::User {
            app_id: app.to_string(),
            user: u.to_string(),
        }),
        (None, Some(p)) => Ok(TipQuery::Post {
            app_id: app.to_string(),
            post_id: p.to_string(),
        }),
        _ => Err("give either user=U or post=P".into()),
    }
}

pub async fn tips(
    State(c): State<Console>,
    mut op: Op,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let text = q.get("q").cloned().unwrap_or_default();
    let mut frame = op.frame("Tips", "tips");
    let mut rows = Vec::new();
    let searched = !text.trim().is_empty();
    if searched {
        match parse_tip_query(&text) {
            Err(e) => frame.flash = Flash::error(e),
            Ok(query) => match c.store.find_tips(&query, 200).await {
                Ok(found) => {
                    rows = found
                        .iter()
                        .map(|t| TRow {
                            id: t.id.to_string(),
                            app: t.app_id.clone(),
                            post: t.post_id.clone(),
                            from: t.from_user.clone(),
                            to: t.to_user.clone(),
                            amount: ops::fmt(&c.cfg, &t.asset, t.amount),
                            state: t.state.as_str().to_string(),
                            created: time(t.created_at),
                        })
                        .collect()
                }
                Err(e) => return unavailable(&e),
            },
        }
    }
    let t = TipsPage {
        frame,
        q: text,
        rows,
        searched,
    };
    page(&op, &t)
}

#[derive(Template)]
#[template(path = "console/tip.html")]
struct TipPage {
    frame: Frame,
    id: String,
    state: String,
    settled: bool,
    facts: Vec<(&'static str, String)>,
    timeline: Vec<(String, String, String, String)>,
}

pub async fn tip(State(c): State<Console>, mut op: Op, Path(id): Path<String>) -> Response {
    let Ok(id) = Uuid::try_parse(&id) else {
        return refusal(&c, StatusCode::NOT_FOUND, "No such tip.");
    };
    let t = match c.store.tip_any_app(id).await {
        Ok(Some(t)) => t,
        Ok(None) => return refusal(&c, StatusCode::NOT_FOUND, "No such tip."),
        Err(e) => return unavailable(&e),
    };
    let events = match c.store.tip_events(&t.app_id, id).await {
        Ok(e) => e,
        Err(e) => return unavailable(&e),
    };
    let mut facts = vec![
        ("app", t.app_id.clone()),
        ("post", t.post_id.clone()),
        ("from", t.from_user.clone()),
        ("to", t.to_user.clone()),
        ("amount", ops::fmt(&c.cfg, &t.asset, t.amount)),
        ("message", t.message.clone().unwrap_or_default()),
        ("payment hash", t.payment_hash.clone()),
        ("hub status", t.hub_status.clone().unwrap_or_default()),
        ("created", time(t.created_at)),
        ("expires", time(t.expires_at)),
    ];
    if let Some(s) = t.settled_at {
        facts.push(("settled", time(s)));
    }
    if let Some(n) = t.next_check_at {
        facts.push(("next check", time(n)));
    }
    let page_t = TipPage {
        frame: op.frame(format!("Tip {id}"), "tips"),
        id: id.to_string(),
        state: t.state.as_str().to_string(),
        settled: t.state == TipState::Settled,
        facts,
        timeline: events
            .iter()
            .map(|e| {
                (
                    time(e.at),
                    format!(
                        "{} → {}",
                        e.from_state.as_deref().unwrap_or("-"),
                        e.to_state
                    ),
                    e.source.clone(),
                    [e.hub_status.clone(), e.detail.clone()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" · "),
                )
            })
            .collect(),
    };
    page(&op, &page_t)
}

// ---------------------------------------------------------------- audit

struct ARow {
    id: i64,
    at: String,
    app: String,
    event: String,
    actor: String,
    subject: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    frame: Frame,
    tip: String,
    withdrawal: String,
    app: String,
    user: String,
    operator: String,
    rows: Vec<ARow>,
    older: String,
    searched: bool,
}

const AUDIT_PAGE: i64 = 50;

pub async fn audit(
    State(c): State<Console>,
    mut op: Op,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(|s| s.trim().to_string()).unwrap_or_default();
    let (tip, withdrawal, app, user, operator_name) = (
        get("tip"),
        get("withdrawal"),
        get("app"),
        get("user"),
        get("operator"),
    );
    let before = get("before").parse::<i64>().ok();
    let mut frame = op.frame("Audit trail", "audit");
    let uuid =
        |s: &str, what: &str| Uuid::try_parse(s).map_err(|_| format!("{s:?} is not a {what} id"));
    let filter: Option<Result<AuditFilter, String>> = if !tip.is_empty() {
        Some(uuid(&tip, "tip").map(AuditFilter::Tip))
    } else if !withdrawal.is_empty() {
        Some(uuid(&withdrawal, "withdrawal").map(AuditFilter::Withdrawal))
    } else if !operator_name.is_empty() {
        Some(Ok(AuditFilter::Operator(operator_name.clone())))
    } else if !app.is_empty() && !user.is_empty() {
        Some(Ok(AuditFilter::User {
            app_id: app.clone(),
            external_id: user.clone(),
        }))
    } else if !app.is_empty() || !user.is_empty() {
        Some(Err("a user's trail needs both the app and the user".into()))
    } else {
        None
    };
    let mut rows = Vec::new();
    let mut older = String::new();
    let searched = filter.is_some();
    match filter {
        None => {}
        Some(Err(e)) => frame.flash = Flash::error(e),
        Some(Ok(f)) => match c.store.audit_page(&f, before, AUDIT_PAGE + 1, true).await {
            Ok(mut found) => {
                if found.len() as i64 > AUDIT_PAGE {
                    found.truncate(AUDIT_PAGE as usize);
                    let last = found.last().map(|r| r.id).unwrap_or(0);
                    let mut params: Vec<(String, String)> = q
                        .iter()
                        .filter(|(k, v)| k.as_str() != "before" && !v.is_empty())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    params.sort();
                    params.push(("before".into(), last.to_string()));
                    older = format!(
                        "/audit?{}",
                        params
                            .iter()
                            .map(|(k, v)| format!(
                                "{}={}",
                                charts::url_encode(k),
                                charts::url_encode(v)
                            ))
                            .collect::<Vec<_>>()
                            .join("&")
                    );
                }
                rows = found
                    .into_iter()
                    .map(|r| ARow {
                        id: r.id,
                        at: time(r.at),
                        app: r.app_id.unwrap_or_default(),
                        event: r.event,
                        actor: r.actor,
                        subject: r
                            .tip_id
                            .map(|t| format!("tip {t}"))
                            .or(r.withdrawal_id.map(|w| format!("withdrawal {w}")))
                            .unwrap_or_default(),
                        detail: r.detail.to_string(),
                    })
                    .collect();
            }
            Err(e) => return unavailable(&e),
        },
    }
    let t = AuditPage {
        frame,
        tip,
        withdrawal,
        app,
        user,
        operator: operator_name,
        rows,
        older,
        searched,
    };
    page(&op, &t)
}
