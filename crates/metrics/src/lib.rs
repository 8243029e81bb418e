//! Fiber Link's process metrics, in Prometheus' text format (`/metrics` of the API and of the
//! worker).
//!
//! Counters and histograms count what this process did (a Prometheus server sums them over
//! instances); the gauges of the database's state (tips and withdrawals by state, open invoices,
//! the oldest unfinished withdrawal, pauses) are read from the database when `/metrics` is
//! scraped, so every instance reports the same figures for them (aggregate those with `max`).
//! One registry per process: the hub and chain clients record their calls wherever they are used.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn call_buckets() -> Histogram {
    // 1 ms … ~33 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    tips_created: Family<Labels, Counter>,
    tips_settled: Family<Labels, Counter>,
    settlement_lag: Histogram,
    hub_duration: HistogramFamily,
    hub_errors: Family<Labels, Counter>,
    chain_duration: HistogramFamily,
    chain_errors: Family<Labels, Counter>,
    auth_rejections: Family<Labels, Counter>,
    rate_limited: Family<Labels, Counter>,
    open_invoices: Gauge,
    tips_by_state: Family<Labels, Gauge>,
    withdrawals_by_state: Family<Labels, Gauge>,
    oldest_unfinished_withdrawal: Gauge<f64, AtomicU64>,
    paused: Family<Labels, Gauge>,
    stream_state: Gauge,
    stream_reconnects: Counter,
    stream_events: Family<Labels, Counter>,
    stream_tips_due: Family<Labels, Counter>,
}

/// Where this worker's subscription to the hub's store-change stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamState {
    /// Not asked for (`[worker] stream = false`), or the hub does not offer it: polling only.
    Off = 0,
    /// Connecting, or waiting to reconnect: polling on the fast schedule meanwhile.
    Down = 1,
    /// Subscribed: events make tips due; polling is the slow safety net.
    Up = 2,
}

