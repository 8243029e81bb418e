//! `fiber-link`: the one binary of Fiber Link.

mod accounts;
mod apps;
mod bench;
mod chaos;
mod config;
mod console;
mod demo;
mod dev;
mod operator;
mod ops;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use config::Config;
use fiber_link_fnn::HubClient;
use fiber_link_hubsim::{HubSim, SimOptions, SimUdt};
use fiber_link_store::apps::Revoke;
use fiber_link_store::Store;
use rand::RngCore;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// mimalloc, not the system allocator: the request paths allocate many small short-lived values
/// (JSON, SQL rows, invoice strings), and glibc's malloc was about a tenth of `serve`'s CPU and a
/// quarter of the simulator's. The README's benchmark section has the before/after figures
/// (both builds run back to back), and the memory it costs (about 12–15 MB per process).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "fiber-link", version, about = "Tips for online communities over the CKB Fiber Network", long_about = None)]
struct Cli {
    /// Configuration file (TOML). Also FIBER_LINK_CONFIG. Environment variables override it:
    /// DATABASE_URL, FIBER_LINK_LISTEN, FIBER_LINK_OPS_LISTEN, FIBER_LINK_WORKER_LISTEN,
    /// FIBER_LINK_HUB_URL,
    /// FIBER_LINK_CURRENCY, FIBER_LINK_PUBLIC_URL, FIBER_LINK_INVOICE_EXPIRY_SECS,
    /// FIBER_LINK_CKB_RPC_URL, FIBER_LINK_CONFIRMATIONS; secrets: FIBER_LINK_MASTER_KEY(_FILE),
    /// FIBER_LINK_HUB_TOKEN(_FILE), FIBER_LINK_HOT_WALLET_KEY(_FILE).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole product on this machine: a private Postgres under ./.fiber-link/dev, the hub
    /// simulator, the API, the worker, a demo app and a demo forum page. No configuration needed.
    Dev(dev::DevArgs),
    /// Run the signed API (POST /rpc, POST /tips, /pay/*, /healthz/live); /metrics and
    /// /healthz/* on the operator-only [api] ops_listen (FIBER_LINK_OPS_LISTEN).
    Serve {
        /// Apply database migrations first.
        #[arg(long)]
        migrate: bool,
    },
    /// Run the settlement watcher (checks open invoices at the hub and credits paid tips) and the
    /// withdrawal executor; /metrics and /healthz/* on [worker] listen (FIBER_LINK_WORKER_LISTEN).
    Worker {
        /// Apply database migrations first.
        #[arg(long)]
        migrate: bool,
    },
    /// Run the FNN-compatible hub simulator (for development and tests; refuses mainnet).
    Hubsim(HubsimArgs),
    /// Apply the database migrations (safe to run any number of times).
    Migrate,
    /// Manage apps (communities) and their secrets.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Operate withdrawals: list, show, approve, cancel, retry, fail.
    Withdrawal {
        #[command(subcommand)]
        command: ops::WithdrawalCommand,
    },
    /// Prove the books: ledger rules, every tip against the hub, completed withdrawals against
    /// the chain or the hub, solvency. Exit 0 clean, 2 findings, 1 could not run.
    Reconcile(operator::ReconcileArgs),
    /// Ask the hub about every tip created in a window and credit what was paid but missed.
    /// Safe to repeat and to run while workers run. Exit 0 done, 1 some tips could not be asked.
    Backfill(operator::BackfillArgs),
    /// The audit trail of a tip, a withdrawal or a user (every balance-affecting event).
    Audit(operator::AuditArgs),
    /// The operator console's accounts: add, reset, remove, list.
    Operator {
        #[command(subcommand)]
        command: accounts::OperatorCommand,
    },
    /// Operator summaries (for cron).
    Ops {
        #[command(subcommand)]
        command: OpsCommand,
    },
    /// The configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Drive the real HTTP API with signed requests and print throughput and latency figures.
    Bench(bench::BenchArgs),
    /// The chaos run (use scripts/chaos.sh): API and worker processes killed at random, hub
    /// faults and a Postgres crash under mixed traffic, then the books checked against the hub.
    #[command(hide = true)]
    Chaos(chaos::ChaosArgs),
}

