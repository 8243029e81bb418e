//! The overview: health, the last reconciliation, solvency, backlog, pauses, tips per day; and running a reconciliation.

use super::time;
use crate::console::{charts, page, redirect_with, unavailable, Console, Fields, Flash, Frame, Op};
use crate::operator::{self};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use fiber_link_store::ops::{Pauses, Window};
use std::time::Duration;

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
