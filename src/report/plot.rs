//! `rusto report --plot DIR`: three legible SVG charts written without a plotting dependency.
//!
//! - `equity.svg`: cumulative net PnL (USDT) over the exit time of each closed position, with labelled axes;
//! - `pnl_by_hour.svg`: a 24-cell heatmap of mean PnL % by UTC hour of entry (green positive, red negative, the
//!   value and trade count written in each cell);
//! - `mfe_mae.svg`: MAE % (x) against MFE % (y) per position, winners green and losers red, with the configured
//!   stop and TP distances as reference lines.

use std::path::Path;

use crate::report::review::{Distances, Trade};

const W: f64 = 900.0;
const H: f64 = 500.0;
const M: f64 = 60.0;
/// Plot area width and height.
const PW: f64 = W - 2.0 * M;
const PH: f64 = H - 2.0 * M;

// The SVG text is built with `push_str(&format!(..))`: no `fmt::Result` to ignore.

fn svg_open(title: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{}" y="24" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"##,
        W / 2.0,
        esc(title)
    )
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The axes of a chart: value ranges, labels and how x tick values are printed.
struct Axes<'a> {
    x: (f64, f64),
    y: (f64, f64),
    xlabel: &'a str,
    ylabel: &'a str,
    xfmt: &'a dyn Fn(f64) -> String,
}

impl Axes<'_> {
    fn draw(&self, s: &mut String) {
        let ((x0, x1), (y0, y1)) = (self.x, self.y);
        s.push_str(&format!(
            r##"<line x1="{M}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{M}" y1="{M}" x2="{M}" y2="{}" stroke="black"/>"##,
            H - M,
            W - M,
            H - M,
            H - M
        ));
        for k in 0..=5 {
            let f = k as f64 / 5.0;
            let (x, y) = (M + f * PW, H - M - f * PH);
            let (xv, yv) = (x0 + f * (x1 - x0), y0 + f * (y1 - y0));
            s.push_str(&format!(
                r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#ccc"/><text x="{x}" y="{}" text-anchor="middle">{}</text><line x1="{M}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{:.3}</text>"##,
                H - M,
                M,
                H - M + 18.0,
                esc(&(self.xfmt)(xv)),
                W - M,
                M - 6.0,
                y + 4.0,
                yv
            ));
        }
        s.push_str(&format!(
            r##"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"##,
            W / 2.0,
            H - 14.0,
            esc(self.xlabel),
            H / 2.0,
            H / 2.0,
            esc(self.ylabel)
        ));
    }
}

/// Writes the three charts into `dir` (created if needed). Trades must be in exit order for the equity curve.
pub fn write_all(dir: &Path, trades: &[Trade], exits_ms: &[i64], d: Distances) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("equity.svg"), equity_svg(trades, exits_ms))?;
    std::fs::write(dir.join("pnl_by_hour.svg"), pnl_by_hour_svg(trades))?;
    std::fs::write(dir.join("mfe_mae.svg"), mfe_mae_svg(trades, d))
}

/// Cumulative net PnL over exit time.
fn equity_svg(trades: &[Trade], exits_ms: &[i64]) -> String {
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
    let xfmt = |v: f64| format!("{v:.1}");
    let axes = Axes {
        x: (0.0, span_t / 3.6e6),
        y: (lo, lo + span_y),
        xlabel: "hours since the first exit",
        ylabel: "USDT",
        xfmt: &xfmt,
    };
    axes.draw(&mut s);
    let step = (eq.len() / 2000).max(1);
    let mut pts = String::new();
    for (i, v) in eq.iter().enumerate().step_by(step) {
        let x = M + (exits_ms.get(i).copied().unwrap_or(0) as f64 - t0) / span_t * PW;
        let y = H - M - (v - lo) / span_y * PH;
        pts.push_str(&format!("{x:.1},{y:.1} "));
    }
    s.push_str(&format!(r##"<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="1.5"/></svg>"##));
    s
}

/// A 24-cell heatmap of mean PnL % by UTC hour of entry.
fn pnl_by_hour_svg(trades: &[Trade]) -> String {
    let mut s = svg_open("Mean net PnL % by UTC hour of entry");
    let mut sum = [0.0f64; 24];
    let mut n = [0u64; 24];
    for t in trades {
        sum[t.hour as usize % 24] += t.pnl_pct;
        n[t.hour as usize % 24] += 1;
    }
    let maxabs = (0..24).filter(|&h| n[h] > 0).map(|h| (sum[h] / n[h] as f64).abs()).fold(1e-12, f64::max);
    let cw = PW / 12.0;
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
        s.push_str(&format!(
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
        ));
    }
    s.push_str("</svg>");
    s
}

/// MAE (x) against MFE (y) per position, with the configured distances as reference lines.
fn mfe_mae_svg(trades: &[Trade], d: Distances) -> String {
    let mut s = svg_open("MFE vs MAE per position (green: winners, red: losers)");
    let xmax = trades.iter().map(|t| t.mae).fold(d.stop_pct * 1.2, f64::max);
    let ymax = trades.iter().map(|t| t.mfe).fold(d.tp2_pct * 1.2, f64::max);
    let xfmt = |v: f64| format!("{v:.2}");
    let axes =
        Axes { x: (0.0, xmax), y: (0.0, ymax), xlabel: "MAE % (adverse)", ylabel: "MFE % (favourable)", xfmt: &xfmt };
    axes.draw(&mut s);
    let step = (trades.len() / 5000).max(1);
    for t in trades.iter().step_by(step) {
        let x = M + t.mae / xmax * PW;
        let y = H - M - t.mfe / ymax * PH;
        let c = if t.pnl > 0.0 { "#2ca02c" } else { "#d62728" };
        s.push_str(&format!(r##"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{c}" fill-opacity="0.6"/>"##));
    }
    for (v, label, vertical) in [
        (d.stop_pct, "stop", true),
        (d.soft_stop_pct, "SoftStop", true),
        (d.tp1_pct, "TP1", false),
        (d.tp2_pct, "TP2", false),
    ] {
        s.push_str(&if vertical {
            let x = M + v / xmax * PW;
            format!(
                r##"<line x1="{x}" y1="{M}" x2="{x}" y2="{}" stroke="#555" stroke-dasharray="4 3"/><text x="{}" y="{}" fill="#555">{label} {v:.2}%</text>"##,
                H - M,
                x + 3.0,
                M + 12.0
            )
        } else {
            let y = H - M - v / ymax * PH;
            format!(
                r##"<line x1="{M}" y1="{y}" x2="{}" y2="{y}" stroke="#555" stroke-dasharray="4 3"/><text x="{}" y="{}" fill="#555" text-anchor="end">{label} {v:.2}%</text>"##,
                W - M,
                W - M - 3.0,
                y - 4.0
            )
        });
    }
    s.push_str("</svg>");
    s
}
