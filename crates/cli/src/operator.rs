//! The operator's tools: reconcile, backfill, audit, ops summary, config check, and the kill
//! switches (`app pause|resume|show`).

use crate::config::Config;
use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, ValueEnum};
use fiber_link_core::reconcile::Report;
use fiber_link_fnn::HubClient;
use fiber_link_store::ops::{AuditFilter, Window, GLOBAL};
use fiber_link_store::{Store, StoreError};
use fiber_link_worker::ops::Reconciler;
use std::io::{IsTerminal, Write};
use uuid::Uuid;

/// Exit code of a check that found something (0: clean, 1: could not run).
pub const ALERT: i32 = 2;

/// Resuming is strict: a paid tip not credited yet blocks it, however recent.
const RESUME_GRACE: std::time::Duration = std::time::Duration::ZERO;
/// The cron summary leaves the watcher a minute to credit what was just paid.
const SUMMARY_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone, Copy, Default, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// A point in time: RFC 3339 (`2026-11-26T10:00:00Z`), a date (`2026-11-26`, midnight UTC), or
/// a duration ago (`24h`, `30m`, `7d`).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    match crate::parse_duration(s) {
        Ok(d) => Ok(Utc::now() - chrono::Duration::from_std(d).map_err(|e| e.to_string())?),
        Err(_) => Err(format!(
            "{s:?}: expected an RFC 3339 time (2026-11-26T10:00:00Z), a date (2026-11-26) or a duration ago (24h, 30m, 7d)"
        )),
    }
}

#[derive(Args)]
pub struct WindowArgs {
    /// Only this app.
    #[arg(long)]
    app: Option<String>,
    /// Tips and withdrawals created at or after this time (RFC 3339, a date, or 24h/7d ago).
    #[arg(long, value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// … and before this time.
    #[arg(long, value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
}

impl WindowArgs {
    fn window(&self) -> Window {
        Window {
            app_id: self.app.clone(),
            since: self.since,
            until: self.until,
        }
    }
}

#[derive(Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    window: WindowArgs,
    /// A tip the hub reports Paid is a finding only once its next check by the watcher is this
    /// overdue (or none is scheduled); before that it is counted as awaiting credit.
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    grace: std::time::Duration,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Args)]
pub struct BackfillArgs {
    /// Tips created at or after this time (RFC 3339, a date, or 24h/7d ago).
    #[arg(long, value_parser = parse_time)]
    since: DateTime<Utc>,
    /// … and before this time (default: now).
    #[arg(long, value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    /// Only this app.
    #[arg(long)]
    app: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["tip", "withdrawal", "user"])))]
pub struct AuditArgs {
    /// A tip's trail.
    #[arg(long)]
    tip: Option<Uuid>,
    /// A withdrawal's trail.
    #[arg(long)]
    withdrawal: Option<Uuid>,
    /// A user's trail (the community's user id; needs --app).
    #[arg(long, requires = "app")]
    user: Option<String>,
    #[arg(long)]
    app: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Args)]
pub struct SummaryArgs {
    /// Reconcile tips and withdrawals created within this long (against the hub too).
    #[arg(long, default_value = "24h", value_parser = crate::parse_duration)]
    window: std::time::Duration,
    /// Alert when a due tip check is this late (the watcher is behind or down).
    #[arg(long, default_value = "5m", value_parser = crate::parse_duration)]
    max_check_delay: std::time::Duration,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Args)]
pub struct PauseArgs {
    /// The app (or --global).
    #[arg(required_unless_present = "global", conflicts_with = "global")]
    app_id: Option<String>,
    /// Every app.
    #[arg(long)]
    global: bool,
    /// New tips (tip.create).
    #[arg(long)]
    tips: bool,
    /// Withdrawals (requests and new payouts).
    #[arg(long)]
    withdrawals: bool,
    /// Why (shown to API clients in the error message; recorded in the audit trail).
    #[arg(long)]
    reason: Option<String>,
    /// Who does it (default: $USER).
    #[arg(long)]
    by: Option<String>,
}

#[derive(Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    switches: PauseArgs,
    /// Resume even when reconciliation reports findings or cannot run.
    #[arg(long)]
    force: bool,
}

