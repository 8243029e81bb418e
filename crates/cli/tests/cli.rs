//! The operator's commands, run as the real binary against a fresh database.

mod common;

use serde_json::Value;
use std::process::Command;

fn fiber_link(db_url: &str, master: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fiber-link"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("FIBER_LINK_MASTER_KEY", master)
        .env_remove("FIBER_LINK_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn migrate_and_manage_apps_from_the_command_line() {
    let (store, url) = common::fresh_db().await;
    let master = fiber_link_core::crypto::MasterKey::generate().to_hex();
    let run = |args: &[&str]| fiber_link(&url, &master, args);

    let (ok, out, _) = run(&["migrate"]);
    assert!(ok);
    assert!(out.contains("migrations applied"));
    assert!(store.is_migrated().await.unwrap());

    let (ok, out, err) = run(&["app", "create", "--name", "My forum", "--json"]);
    assert!(ok, "{err}");
    let app: Value = serde_json::from_str(&out).unwrap();
    let id = app["app_id"].as_str().unwrap().to_string();
    assert!(app["secret"].as_str().unwrap().starts_with("fls_"));
    // the stored secret is sealed, not in the clear
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT sealed FROM app_secrets WHERE app_id = $1")
        .bind(&id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(app["secret"].as_str().unwrap()));

    let (ok, out, _) = run(&["app", "list", "--json"]);
    assert!(ok);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["live_secrets"], 1);

    let (ok, out, _) = run(&["app", "rotate-secret", &id, "--overlap", "1h", "--json"]);
    assert!(ok);
    let rot: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rot["secret_id"], 2);
    assert!(rot["previous_valid_until"].is_string());
    let (_, out, _) = run(&["app", "list", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()[0]["live_secrets"],
        2
    );

    let (ok, out, _) = run(&["app", "revoke-secret", &id, "--json"]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["revoked"], 1);
    let (_, out, _) = run(&["app", "list", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()[0]["live_secrets"],
        1
    );

    // clear errors
    let (ok, _, err) = run(&["app", "rotate-secret", "app_000000000000000000000000"]);
    assert!(!ok);
    assert!(err.contains("no app app_000000000000000000000000"), "{err}");
    let (ok, _, err) = fiber_link(&url, "", &["app", "create", "--name", "x"]);
    assert!(!ok);
    assert!(err.contains("FIBER_LINK_MASTER_KEY"), "{err}");
    let (ok, _, err) = fiber_link("", &master, &["migrate"]);
    assert!(!ok);
    assert!(err.contains("DATABASE_URL"), "{err}");
    let (ok, _, err) = fiber_link(
        &url,
        &master,
        &["hubsim", "--currency", "Fibb", "--listen", "127.0.0.1:0"],
    );
    assert!(!ok);
    assert!(err.contains("refuses the mainnet"), "{err}");
}
