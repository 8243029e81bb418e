//! Tips: the search and one tip's timeline.

use super::{event_row, time};
use crate::console::{page, refusal, unavailable, Console, Flash, Frame, Op};
use crate::ops;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use fiber_link_core::TipState;
use fiber_link_store::console::TipQuery;
use std::collections::HashMap;
use uuid::Uuid;

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
                event_row(
                    e.at,
                    e.from_state.as_deref(),
                    &e.to_state,
                    &e.source,
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