#[derive(Subcommand)]
enum OpsCommand {
    /// Backlog, oldest open tip, stuck withdrawals, reconciliation findings, pauses. Exit 0 ok,
    /// 2 alert, 1 could not run.
    Summary(operator::SummaryArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (secrets redacted) and check it: database, hub
    /// reachable, currency = the hub's chain, UDT assets in the hub's whitelist, hot wallet key.
    /// Exit 0 when every check passes, 2 otherwise.
    Check,
}

#[derive(Args)]
struct HubsimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8227")]
    listen: String,
    /// Invoice currency: Fibd (dev) or Fibt (testnet). Fibb (mainnet) is refused.
    #[arg(long, default_value = "Fibd")]
    currency: String,
    /// Node key (64 hex digits) that signs invoices; random when omitted.
    #[arg(long)]
    node_key: Option<String>,
    /// A whitelisted UDT: NAME:CODE_HASH:HASH_TYPE:ARGS (repeatable).
    #[arg(long = "udt")]
    udts: Vec<String>,
    /// Require `Authorization: Bearer <token>` on FNN methods, like a node with biscuit auth.
    #[arg(long, env = "FIBER_LINK_HUBSIM_TOKEN")]
    token: Option<String>,
}

#[derive(Subcommand)]
enum AppCommand {
    /// Create an app; prints its id and its first secret (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// Print {"app_id": …, "secret": …}.
        #[arg(long)]
        json: bool,
    },
    /// List apps.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Start a secret rotation: a new secret is printed; the old one keeps working for --overlap.
    RotateSecret {
        app_id: String,
        /// How long the previous secret stays valid, e.g. 24h, 30m, 0s.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        overlap: Duration,
        #[arg(long)]
        json: bool,
    },
    /// An app's withdrawal policy: show, set.
    Policy {
        #[command(subcommand)]
        command: ops::PolicyCommand,
    },
    /// Show an app: its secrets' state (never the secret), switches, policy overrides.
    Show {
        app_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Pause new tips and/or withdrawals for an app (or --global); neither flag = both. In force
    /// on every API and worker within 2 s; invoices already issued are still credited.
    Pause(operator::PauseArgs),
    /// Resume what was paused (neither flag = both), after a clean reconciliation (or --force).
    Resume(operator::ResumeArgs),
    /// Revoke secrets at once: the previous one of a rotation (default), or --all of them.
    RevokeSecret {
        app_id: String,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with s, m, h or d"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("{s:?}: unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Text => b.init(),
    }
}

/// A watch channel that turns true on Ctrl-C or SIGTERM.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing the SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}

