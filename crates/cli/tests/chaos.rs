//! The short chaos run (`scripts/chaos.sh` runs the long one): two APIs, two workers and the hub
//! simulator over a private Postgres that is crashed once; SIGKILLs, hub faults, a pause and a
//! resume under mixed traffic; then every paid invoice must be credited exactly once, every
//! withdrawal paid at most once and COMPLETED exactly when paid, the ledger balanced and
//! `fiber-link reconcile` clean. The seed is fixed so a failure replays with the same schedule.

use std::process::Command;

#[test]
fn a_short_chaos_run_ends_with_clean_books() {
    let seed = std::env::var("FIBER_LINK_CHAOS_SEED").unwrap_or_else(|_| "20261130".into());
    let out = Command::new(env!("CARGO_BIN_EXE_fiber-link"))
        .args(["chaos", "--seconds", "45", "--seed", &seed])
        .output()
        .expect("running fiber-link chaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("chaos: clean (0 violations)"),
        "the chaos run found violations (seed {seed}):\n{stdout}\n{stderr}"
    );
    // it did what it says: faults were applied and money moved both ways
    for want in [
        "1 Postgres crash",
        "tips credited once",
        "payouts made at the hub",
    ] {
        assert!(stdout.contains(want), "{want} missing:\n{stdout}");
    }
    assert!(!stdout.contains("faults: 0 kills"), "{stdout}");
}