pub fn who(by: &Option<String>) -> String {
    by.clone()
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "operator".into())
}

/// Refuses a window naming an app that does not exist (a typo would otherwise look clean).
async fn known_app(store: &Store, w: &Window) -> Result<()> {
    if let Some(app) = &w.app_id {
        if store.app_name(app).await?.is_none() {
            bail!("no app {app}");
        }
    }
    Ok(())
}

async fn reconciler(cfg: &Config, store: Store) -> Result<Reconciler> {
    let hub = HubClient::new(&cfg.hub).map_err(|e| anyhow!(e))?;
    // reading only: the watch-only wallet when its address is configured
    let onchain = crate::ops::onchain_view(cfg).await?;
    Ok(Reconciler {
        store,
        hub,
        assets: cfg.api.assets.clone(),
        onchain,
    })
}

fn print_report(r: &Report, scope: &str, format: Format) {
    if let Format::Json = format {
        println!(
            "{}",
            serde_json::to_string_pretty(r).unwrap_or_else(|_| "{}".into())
        );
        return;
    }
    println!("Reconciliation of {scope}");
    println!(
        "  checked: {} tips ({} asked at the hub, {} paid and due to be credited by the watcher), {} withdrawals ({} completed ones asked at the hub or the chain)",
        r.checked.tips,
        r.checked.tips_asked_at_hub,
        r.checked.paid_awaiting_credit,
        r.checked.withdrawals,
        r.checked.withdrawals_verified_outside
    );
    println!("  solvency (base units; all apps):");
    for s in &r.solvency {
        println!(
            "    {:<8} owed {} (balances {} + unsent withdrawals {}; {} in flight in all)  held {} (hub channels {}{})  surplus {}",
            s.asset,
            s.owed,
            s.balances,
            s.in_flight_unsent,
            s.in_flight,
            s.held,
            s.hub_channels,
            s.hot_wallet
                .as_ref()
                .map(|h| format!(" + hot wallet {h}"))
                .unwrap_or_default(),
            s.surplus
        );
    }
    if r.clean {
        println!("clean: no findings");
        return;
    }
    println!("{} finding(s):", r.findings.len());
    for (k, n) in r.counts() {
        println!("  {:<40} {n}", k.as_str());
    }
    for f in &r.findings {
        println!(
            "  [{}] {}{}: {}",
            f.kind.as_str(),
            f.subject,
            f.app_id
                .as_ref()
                .map(|a| format!(" (app {a})"))
                .unwrap_or_default(),
            f.detail
        );
    }
}

fn describe(w: &Window) -> String {
    let mut s = match &w.app_id {
        Some(a) => format!("app {a}"),
        None => "every app".to_string(),
    };
    match (w.since, w.until) {
        (None, None) => s.push_str(", all time"),
        (a, b) => s.push_str(&format!(
            ", tips and withdrawals created {} … {}",
            a.map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "the start".into()),
            b.map(|t| t.to_rfc3339()).unwrap_or_else(|| "now".into())
        )),
    }
    s
}

