//! Configuration: defaults → TOML file → `FIBER_LINK_*` environment, validated once into typed
//! settings. Secrets (master key, hub token) come only from the environment or from files.

use anyhow::{anyhow, bail, Context, Result};
use fiber_link_api::{ApiSettings, Rate};
use fiber_link_core::crypto::MasterKey;
use fiber_link_core::{parse_decimal, Asset, Assets, Schedule, Script};
use fiber_link_fnn::HubConfig;
use fiber_link_worker::WorkerSettings;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub database_url: Option<String>,
    pub listen: String,
    pub public_url: Option<String>,
    /// Invoice currency of the hub's chain: Fibb (mainnet), Fibt (testnet), Fibd (dev).
    pub currency: String,
    pub invoice_expiry_secs: u64,
    pub master_key_file: Option<PathBuf>,
    pub hub: HubSection,
    pub api: ApiSection,
    pub worker: WorkerSection,
    pub schedule: Schedule,
    pub assets: Vec<AssetSection>,
    pub withdrawals: WithdrawalsSection,
    pub console: ConsoleSection,
}

/// The operator console, served by `fiber-link serve` on its own listener (off unless `listen`
/// is set; never the public API's port).
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSection {
    /// e.g. "127.0.0.1:8083" (FIBER_LINK_CONSOLE_LISTEN); unset: no console.
    pub listen: Option<String>,
    /// A session unused this long ends.
    pub idle_timeout_secs: u64,
    /// A session ends this long after the login, used or not.
    pub absolute_timeout_secs: u64,
    /// Mark the session cookie `Secure` (sent over HTTPS only). Turn off only when the console
    /// is reached over plain HTTP on loopback (an SSH tunnel).
    pub secure_cookies: bool,
    /// Failed logins (wrong password or code) that lock an account, and an address, for
    /// `throttle_window_secs`.
    pub max_failures_per_account: i64,
    pub max_failures_per_address: i64,
    pub throttle_window_secs: u64,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        ConsoleSection {
            listen: None,
            idle_timeout_secs: 30 * 60,
            absolute_timeout_secs: 12 * 3600,
            secure_cookies: true,
            max_failures_per_account: 5,
            max_failures_per_address: 20,
            throttle_window_secs: 15 * 60,
        }
    }
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            database_url: None,
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            currency: "Fibd".into(),
            invoice_expiry_secs: 3600,
            master_key_file: None,
            hub: HubSection::default(),
            api: ApiSection::default(),
            worker: WorkerSection::default(),
            schedule: Schedule::default(),
            assets: vec![AssetSection {
                symbol: "CKB".into(),
                decimals: 8,
                max_tip: "1000000".into(),
                udt_type_script: None,
            }],
            withdrawals: WithdrawalsSection::default(),
            console: ConsoleSection::default(),
        }
    }
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WithdrawalsSection {
    /// `deduct` (the recipient receives amount − fee) or `operator` (the operator pays the fee).
    pub fee_mode: String,
    /// Over Fiber, the most a route may cost, per thousand of the payment.
    pub fiber_fee_per_thousand: u64,
    /// A withdrawal that has not moved for this long is reported as stuck.
    pub stuck_after_secs: u64,
    /// How long a worker's claim on a withdrawal lasts; after a crash, the next worker picks it
    /// up when the claim runs out.
    pub lease_secs: u64,
    /// How long past its expiry an unpaid invoice counts as unpayable: only then are the funds of
    /// a Fiber payout the hub could not pay released (the hub judges expiry by its own clock).
    pub invoice_expiry_margin_secs: u64,
    /// On-chain CKB payouts; absent = off.
    pub onchain: Option<OnchainSection>,
    /// Per asset symbol; an asset without a section cannot be withdrawn unless an app's own
    /// policy allows it.
    pub policy: std::collections::BTreeMap<String, PolicySection>,
}

