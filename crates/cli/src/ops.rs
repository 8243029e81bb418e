//! Operator commands for withdrawals: `fiber-link withdrawal …` and `fiber-link app policy …`.

use crate::config::Config;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use fiber_link_core::{format_decimal, parse_decimal, Amount, Asset, WithdrawalState};
use fiber_link_fnn::HubClient;
use fiber_link_store::withdrawals::{PolicyOverride, WithdrawalRow};
use fiber_link_store::{Store, StoreError};
use fiber_link_worker::payouts::{FailOutcome, Onchain, Payouts};
use serde_json::json;
use uuid::Uuid;

#[derive(Subcommand)]
pub enum WithdrawalCommand {
    /// List withdrawals (oldest first), by default those not finished.
    List {
        /// Only these states (repeatable); `all` for every state.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only withdrawals that have not moved for `withdrawals.stuck_after_secs`.
        #[arg(long)]
        stuck: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// One withdrawal with its timeline.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Approve a withdrawal awaiting approval (it is queued for the worker).
    Approve {
        id: String,
        #[command(flatten)]
        who: Who,
    },
    /// Cancel a withdrawal that has not started executing; its funds go back to the author.
    Cancel {
        id: String,
        #[arg(long, default_value = "cancelled by the operator")]
        reason: String,
        #[command(flatten)]
        who: Who,
    },
    /// Make an unfinished withdrawal due now (after fixing what stopped it).
    Retry {
        id: String,
        #[command(flatten)]
        who: Who,
    },
    /// Fail a withdrawal and release its funds, only once the chain or the hub proves the payout
    /// was not made and cannot be made any more.
    Fail {
        id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: Who,
    },
}

#[derive(Args)]
pub struct Who {
    /// Who does this (recorded in the withdrawal's timeline); default $USER.
    #[arg(long)]
    by: Option<String>,
}

impl Who {
    fn name(&self) -> String {
        self.by
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "operator".into())
    }
}

// Parsed once per run; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// The app's effective withdrawal policy per asset (defaults from the configuration, with
    /// the app's own settings over them).
    Show {
        app_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change the app's policy for one asset. Amounts are in asset units; `default` goes back to
    /// the configured default.
    Set {
        app_id: String,
        #[arg(long)]
        asset: String,
        /// true, false or default.
        #[arg(long)]
        allowed: Option<String>,
        #[arg(long)]
        min: Option<String>,
        #[arg(long)]
        max_per_request: Option<String>,
        #[arg(long)]
        author_daily_cap: Option<String>,
        #[arg(long)]
        app_daily_cap: Option<String>,
        /// Seconds, or `default`.
        #[arg(long)]
        cooldown_secs: Option<String>,
        #[arg(long)]
        approval_threshold: Option<String>,
        #[command(flatten)]
        who: Who,
    },
}

fn parse_id(s: &str) -> Result<Uuid> {
    Uuid::try_parse(s).map_err(|_| anyhow!("{s:?} is not a withdrawal id"))
}

fn asset_of<'a>(cfg: &'a Config, symbol: &str) -> Result<&'a Asset> {
    cfg.api
        .assets
        .get(symbol)
        .ok_or_else(|| anyhow!("no asset {symbol} is configured"))
}

pub(crate) fn fmt(cfg: &Config, asset: &str, a: Amount) -> String {
    let d = cfg.api.assets.get(asset).map(|a| a.decimals).unwrap_or(0);
    format!("{} {asset}", format_decimal(a, d))
}

fn line(cfg: &Config, w: &WithdrawalRow) -> String {
    format!(
        "{}  {}  {:<17}  {}  {} user {}  {} → {}  {}",
        w.id,
        w.app_id,
        w.state.as_str(),
        w.rail.as_str(),
        fmt(cfg, &w.asset, w.amount),
        w.user,
        w.created_at.format("%Y-%m-%d %H:%M:%S"),
        w.progressed_at.format("%H:%M:%S"),
        w.last_error.as_deref().unwrap_or("")
    )
}