/// Runs a reconciliation of `w` and records its outcome (for the console's overview and its
/// solvency history), whoever asked: `fiber-link reconcile`, `ops summary`, `app resume`, the
/// console.
pub async fn run_reconcile(
    cfg: &Config,
    store: &Store,
    w: &Window,
    grace: std::time::Duration,
    actor: &str,
) -> Result<Report> {
    let r = reconciler(cfg, store.clone()).await?;
    let outcome = r.reconcile(w, grace).await;
    let record = match &outcome {
        Ok(rep) => Ok((
            rep.clean,
            rep.findings.len() as i32,
            serde_json::json!(rep
                .solvency
                .iter()
                .map(|s| serde_json::json!({"asset": s.asset, "owed": s.owed, "held": s.held}))
                .collect::<Vec<_>>()),
        )),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = store.record_reconcile(&describe(w), actor, record).await {
        tracing::warn!(error = %e, "the reconciliation's outcome could not be recorded");
    }
    outcome.map_err(|e| anyhow!("reconciliation could not run: {e}"))
}

/// `fiber-link reconcile`: exit 0 clean, 2 findings, 1 could not run (the error).
pub async fn reconcile(cfg: Config, store: Store, a: ReconcileArgs) -> Result<i32> {
    let w = a.window.window();
    known_app(&store, &w).await?;
    let report = run_reconcile(
        &cfg,
        &store,
        &w,
        a.grace,
        &format!("operator:{}", who(&None)),
    )
    .await?;
    print_report(&report, &describe(&w), a.format);
    Ok(if report.clean { 0 } else { ALERT })
}

/// `fiber-link backfill`: exit 0 when every tip could be asked about, 1 otherwise.
pub async fn backfill(cfg: Config, store: Store, a: BackfillArgs) -> Result<i32> {
    let w = Window {
        app_id: a.app.clone(),
        since: Some(a.since),
        until: a.until,
    };
    known_app(&store, &w).await?;
    let r = reconciler(&cfg, store).await?;
    let tty = std::io::stderr().is_terminal();
    let summary = r
        .backfill(&w, |done, total| {
            if tty {
                let width = 30usize;
                let filled = if total == 0 {
                    width
                } else {
                    (done as usize * width) / total as usize
                };
                eprint!(
                    "\r[{}{}] {done}/{total} tips",
                    "#".repeat(filled),
                    ".".repeat(width - filled.min(width))
                );
                let _ = std::io::stderr().flush();
            }
        })
        .await
        .map_err(|e| anyhow!("backfill stopped: {e}"))?;
    if tty {
        eprintln!();
    }
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        ),
        Format::Text => println!(
            "backfill of {}: {} tips; {} asked at the hub; {} credited now; {} already settled; {} not paid; {} unknown to the hub; {} without invoice; {} errors",
            describe(&w),
            summary.tips,
            summary.asked,
            summary.credited,
            summary.already_settled,
            summary.not_paid,
            summary.unknown_at_hub,
            summary.without_invoice,
            summary.errors
        ),
    }
    Ok(if summary.errors == 0 { 0 } else { 1 })
}

/// `fiber-link audit`.
pub async fn audit(store: Store, a: AuditArgs) -> Result<i32> {
    let f = match (a.tip, a.withdrawal, a.user) {
        (Some(t), _, _) => AuditFilter::Tip(t),
        (_, Some(w), _) => AuditFilter::Withdrawal(w),
        (_, _, Some(u)) => AuditFilter::User {
            app_id: a.app.clone().unwrap_or_default(),
            external_id: u,
        },
        _ => bail!("give --tip, --withdrawal or --app with --user"),
    };
    let rows = store.audit_trail(&f).await?;
    if rows.is_empty() {
        bail!("nothing in the audit trail for this subject");
    }
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        ),
        Format::Text => {
            for r in rows {
                let subject = match (r.tip_id, r.withdrawal_id) {
                    (Some(t), _) => format!("tip {t}"),
                    (_, Some(w)) => format!("withdrawal {w}"),
                    _ => r.app_id.clone().unwrap_or_else(|| GLOBAL.into()),
                };
                println!(
                    "{}  {:<28} {:<22} {}  {}",
                    r.at.format("%Y-%m-%d %H:%M:%S%.3f"),
                    r.event,
                    r.actor,
                    subject,
                    r.detail
                );
            }
        }
    }
    Ok(0)
}

