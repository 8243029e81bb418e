//! Fiber Link's Postgres storage: the migrations and one module per aggregate. The only crate
//! that speaks SQL.
//!
//! Every money movement is one database transaction holding the state change and its ledger
//! entries; the schema itself refuses unbalanced transactions, negative author balances and
//! edits to the ledger (see `migrations/`).

pub mod admin;
pub mod apps;
pub mod checks;
pub mod console;
pub mod ledger;
pub mod nonces;
pub mod ops;
pub mod stream;
pub mod tips;
pub mod withdrawals;

use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

pub use sqlx::Error as SqlError;

/// Errors of the store. `Conflict` and `NotFound` are outcomes a caller acts on; `Db` is a
/// failure of the database itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The embedded migrations, in order. Adding one: a new file in `migrations/` and a line here.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "tips and ledger",
        include_str!("../migrations/0001_tips_and_ledger.sql"),
    ),
    (
        2,
        "tip change notifications",
        include_str!("../migrations/0002_tip_change_notifications.sql"),
    ),
    (
        3,
        "withdrawals",
        include_str!("../migrations/0003_withdrawals.sql"),
    ),
    (
        4,
        "operations",
        include_str!("../migrations/0004_operations.sql"),
    ),
    (
        5,
        "ledger guards",
        include_str!("../migrations/0005_ledger_guards.sql"),
    ),
    (
        6,
        "stream followers",
        include_str!("../migrations/0006_stream_followers.sql"),
    ),
    (
        7,
        "lean tip create",
        include_str!("../migrations/0007_lean_tip_create.sql"),
    ),
    (8, "console", include_str!("../migrations/0008_console.sql")),
    (
        9,
        "post totals",
        include_str!("../migrations/0009_post_totals.sql"),
    ),
    (
        10,
        "console form once",
        include_str!("../migrations/0010_console_form_once.sql"),
    ),
    (
        11,
        "nonce brin, ended tips",
        include_str!("../migrations/0011_nonce_brin_ended_tips.sql"),
    ),
    (
        12,
        "tip invoices",
        include_str!("../migrations/0012_tip_invoices.sql"),
    ),
];

/// The channel `tip_intents` changes are announced on (payload: the tip id).
pub const TIP_CHANGED_CHANNEL: &str = "tip_changed";

impl Store {
    /// Listens for tip changes (state or invoice) and sends each changed tip's id to `tx`, for
    /// as long as the process runs. Reconnects after a lost connection.
    pub async fn forward_tip_changes(&self, tx: tokio::sync::broadcast::Sender<uuid::Uuid>) {
        while !self.pool.is_closed() {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&self.pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for tip changes; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(TIP_CHANGED_CHANNEL).await {
                tracing::warn!(error = %e, "LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            loop {
                match listener.recv().await {
                    Ok(n) => {
                        if let Ok(id) = n.payload().parse() {
                            // an error only means nobody is watching right now
                            let _ = tx.send(id);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "tip change listener lost its connection");
                        break;
                    }
                }
            }
        }
    }
}

/// The embedded migrations up to a version.
#[derive(Debug)]
struct Embedded {
    upto: i64,
}

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> futures_core::future::BoxFuture<'s, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async move {
            Ok(MIGRATIONS
                .iter()
                .filter(|(v, _, _)| *v <= self.upto)
                .map(|(v, d, sql)| {
                    Migration::new(
                        *v,
                        Cow::Borrowed(*d),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// The database: a connection pool and every query the service makes.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects with a pool of at most `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        let opts = PgConnectOptions::from_str(url)?.application_name("fiber-link");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        Ok(Store { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies every migration not yet applied (under Postgres' advisory lock, so several
    /// processes may start at once).
    pub async fn migrate(&self) -> Result<()> {
        self.migrate_to(i64::MAX).await
    }

    /// Applies the migrations up to `version` only: an upgrade test's database as an older
    /// release left it.
    pub async fn migrate_to(&self, version: i64) -> Result<()> {
        let migrator = Migrator::new(Embedded { upto: version }).await?;
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// True when every embedded migration has been applied (readiness).
    pub async fn is_migrated(&self) -> Result<bool> {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .or_else(|e| match e {
                    sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01") => Ok(None),
                    e => Err(e),
                })?;
        let latest = MIGRATIONS.last().map(|m| m.0);
        Ok(applied.is_some() && applied == latest)
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// True when the error is Postgres' unique violation (23505).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}