/// The database's state as `/metrics` reports it (read at scrape time).
#[derive(Clone, Debug, Default)]
pub struct DbSnapshot {
    pub tips_by_state: Vec<(String, i64)>,
    pub withdrawals_by_state: Vec<(String, i64)>,
    pub open_invoices: i64,
    /// Age of the oldest withdrawal not COMPLETED, FAILED or CANCELLED; 0 when there is none.
    pub oldest_unfinished_withdrawal_secs: f64,
    /// (scope: an app id or "global", what: "tips" | "withdrawals") for every switch that is on.
    pub paused: Vec<(String, &'static str)>,
}

const TIP_STATES: [&str; 5] = ["UNPAID", "PENDING", "SETTLED", "EXPIRED", "FAILED"];
const WITHDRAWAL_STATES: [&str; 7] = [
    "AWAITING_APPROVAL",
    "QUEUED",
    "SUBMITTING",
    "SUBMITTED",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
];

impl Metrics {
    fn new() -> Metrics {
        let mut r = Registry::with_prefix("fiber_link");
        let tips_created = Family::<Labels, Counter>::default();
        r.register(
            "tips_created",
            "Tips created (invoices issued) by this process, by app and asset",
            tips_created.clone(),
        );
        let tips_settled = Family::<Labels, Counter>::default();
        r.register(
            "tips_settled",
            "Tips settled and credited by this process, by app and asset",
            tips_settled.clone(),
        );
        let settlement_lag = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        r.register(
            "settlement_lag_seconds",
            "From the last check that saw a tip's invoice unpaid to its credit: an upper bound on how late a payment is seen",
            settlement_lag.clone(),
        );
        let hub_duration = HistogramFamily::new_with_constructor(call_buckets);
        r.register(
            "hub_request_duration_seconds",
            "Hub (FNN) JSON-RPC calls by method, errors included",
            hub_duration.clone(),
        );
        let hub_errors = Family::<Labels, Counter>::default();
        r.register(
            "hub_errors",
            "Hub calls that failed, by method and kind (unreachable, unauthorized: the token lacks the permission, rpc, bad_response)",
            hub_errors.clone(),
        );
        let chain_duration = HistogramFamily::new_with_constructor(call_buckets);
        r.register(
            "chain_request_duration_seconds",
            "CKB node calls by method, errors included",
            chain_duration.clone(),
        );
        let chain_errors = Family::<Labels, Counter>::default();
        r.register(
            "chain_errors",
            "CKB node calls that failed, by method",
            chain_errors.clone(),
        );
        let auth_rejections = Family::<Labels, Counter>::default();
        r.register(
            "auth_rejections",
            "API requests refused by authentication, by reason (the API's -32001 reasons: bad_signature, replayed_nonce, stale_timestamp, future_timestamp, unknown_app, missing_header, malformed_header)",
            auth_rejections.clone(),
        );
        let rate_limited = Family::<Labels, Counter>::default();
        r.register(
            "rate_limited",
            "API requests refused by a rate limit, by scope (app_method, app_user)",
            rate_limited.clone(),
        );
        let open_invoices = Gauge::default();
        r.register(
            "open_invoices",
            "Tips UNPAID or PENDING (read from the database)",
            open_invoices.clone(),
        );
        let tips_by_state = Family::<Labels, Gauge>::default();
        r.register(
            "tips",
            "Tips by state (read from the database)",
            tips_by_state.clone(),
        );
        let withdrawals_by_state = Family::<Labels, Gauge>::default();
        r.register(
            "withdrawals",
            "Withdrawals by state (read from the database)",
            withdrawals_by_state.clone(),
        );
        let oldest_unfinished_withdrawal = Gauge::<f64, AtomicU64>::default();
        r.register(
            "oldest_unfinished_withdrawal_seconds",
            "Age of the oldest withdrawal not yet COMPLETED, FAILED or CANCELLED; 0 if none",
            oldest_unfinished_withdrawal.clone(),
        );
        let paused = Family::<Labels, Gauge>::default();
        r.register(
            "paused",
            "1 for every kill switch that is on, by app (or global) and what (tips, withdrawals)",
            paused.clone(),
        );
        let stream_state = Gauge::default();
        r.register(
            "hub_stream_state",
            "This worker's subscription to the hub's store-change stream: 0 off (polling only: not configured, or the hub lacks the pubsub module), 1 down (reconnecting; fast polling), 2 up",
            stream_state.clone(),
        );
        let stream_reconnects = Counter::default();
        r.register(
            "hub_stream_reconnects",
            "Subscriptions to the hub's store-change stream made again after one ended",
            stream_reconnects.clone(),
        );
        let stream_events = Family::<Labels, Counter>::default();
        r.register(
            "hub_stream_events",
            "Store-change events received, by kind (invoice_status, other, malformed)",
            stream_events.clone(),
        );
        let stream_tips_due = Family::<Labels, Counter>::default();
        r.register(
            "hub_stream_tips_due",
            "Tips made due at once, by cause (event: the stream announced a status change; sweep: after a gap in the stream; pull_in: while nobody follows it)",
            stream_tips_due.clone(),
        );
        Metrics {
            registry: r,
            stream_state,
            stream_reconnects,
            stream_events,
            stream_tips_due,
            tips_created,
            tips_settled,
            settlement_lag,
            hub_duration,
            hub_errors,
            chain_duration,
            chain_errors,
            auth_rejections,
            rate_limited,
            open_invoices,
            tips_by_state,
            withdrawals_by_state,
            oldest_unfinished_withdrawal,
            paused,
        }
    }

    pub fn tip_created(&self, app: &str, asset: &str) {
        self.tips_created
            .get_or_create(&vec![
                ("app", app.to_string()),
                ("asset", asset.to_string()),
            ])
            .inc();
    }

    /// A tip credited; `lag_secs`: since the last check that did not see it paid.
    pub fn tip_settled(&self, app: &str, asset: &str, lag_secs: f64) {
        self.tips_settled
            .get_or_create(&vec![
                ("app", app.to_string()),
                ("asset", asset.to_string()),
            ])
            .inc();
        self.settlement_lag.observe(lag_secs.max(0.0));
    }