/// `fiber-link ops summary`: exit 0 ok, 2 alert, 1 could not run.
pub async fn summary(cfg: Config, store: Store, a: SummaryArgs) -> Result<i32> {
    let backlog = store
        .backlog()
        .await
        .context("reading the backlog (is the database reachable?)")?;
    let stuck = store.stuck_withdrawals(cfg.payouts.stuck_after).await?;
    let pauses = store.controls().await?;
    let w = Window {
        app_id: None,
        since: Some(Utc::now() - chrono::Duration::from_std(a.window).unwrap_or_default()),
        until: None,
    };
    let r = reconciler(&cfg, store.clone()).await?;
    let (report, reconcile_error) =
        match run_reconcile(&cfg, &store, &w, SUMMARY_GRACE, "ops summary").await {
            Ok(rep) => (Some(rep), None),
            Err(e) => (None, Some(e.to_string())),
        };
    let mut alerts = Vec::new();
    if backlog.oldest_due_secs > a.max_check_delay.as_secs_f64() {
        alerts.push(format!(
            "{} tip checks are due; the oldest is {:.0} s late (is the worker running?)",
            backlog.tips_due, backlog.oldest_due_secs
        ));
    }
    if backlog.open_past_expiry > 0 {
        alerts.push(format!(
            "{} tips are still open more than 10 minutes after their invoice expired",
            backlog.open_past_expiry
        ));
    }
    if !stuck.is_empty() {
        alerts.push(format!(
            "{} withdrawals stuck (no progress for {} s): fiber-link withdrawal list --stuck",
            stuck.len(),
            cfg.payouts.stuck_after.as_secs()
        ));
    }
    if let Some(e) = &reconcile_error {
        alerts.push(format!("reconciliation could not run: {e}"));
    }
    // the hub lets the worker make every call it needs (this process's token stands for the
    // worker's: run ops summary with the worker's configuration)
    for p in r.hub.probe(fiber_link_fnn::WORKER_NEEDS).await {
        if let Err(fiber_link_fnn::HubError::Unauthorized(m)) = p.result {
            alerts.push(format!(
                "the hub refuses {m}: the token lacks {} (fiber-link config check)",
                p.needs.permission
            ));
        }
    }
    if let Some(rep) = &report {
        if !rep.clean {
            let kinds: Vec<String> = rep
                .counts()
                .iter()
                .map(|(k, n)| format!("{} {n}", k.as_str()))
                .collect();
            alerts.push(format!(
                "reconciliation found {}: {} (fiber-link reconcile --since …)",
                rep.findings.len(),
                kinds.join(", ")
            ));
        }
    }
    let paused: Vec<String> = fiber_link_store::ops::Pauses::new(pauses)
        .on()
        .into_iter()
        .map(|(scope, what)| format!("{scope}: {what}"))
        .collect();
    let code = if alerts.is_empty() { 0 } else { ALERT };
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "status": if code == 0 { "ok" } else { "alert" },
                "alerts": alerts,
                "backlog": backlog,
                "stuck_withdrawals": stuck.iter().map(|w| w.id.to_string()).collect::<Vec<_>>(),
                "paused": paused,
                "reconcile": report,
            }))
            .unwrap_or_default()
        ),
        Format::Text => {
            println!("{}", if code == 0 { "OK" } else { "ALERT" });
            for a in &alerts {
                println!("  ! {a}");
            }
            println!(
                "  tips: {} open (oldest {:.0} s), {} checks due (oldest {:.0} s late)",
                backlog.open_tips,
                backlog.oldest_open_secs,
                backlog.tips_due,
                backlog.oldest_due_secs
            );
            println!(
                "  withdrawals: {} awaiting approval, {} queued, {} stuck, oldest unfinished {:.0} s",
                backlog.withdrawals_awaiting_approval,
                backlog.withdrawals_queued,
                stuck.len(),
                backlog.oldest_unfinished_withdrawal_secs
            );
            if let Some(rep) = &report {
                println!(
                    "  reconcile (last {} s): {} finding(s), {} tips checked at the hub",
                    a.window.as_secs(),
                    rep.findings.len(),
                    rep.checked.tips_asked_at_hub
                );
            }
            if !paused.is_empty() {
                println!("  paused: {}", paused.join(", "));
            }
        }
    }
    Ok(code)
}

/// `fiber-link app pause`.
pub async fn pause(store: Store, a: PauseArgs) -> Result<i32> {
    let (tips, withdrawals) = which(&a);
    let c = switch(
        &store,
        &scope(&a)?,
        (tips, withdrawals),
        true,
        a.reason.as_deref(),
        &who(&a.by),
    )
    .await?;
    println!(
        "{}: {} (in force on every API and worker within {} s)",
        c.scope,
        switches(&c),
        fiber_link_store::ops::PAUSE_REFRESH.as_secs()
    );
    Ok(0)
}

