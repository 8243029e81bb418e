//! The end of a chaos run: the books against the hub simulator's own records.

use anyhow::{Context, Result};
use fiber_link_store::Store;
use serde_json::Value;
use std::collections::HashMap;

/// What the checks found: figures and violations.
#[derive(Debug, Default)]
pub struct Verdict {
    pub figures: Vec<(String, String)>,
    pub violations: Vec<String>,
}

impl Verdict {
    fn figure(&mut self, k: &str, v: impl ToString) {
        self.figures.push((k.to_string(), v.to_string()));
    }
    fn violation(&mut self, v: String) {
        self.violations.push(v);
    }
}

/// The simulator's records: invoice status and payouts per payment hash.
pub struct SimRecords {
    invoices: HashMap<String, String>,
    /// Per hash: (status of the current session, how many sessions succeeded).
    payments: HashMap<String, (String, u64)>,
}

impl SimRecords {
    pub fn from_json(v: &Value) -> Result<SimRecords> {
        let list = |k: &str| {
            v[k].as_array()
                .cloned()
                .with_context(|| format!("sim_records without {k}: {v}"))
        };
        let invoices = list("invoices")?
            .iter()
            .map(|i| {
                (
                    i["payment_hash"].as_str().unwrap_or_default().to_string(),
                    i["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let payments = list("payments")?
            .iter()
            .map(|p| {
                (
                    p["payment_hash"].as_str().unwrap_or_default().to_string(),
                    (
                        p["status"].as_str().unwrap_or_default().to_string(),
                        p["successes"].as_u64().unwrap_or(0),
                    ),
                )
            })
            .collect();
        Ok(SimRecords { invoices, payments })
    }
}

/// Compares the books with the simulator:
/// - every invoice the simulator saw paid is credited exactly once, nothing else is credited;
/// - every withdrawal is paid at the hub at most once, COMPLETED if and only if paid, and funds
///   released (FAILED, CANCELLED) were never paid;
/// - the ledger's rules hold (balanced, no negative balance, balance rows = their entries);
/// - nothing is left in a non-final state past its deadline.
pub async fn books_against_the_hub(store: &Store, sim: &SimRecords) -> Result<Verdict> {
    let mut v = Verdict::default();
    let tips = store.tip_facts().await?;
    let (mut paid, mut credited) = (0u64, 0u64);
    for t in &tips {
        let hub = sim
            .invoices
            .get(&t.payment_hash)
            .map(String::as_str)
            .unwrap_or("unknown");
        let is_paid = hub == "Paid";
        paid += u64::from(is_paid);
        credited += u64::from(t.settles == 1);
        if is_paid && t.settles != 1 {
            v.violation(format!(
                "tip {} paid at the hub, credited {} times (state {})",
                t.payment_hash, t.settles, t.state
            ));
        }
        if !is_paid && t.settles != 0 {
            v.violation(format!(
                "tip {} credited {} times, but the hub says {hub}",
                t.payment_hash, t.settles
            ));
        }
        if is_paid != (t.state == "SETTLED") {
            v.violation(format!(
                "tip {} is {} while the hub says {hub}",
                t.payment_hash, t.state
            ));
        }
        if t.open_past_expiry {
            v.violation(format!(
                "tip {} still {} a minute past its expiry",
                t.payment_hash, t.state
            ));
        }
    }
    v.figure("tips", tips.len());
    v.figure("tips paid at the hub", paid);
    v.figure("tips credited once", credited);

    let ws = store.withdrawal_facts().await?;
    let mut by_state: HashMap<String, u64> = HashMap::new();
    let mut payouts = 0u64;
    for w in &ws {
        *by_state.entry(w.state.clone()).or_default() += 1;
        let successes = w
            .payment_hash
            .as_ref()
            .and_then(|h| sim.payments.get(h))
            .map_or(0, |p| p.1);
        payouts += successes;
        if successes > 1 {
            v.violation(format!(
                "withdrawal {} paid {successes} times at the hub",
                w.id
            ));
        }
        match w.state.as_str() {
            "COMPLETED" if successes != 1 => v.violation(format!(
                "withdrawal {} COMPLETED but the hub paid it {successes} times",
                w.id
            )),
            "FAILED" | "CANCELLED" if successes != 0 => v.violation(format!(
                "withdrawal {} {} (funds released) but the hub paid it",
                w.id, w.state
            )),
            "COMPLETED" | "FAILED" | "CANCELLED" => {}
            other => v.violation(format!("withdrawal {} left {other} after the drain", w.id)),
        }
        let want: &[&str] = match w.state.as_str() {
            "COMPLETED" => &["withdrawal_reserve", "withdrawal_complete"],
            "FAILED" | "CANCELLED" => &["withdrawal_reserve", "withdrawal_release"],
            _ => &["withdrawal_reserve"],
        };
        if w.ledger != want {
            v.violation(format!(
                "withdrawal {} ({}) has ledger {:?}, expected {want:?}",
                w.id, w.state, w.ledger
            ));
        }
    }
    v.figure("withdrawals", ws.len());
    let mut states: Vec<_> = by_state.into_iter().collect();
    states.sort();
    v.figure(
        "withdrawals by state",
        states
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    v.figure("payouts made at the hub", payouts);

    let l = store.ledger_facts().await?;
    v.figure("ledger transactions", l.transactions);
    if l.unbalanced != 0 {
        v.violation(format!(
            "{} ledger transactions do not balance",
            l.unbalanced
        ));
    }
    if l.min_author_balance.starts_with('-') {
        v.violation(format!(
            "an author balance is negative: {}",
            l.min_author_balance
        ));
    }
    if l.balance_mismatches != 0 {
        v.violation(format!(
            "{} balance rows differ from their entries",
            l.balance_mismatches
        ));
    }
    Ok(v)
}
