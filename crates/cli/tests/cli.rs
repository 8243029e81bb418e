//! The operator's commands, run as the real binary against a fresh database.

mod common;

use serde_json::Value;
use std::process::Command;

fn fiber_link(db_url: &str, master: &str, args: &[&str]) -> (bool, String, String) {
    fiber_link_with_hub(db_url, master, "http://127.0.0.1:9", args)
}

fn fiber_link_with_hub(
    db_url: &str,
    master: &str,
    hub_url: &str,
    args: &[&str],
) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fiber-link"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("FIBER_LINK_MASTER_KEY", master)
        .env("FIBER_LINK_HUB_URL", hub_url)
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

    // each action is in the audit trail, with who did it, in the action's own transaction
    let trail: Vec<(String, String)> =
        sqlx::query_as("SELECT event, actor FROM audit_log WHERE app_id = $1 ORDER BY id")
            .bind(&id)
            .fetch_all(store.pool())
            .await
            .unwrap();
    let events: Vec<&str> = trail.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        events,
        [
            "operator.app_created",
            "operator.secret_rotated",
            "operator.secret_revoked"
        ]
    );
    assert!(
        trail.iter().all(|t| t.1.starts_with("operator:")),
        "{trail:?}"
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

/// The operator's withdrawal commands against a running stack: a policy set from the command line
/// is enforced by the API; a withdrawal over the approval threshold waits until `withdrawal
/// approve`; `withdrawal fail` refuses while the hub still has the payment in flight. (Multi-thread:
/// the commands block a thread while the in-process hub simulator answers them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operate_withdrawals_from_the_command_line() {
    use serde_json::json;
    let s = common::Stack::start().await;
    if s.skip_on_real_hub("external_invoice") {
        return;
    }
    s.start_worker().await;
    let c = s.client();
    s.fund(&c, "bob", "CKB", "100", 1).await;
    let master = s.master.to_hex();
    let run = |args: &[&str]| fiber_link_with_hub(&s.db_url, &master, &s.hub_url, args);
    let (ok, _, err) = run(&[
        "app",
        "policy",
        "set",
        &s.app_id,
        "--asset",
        "CKB",
        "--approval-threshold",
        "20",
        "--max-per-request",
        "50",
        "--by",
        "ops-anna",
    ]);
    assert!(ok, "{err}");
    let (ok, out, _) = run(&["app", "policy", "show", &s.app_id, "--json"]);
    assert!(ok);
    let p: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p[0]["approval_threshold"], "20");
    assert_eq!(p[0]["max_per_request"], "50");
    let (ok, _, err) = run(&[
        "app", "policy", "set", &s.app_id, "--asset", "CKB", "--min", "1e3",
    ]);
    assert!(!ok && err.contains("--min"), "{err}");

    let invoice = |amount: &str, outcome: &str| {
        let s = &s;
        let (amount, outcome) = (amount.to_string(), outcome.to_string());
        async move {
            s.sim(
                "sim_external_invoice",
                json!({"amount": amount, "outcome": outcome}),
            )
            .await["invoice"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let request = |inv: String, amount: &str, key: &str| {
        json!({"user_id": "bob", "asset": "CKB", "amount": amount, "idempotency_key": key,
               "destination": {"kind": "fiber_invoice", "invoice": inv}})
    };
    // over the maximum set from the command line
    let a = c
        .call(
            "withdrawal.request",
            request(invoice("6000000000", "success").await, "60.3", "k0"),
        )
        .await
        .unwrap();
    assert_eq!(a.reason(), Some("amount_above_maximum"));

    // over the approval threshold: waits for an operator
    let w = c
        .result(
            "withdrawal.request",
            request(invoice("3000000000", "success").await, "30.15", "k1"),
        )
        .await
        .unwrap();
    assert_eq!(w["state"], "AWAITING_APPROVAL");
    let id = w["withdrawal_id"].as_str().unwrap().to_string();
    s.start_payouts().await;
    let (ok, out, _) = run(&["withdrawal", "list", "--json"]);
    assert!(ok);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let still = c
        .result("withdrawal.get", json!({"withdrawal_id": id}))
        .await
        .unwrap();
    assert_eq!(
        still["state"], "AWAITING_APPROVAL",
        "nothing moves it but an operator"
    );
    let (ok, out, err) = run(&["withdrawal", "approve", &id, "--by", "ops-anna"]);
    assert!(ok, "{err}");
    assert!(out.contains("approved"));
    common::wait_withdrawal(&c, &id, "COMPLETED").await;
    let (ok, out, _) = run(&["withdrawal", "show", &id]);
    assert!(ok);
    assert!(out.contains("approved by ops-anna"), "{out}");
    let (ok, _, err) = run(&["withdrawal", "approve", &id]);
    assert!(!ok && err.contains("not awaiting approval"), "{err}");
    let (ok, _, err) = run(&["withdrawal", "retry", &id]);
    assert!(!ok && err.contains("COMPLETED"), "{err}");

    // a payment the hub still has in flight cannot be failed by hand
    let w = c
        .result(
            "withdrawal.request",
            request(invoice("1000000000", "hang").await, "10.05", "k2"),
        )
        .await
        .unwrap();
    let id2 = w["withdrawal_id"].as_str().unwrap().to_string();
    common::wait_withdrawal(&c, &id2, "SUBMITTED").await;
    let (ok, _, err) = run(&["withdrawal", "fail", &id2, "--reason", "looks stuck"]);
    assert!(!ok && err.contains("not failed"), "{err}");
    let (ok, _, err) = run(&["withdrawal", "cancel", &id2]);
    assert!(!ok && err.contains("SUBMITTED"), "{err}");
    let long = "x".repeat(501);
    let (ok, _, err) = run(&["withdrawal", "fail", &id2, "--reason", &long]);
    assert!(!ok && err.contains("at most 500"), "{err}");
    let still = c
        .result("withdrawal.get", json!({"withdrawal_id": id2}))
        .await
        .unwrap();
    assert_eq!(still["state"], "SUBMITTED");
    let (ok, out, _) = run(&["withdrawal", "show", "not-an-id"]);
    assert!(!ok, "{out}");
}