/// Turns the switches `(tips, withdrawals)` names on (`pause`) or off, with who and why: the
/// one path of the CLI and the console.
pub async fn switch(
    store: &Store,
    scope: &str,
    (tips, withdrawals): (bool, bool),
    pause: bool,
    reason: Option<&str>,
    by: &str,
) -> Result<fiber_link_store::ops::Control> {
    if reason.is_some_and(|r| r.chars().count() > 500) {
        bail!("the reason must be at most 500 characters");
    }
    store
        .set_control(
            scope,
            tips.then_some(pause),
            withdrawals.then_some(pause),
            reason,
            by,
        )
        .await
        .map_err(|e| not_found(scope, e))
}

/// "tips PAUSED, withdrawals open".
pub fn switches(c: &fiber_link_store::ops::Control) -> String {
    let state = |on: bool| if on { "PAUSED" } else { "open" };
    format!(
        "tips {}, withdrawals {}",
        state(c.tips_paused),
        state(c.withdrawals_paused)
    )
}

/// What came of a resume.
pub enum Resumed {
    /// Resumed; the clean reconciliation it rests on (`None` when forced).
    Done(fiber_link_store::ops::Control, Option<Report>),
    /// Not resumed: the reconciliation found something.
    Refused(Report),
}

/// Resumes the switches of `scope` after a clean reconciliation of it (or everything, for the
/// global scope); `force` skips the reconciliation. The one path of the CLI and the console.
pub async fn resume_switches(
    cfg: &Config,
    store: &Store,
    scope: &str,
    which: (bool, bool),
    force: bool,
    by: &str,
) -> Result<Resumed> {
    let mut report = None;
    if !force {
        let w = Window {
            app_id: (scope != GLOBAL).then(|| scope.to_string()),
            since: None,
            until: None,
        };
        known_app(store, &w).await?;
        match run_reconcile(cfg, store, &w, RESUME_GRACE, &format!("operator:{by}")).await {
            Ok(rep) if rep.clean => report = Some(rep),
            Ok(rep) => return Ok(Resumed::Refused(rep)),
            Err(e) => bail!(
                "not resumed: {e:#}. Fix that first; forcing skips the reconciliation, for when you know the books are right"
            ),
        }
    }
    let c = switch(store, scope, which, false, None, by).await?;
    Ok(Resumed::Done(c, report))
}

/// `fiber-link app resume`: reconciles the app (or everything, for --global) first and refuses
/// while that finds anything, unless --force.
pub async fn resume(cfg: Config, store: Store, r: ResumeArgs) -> Result<i32> {
    let a = r.switches;
    let scope = scope(&a)?;
    match resume_switches(&cfg, &store, &scope, which(&a), r.force, &who(&a.by)).await? {
        Resumed::Done(c, report) => {
            if report.is_some() {
                println!("reconciliation of {} is clean", scope);
            }
            println!("{}: {}", c.scope, switches(&c));
            Ok(0)
        }
        Resumed::Refused(rep) => {
            print_report(&rep, &scope, Format::Text);
            eprintln!(
                "not resumed: reconciliation found {} finding(s). Run `fiber-link backfill --since …`, investigate with `fiber-link audit`, or resume with --force.",
                rep.findings.len()
            );
            Ok(ALERT)
        }
    }
}

fn scope(a: &PauseArgs) -> Result<String> {
    match (&a.app_id, a.global) {
        (_, true) => Ok(GLOBAL.to_string()),
        (Some(id), false) => Ok(id.clone()),
        (None, false) => bail!("name an app or --global"),
    }
}

/// Neither flag means both.
fn which(a: &PauseArgs) -> (bool, bool) {
    if !a.tips && !a.withdrawals {
        (true, true)
    } else {
        (a.tips, a.withdrawals)
    }
}

fn not_found(scope: &str, e: StoreError) -> anyhow::Error {
    match e {
        StoreError::NotFound => anyhow!("no app {scope}"),
        e => anyhow!(e),
    }
}