impl Default for WithdrawalsSection {
    fn default() -> Self {
        WithdrawalsSection {
            fee_mode: "deduct".into(),
            fiber_fee_per_thousand: 5,
            stuck_after_secs: 3600,
            lease_secs: 60,
            invoice_expiry_margin_secs: fiber_link_core::withdrawal::INVOICE_EXPIRY_MARGIN_SECS,
            onchain: None,
            policy: Default::default(),
        }
    }
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OnchainSection {
    /// The CKB node's JSON-RPC (with the Indexer module enabled).
    pub ckb_rpc_url: String,
    /// Shannons per 1000 bytes.
    #[serde(default = "default_fee_rate")]
    pub fee_rate: u64,
    /// The largest payout transaction; the fee of every payout is this size at fee_rate.
    #[serde(default = "default_max_tx_bytes")]
    pub max_tx_bytes: u64,
    /// Blocks (the payout's own included) before a payout is COMPLETED.
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
    #[serde(default = "default_rpc_timeout")]
    pub timeout_ms: u64,
    /// File holding the hot wallet's private key (or FIBER_LINK_HOT_WALLET_KEY(_FILE)).
    pub hot_wallet_key_file: Option<PathBuf>,
    /// The hot wallet's address: lets processes that must not read the key (the API, which
    /// serves the operator console) reconcile and check payouts with a watch-only wallet.
    #[serde(default)]
    pub hot_wallet_address: Option<String>,
}

fn default_fee_rate() -> u64 {
    1000
}
fn default_max_tx_bytes() -> u64 {
    1000
}
fn default_confirmations() -> u64 {
    24
}
fn default_rpc_timeout() -> u64 {
    10_000
}

/// Amounts are decimal strings in asset units; absent = no limit (or the default).
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    pub allowed: bool,
    pub min: Option<String>,
    pub max_per_request: Option<String>,
    pub author_daily_cap: Option<String>,
    pub app_daily_cap: Option<String>,
    pub cooldown_secs: u64,
    pub approval_threshold: Option<String>,
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            allowed: true,
            min: None,
            max_per_request: None,
            author_daily_cap: None,
            app_daily_cap: None,
            cooldown_secs: 0,
            approval_threshold: None,
        }
    }
}

/// On-chain payouts as the worker runs them.
#[derive(Debug, Clone)]
pub struct OnchainRuntime {
    pub rpc_url: String,
    pub timeout: Duration,
    /// For watch-only use (see `OnchainSection::hot_wallet_address`).
    pub hot_wallet_address: Option<String>,
    key_source: SecretSource,
}

