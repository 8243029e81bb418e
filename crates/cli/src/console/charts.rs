//! The console's charts: small inline SVGs drawn here from numbers only (no user text goes into
//! them), so they need no script and pass the page's content security policy.

use super::Console;
use fiber_link_store::console::{DailyTips, ReconcileRun};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A signed amount in base units, in the asset's units with its symbol.
pub fn units(c: &Console, asset: &str, v: i128) -> String {
    let d = c.cfg.api.assets.get(asset).map(|a| a.decimals).unwrap_or(0);
    let s = fiber_link_core::format_decimal(
        fiber_link_core::Amount::from_base_units(v.unsigned_abs()),
        d,
    );
    format!("{}{s} {asset}", if v < 0 { "−" } else { "" })
}

const W: f64 = 640.0;
const H: f64 = 180.0;
const PAD: f64 = 28.0;

fn frame(out: &mut String, id: &str, label: &str) {
    let _ = write!(
        out,
        r#"<svg id="{id}" class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{label}" preserveAspectRatio="none">"#
    );
    let _ = write!(
        out,
        r##"<line x1="{PAD}" y1="{y}" x2="{x2}" y2="{y}" stroke="#999" stroke-width="1"/>"##,
        y = H - PAD,
        x2 = W - 4.0
    );
}

fn polyline(points: &[(f64, f64)], color: &str) -> String {
    let pts: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    format!(
        r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
        pts.join(" ")
    )
}

/// Owed (red) against held (green) per asset over the recorded reconciliations, each asset
/// scaled to its own largest figure (their units differ).
pub fn solvency(_c: &Console, runs: &[ReconcileRun]) -> String {
    let mut series: BTreeMap<String, Vec<(i64, f64, f64)>> = BTreeMap::new();
    for r in runs {
        for s in r.solvency.as_array().into_iter().flatten() {
            let asset = s["asset"].as_str().unwrap_or_default().to_string();
            let num = |k: &str| {
                s[k].as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            series
                .entry(asset)
                .or_default()
                .push((r.at.timestamp(), num("owed"), num("held")));
        }
    }
    let mut out = String::new();
    frame(
        &mut out,
        "solvency-chart",
        "owed and held per asset over time",
    );
    let (t0, t1) = runs
        .first()
        .zip(runs.last())
        .map(|(a, b)| (a.at.timestamp(), b.at.timestamp()))
        .unwrap_or((0, 1));
    let span = (t1 - t0).max(1) as f64;
    let n = series.len().max(1) as f64;
    for (i, (asset, pts)) in series.iter().enumerate() {
        // each asset in its own horizontal band
        let band = (H - 2.0 * PAD) / n;
        let top = PAD + band * i as f64;
        let max = pts
            .iter()
            .map(|p| p.1.max(p.2))
            .fold(0.0f64, f64::max)
            .max(1.0);
        let x = |t: i64| PAD + (W - PAD - 8.0) * ((t - t0) as f64 / span);
        let y = |v: f64| top + band - (band - 4.0) * (v / max);
        let owed: Vec<(f64, f64)> = pts.iter().map(|p| (x(p.0), y(p.1))).collect();
        let held: Vec<(f64, f64)> = pts.iter().map(|p| (x(p.0), y(p.2))).collect();
        out.push_str(&polyline(&held, "#2e7d32"));
        out.push_str(&polyline(&owed, "#c62828"));
        let _ = write!(
            out,
            r##"<text x="{PAD}" y="{:.1}" font-size="11" fill="#444">{}</text>"##,
            top + 11.0,
            asset_label(asset)
        );
    }
    out.push_str("</svg>");
    out
}

/// Asset symbols are configured by the operator, but they go into markup: keep only safe
/// characters.
fn asset_label(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(16)
        .collect()
}

/// Tips created (light) and settled (dark) per day over the last `days` days (today last), all
/// assets together.
pub fn daily(rows: &[DailyTips], days: i64) -> String {
    let today = chrono::Utc::now().date_naive();
    let mut per_day: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for d in rows {
        let back = (today - d.day).num_days();
        if (0..days).contains(&back) {
            let e = per_day.entry(days - 1 - back).or_default();
            e.0 += d.created;
            e.1 += d.settled;
        }
    }
    let mut out = String::new();
    frame(&mut out, "daily-chart", "tips created and settled per day");
    let max = per_day.values().map(|v| v.0).max().unwrap_or(0).max(1) as f64;
    let slot = (W - PAD - 8.0) / days.max(1) as f64;
    let w = (slot * 0.8).max(1.0);
    let h = |v: i64| (H - 2.0 * PAD) * (v as f64 / max);
    for (i, (created, settled)) in &per_day {
        let x = PAD + slot * *i as f64;
        let day = today - chrono::Duration::days(days - 1 - i);
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="#90caf9"><title>{day}: {created} created</title></rect>"##,
            H - PAD - h(*created),
            h(*created)
        );
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="#1565c0"><title>{day}: {settled} settled</title></rect>"##,
            H - PAD - h(*settled),
            h(*settled)
        );
    }
    let _ = write!(
        out,
        r##"<text x="{PAD}" y="14" font-size="11" fill="#444">max {max:.0} tips/day</text>"##
    );
    let _ = write!(
        out,
        r##"<text x="{PAD}" y="{:.1}" font-size="11" fill="#444">{}</text><text x="{:.1}" y="{:.1}" font-size="11" fill="#444" text-anchor="end">{today}</text>"##,
        H - 8.0,
        today - chrono::Duration::days(days - 1),
        W - 8.0,
        H - 8.0
    );
    out.push_str("</svg>");
    out
}