/// `fiber-link app show`.
pub async fn show(store: Store, app_id: &str, json: bool) -> Result<i32> {
    let app = store
        .list_apps()
        .await?
        .into_iter()
        .find(|a| a.id == app_id)
        .ok_or_else(|| anyhow!("no app {app_id}"))?;
    let secrets = store.live_secrets(app_id).await?.unwrap_or_default();
    let controls = store.controls().await?;
    let own = controls.iter().find(|c| c.scope == app_id);
    let global = controls.iter().find(|c| c.scope == GLOBAL);
    let policies = store.policy_overrides(app_id).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "app": app,
                "secrets": secrets.iter().map(|s| serde_json::json!({
                    "secret_id": s.secret_id, "expires_at": s.expires_at,
                })).collect::<Vec<_>>(),
                "pause": own,
                "global_pause": global,
                "policy_overrides": policies,
            }))
            .unwrap_or_default()
        );
        return Ok(0);
    }
    println!("app {}  {:?}  created {}", app.id, app.name, app.created_at);
    for s in &secrets {
        match s.expires_at {
            None => println!("  secret #{}: current", s.secret_id),
            Some(t) => println!("  secret #{}: previous, valid until {t}", s.secret_id),
        }
    }
    if secrets.is_empty() {
        println!("  no live secret: requests are refused (fiber-link app rotate-secret {app_id})");
    }
    let state = |c: Option<&fiber_link_store::ops::Control>| match c {
        Some(c) => format!(
            "{} ({}by {} at {})",
            switches(c),
            c.reason
                .as_ref()
                .map(|r| format!("{r}; "))
                .unwrap_or_default(),
            c.updated_by,
            c.updated_at
        ),
        None => "tips open, withdrawals open".to_string(),
    };
    println!("  switches: {}", state(own));
    println!("  global switches: {}", state(global));
    if policies.is_empty() {
        println!(
            "  withdrawal policy: the configured defaults (fiber-link app policy show {app_id})"
        );
    } else {
        for (asset, p) in policies {
            println!("  withdrawal policy override for {asset}: {p}");
        }
    }
    Ok(0)
}

/// The console's line of `config check`: off, or where it listens and who can log in (a warning,
/// never a failure: the API works without it).
async fn console_check(cfg: &Config) -> String {
    let Some(listen) = &cfg.console.listen else {
        return "ok    console: off ([console] listen not set)".into();
    };
    let loopback = listen.starts_with("127.")
        || listen.starts_with("[::1]")
        || listen.starts_with("localhost");
    if !cfg.console.secure_cookies && !loopback {
        return format!("warn  console: on {listen} with secure_cookies = false: its session cookie would cross the network in clear; serve it over HTTPS and turn secure_cookies on");
    }
    let admins = match Store::connect(&cfg.database_url, 1).await {
        Ok(store) => store
            .operators()
            .await
            .map(|ops| ops.iter().filter(|o| o.role == "admin").count()),
        Err(e) => Err(e),
    };
    match admins {
        Ok(0) => format!("warn  console: on {listen}, but no admin can log in yet: fiber-link operator add NAME --role admin"),
        Ok(n) => format!("ok    console: on {listen}, {n} admin(s)"),
        Err(e) => format!("warn  console: on {listen}; its operators could not be read: {e}"),
    }
}