    /// One hub call: its method, how long it took and, if it failed, how.
    pub fn hub_call(&self, method: &str, secs: f64, error: Option<&'static str>) {
        let m = vec![("method", method.to_string())];
        self.hub_duration.get_or_create(&m).observe(secs);
        if let Some(kind) = error {
            self.hub_errors
                .get_or_create(&vec![("method", method.to_string()), ("kind", kind.into())])
                .inc();
        }
    }

    pub fn stream_state(&self, s: StreamState) {
        self.stream_state.set(s as i64);
    }

    pub fn stream_reconnected(&self) {
        self.stream_reconnects.inc();
    }

    pub fn stream_event(&self, kind: &'static str) {
        self.stream_events
            .get_or_create(&vec![("kind", kind.to_string())])
            .inc();
    }

    pub fn stream_tips_due(&self, cause: &'static str, n: u64) {
        self.stream_tips_due
            .get_or_create(&vec![("cause", cause.to_string())])
            .inc_by(n);
    }

    pub fn chain_call(&self, method: &str, secs: f64, failed: bool) {
        let m = vec![("method", method.to_string())];
        self.chain_duration.get_or_create(&m).observe(secs);
        if failed {
            self.chain_errors.get_or_create(&m).inc();
        }
    }

    pub fn auth_rejected(&self, reason: &str) {
        self.auth_rejections
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    pub fn rate_limited(&self, scope: &str) {
        self.rate_limited
            .get_or_create(&vec![("scope", scope.to_string())])
            .inc();
    }

    /// Replaces the database gauges with a fresh snapshot.
    pub fn set_db(&self, s: &DbSnapshot) {
        self.open_invoices.set(s.open_invoices);
        for st in TIP_STATES {
            let n = s
                .tips_by_state
                .iter()
                .find(|(k, _)| k == st)
                .map_or(0, |x| x.1);
            self.tips_by_state
                .get_or_create(&vec![("state", st.to_string())])
                .set(n);
        }
        for st in WITHDRAWAL_STATES {
            let n = s
                .withdrawals_by_state
                .iter()
                .find(|(k, _)| k == st)
                .map_or(0, |x| x.1);
            self.withdrawals_by_state
                .get_or_create(&vec![("state", st.to_string())])
                .set(n);
        }
        self.oldest_unfinished_withdrawal
            .set(s.oldest_unfinished_withdrawal_secs);
        self.paused.clear();
        for (scope, what) in &s.paused {
            self.paused
                .get_or_create(&vec![("app", scope.clone()), ("what", what.to_string())])
                .set(1);
        }
    }

    /// The text exposition (`text/plain; version=0.0.4` compatible; ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // writing into a String cannot fail
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_show_in_the_exposition() {
        let m = Metrics::new();
        m.tip_created("app_1", "CKB");
        m.tip_created("app_1", "CKB");
        m.tip_settled("app_1", "CKB", 0.3);
        m.hub_call("get_invoice", 0.01, Some("unreachable"));
        m.set_db(&DbSnapshot {
            tips_by_state: vec![("SETTLED".into(), 4)],
            open_invoices: 2,
            paused: vec![("global".into(), "tips")],
            ..Default::default()
        });
        let text = m.encode();
        assert!(
            text.contains("fiber_link_tips_created_total{app=\"app_1\",asset=\"CKB\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("fiber_link_tips{state=\"SETTLED\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("fiber_link_tips{state=\"FAILED\"} 0"),
            "{text}"
        );
        assert!(text.contains("fiber_link_open_invoices 2"), "{text}");
        assert!(
            text.contains(
                "fiber_link_hub_errors_total{method=\"get_invoice\",kind=\"unreachable\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("fiber_link_paused{app=\"global\",what=\"tips\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("fiber_link_settlement_lag_seconds_count 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