/// The on-chain part of the executor, when configured: with the hot wallet's key (it signs
/// payouts). When `hot_wallet_address` is configured too, the key must be that address's.
pub async fn onchain(cfg: &Config) -> Result<Option<Onchain>> {
    let (Some(rt), Some(oc)) = (&cfg.onchain, &cfg.api.withdrawals.onchain) else {
        return Ok(None);
    };
    let key = cfg.hot_wallet_key()?.unwrap_or_default();
    let wallet = fiber_link_chain::HotWallet::from_hex(&key, cfg.api.mainnet())
        .map_err(|e| anyhow!("hot wallet key: {e}"))?;
    if let Some(a) = &rt.hot_wallet_address {
        if a.trim() != wallet.address() {
            bail!(
                "[withdrawals.onchain] hot_wallet_address is {a} but the hot wallet key is that of {}",
                wallet.address()
            );
        }
    }
    Ok(Some(with_wallet(rt, oc, wallet)?))
}

/// The on-chain view for reading only (reconciliation, proving that a payout failed): a
/// watch-only wallet from `hot_wallet_address` when it is configured, so that a process that must
/// not read the key (the API, which serves the operator console) never touches it; else the key.
pub async fn onchain_view(cfg: &Config) -> Result<Option<Onchain>> {
    let (Some(rt), Some(oc)) = (&cfg.onchain, &cfg.api.withdrawals.onchain) else {
        return Ok(None);
    };
    match &rt.hot_wallet_address {
        Some(a) => {
            let wallet = fiber_link_chain::HotWallet::watch_only(a, cfg.api.mainnet())
                .map_err(|e| anyhow!("[withdrawals.onchain] hot_wallet_address: {e}"))?;
            Ok(Some(with_wallet(rt, oc, wallet)?))
        }
        None => onchain(cfg).await.map_err(|e| {
            anyhow!("{e:#} (set [withdrawals.onchain] hot_wallet_address to check the chain without the key)")
        }),
    }
}

fn with_wallet(
    rt: &crate::config::OnchainRuntime,
    oc: &fiber_link_core::OnchainConfig,
    wallet: fiber_link_chain::HotWallet,
) -> Result<Onchain> {
    let chain = fiber_link_chain::ChainClient::new(&rt.rpc_url, rt.timeout)?;
    Ok(Onchain {
        chain,
        wallet,
        max_tx_bytes: oc.max_tx_bytes,
        fee_rate: oc.fee_rate,
        confirmations: oc.confirmations,
    })
}

async fn one(store: &Store, id: Uuid) -> Result<WithdrawalRow> {
    store
        .withdrawal_any_app(id)
        .await?
        .ok_or_else(|| anyhow!("no withdrawal {id}"))
}

/// An operator's action on a withdrawal.
pub enum Action {
    Approve,
    Cancel(String),
    Retry,
    Fail(String),
}

/// Carries out an operator's action on a withdrawal, with the same rules and refusals for the
/// CLI and the console; what happened, in a line.
pub async fn withdrawal_action(
    cfg: &Config,
    store: &Store,
    id: Uuid,
    action: Action,
    who: &str,
) -> Result<String> {
    if let Action::Cancel(r) | Action::Fail(r) = &action {
        if r.chars().count() > 500 {
            bail!("the reason must be at most 500 characters");
        }
    }
    let found = |r: Result<WithdrawalRow, StoreError>| match r {
        Err(StoreError::NotFound) => Err(anyhow!("no withdrawal {id}")),
        Err(StoreError::Conflict(m)) => Err(anyhow!(m)),
        other => other.map_err(|e| anyhow!(e)),
    };
    Ok(match action {
        Action::Approve => {
            let w = found(store.approve_withdrawal(id, who).await)?;
            format!("approved: {}", line(cfg, &w))
        }
        Action::Cancel(reason) => {
            let msg = format!("{reason} (by {who})");
            let w = found(
                store
                    .cancel_withdrawal(None, id, &format!("operator:{who}"), "cancelled", &msg)
                    .await,
            )?;
            format!("cancelled, funds released: {}", line(cfg, &w))
        }
        Action::Retry => {
            let w = found(store.retry_withdrawal(id, who).await)?;
            format!("due now: {}", line(cfg, &w))
        }
        Action::Fail(reason) => {
            if reason.trim().is_empty() {
                bail!("a reason is required to fail a withdrawal");
            }
            let w = one(store, id).await?;
            let hub = HubClient::new(&cfg.hub).map_err(|e| anyhow!(e))?;
            let payouts = Payouts::new(
                store.clone(),
                hub,
                onchain_view(cfg).await?,
                cfg.payouts.clone(),
            );
            let reason = format!("{reason} (by {who})");
            match payouts
                .operator_fail(&w, &reason)
                .await
                .context("checking the payout")?
            {
                FailOutcome::Failed => format!("failed, funds released: {id}"),
                FailOutcome::Refused(why) => bail!("not failed: {why}"),
            }
        }
    })
}

