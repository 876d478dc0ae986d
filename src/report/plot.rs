//! `rusto report --plot DIR`: three legible SVG charts written without a plotting dependency.
//!
//! - `equity.svg`: cumulative net PnL (USDT) over the exit time of each closed position, with labelled axes;
//! - `pnl_by_hour.svg`: a 24-cell heatmap of mean PnL % by UTC hour of entry (green positive, red negative, the
//!   value and trade count written in each cell);
//! - `mfe_mae.svg`: MAE % (x) against MFE % (y) per position, winners green and losers red, with the configured
//!   stop and TP distances as reference lines.

use std::fmt::Write as _;
use std::path::Path;

use crate::report::review::{Distances, Trade};

const W: f64 = 900.0;
const H: f64 = 500.0;
const M: f64 = 60.0;

fn svg_open(title: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{}" y="24" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"##,
        W / 2.0,
        esc(title)
    );
    s
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[allow(clippy::too_many_arguments)]
fn axes(s: &mut String, x0: f64, x1: f64, y0: f64, y1: f64, xlabel: &str, ylabel: &str, xfmt: &dyn Fn(f64) -> String) {
    let (pw, ph) = (W - 2.0 * M, H - 2.0 * M);
    let _ = write!(
        s,
        r##"<line x1="{M}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{M}" y1="{M}" x2="{M}" y2="{}" stroke="black"/>"##,
        H - M,
        W - M,
        H - M,
        H - M
    );
    for k in 0..=5 {
        let f = k as f64 / 5.0;
        let (x, y) = (M + f * pw, H - M - f * ph);
        let (xv, yv) = (x0 + f * (x1 - x0), y0 + f * (y1 - y0));
        let _ = write!(
            s,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#ccc"/><text x="{x}" y="{}" text-anchor="middle">{}</text><line x1="{M}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{:.3}</text>"##,
            H - M,
            M,
            H - M + 18.0,
            esc(&xfmt(xv)),
            W - M,
            M - 6.0,
            y + 4.0,
            yv
        );
    }
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"##,
        W / 2.0,
        H - 14.0,
        esc(xlabel),
        H / 2.0,
        H / 2.0,
        esc(ylabel)
    );
}

