//! Apps: the list, a new app, one app with its switches, secrets and withdrawal policy, and the actions on it.

use super::time;
use crate::console::{
    page, redirect_with, refusal, unavailable, Console, Fields, Flash, Frame, Op,
};
use crate::operator::{self, Resumed};
use crate::ops::{self, PolicyEdit};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use fiber_link_store::apps::Revoke;
use fiber_link_store::ops::GLOBAL;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Template)]
#[template(path = "console/apps.html")]
struct AppsPage {
    frame: Frame,
    /// The create form's one-time value.
    once: String,
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
        once: crate::console::token(),
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

/// For forms whose repetition would act twice (a second app, a second rotation, which revokes
/// the secret a forum still uses): the form's one-time value must be new. `Some(answer)` when
/// it is missing or was used (a reload, a double click): nothing is done again.
async fn sent_twice(c: &Console, f: &HashMap<String, String>, back: &str) -> Option<Response> {
    let once = f.get("once").map(String::as_str).unwrap_or("");
    if once.len() != 64 || !once.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(redirect_with(
            c,
            back,
            Flash::error("This form is out of date: nothing was done. Try again from this page."),
        ));
    }
    match c.store.take_form_once(once).await {
        Ok(true) => None,
        Ok(false) => Some(redirect_with(
            c,
            back,
            Flash::error(
                "This form was already sent (a reload or a second click): nothing was done again.",
            ),
        )),
        Err(e) => Some(unavailable(&e)),
    }
}

pub async fn create_app(State(c): State<Console>, mut op: Op, Fields(f): Fields) -> Response {
    if let Err(r) = op.check(&c, &f).and_then(|_| op.admin(&c)) {
        return r;
    }
    if let Some(r) = sent_twice(&c, &f, "/apps").await {
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
    /// The rotate form's one-time value.
    once: String,
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
        once: crate::console::token(),
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
    // the policy form: an empty field means the configured default
    let policy_field = |k: &str| {
        field(k).map(|v| {
            if v.is_empty() {
                "default".to_string()
            } else {
                v
            }
        })
    };
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
            if let Some(r) = sent_twice(&c, &f, &back).await {
                return r;
            }
            // at most 30 days of overlap
            let overlap = field("overlap_hours")
                .and_then(|h| h.parse::<u64>().ok())
                .unwrap_or(24)
                .min(720);
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
                allowed: policy_field("allowed"),
                min: policy_field("min"),
                max_per_request: policy_field("max_per_request"),
                author_daily_cap: policy_field("author_daily_cap"),
                app_daily_cap: policy_field("app_daily_cap"),
                cooldown_secs: policy_field("cooldown_secs"),
                approval_threshold: policy_field("approval_threshold"),
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
