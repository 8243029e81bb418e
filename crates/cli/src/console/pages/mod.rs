//! The console's pages and the actions behind their forms. Every action calls the same function
//! as its CLI command.

mod apps;
mod audit;
mod overview;
mod tips;
mod withdrawals;

pub use apps::{app, app_action, apps, create_app};
pub use audit::audit;
pub use overview::{overview, reconcile};
pub use tips::{tip, tips};
pub use withdrawals::{withdrawal, withdrawal_action, withdrawals};

use chrono::{DateTime, Utc};

pub(super) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// One line of a timeline: when, the state change, by whom, the detail.
pub(super) fn event_row(
    at: DateTime<Utc>,
    from: Option<&str>,
    to: &str,
    by: &str,
    detail: String,
) -> (String, String, String, String) {
    (
        time(at),
        format!("{} → {to}", from.unwrap_or("-")),
        by.to_string(),
        detail,
    )
}

pub(super) fn age(t: DateTime<Utc>) -> String {
    let s = (Utc::now() - t).num_seconds().max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86400),
    }
}