/// Writes the three charts into `dir` (created if needed). Trades must be in exit order for the equity curve.
pub fn write_all(dir: &Path, trades: &[Trade], exits_ms: &[i64], d: Distances) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let (pw, ph) = (W - 2.0 * M, H - 2.0 * M);
    // Equity curve.
    let mut s = svg_open("Equity (cumulative net PnL, USDT)");
    let mut eq = Vec::with_capacity(trades.len());
    let mut acc = 0.0;
    for t in trades {
        acc += t.pnl;
        eq.push(acc);
    }
    let (t0, t1) = (exits_ms.first().copied().unwrap_or(0) as f64, exits_ms.last().copied().unwrap_or(1) as f64);
    let (lo, hi) = eq.iter().fold((0.0f64, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let span_y = if hi > lo { hi - lo } else { 1.0 };
    let span_t = if t1 > t0 { t1 - t0 } else { 1.0 };
    axes(&mut s, 0.0, span_t / 3.6e6, lo, lo + span_y, "hours since the first exit", "USDT", &|v| format!("{v:.1}"));
    let step = (eq.len() / 2000).max(1);
    let mut pts = String::new();
    for (i, v) in eq.iter().enumerate().step_by(step) {
        let x = M + (exits_ms.get(i).copied().unwrap_or(0) as f64 - t0) / span_t * pw;
        let y = H - M - (v - lo) / span_y * ph;
        let _ = write!(pts, "{x:.1},{y:.1} ");
    }
    let _ = write!(s, r##"<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="1.5"/></svg>"##);
    std::fs::write(dir.join("equity.svg"), s)?;

    // PnL by UTC hour heatmap.
    let mut s = svg_open("Mean net PnL % by UTC hour of entry");
    let mut sum = [0.0f64; 24];
    let mut n = [0u64; 24];
    for t in trades {
        sum[t.hour as usize % 24] += t.pnl_pct;
        n[t.hour as usize % 24] += 1;
    }
    let maxabs = (0..24).filter(|&h| n[h] > 0).map(|h| (sum[h] / n[h] as f64).abs()).fold(1e-12, f64::max);
    let cw = pw / 12.0;
    for h in 0..24 {
        let (col, row) = (h % 12, h / 12);
        let (x, y) = (M + col as f64 * cw, M + 40.0 + row as f64 * 150.0);
        let mean = if n[h] > 0 { sum[h] / n[h] as f64 } else { 0.0 };
        let a = (mean.abs() / maxabs).clamp(0.0, 1.0);
        let fill = if n[h] == 0 {
            "#f2f2f2".to_string()
        } else if mean >= 0.0 {
            format!("rgb({},{},{})", (255.0 - 180.0 * a) as u8, 255, (255.0 - 180.0 * a) as u8)
        } else {
            format!("rgb({},{},{})", 255, (255.0 - 180.0 * a) as u8, (255.0 - 180.0 * a) as u8)
        };
        let _ = write!(
            s,
            r##"<rect x="{x}" y="{y}" width="{}" height="120" fill="{fill}" stroke="#999"/><text x="{}" y="{}" text-anchor="middle" font-weight="bold">{h:02}h</text><text x="{}" y="{}" text-anchor="middle" font-size="11">{:+.4}%</text><text x="{}" y="{}" text-anchor="middle" fill="#555" font-size="10">n={}</text>"##,
            cw - 4.0,
            x + cw / 2.0,
            y + 30.0,
            x + cw / 2.0,
            y + 65.0,
            mean,
            x + cw / 2.0,
            y + 95.0,
            n[h]
        );
    }
    s.push_str("</svg>");
    std::fs::write(dir.join("pnl_by_hour.svg"), s)?;

    // MFE / MAE scatter.
    let mut s = svg_open("MFE vs MAE per position (green: winners, red: losers)");
    let xmax = trades.iter().map(|t| t.mae).fold(d.stop_pct * 1.2, f64::max);
    let ymax = trades.iter().map(|t| t.mfe).fold(d.tp2_pct * 1.2, f64::max);
    axes(&mut s, 0.0, xmax, 0.0, ymax, "MAE % (adverse)", "MFE % (favourable)", &|v| format!("{v:.2}"));
    let step = (trades.len() / 5000).max(1);
    for t in trades.iter().step_by(step) {
        let x = M + t.mae / xmax * pw;
        let y = H - M - t.mfe / ymax * ph;
        let c = if t.pnl > 0.0 { "#2ca02c" } else { "#d62728" };
        let _ = write!(s, r##"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{c}" fill-opacity="0.6"/>"##);
    }
    for (v, label, vertical) in [
        (d.stop_pct, "stop", true),
        (d.soft_stop_pct, "SoftStop", true),
        (d.tp1_pct, "TP1", false),
        (d.tp2_pct, "TP2", false),
    ] {
        if vertical {
            let x = M + v / xmax * pw;
            let _ = write!(
                s,
                r##"<line x1="{x}" y1="{M}" x2="{x}" y2="{}" stroke="#555" stroke-dasharray="4 3"/><text x="{}" y="{}" fill="#555">{label} {v:.2}%</text>"##,
                H - M,
                x + 3.0,
                M + 12.0
            );
        } else {
            let y = H - M - v / ymax * ph;
            let _ = write!(
                s,
                r##"<line x1="{M}" y1="{y}" x2="{}" y2="{y}" stroke="#555" stroke-dasharray="4 3"/><text x="{}" y="{}" fill="#555" text-anchor="end">{label} {v:.2}%</text>"##,
                W - M,
                W - M - 3.0,
                y - 4.0
            );
        }
    }
    s.push_str("</svg>");
    std::fs::write(dir.join("mfe_mae.svg"), s)
}