/// `fiber-link config check`: the effective configuration (secrets redacted), then each check.
/// Exit 0 when every check passes, 2 otherwise.
pub async fn config_check(cfg: Config) -> Result<i32> {
    println!(
        "{}",
        serde_json::to_string_pretty(&cfg.effective).unwrap_or_default()
    );
    let mut failed = 0;
    let mut report = |what: &str, r: std::result::Result<String, String>| match r {
        Ok(s) => println!("ok    {what}: {s}"),
        Err(e) => {
            failed += 1;
            println!("FAIL  {what}: {e}");
        }
    };
    report(
        "master key",
        cfg.master_key()
            .map(|_| "present".to_string())
            .map_err(|e| format!("{e:#}")),
    );
    let db = async {
        let store = Store::connect(&cfg.database_url, 1)
            .await
            .map_err(|e| e.to_string())?;
        match store.is_migrated().await {
            Ok(true) => Ok("reachable and migrated".to_string()),
            Ok(false) => Err("reachable but not migrated: run fiber-link migrate".to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
    .await;
    report("database", db);
    println!("{}", console_check(&cfg).await);
    let hub = HubClient::new(&cfg.hub).map_err(|e| anyhow!(e))?;
    match hub.node_info().await {
        Err(e) => report(
            "hub",
            Err(format!(
                "{} does not answer node_info: {e}",
                crate::config::redact_url(&cfg.hub.url)
            )),
        ),
        Ok(info) => {
            let chain_hash = text(&info.chain_hash);
            report(
                "hub",
                Ok(format!(
                    "{} answers (FNN {}, pubkey {})",
                    crate::config::redact_url(&cfg.hub.url),
                    info.version,
                    text(&info.pubkey)
                )),
            );
            // every permission the API and the worker need, each by a harmless call (a token
            // without write("payments") would otherwise leave payouts retrying unseen)
            for p in hub.probe(fiber_link_fnn::WORKER_NEEDS).await {
                report(
                    &format!("hub permission {}", p.needs.permission),
                    match p.result {
                        Ok(()) => Ok(format!("{} allowed", p.needs.method)),
                        Err(fiber_link_fnn::HubError::Unauthorized(m)) => Err(format!(
                            "{m} refused: the token lacks {} (needed by {})",
                            p.needs.permission,
                            if fiber_link_fnn::API_NEEDS.contains(&p.needs) {
                                "serve and worker"
                            } else {
                                "worker"
                            }
                        )),
                        Err(e) => Err(e.to_string()),
                    },
                );
            }
            // the store-change stream: instant settlement where the hub offers it; polling
            // works without it, so its absence is a warning, not a failure
            let stream = if !cfg.worker.stream.enabled {
                "ok    hub store-change stream: not followed ([worker] stream = false); settlement by polling".to_string()
            } else {
                match hub
                    .subscribe_store_changes(cfg.worker.stream.idle)
                    .await
                {
                    Ok(s) => {
                        let id = s.id().to_string();
                        s.close().await;
                        format!("ok    hub store-change stream: subscribe_store_changes offered (subscription {id}); payments are seen at once")
                    }
                    Err(e) => format!("warn  hub store-change stream: {e}; settlement falls back to polling ([schedule] open_interval)"),
                }
            };
            println!("{stream}");
            let chain = fiber_link_fnn::currency_of_chain(&chain_hash);
            report(
                "currency",
                if chain == cfg.api.currency {
                    Ok(format!("{} matches the hub's chain", cfg.api.currency))
                } else {
                    Err(format!(
                        "configured {} but the hub's chain ({chain_hash}) takes {chain}",
                        cfg.api.currency
                    ))
                },
            );
            for a in cfg.api.assets.iter() {
                let Some(script) = &a.udt_type_script else {
                    continue;
                };
                let covered = info
                    .udt_cfg_infos
                    .0
                    .iter()
                    .find(|u| fiber_link_fnn::udt_covers(u, script));
                report(
                    &format!("asset {}", a.symbol),
                    match covered {
                        Some(u) => Ok(format!("in the hub's udt_cfg_infos as {}", u.name)),
                        None => Err(format!(
                            "its type script is not in the hub's udt_cfg_infos ({})",
                            info.udt_cfg_infos
                                .0
                                .iter()
                                .map(|u| u.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    },
                );
            }
        }
    }
    if cfg.onchain.is_some() {
        let r = match crate::ops::onchain(&cfg).await {
            Ok(Some(oc)) => match oc.chain.tip_block_number().await {
                Ok(n) => Ok(format!(
                    "hot wallet key present ({}); CKB node at block {n}",
                    oc.wallet.address()
                )),
                Err(e) => Err(format!(
                    "hot wallet key present; the CKB node does not answer: {e}"
                )),
            },
            Ok(None) => Err("on-chain payouts are configured but could not be set up".into()),
            Err(e) => Err(format!("{e:#}")),
        };
        report("on-chain payouts", r);
    } else {
        report("on-chain payouts", Ok("off".into()));
    }
    Ok(if failed == 0 { 0 } else { ALERT })
}

/// A value FNN sends as a JSON string (hashes, keys), as that string.
fn text<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => String::new(),
    }
}