async fn until_true(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli).await {
        Ok(0) => {}
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Runs the command; the process's exit code.
async fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Hubsim(a) => hubsim(a).await.map(|_| 0),
        Command::Bench(a) => bench::run(a).await.map(|_| 0),
        Command::Chaos(a) => chaos::run(a).await,
        Command::Dev(a) => dev::run(a, shutdown_signal()).await.map(|_| 0),
        Command::Config {
            command: ConfigCommand::Check,
        } => operator::config_check(Config::load(cli.config.as_deref())?).await,
        cmd => {
            let cfg = Config::load(cli.config.as_deref())?;
            match cmd {
                Command::Reconcile(a) => {
                    let store = connect(&cfg, 4).await?;
                    operator::reconcile(cfg, store, a).await
                }
                Command::Backfill(a) => {
                    let store = connect(&cfg, 4).await?;
                    operator::backfill(cfg, store, a).await
                }
                Command::Audit(a) => operator::audit(connect(&cfg, 1).await?, a).await,
                Command::Operator { command } => {
                    accounts::run(connect(&cfg, 1).await?, command).await
                }
                Command::Ops {
                    command: OpsCommand::Summary(a),
                } => {
                    let store = connect(&cfg, 4).await?;
                    operator::summary(cfg, store, a).await
                }
                Command::App {
                    command: AppCommand::Show { app_id, json },
                } => operator::show(connect(&cfg, 1).await?, &app_id, json).await,
                Command::App {
                    command: AppCommand::Pause(a),
                } => operator::pause(connect(&cfg, 1).await?, a).await,
                Command::App {
                    command: AppCommand::Resume(a),
                } => {
                    let store = connect(&cfg, 4).await?;
                    operator::resume(cfg, store, a).await
                }
                Command::Serve { migrate } => serve(cfg, migrate).await.map(|_| 0),
                Command::Worker { migrate } => worker(cfg, migrate).await.map(|_| 0),
                Command::Migrate => {
                    connect(&cfg, 2)
                        .await?
                        .migrate()
                        .await
                        .context("applying migrations")?;
                    println!("migrations applied");
                    Ok(0)
                }
                Command::App {
                    command: AppCommand::Policy { command },
                } => {
                    let store = connect(&cfg, 2).await?;
                    ops::policy(cfg, store, command).await.map(|_| 0)
                }
                Command::App { command } => app(cfg, command).await.map(|_| 0),
                Command::Withdrawal { command } => {
                    let store = connect(&cfg, 2).await?;
                    ops::withdrawal(cfg, store, command).await.map(|_| 0)
                }
                Command::Hubsim(_)
                | Command::Bench(_)
                | Command::Chaos(_)
                | Command::Dev(_)
                | Command::Config { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

async fn connect(cfg: &Config, pool: u32) -> Result<Store> {
    Store::connect(&cfg.database_url, pool)
        .await
        .context("connecting to the database (check DATABASE_URL)")
}

/// Refuses to run when the database holds an asset the configuration no longer names: its
/// decimals would be unknown, and every amount of it would be shown wrong.
async fn check_assets_in_use(store: &Store, assets: &fiber_link_core::Assets) -> Result<()> {
    let missing: Vec<String> = store
        .assets_in_use()
        .await
        .context("reading the assets in the books")?
        .into_iter()
        .filter(|a| assets.get(a).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the database holds tips or balances in {} but the configuration has no such asset: put it back in [[assets]] (with its decimals) so its amounts can be shown and withdrawn",
            missing.join(", ")
        );
    }
    Ok(())
}

async fn serve(cfg: Config, migrate: bool) -> Result<()> {
    let master = cfg.master_key()?;
    let store = connect(&cfg, cfg.api_db_pool).await?;
    if migrate {
        store.migrate().await.context("applying migrations")?;
    }
    check_assets_in_use(&store, &cfg.api.assets).await?;
    let hub = HubClient::new(&cfg.hub).map_err(|e| anyhow!(e))?;
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is the port in use?)", cfg.listen))?;
    let ops_listener = tokio::net::TcpListener::bind(&cfg.ops_listen)
        .await
        .with_context(|| {
            format!(
                "the API cannot listen on {} for /metrics and /healthz ([api] ops_listen, FIBER_LINK_OPS_LISTEN; is the port in use?)",
                cfg.ops_listen
            )
        })?;
    let console_listener = match &cfg.console.listen {
        None => None,
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("the console cannot listen on {addr} ([console] listen, FIBER_LINK_CONSOLE_LISTEN; is the port in use?)")
        })?),
    };
    tracing::info!(listen = %cfg.listen, ops_listen = %ops_listener.local_addr()?, hub = %config::redact_url(&cfg.hub.url), "API listening");
    let shutdown = shutdown_signal();
    let ops = tokio::spawn(fiber_link_api::serve(
        ops_listener,
        fiber_link_api::ops_router(store.clone(), hub.clone(), fiber_link_fnn::API_NEEDS),
        until_true(shutdown.clone()),
    ));
    let state = fiber_link_api::AppState::new(store.clone(), hub.clone(), cfg.api.clone(), &master);
    let console = match console_listener {
        None => None,
        Some(l) => {
            tracing::info!(listen = %l.local_addr()?, "operator console listening");
            let c = console::Console::new(std::sync::Arc::new(cfg), store, master, hub);
            Some(tokio::spawn(console::serve(
                l,
                c,
                until_true(shutdown.clone()),
            )))
        }
    };
    fiber_link_api::serve_api(listener, state, until_true(shutdown)).await?;
    let _ = ops.await;
    if let Some(c) = console {
        let _ = c.await;
    }
    Ok(())
}

async fn worker(cfg: Config, migrate: bool) -> Result<()> {
    let master = cfg.master_key()?;
    let store = connect(&cfg, cfg.worker_db_pool).await?;
    if migrate {
        store.migrate().await.context("applying migrations")?;
    }
    check_assets_in_use(&store, &cfg.api.assets).await?;
    let hub = HubClient::new(&cfg.hub).map_err(|e| anyhow!(e))?;
    let onchain = ops::onchain(&cfg).await?;
    match &onchain {
        Some(o) => {
            tracing::info!(hot_wallet = %o.wallet.address(), "on-chain payouts on")
        }
        None => tracing::info!("on-chain payouts off ([withdrawals.onchain] not configured)"),
    }
    let shutdown = shutdown_signal();
    let listener = tokio::net::TcpListener::bind(&cfg.worker_listen)
        .await
        .with_context(|| {
            format!(
                "the worker cannot listen on {} ([worker] listen, FIBER_LINK_WORKER_LISTEN; is the port in use?)",
                cfg.worker_listen
            )
        })?;
    tracing::info!(listen = %listener.local_addr()?, "worker metrics and health listening");
    let http = tokio::spawn(fiber_link_api::serve(
        listener,
        fiber_link_api::ops_router(store.clone(), hub.clone(), fiber_link_fnn::WORKER_NEEDS),
        until_true(shutdown.clone()),
    ));
    let payouts = fiber_link_worker::payouts::Payouts::new(
        store.clone(),
        hub.clone(),
        onchain,
        cfg.payouts.clone(),
    );
    let executor = tokio::spawn(payouts.run(shutdown.clone()));
    tracing::info!(hub = %config::redact_url(&cfg.hub.url), "settlement watcher and withdrawal executor running");
    fiber_link_worker::Watcher::new(store, hub, cfg.worker, master.preimage_key())
        .run(shutdown)
        .await;
    let _ = executor.await;
    let _ = http.await;
    Ok(())
}

