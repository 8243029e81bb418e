//! The figures of a load run: throughput, latency percentiles, errors, and their table rows.

use std::time::Duration;

#[derive(Default)]
pub(super) struct Run {
    pub(super) latencies_us: Vec<u64>,
    pub(super) errors: u64,
    pub(super) elapsed: Duration,
}

impl Run {
    pub(super) fn rps(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64()
    }
    pub(super) fn pct(&mut self, p: f64) -> f64 {
        percentile_ms(&mut self.latencies_us, p)
    }

    pub(super) fn print_header() {
        println!(
            "{:>8} {:>10} {:>9} {:>9} {:>7}",
            "clients", "req/s", "p50 ms", "p99 ms", "errors"
        );
    }

    pub(super) fn print_row(&mut self, clients: usize) {
        let (p50, p99) = (self.pct(0.5), self.pct(0.99));
        println!(
            "{:>8} {:>10.0} {:>9.2} {:>9.2} {:>7}",
            clients,
            self.rps(),
            p50,
            p99,
            self.errors
        );
    }
}

pub(super) fn percentile_ms(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}