pub async fn withdrawal(cfg: Config, store: Store, cmd: WithdrawalCommand) -> Result<()> {
    match cmd {
        WithdrawalCommand::List {
            states,
            stuck,
            limit,
            json,
        } => {
            let rows = if stuck {
                store.stuck_withdrawals(cfg.payouts.stuck_after).await?
            } else {
                let states: Vec<WithdrawalState> = if states.is_empty() {
                    WithdrawalState::ALL
                        .into_iter()
                        .filter(|s| !s.is_final())
                        .collect()
                } else if states.iter().any(|s| s == "all") {
                    Vec::new()
                } else {
                    states
                        .iter()
                        .map(|s| s.to_uppercase().parse().map_err(|e: String| anyhow!(e)))
                        .collect::<Result<_>>()?
                };
                store.operator_withdrawals(&states, limit).await?
            };
            if json {
                println!("{}", serde_json::to_string(&rows)?);
            } else if rows.is_empty() {
                println!("no withdrawals");
            } else {
                for w in &rows {
                    println!("{}", line(&cfg, w));
                }
            }
        }
        WithdrawalCommand::Show { id, json } => {
            let id = parse_id(&id)?;
            let w = one(&store, id).await?;
            let events = store.withdrawal_events(id).await?;
            if json {
                println!("{}", json!({"withdrawal": w, "events": events}));
            } else {
                println!("{}", line(&cfg, &w));
                println!(
                    "fee {} ({}), recipient receives {}",
                    fmt(&cfg, &w.asset, w.fee),
                    w.fee_mode.as_str(),
                    fmt(&cfg, &w.asset, w.receive)
                );
                println!("destination {}", w.destination);
                if let Some(h) = &w.tx_hash {
                    println!(
                        "transaction {h} (built {} time(s)), confirmations {:?}",
                        w.tx_builds, w.confirmations
                    );
                }
                if let Some(h) = &w.payment_hash {
                    println!("payment hash {h}");
                }
                for e in events {
                    println!(
                        "  {}  {} → {}  by {}  {}",
                        e.at.format("%Y-%m-%d %H:%M:%S"),
                        e.from_state.as_deref().unwrap_or("-"),
                        e.to_state,
                        e.source,
                        e.detail.as_deref().unwrap_or("")
                    );
                }
            }
        }
        WithdrawalCommand::Approve { id, who } => {
            let id = parse_id(&id)?;
            println!(
                "{}",
                withdrawal_action(&cfg, &store, id, Action::Approve, &who.name()).await?
            );
        }
        WithdrawalCommand::Cancel { id, reason, who } => {
            let id = parse_id(&id)?;
            println!(
                "{}",
                withdrawal_action(&cfg, &store, id, Action::Cancel(reason), &who.name()).await?
            );
        }
        WithdrawalCommand::Retry { id, who } => {
            let id = parse_id(&id)?;
            println!(
                "{}",
                withdrawal_action(&cfg, &store, id, Action::Retry, &who.name()).await?
            );
        }
        WithdrawalCommand::Fail { id, reason, who } => {
            let id = parse_id(&id)?;
            println!(
                "{}",
                withdrawal_action(&cfg, &store, id, Action::Fail(reason), &who.name()).await?
            );
        }
    }
    Ok(())
}

/// A change to an app's policy for one asset: `None` leaves a field as it is; `default` goes back
/// to the configured default; amounts are in asset units.
#[derive(Default)]
pub struct PolicyEdit {
    pub allowed: Option<String>,
    pub min: Option<String>,
    pub max_per_request: Option<String>,
    pub author_daily_cap: Option<String>,
    pub app_daily_cap: Option<String>,
    pub cooldown_secs: Option<String>,
    pub approval_threshold: Option<String>,
}