async fn hubsim(a: HubsimArgs) -> Result<()> {
    let node_key = match &a.node_key {
        Some(h) => hex::decode(h)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| anyhow!("--node-key must be 64 hex digits"))?,
        None => {
            let mut k = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut k);
            k
        }
    };
    let mut udts = Vec::new();
    for u in &a.udts {
        let parts: Vec<&str> = u.split(':').collect();
        let [name, code_hash, hash_type, args] = parts[..] else {
            bail!("--udt must be NAME:CODE_HASH:HASH_TYPE:ARGS, got {u:?}");
        };
        let script = fiber_link_core::Script {
            code_hash: code_hash.into(),
            hash_type: hash_type.into(),
            args: args.into(),
        };
        script
            .validate()
            .map_err(|e| anyhow!("--udt {name}: {e}"))?;
        udts.push(SimUdt {
            name: name.into(),
            script,
        });
    }
    let sim = HubSim::new(SimOptions {
        currency: a.currency,
        node_key,
        udts,
        token: a.token,
        ..Default::default()
    })
    .map_err(|e| anyhow!(e))?;
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is the port in use?)", a.listen))?;
    tracing::info!(listen = %a.listen, pubkey = %sim.pubkey_hex(), "hub simulator listening");
    sim.serve(listener, until_true(shutdown_signal())).await?;
    Ok(())
}

async fn app(cfg: Config, cmd: AppCommand) -> Result<()> {
    let store = connect(&cfg, 2).await?;
    let by = operator::who(&None);
    match cmd {
        AppCommand::Create { name, json } => {
            let (id, secret) = apps::create(&cfg, &store, &name, &by).await?;
            let name = name.trim();
            if json {
                println!(
                    "{}",
                    serde_json::json!({"app_id": id, "name": name, "secret": secret})
                );
            } else {
                println!("app created: {name}\napp id: {id}\nsecret: {secret}\n(the secret is shown once; keep it in the community's settings)");
            }
        }
        AppCommand::List { json } => {
            let apps = store.list_apps().await?;
            if json {
                println!("{}", serde_json::to_string(&apps)?);
            } else if apps.is_empty() {
                println!("no apps yet: fiber-link app create --name NAME");
            } else {
                for a in apps {
                    println!(
                        "{}  {}  live secrets: {}  created {}",
                        a.id,
                        a.name,
                        a.live_secrets,
                        a.created_at.to_rfc3339()
                    );
                }
            }
        }
        AppCommand::RotateSecret {
            app_id,
            overlap,
            json,
        } => {
            let (secret_id, secret, old_end) =
                apps::rotate(&cfg, &store, &app_id, overlap, &by).await?;
            let old_end = old_end.map(|t| t.to_rfc3339());
            if json {
                println!(
                    "{}",
                    serde_json::json!({"app_id": app_id, "secret_id": secret_id, "secret": secret, "previous_valid_until": old_end})
                );
            } else {
                println!("new secret: {secret}");
                match old_end {
                    Some(t) => println!("the previous secret stays valid until {t}"),
                    None => println!("there was no current secret to keep"),
                }
            }
        }
        AppCommand::Policy { .. }
        | AppCommand::Show { .. }
        | AppCommand::Pause(_)
        | AppCommand::Resume(_) => unreachable!("handled in run()"),
        AppCommand::RevokeSecret { app_id, all, json } => {
            let which = if all { Revoke::All } else { Revoke::Previous };
            let n = apps::revoke(&store, &app_id, which, &by).await?;
            if json {
                println!("{}", serde_json::json!({"app_id": app_id, "revoked": n}));
            } else {
                println!("{n} secret(s) revoked");
            }
        }
    }
    Ok(())
}
