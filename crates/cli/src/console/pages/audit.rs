//! The audit trail, paged.

use super::time;
use crate::console::{page, unavailable, Console, Flash, Frame, Op};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use fiber_link_store::ops::AuditFilter;
use std::collections::HashMap;
use uuid::Uuid;

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
                        serde_urlencoded::to_string(&params).unwrap_or_default()
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