/// An app's effective withdrawal policy per configured asset (amounts in asset units), with the
/// app's own overrides.
pub async fn policies(
    cfg: &Config,
    store: &Store,
    app_id: &str,
) -> Result<Vec<(serde_json::Value, PolicyOverride)>> {
    if store.app_name(app_id).await?.is_none() {
        bail!("no app {app_id}");
    }
    let mut out = Vec::new();
    for a in cfg.api.assets.iter() {
        let ov = store.policy_override(app_id, &a.symbol).await?;
        let p = ov.apply(&cfg.api.withdrawals.default_policy(&a.symbol));
        let f = |x: Option<Amount>| x.map(|x| format_decimal(x, a.decimals));
        out.push((
            json!({
                "asset": a.symbol,
                "allowed": p.allowed,
                "min": format_decimal(p.min, a.decimals),
                "max_per_request": f(p.max_per_request),
                "author_daily_cap": f(p.author_daily_cap),
                "app_daily_cap": f(p.app_daily_cap),
                "cooldown_secs": p.cooldown_secs,
                "approval_threshold": f(p.approval_threshold),
                "overridden": ov != PolicyOverride::default(),
            }),
            ov,
        ));
    }
    Ok(out)
}

/// Applies a [`PolicyEdit`]: the one path of the CLI and the console.
pub async fn set_policy(
    cfg: &Config,
    store: &Store,
    app_id: &str,
    asset: &str,
    e: &PolicyEdit,
    who: &str,
) -> Result<()> {
    let a = asset_of(cfg, asset)?;
    let mut ov = store.policy_override(app_id, &a.symbol).await?;
    // only the word: an empty value (an unset shell variable) is an error, not "no limit"
    let is_default = |v: &str| v.trim() == "default";
    let amount = |field: &str, v: &str| -> Result<Option<Amount>> {
        if is_default(v) {
            return Ok(None);
        }
        parse_decimal(v.trim(), a.decimals)
            .map(Some)
            .map_err(|e| anyhow!("--{field} {v:?}: {e}"))
    };
    if let Some(v) = &e.allowed {
        ov.allowed = match v.trim() {
            "true" => Some(true),
            "false" => Some(false),
            v if is_default(v) => None,
            _ => bail!("--allowed must be true, false or default"),
        };
    }
    if let Some(v) = &e.min {
        ov.min = amount("min", v)?;
    }
    if let Some(v) = &e.max_per_request {
        ov.max_per_request = amount("max-per-request", v)?;
    }
    if let Some(v) = &e.author_daily_cap {
        ov.author_daily_cap = amount("author-daily-cap", v)?;
    }
    if let Some(v) = &e.app_daily_cap {
        ov.app_daily_cap = amount("app-daily-cap", v)?;
    }
    if let Some(v) = &e.approval_threshold {
        ov.approval_threshold = amount("approval-threshold", v)?;
    }
    if let Some(v) = &e.cooldown_secs {
        ov.cooldown_secs = if is_default(v) {
            None
        } else {
            Some(
                v.trim()
                    .parse()
                    .map_err(|_| anyhow!("--cooldown-secs must be a number of seconds"))?,
            )
        };
    }
    match store.set_policy_override(app_id, &a.symbol, &ov, who).await {
        Err(StoreError::NotFound) => bail!("no app {app_id}"),
        other => other?,
    }
    Ok(())
}

pub async fn policy(cfg: Config, store: Store, cmd: PolicyCommand) -> Result<()> {
    match cmd {
        PolicyCommand::Show { app_id, json } => {
            let out: Vec<serde_json::Value> = policies(&cfg, &store, &app_id)
                .await?
                .into_iter()
                .map(|(effective, _)| effective)
                .collect();
            if json {
                println!("{}", serde_json::Value::Array(out));
            } else {
                for p in out {
                    println!("{p}");
                }
            }
        }
        PolicyCommand::Set {
            app_id,
            asset,
            allowed,
            min,
            max_per_request,
            author_daily_cap,
            app_daily_cap,
            cooldown_secs,
            approval_threshold,
            who,
        } => {
            let edit = PolicyEdit {
                allowed,
                min,
                max_per_request,
                author_daily_cap,
                app_daily_cap,
                cooldown_secs,
                approval_threshold,
            };
            set_policy(&cfg, &store, &app_id, &asset, &edit, &who.name()).await?;
            println!("policy for {asset} of {app_id} updated");
        }
    }
    Ok(())
}
