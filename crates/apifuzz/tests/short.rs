//! A short run of the fuzzer (20,000 requests) against the debug `fiber-link` binary that cargo
//! built for the workspace, on the Postgres server of DATABASE_URL (scripts/test.sh points it at
//! a private cluster; else the conventional local one).

use std::path::PathBuf;
use std::process::Command;

/// `fiber-link` next to this crate's binary (the same target directory and profile), else
/// target/debug/fiber-link of the workspace.
fn fiber_link_bin() -> PathBuf {
    let fuzzer = PathBuf::from(env!("CARGO_BIN_EXE_fiber-link-apifuzz"));
    let mut candidates = Vec::new();
    if let Some(dir) = fuzzer.parent() {
        candidates.push(dir.join("fiber-link"));
    }
    candidates
        .push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/fiber-link"));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the fiber-link binary is not built (looked at {candidates:?}); build the workspace first: \
                 `cargo build -p fiber-link`, or run `cargo test --workspace --all-targets`, which builds every binary"
            )
        })
}

#[test]
fn twenty_thousand_mutated_requests_find_nothing() {
    let bin = fiber_link_bin();
    let out_dir =
        std::env::temp_dir().join(format!("fiber-link-apifuzz-test-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_fiber-link-apifuzz"))
        .arg("--bin")
        .arg(&bin)
        .args([
            "--requests",
            "20000",
            "--seed",
            "20260101",
            "--concurrency",
            "16",
        ])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("run fiber-link-apifuzz");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "the fuzzer found something or could not run (exit {:?}); its summary is above, the logs in {}",
        out.status.code(),
        out_dir.display()
    );
    for line in [
        "requests sent: 20000 of 20000 (20000 answered)",
        "-- 5xx answers: 0",
        "-- panics: serve 0, hubsim 0",
        "-- serve stayed alive",
        "-- violations: 0",
        "RESULT: PASS",
    ] {
        assert!(stdout.contains(line), "the summary lacks {line:?}");
    }
    // every target was exercised, and the database was compared table by table
    for target in [
        "POST /rpc tip.create",
        "POST /rpc withdrawal.request",
        "POST /rpc health.ping",
        "POST /tips",
        "GET /pay/{id} ",
        "GET /pay/{id}/events",
        "GET /healthz/live",
    ] {
        assert!(stdout.contains(target), "no requests to {target}");
    }
    for table in [
        "tip_intents",
        "tip_invoices",
        "users",
        "withdrawals",
        "ledger_transactions",
        "used_nonces",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(table) && l.contains("expected"))
            .unwrap_or_else(|| panic!("no database line for {table}"));
        assert!(line.ends_with(": ok"), "{line}");
    }
    let _ = std::fs::remove_dir_all(&out_dir);
}