#[derive(Debug, Clone)]
enum SecretSource {
    Env(&'static str),
    File(PathBuf),
    Missing,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubSection {
    pub url: String,
    pub timeout_ms: u64,
    pub token_file: Option<PathBuf>,
}

impl Default for HubSection {
    fn default() -> Self {
        HubSection {
            url: "http://127.0.0.1:8227".into(),
            timeout_ms: 5000,
            token_file: None,
        }
    }
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// The API's operator-only port: `/metrics`, `/healthz/live`, `/healthz/ready` (never the
    /// public `listen`).
    pub ops_listen: String,
    pub max_body_bytes: usize,
    pub secret_cache_ttl_ms: u64,
    pub rate_per_app_method: Rate,
    pub rate_per_app_user: Rate,
    pub db_pool: u32,
    /// Pay-page event streams open at once per client address, and in all.
    pub pay_streams_per_client: usize,
    pub pay_streams_total: usize,
    /// A reverse proxy on this host (loopback) names the client in `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
}

impl Default for ApiSection {
    fn default() -> Self {
        let d = ApiSettings::default();
        ApiSection {
            ops_listen: "127.0.0.1:8082".into(),
            max_body_bytes: d.max_body_bytes,
            secret_cache_ttl_ms: d.secret_cache_ttl.as_millis() as u64,
            rate_per_app_method: d.rate_per_app_method,
            rate_per_app_user: d.rate_per_app_user,
            db_pool: 16,
            pay_streams_per_client: d.pay_streams_per_client,
            pay_streams_total: d.pay_streams_total,
            trust_forwarded_for: false,
        }
    }
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSection {
    /// The worker's own HTTP port: `/metrics`, `/healthz/live`, `/healthz/ready`.
    pub listen: String,
    pub batch: i64,
    pub lease_secs: u64,
    pub idle_poll_ms: u64,
    pub invoice_grace_secs: u64,
    pub db_pool: u32,
    /// Follow the hub's store-change stream (FNN's `pubsub` module) for instant settlement;
    /// without it, or while it is down, settlement is detected by polling.
    pub stream: bool,
}

impl Default for WorkerSection {
    fn default() -> Self {
        WorkerSection {
            listen: "127.0.0.1:8081".into(),
            batch: 100,
            lease_secs: 30,
            idle_poll_ms: 250,
            invoice_grace_secs: 60,
            db_pool: 8,
            stream: true,
        }
    }
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AssetSection {
    pub symbol: String,
    pub decimals: u8,
    /// The largest single tip, as a decimal string in asset units.
    pub max_tip: String,
    pub udt_type_script: Option<Script>,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The configuration as loaded (file + environment), secrets redacted, for `config check`.
    pub effective: serde_json::Value,
    pub database_url: String,
    pub listen: String,
    pub ops_listen: String,
    pub worker_listen: String,
    pub hub: HubConfig,
    pub api: ApiSettings,
    pub worker: WorkerSettings,
    pub api_db_pool: u32,
    pub worker_db_pool: u32,
    pub payouts: fiber_link_worker::payouts::PayoutSettings,
    pub onchain: Option<OnchainRuntime>,
    pub console: ConsoleSection,
    master_key_source: MasterKeySource,
}

#[derive(Debug)]
enum MasterKeySource {
    Env,
    File(PathBuf),
    Missing,
}

/// The file configuration as JSON with the database password hidden and, for each secret, only
/// where it comes from.
fn redacted(f: &FileConfig) -> serde_json::Value {
    let mut v = serde_json::to_value(f).unwrap_or_default();
    if let Some(url) = f.database_url.as_deref() {
        v["database_url"] = serde_json::Value::String(redact_url(url));
    }
    v["hub"]["url"] = serde_json::Value::String(redact_url(&f.hub.url));
    if let Some(o) = &f.withdrawals.onchain {
        v["withdrawals"]["onchain"]["ckb_rpc_url"] =
            serde_json::Value::String(redact_url(&o.ckb_rpc_url));
    }
    let source = |var: &str, file_var: &str, file: Option<&Path>| {
        if env(var).is_some() {
            format!("<from {var}>")
        } else if let Some(p) = env(file_var) {
            format!("<from file {p}>")
        } else if let Some(p) = file {
            format!("<from file {}>", p.display())
        } else {
            "<not set>".to_string()
        }
    };
    v["secrets"] = serde_json::json!({
        "master_key": source("FIBER_LINK_MASTER_KEY", "FIBER_LINK_MASTER_KEY_FILE", f.master_key_file.as_deref()),
        "hub_token": source("FIBER_LINK_HUB_TOKEN", "FIBER_LINK_HUB_TOKEN_FILE", f.hub.token_file.as_deref()),
        "hot_wallet_key": source(
            "FIBER_LINK_HOT_WALLET_KEY",
            "FIBER_LINK_HOT_WALLET_KEY_FILE",
            f.withdrawals.onchain.as_ref().and_then(|o| o.hot_wallet_key_file.as_deref()),
        ),
    });
    v
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db` (and `password=` in the
/// query).
pub fn redact_url(url: &str) -> String {
    let url = match url.split_once("password=") {
        Some((head, tail)) => {
            let rest = tail.find('&').map(|i| &tail[i..]).unwrap_or("");
            format!("{head}password=***{rest}")
        }
        None => url.to_string(),
    };
    redact_userinfo(&url)
}

fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(x) => x,
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn read_secret_file(path: &Path, what: &str) -> Result<String> {
    let s = std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} from {}", path.display()))?;
    Ok(s.trim().to_string())
}

impl Config {
    /// Loads `path` (or `FIBER_LINK_CONFIG`, or nothing: defaults), then applies the environment.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let path = path
            .map(Path::to_path_buf)
            .or_else(|| env("FIBER_LINK_CONFIG").map(PathBuf::from));
        let mut f: FileConfig = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("in {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        if let Some(v) = env("DATABASE_URL") {
            f.database_url = Some(v);
        }
        if let Some(v) = env("FIBER_LINK_LISTEN") {
            f.listen = v;
        }
        if let Some(v) = env("FIBER_LINK_PUBLIC_URL") {
            f.public_url = Some(v);
        }
        if let Some(v) = env("FIBER_LINK_CURRENCY") {
            f.currency = v;
        }
        if let Some(v) = env("FIBER_LINK_WORKER_LISTEN") {
            f.worker.listen = v;
        }
        if let Some(v) = env("FIBER_LINK_OPS_LISTEN") {
            f.api.ops_listen = v;
        }
        if let Some(v) = env("FIBER_LINK_HUB_URL") {
            f.hub.url = v;
        }
        if let Some(v) = env("FIBER_LINK_CONSOLE_LISTEN") {
            f.console.listen = Some(v);
        }
        if let Some(v) = env("FIBER_LINK_CKB_RPC_URL") {
            match &mut f.withdrawals.onchain {
                Some(o) => o.ckb_rpc_url = v,
                None => {
                    f.withdrawals.onchain = Some(OnchainSection {
                        ckb_rpc_url: v,
                        fee_rate: default_fee_rate(),
                        max_tx_bytes: default_max_tx_bytes(),
                        confirmations: default_confirmations(),
                        timeout_ms: default_rpc_timeout(),
                        hot_wallet_key_file: None,
                        hot_wallet_address: None,
                    })
                }
            }
        }
        if let Some(v) = env("FIBER_LINK_CONFIRMATIONS") {
            if let Some(o) = &mut f.withdrawals.onchain {
                o.confirmations = v
                    .parse()
                    .context("FIBER_LINK_CONFIRMATIONS must be a number of blocks")?;
            }
        }
        if let Some(v) = env("FIBER_LINK_INVOICE_EXPIRY_SECS") {
            f.invoice_expiry_secs = v
                .parse()
                .context("FIBER_LINK_INVOICE_EXPIRY_SECS must be a number of seconds")?;
        }
        Self::from_file_config(f)
    }

    pub fn from_file_config(f: FileConfig) -> Result<Config> {
        let effective = redacted(&f);
        let database_url = f.database_url.ok_or_else(|| {
            anyhow!("no database: set DATABASE_URL (or database_url in the config file)")
        })?;
        if fiber_link_fnn::currency_from_str(&f.currency).is_none() {
            bail!(
                "currency must be Fibb (mainnet), Fibt (testnet) or Fibd (dev), not {:?}",
                f.currency
            );
        }
        if !(1..=7 * 24 * 3600).contains(&f.invoice_expiry_secs) {
            bail!("invoice_expiry_secs must be between 1 and 604800 (one week)");
        }
        let mut assets = Vec::new();
        for a in f.assets {
            let max_tip = parse_decimal(&a.max_tip, a.decimals)
                .map_err(|e| anyhow!("asset {}: max_tip {:?}: {e}", a.symbol, a.max_tip))?;
            assets.push(Asset {
                symbol: a.symbol,
                decimals: a.decimals,
                udt_type_script: a.udt_type_script,
                max_tip,
            });
        }
        let assets = Assets::new(assets).map_err(|e| anyhow!("assets: {e}"))?;
        let (withdrawals, onchain) = withdrawal_config(&f.withdrawals, &assets)?;
        let token = match (
            env("FIBER_LINK_HUB_TOKEN"),
            env("FIBER_LINK_HUB_TOKEN_FILE"),
            &f.hub.token_file,
        ) {
            (Some(t), _, _) => Some(t),
            (None, Some(p), _) => Some(read_secret_file(Path::new(&p), "hub token")?),
            (None, None, Some(p)) => Some(read_secret_file(p, "hub token")?),
            _ => None,
        };
        let hub = HubConfig {
            url: f.hub.url,
            token,
            timeout: Duration::from_millis(f.hub.timeout_ms.max(100)),
        };
        let api = ApiSettings {
            assets: assets.clone(),
            currency: f.currency.clone(),
            invoice_expiry: Duration::from_secs(f.invoice_expiry_secs.max(1)),
            schedule: f.schedule.clone(),
            max_body_bytes: f.api.max_body_bytes,
            timestamp_window: Duration::from_secs(300),
            secret_cache_ttl: Duration::from_millis(f.api.secret_cache_ttl_ms),
            rate_per_app_method: f.api.rate_per_app_method,
            rate_per_app_user: f.api.rate_per_app_user,
            pay_streams_per_client: f.api.pay_streams_per_client.max(1),
            pay_streams_total: f.api.pay_streams_total.max(1),
            trust_forwarded_for: f.api.trust_forwarded_for,
            public_url: f.public_url,
            withdrawals,
        };
        let payouts = fiber_link_worker::payouts::PayoutSettings {
            stuck_after: Duration::from_secs(f.withdrawals.stuck_after_secs.max(1)),
            lease: Duration::from_secs(f.withdrawals.lease_secs.max(1)),
            invoice_expiry_margin: Duration::from_secs(f.withdrawals.invoice_expiry_margin_secs),
            ..Default::default()
        };
        // A payout step makes a few hub or chain calls, each up to its timeout. If a claim could
        // run out while its step is still sending, a second worker would act on the same
        // withdrawal meanwhile: the claim must outlast several calls comfortably.
        let slowest = onchain
            .as_ref()
            .map_or(hub.timeout, |o| o.timeout.max(hub.timeout));
        if payouts.lease < slowest * 3 {
            bail!(
                "withdrawals.lease_secs = {} is too short: a worker's claim must last at least three RPC timeouts ({} s with the slowest timeout at {} ms), or a second worker could act on a withdrawal whose payout is still being sent",
                f.withdrawals.lease_secs,
                (slowest * 3).as_secs_f64().ceil(),
                slowest.as_millis()
            );
        }
        let mut worker = WorkerSettings::new(f.currency, assets);
        worker.schedule = f.schedule;
        worker.batch = f.worker.batch.clamp(1, 10_000);
        worker.lease = Duration::from_secs(f.worker.lease_secs.max(1));
        worker.idle_poll = Duration::from_millis(f.worker.idle_poll_ms.max(10));
        worker.invoice_grace = Duration::from_secs(f.worker.invoice_grace_secs);
        worker.stream.enabled = f.worker.stream;
        if worker.schedule.streamed_interval < Duration::from_secs(1) {
            bail!("schedule.streamed_interval must be at least 1000 ms");
        }
        let master_key_source = if env("FIBER_LINK_MASTER_KEY").is_some() {
            MasterKeySource::Env
        } else if let Some(p) = env("FIBER_LINK_MASTER_KEY_FILE")
            .map(PathBuf::from)
            .or(f.master_key_file)
        {
            MasterKeySource::File(p)
        } else {
            MasterKeySource::Missing
        };
        Ok(Config {
            effective,
            database_url,
            listen: f.listen,
            ops_listen: f.api.ops_listen.clone(),
            worker_listen: f.worker.listen,
            hub,
            api,
            worker,
            api_db_pool: f.api.db_pool.max(1),
            worker_db_pool: f.worker.db_pool.max(1),
            payouts,
            onchain,
            console: f.console.clone(),
            master_key_source,
        })
    }

    /// The hot wallet's private key (hex), for on-chain payouts.
    pub fn hot_wallet_key(&self) -> Result<Option<String>> {
        let Some(o) = &self.onchain else {
            return Ok(None);
        };
        Ok(Some(match &o.key_source {
            SecretSource::Env(name) => env(name).unwrap_or_default(),
            SecretSource::File(p) => read_secret_file(p, "hot wallet key")?,
            SecretSource::Missing => bail!(
                "on-chain payouts are on ([withdrawals.onchain]) but there is no hot wallet key: set \
                 FIBER_LINK_HOT_WALLET_KEY or FIBER_LINK_HOT_WALLET_KEY_FILE (64 hex digits)"
            ),
        }))
    }

    /// The master key seals app secrets and derives payment preimages. It must never change for a
    /// database (a new key cannot open the stored secrets).
    pub fn master_key(&self) -> Result<MasterKey> {
        let hex = match &self.master_key_source {
            MasterKeySource::Env => env("FIBER_LINK_MASTER_KEY").unwrap_or_default(),
            MasterKeySource::File(p) => read_secret_file(p, "master key")?,
            MasterKeySource::Missing => bail!(
                "no master key: set FIBER_LINK_MASTER_KEY (64 hex digits) or FIBER_LINK_MASTER_KEY_FILE; \
                 `openssl rand -hex 32` makes one. Keep it: it opens the app secrets and derives the payment preimages"
            ),
        };
        MasterKey::from_hex(&hex).map_err(|e| anyhow!("{e}"))
    }
}

fn withdrawal_config(
    w: &WithdrawalsSection,
    assets: &Assets,
) -> Result<(fiber_link_core::WithdrawalConfig, Option<OnchainRuntime>)> {
    let fee_mode = fiber_link_core::FeeMode::parse(&w.fee_mode).ok_or_else(|| {
        anyhow!(
            "withdrawals.fee_mode must be \"deduct\" or \"operator\", not {:?}",
            w.fee_mode
        )
    })?;
    if w.fiber_fee_per_thousand > 1000 {
        bail!("withdrawals.fiber_fee_per_thousand must be at most 1000");
    }
    for symbol in w.policy.keys() {
        if assets.get(symbol).is_none() {
            bail!("withdrawals.policy.{symbol}: no such asset is configured");
        }
    }
    // An asset without a policy section is not withdrawable (an app may still be allowed it with
    // `fiber-link app policy set`): no money leaves under rules nobody wrote down.
    let mut defaults = Vec::new();
    for a in assets.iter() {
        let Some(p) = w.policy.get(&a.symbol) else {
            continue;
        };
        let amount = |field: &str, v: &Option<String>| -> Result<Option<fiber_link_core::Amount>> {
            v.as_deref()
                .map(|s| parse_decimal(s, a.decimals))
                .transpose()
                .map_err(|e| anyhow!("withdrawals.policy.{}.{field}: {e}", a.symbol))
        };
        defaults.push((
            a.symbol.clone(),
            fiber_link_core::Policy {
                allowed: p.allowed,
                min: amount("min", &p.min)?.unwrap_or_default(),
                max_per_request: amount("max_per_request", &p.max_per_request)?,
                author_daily_cap: amount("author_daily_cap", &p.author_daily_cap)?,
                app_daily_cap: amount("app_daily_cap", &p.app_daily_cap)?,
                cooldown_secs: p.cooldown_secs,
                approval_threshold: amount("approval_threshold", &p.approval_threshold)?,
            },
        ));
    }
    let (onchain, runtime) = match &w.onchain {
        None => (None, None),
        Some(o) => {
            if o.fee_rate < 1000 {
                bail!("withdrawals.onchain.fee_rate must be at least 1000 shannons/KB (CKB's minimum)");
            }
            if !(464..=100_000).contains(&o.max_tx_bytes) {
                bail!(
                    "withdrawals.onchain.max_tx_bytes must be between 464 (one input) and 100000"
                );
            }
            if o.confirmations == 0 {
                bail!("withdrawals.onchain.confirmations must be at least 1");
            }
            let key_source = if env("FIBER_LINK_HOT_WALLET_KEY").is_some() {
                SecretSource::Env("FIBER_LINK_HOT_WALLET_KEY")
            } else if let Some(p) = env("FIBER_LINK_HOT_WALLET_KEY_FILE")
                .map(PathBuf::from)
                .or(o.hot_wallet_key_file.clone())
            {
                SecretSource::File(p)
            } else {
                SecretSource::Missing
            };
            (
                Some(fiber_link_core::OnchainConfig {
                    fee_rate: o.fee_rate,
                    max_tx_bytes: o.max_tx_bytes,
                    confirmations: o.confirmations,
                }),
                Some(OnchainRuntime {
                    rpc_url: o.ckb_rpc_url.clone(),
                    timeout: Duration::from_millis(o.timeout_ms.max(100)),
                    hot_wallet_address: o.hot_wallet_address.clone(),
                    key_source,
                }),
            )
        }
    };
    Ok((
        fiber_link_core::WithdrawalConfig {
            fee_mode,
            onchain,
            fiber_fee_per_thousand: w.fiber_fee_per_thousand,
            defaults,
        },
        runtime,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Config> {
        let mut f: FileConfig = toml::from_str(toml_text)?;
        f.database_url = Some("postgres://x@127.0.0.1/y".into());
        Config::from_file_config(f)
    }

    /// The example in deploy/ is a real configuration: every key exists and validates.
    #[test]
    fn the_deployment_example_is_valid() {
        let c =
            parse(include_str!("../../../deploy/fiber-link.toml")).expect("deploy/fiber-link.toml");
        assert_eq!(c.api.currency, "Fibt");
        assert_eq!(c.worker_listen, "127.0.0.1:8081");
        assert!(c.api.assets.get("CKB").is_some());
        // secrets are not in it
        assert!(c.effective["secrets"]["master_key"]
            .as_str()
            .unwrap()
            .starts_with('<'));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://fl:s3cret@db:5432/fl?sslmode=disable"),
            "postgres://fl:***@db:5432/fl?sslmode=disable"
        );
        assert_eq!(redact_url("postgres://fl@db/fl"), "postgres://fl@db/fl");
        assert_eq!(
            redact_url("postgres://db/fl?user=fl&password=s3cret&x=1"),
            "postgres://db/fl?user=fl&password=***&x=1"
        );
    }

    #[test]
    fn reads_assets_and_sections() {
        let c = parse(
            r#"
            currency = "Fibt"
            invoice_expiry_secs = 600
            [hub]
            url = "http://10.0.0.5:8227"
            timeout_ms = 1500
            [api]
            rate_per_app_user = { per_second = 2, burst = 4 }
            [[assets]]
            symbol = "CKB"
            decimals = 8
            max_tip = "1000.5"
            [[assets]]
            symbol = "RUSD"
            decimals = 8
            max_tip = "10"
            udt_type_script = { code_hash = "0x1142755a044bf2ee358cba9f2da187ce928c91cd4dc8692ded0337efa677d21a", hash_type = "type", args = "0x878f" }
            "#,
        )
        .unwrap();
        assert_eq!(c.api.currency, "Fibt");
        assert_eq!(c.api.invoice_expiry, Duration::from_secs(600));
        assert_eq!(c.hub.timeout, Duration::from_millis(1500));
        assert_eq!(
            c.api.rate_per_app_user,
            Rate {
                per_second: 2,
                burst: 4
            }
        );
        let ckb = c.api.assets.get("CKB").unwrap();
        assert_eq!(ckb.max_tip.base_units(), 100_050_000_000);
        assert!(c.api.assets.get("RUSD").unwrap().is_udt());
        assert_eq!(c.worker.assets.get("RUSD").unwrap().decimals, 8);
    }

    #[test]
    fn refuses_bad_configuration_with_a_reason() {
        let err = |t: &str| format!("{:#}", parse(t).unwrap_err());
        assert!(err(r#"currency = "Fibx""#).contains("currency must be"));
        assert!(err("invoice_expiry_secs = 0").contains("invoice_expiry_secs"));
        assert!(err("unknown_key = 1").contains("unknown field"));
        let bad_max = "[[assets]]\nsymbol = \"CKB\"\ndecimals = 8\nmax_tip = \"1e3\"";
        assert!(err(bad_max).contains("max_tip"));
        let bad_script = "[[assets]]\nsymbol = \"X\"\ndecimals = 2\nmax_tip = \"1\"\nudt_type_script = { code_hash = \"0x12\", hash_type = \"type\", args = \"0x\" }";
        assert!(err(bad_script).contains("code_hash"));
        let no_db = Config::from_file_config(FileConfig::default()).unwrap_err();
        assert!(format!("{no_db:#}").contains("DATABASE_URL"));
        // a claim that a slow hub call can outlive: refused, with the figure to use
        let short = err("[hub]\nurl = \"http://127.0.0.1:8227\"\ntimeout_ms = 5000\n[withdrawals]\nlease_secs = 14");
        assert!(short.contains("lease_secs = 14 is too short"), "{short}");
        assert!(short.contains("15 s"), "{short}");
        assert!(parse("[hub]\nurl = \"http://127.0.0.1:8227\"\ntimeout_ms = 5000\n[withdrawals]\nlease_secs = 15").is_ok());
        // the chain's timeout counts too, when on-chain payouts are on
        let chain = "[withdrawals]\nlease_secs = 20\n[withdrawals.onchain]\nckb_rpc_url = \"http://127.0.0.1:8114\"\ntimeout_ms = 10000";
        assert!(err(chain).contains("too short"));
    }

    #[test]
    fn reads_withdrawal_rules() {
        let c = parse(
            r#"
            [withdrawals]
            fee_mode = "operator"
            [withdrawals.policy.CKB]
            min = "100"
            author_daily_cap = "500.5"
            approval_threshold = "300"
            cooldown_secs = 60
            [withdrawals.onchain]
            ckb_rpc_url = "http://127.0.0.1:8114"
            confirmations = 3
            "#,
        )
        .unwrap();
        let w = &c.api.withdrawals;
        assert_eq!(w.fee_mode, fiber_link_core::FeeMode::Operator);
        let p = w.default_policy("CKB");
        assert!(p.allowed);
        assert_eq!(p.min.base_units(), 100 * 100_000_000);
        assert_eq!(p.author_daily_cap.unwrap().base_units(), 50_050_000_000);
        assert_eq!(p.max_per_request, None, "left out: no limit");
        let oc = w.onchain.as_ref().unwrap();
        assert_eq!(
            (oc.fee_rate, oc.max_tx_bytes, oc.confirmations),
            (1000, 1000, 3)
        );
        assert_eq!(oc.fee().base_units(), 1000);
        // without a section an asset is not withdrawable
        let none = parse("").unwrap();
        assert!(!none.api.withdrawals.default_policy("CKB").allowed);
        assert!(none.api.withdrawals.onchain.is_none());

        let err = |t: &str| format!("{:#}", parse(t).unwrap_err());
        assert!(err("[withdrawals]\nfee_mode = \"split\"").contains("fee_mode"));
        assert!(err("[withdrawals.policy.DOGE]\nmin = \"1\"").contains("no such asset"));
        assert!(err("[withdrawals.policy.CKB]\nmin = \"0.000000001\"").contains("min"));
        assert!(
            err("[withdrawals.onchain]\nckb_rpc_url = \"x\"\nfee_rate = 999").contains("fee_rate")
        );
        assert!(
            err("[withdrawals.onchain]\nckb_rpc_url = \"x\"\nmax_tx_bytes = 100")
                .contains("max_tx_bytes")
        );
    }
}
