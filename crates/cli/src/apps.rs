//! Apps and their secrets: the one path of `fiber-link app …` and the console.

use crate::config::Config;
use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use fiber_link_core::crypto::generate_app_secret;
use fiber_link_store::apps::Revoke;
use fiber_link_store::{Store, StoreError};
use rand::RngCore;
use std::time::Duration;

fn new_app_id() -> String {
    let mut b = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    format!("app_{}", hex::encode(b))
}

fn missing(app_id: &str, e: StoreError) -> anyhow::Error {
    match e {
        StoreError::NotFound => anyhow!("no app {app_id}"),
        e => anyhow!(e),
    }
}

/// Creates an app; its id and its first secret (to be shown once).
pub async fn create(cfg: &Config, store: &Store, name: &str, by: &str) -> Result<(String, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        bail!("the name must be 1 to 200 characters");
    }
    let master = cfg.master_key()?;
    let id = new_app_id();
    let secret = generate_app_secret();
    let sealed = master.secret_box().seal(&format!("{id}/1"), &secret);
    store
        .create_app(&id, name, sealed, by)
        .await
        .context("creating the app")?;
    Ok((id, secret))
}

/// A new secret (shown once); the previous one stays valid for `overlap`. Returns the secret
/// id, the secret, and until when the previous one is valid.
pub async fn rotate(
    cfg: &Config,
    store: &Store,
    app_id: &str,
    overlap: Duration,
    by: &str,
) -> Result<(i32, String, Option<DateTime<Utc>>)> {
    let master = cfg.master_key()?;
    let secret = generate_app_secret();
    let seal = master.secret_box();
    let (secret_id, old_end) = store
        .rotate_secret(
            app_id,
            overlap,
            |sid| seal.seal(&format!("{app_id}/{sid}"), &secret),
            by,
        )
        .await
        .map_err(|e| missing(app_id, e))?;
    Ok((secret_id, secret, old_end))
}

/// Revokes the previous secret of a rotation, or all of them; how many.
pub async fn revoke(store: &Store, app_id: &str, which: Revoke, by: &str) -> Result<u64> {
    store
        .revoke_secrets(app_id, which, by)
        .await
        .map_err(|e| missing(app_id, e))
}
